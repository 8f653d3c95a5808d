"""What the notifications tables hold about one patient, for the data-rights app: the
export's sections and the erasure (docs/data-rights.md, "Adding a table that holds
patient data").

This module is the one place a notifications table that holds patient data is added: a
section in `patient_sections` and its fate in `account_closed` / `patient_pseudonymise`.
`rights` calls these inside its own transaction (the layers contract lets the top apps
import each other), so a pseudonymisation never commits with an address left behind.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Q

from notifications.models import Delivery, Device, FeedItem, SafetyFollowUp
from patients.models import Patient

# The columns of a delivery that tell the patient what was sent to them and when; the
# bookkeeping of the sending machinery (leases, attempts, the provider's reply) is not
# something held *about* them.
_DELIVERY_COLUMNS = (
    "id",
    "kind",
    "channel",
    "address",
    "status",
    "due_at",
    "sent_at",
    "created_at",
    "updated_at",
)
# Never the token, nor the Web Push keys: a push address is a credential to reach the
# phone, not information about the patient.
_DEVICE_COLUMNS = (
    "id",
    "platform",
    "app_version",
    "locale",
    "time_zone",
    "created_at",
    "updated_at",
)

# The patient's feed: which message, when, and whether they opened it (its words are
# composed when shown, from the kind).
_FEED_COLUMNS = ("id", "kind", "alert_id", "created_at", "read_at")
# "Were you seen?" after emergency or urgent advice, and the patient's answer.
_FOLLOW_UP_COLUMNS = (
    "id",
    "alert_id",
    "severity",
    "advised_at",
    "due_at",
    "status",
    "asked_at",
    "seen_by",
    "answered_at",
)

# What an erased delivery's address becomes. Blank rather than a made-up address, so no
# channel could ever send to it.
ERASED_ADDRESS = ""


def deliveries_to_patient(*, patient: Patient) -> models.QuerySet[Delivery]:
    """The messages sent *to* the patient: their invitation and everything addressed to
    their account. Messages to the care team about the patient (alerts, escalations) carry
    a clinician's address and are not the patient's."""
    to_patient = Q(invitation__isnull=False)
    if patient.user_id is not None:
        to_patient |= Q(recipient_id=patient.user_id)
    return Delivery.objects.filter(Q(patient_id=patient.pk) & to_patient)


def patient_sections(*, patient: Patient) -> dict[str, list[dict[str, Any]]]:
    """The export's sections. The caller fetched `patient` in the reader's scope; every
    query here is filtered on that one patient (or their account)."""
    deliveries = list(
        deliveries_to_patient(patient=patient)
        .order_by("created_at", "id")
        .values(*_DELIVERY_COLUMNS)
    )
    devices: list[dict[str, Any]] = []
    if patient.user_id is not None:
        devices = list(
            Device.objects.filter(user_id=patient.user_id)
            .order_by("created_at", "id")
            .values(*_DEVICE_COLUMNS)
        )
    feed = list(
        FeedItem.objects.filter(patient_id=patient.pk)
        .order_by("created_at", "id")
        .values(*_FEED_COLUMNS)
    )
    follow_ups = list(
        SafetyFollowUp.objects.filter(patient_id=patient.pk)
        .order_by("created_at", "id")
        .values(*_FOLLOW_UP_COLUMNS)
    )
    return {
        "notification_deliveries": deliveries,
        "push_devices": devices,
        "notification_feed": feed,
        "safety_follow_ups": follow_ups,
    }


def account_closed(*, user_id: int) -> int:
    """The account can no longer sign in: none of its devices may be reached again.

    The devices of the app's sign-ins already went with the revoked tokens (the foreign
    key cascades); this removes the rest (a browser's session-bound device). Returns how
    many were left to delete."""
    deleted, _ = Device.objects.filter(user_id=user_id).delete()
    return int(deleted)


def patient_pseudonymise(*, patient: Patient) -> None:
    """Erase what the notifications tables hold that identifies the patient, in the
    caller's transaction. The delivery rows stay (that a message of this kind went out,
    when): their address and the provider's reference go, and anything still owed is
    cancelled, so nothing is ever sent to an erased patient."""
    if patient.user_id is not None:
        account_closed(user_id=patient.user_id)
    deliveries = deliveries_to_patient(patient=patient)
    deliveries.filter(
        status__in=(
            Delivery.Status.QUEUED,
            Delivery.Status.RETRYING,
            Delivery.Status.SENDING,
        )
    ).update(status=Delivery.Status.CANCELLED, sending_until=None)
    deliveries.update(address=ERASED_ADDRESS, provider_id="", last_error="")
    # A follow-up not yet asked is never asked of an erased patient; the feed and the
    # answers given stay, as the alerts they belong to do (they name no one).
    SafetyFollowUp.objects.filter(patient_id=patient.pk, status=SafetyFollowUp.Status.DUE).update(
        status=SafetyFollowUp.Status.SKIPPED
    )
