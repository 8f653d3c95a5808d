"""Reads of this app for views: the patient's feed and an alert's deliveries
(docs/architecture.md, "Notifications")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.contrib.auth.models import AnonymousUser
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import Http404
from django.utils import translation

from notifications import messages
from notifications.models import Delivery, FeedItem, Reminder, SafetyFollowUp
from notifications.services import PUSH_CHANNELS, patient_language
from patients.models import User
from rehab.models import Alert, MissedLogReminder


def _patient_id(user: User | AnonymousUser) -> UUID | None:
    patient = getattr(user, "patient", None) if user.is_authenticated else None
    return patient.pk if patient is not None else None


def feed_list(*, user: User | AnonymousUser) -> QuerySet[FeedItem]:
    """The patient's own messages, newest first: every one they were sent or would have
    been sent, whatever reached them."""
    patient_id = _patient_id(user)
    if patient_id is None:
        return FeedItem.objects.none()
    missed_days = MissedLogReminder.objects.filter(pk=OuterRef("object_id")).values("missed_days")
    # A patient reminder's kind (daily log, questionnaire, exercises): what it says.
    reminder = Reminder.objects.filter(pk=OuterRef("object_id")).values("kind")
    return (
        FeedItem.objects.filter(patient_id=patient_id)
        .select_related("patient", "follow_up")
        .annotate(
            missed_days=Subquery(missed_days[:1]),
            reminder_kind=Subquery(reminder[:1]),
        )
        .order_by("-created_at", "-id")
    )


def feed_item_get(*, user: User | AnonymousUser, item_id: UUID) -> FeedItem:
    item: FeedItem | None = feed_list(user=user).filter(pk=item_id).first()
    if item is None:
        raise Http404
    return item


def feed_item_text(item: FeedItem) -> messages.Text:
    """What the feed shows of an item, composed from what it is about (like a delivery,
    the item holds no text)."""
    # The patient's own language, else the one the request asked for (Accept-Language).
    language = patient_language(item.patient) or translation.get_language() or ""
    if item.kind == Delivery.Kind.SAFETY_FOLLOW_UP and item.follow_up is not None:
        return messages.follow_up_text(
            first_name=item.patient.first_name,
            severity=item.follow_up.severity,
            language=language,
        )
    if item.kind == Delivery.Kind.MISSED_LOG_REMINDER:
        days: Any = getattr(item, "missed_days", None)
        text: messages.Text = messages.missed_log_reminder_text(
            first_name=item.patient.first_name, missed_days=int(days or 0), language=language
        )
        return text
    reminder_kind = feed_item_reminder(item)
    if reminder_kind is not None:
        return messages.reminder_text(
            kind=reminder_kind, first_name=item.patient.first_name, language=language
        )
    return messages.generic_text(language=language)


def feed_item_reminder(item: FeedItem) -> str | None:
    """A reminder item's kind of reminder (`Reminder.Kind`), None for other items (and
    for a reminder deleted since, e.g. by erasure)."""
    if item.kind != Delivery.Kind.REMINDER:
        return None
    kind: Any = getattr(item, "reminder_kind", None)
    return str(kind) if kind else None


@dataclass(frozen=True)
class DeliveryRow:
    recipient: str
    channel: str
    status: str
    status_display: str
    attempts: int
    last_outcome: str
    sent_at: datetime | None
    updated_at: datetime
    kind: str


def alert_deliveries(*, alert: Alert) -> list[DeliveryRow]:
    """Every message about `alert` (to its care team, its escalation, the patient's
    follow-up) per recipient and channel, for the alert's page. The caller has already
    checked that the clinician may see the alert. Device addresses are never shown: the
    recipient is the person (or the escalation address)."""
    rows = (
        Delivery.objects.filter(alert=alert)
        .select_related("recipient")
        .order_by("kind", "recipient__last_name", "recipient__first_name", "channel", "created_at")
    )
    result = []
    for row in rows:
        if row.recipient is not None:
            recipient = row.recipient.get_full_name() or row.recipient.email
        else:
            recipient = row.address if row.channel not in PUSH_CHANNELS else "-"
        result.append(
            DeliveryRow(
                recipient=recipient,
                channel=row.channel,
                status=row.status,
                status_display=row.get_status_display(),
                attempts=row.attempts,
                last_outcome=row.last_outcome,
                sent_at=row.sent_at,
                updated_at=row.updated_at,
                kind=row.get_kind_display(),
            )
        )
    return result


def alert_follow_ups(*, alert: Alert) -> QuerySet[SafetyFollowUp]:
    return SafetyFollowUp.objects.filter(alert=alert).order_by("due_at")
