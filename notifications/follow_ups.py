"""The safety follow-up: a few hours after the app showed a patient emergency or urgent
advice, ask whether they were seen, and put the answer on the alert's timeline
(docs/safety-path.md, "Safety follow-up").

Each owed question is a `SafetyFollowUp` row with `due_at`, recorded by the beat sweep
for every emergency or urgent alert whose patient was told something (`advice_message_key`,
docs/safety-path.md § 8.6), once per alert episode (a unique constraint, inserted with ON
CONFLICT DO NOTHING). The same sweep claims due rows with SKIP LOCKED and asks each once:
a feed item, a push per device and, when the patient's channels include email, an email
(`services.patient_message_plan`). Never a patient whose record is restricted."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.http import Http404
from django.utils import timezone, translation

from config.audit import AuditContext
from config.db import insert_unless_conflict
from config.enqueue import publish_on_commit
from notifications import reminders, services
from notifications.channels.registry import channel_configured
from notifications.models import Delivery, Device, FeedItem, SafetyFollowUp
from patients.models import AuditEvent, Patient, User
from patients.services import audit_record
from rehab.models import Alert, Severity
from rehab.services import alerts as alert_services

logger = logging.getLogger(__name__)

OBJECT_TYPE = "safety_follow_up"
# Alerts opened longer ago than this before their follow-up fell due are not followed up
# (a sweep that was down for days, the day this ships): a question days late helps nobody.
LOOKBACK = timedelta(hours=24)


def follow_up_delay() -> timedelta:
    return timedelta(hours=settings.SAFETY_FOLLOW_UP_HOURS)


def follow_ups_plan(*, now: datetime, limit: int = 500) -> int:
    """Record the follow-up owed by each emergency or urgent alert whose patient was shown
    advice, once per episode; returns how many were recorded now."""
    delay = follow_up_delay()
    episodes = SafetyFollowUp.objects.filter(alert=OuterRef("pk"), opened_at=OuterRef("opened_at"))
    alerts = (
        Alert.objects.filter(
            severity__in=(Severity.EMERGENCY, Severity.URGENT),
            opened_at__gte=now - delay - LOOKBACK,
            patient__in=Patient.objects.active(),
        )
        .exclude(advice_message_key="")
        .exclude(Exists(episodes))
        .order_by("opened_at")
        .values_list("pk", "patient_id", "opened_at", "severity", "advice_message_key")[:limit]
    )
    recorded = 0
    for alert_id, patient_id, opened_at, severity, advice_key in alerts:
        recorded += insert_unless_conflict(
            SafetyFollowUp(
                alert_id=alert_id,
                patient_id=patient_id,
                opened_at=opened_at,
                severity=severity,
                advice_message_key=advice_key,
                advised_at=opened_at,
                due_at=opened_at + delay,
            )
        )
    return recorded


def _ask_next(now: datetime) -> bool | None:
    """Claim one due follow-up (SKIP LOCKED: another sweep's row is left to it) and ask
    it; None when none is due."""
    with transaction.atomic():
        follow_up = (
            SafetyFollowUp.objects.filter(status=SafetyFollowUp.Status.DUE, due_at__lte=now)
            .select_for_update(skip_locked=True, of=("self",))
            .select_related("patient")
            .order_by("due_at", "pk")
            .first()
        )
        if follow_up is None:
            return None
        patient = follow_up.patient
        if patient.restricted_at is not None:
            follow_up.status = SafetyFollowUp.Status.SKIPPED
            follow_up.save(update_fields=["status"])
            return False
        follow_up.status = SafetyFollowUp.Status.ASKED
        follow_up.asked_at = now
        follow_up.save(update_fields=["status", "asked_at"])
        # The feed, a push per device, and an email when the patient's channels include
        # email or no device of theirs can be pushed to: the question is answered in the
        # app, and reaches the patient as their other messages do, never the feed alone.
        # No quiet hours, no opt-out: it is a safety message.
        _, planned = services.patient_message_plan(
            kind=Delivery.Kind.SAFETY_FOLLOW_UP,
            key=f"follow_up:{follow_up.pk}",
            patient_id=patient.pk,
            user_id=patient.user_id,
            email=patient.email if _emailed(patient) else "",
            alert_id=follow_up.alert_id,
            follow_up_id=follow_up.pk,
        )
        for delivery_id in planned:
            publish_on_commit(services.DELIVERY_SEND_TASK, str(delivery_id))
    return True


def _emailed(patient: Patient) -> bool:
    """Whether the follow-up goes by email too: the patient chose email, or none of their
    devices can be reached (push chosen but every phone signed out, or its channel not
    configured here), so that the question never waits in an unopened app alone."""
    if reminders.email_chosen(patient=patient):
        return True
    if patient.user_id is None:
        return True
    platforms = Device.objects.filter(user_id=patient.user_id).values_list("platform", flat=True)
    return not any(channel_configured(Device.channel_of(platform)) for platform in platforms)


def follow_ups_sweep(*, limit: int = 200) -> int:
    """Beat's sweep: record the follow-ups newly owed, then ask each due one exactly once;
    returns how many were asked. Two sweeps at once each take other rows."""
    now = timezone.now()
    follow_ups_plan(now=now)
    asked = 0
    for _ in range(limit):
        result = _ask_next(now)
        if result is None:
            break
        asked += result
    return asked


# --------------------------------------------------------------------------- answers


def follow_up_get(*, user: User, follow_up_id: UUID) -> SafetyFollowUp:
    """The caller's own follow-up, once asked; anyone else's is 404."""
    patient = getattr(user, "patient", None)
    follow_up = (
        SafetyFollowUp.objects.filter(
            pk=follow_up_id,
            patient=patient,
            status__in=(SafetyFollowUp.Status.ASKED, SafetyFollowUp.Status.ANSWERED),
        ).first()
        if patient is not None
        else None
    )
    if follow_up is None:
        raise Http404
    return follow_up


def follow_up_answer(
    *, user: User, follow_up: SafetyFollowUp, seen_by: str, context: AuditContext | None = None
) -> SafetyFollowUp:
    """Record the patient's answer and put it on the alert's timeline. Answering again (I
    had not gone yet; now I have) records the new answer beside the first; the same
    answer twice records it once."""
    with transaction.atomic():
        follow_up = SafetyFollowUp.objects.select_for_update().get(pk=follow_up.pk)
        if follow_up.seen_by == seen_by:
            return follow_up
        now = timezone.now()
        previous = follow_up.seen_by
        follow_up.seen_by = seen_by
        follow_up.answered_at = now
        follow_up.status = SafetyFollowUp.Status.ANSWERED
        follow_up.save(update_fields=["seen_by", "answered_at", "status"])
        assert follow_up.asked_at is not None
        alert_services.alert_follow_up_answered(
            alert_id=follow_up.alert_id,
            actor=user,
            seen_by=seen_by,
            # The timeline is the clinicians' (English), whatever the patient's language.
            answer=_english(seen_by),
            asked_at=follow_up.asked_at,
        )
        # The question is read once answered.
        FeedItem.objects.filter(follow_up=follow_up, read_at__isnull=True).update(read_at=now)
        audit_record(
            actor=user,
            action=AuditEvent.Action.UPDATE,
            object_type=OBJECT_TYPE,
            object_id=follow_up.pk,
            patient_id=follow_up.patient_id,
            changes={"seen_by": seen_by, "previous": previous},
            context=context,
        )
    return follow_up


def _english(seen_by: str) -> str:
    with translation.override("en"):
        return str(SafetyFollowUp.SeenBy(seen_by).label)
