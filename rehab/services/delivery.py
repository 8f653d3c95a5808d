"""What the care team is owed about an alert, and the alert's record of it: the email
about a new emergency or urgent alert, its escalation (RF-META-01) when nobody
acknowledges it in time, and the in-app notifications.

What is owed is a column of the alert (`notified_at`, `escalated_at` still NULL); the
`notifications` app turns it into delivery records, sends them through a channel and calls
back here, in the same transaction, when one is sent or fails (docs/architecture.md,
"Notifications"). This module publishes the notifications task by name: `rehab` imports
nothing of `notifications`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from config.enqueue import task_publish
from patients.models import Clinician
from rehab.models import Alert, AlertEvent, Notification
from rehab.safety import ESCALATION

logger = logging.getLogger(__name__)

# The notifications app's task that emails the care team about one alert (by name).
ALERT_NOTIFY_TASK = "notifications.tasks.alert_notify_task"


def _care_team_notifications(*, alert: Alert, kind: str, message: str) -> None:
    Notification.objects.bulk_create(
        Notification(clinician=clinician, alert=alert, kind=kind, message=message[:300])
        for clinician in alert.patient.care_team.all()
    )


def _alert_message(alert: Alert) -> str:
    return f"{alert.severity.capitalize()} alert {alert.rule} for {alert.patient.full_name}"


# A delivery that keeps failing (SMTP down, nobody to send to) is tried this many times,
# 1, 2, 4 ... minutes apart (at most 30), then left to operators: /health/ shows every
# alert whose delivery has failed and is still owed, from the first failure on.
MAX_DELIVERY_ATTEMPTS = 8
DELIVERY_BACKOFF_MAX = timedelta(minutes=30)
NO_RECIPIENTS = "no care team, escalation contact or clinician with an email"


def retry_at(attempts: int, now: datetime) -> datetime:
    return now + min(timedelta(minutes=2 ** (attempts - 1)), DELIVERY_BACKOFF_MAX)


def _may_try(prefix: str, now: datetime) -> Q:
    """Owed deliveries not given up on and not waiting out a back-off."""
    return Q(**{f"{prefix}_attempts__lt": MAX_DELIVERY_ATTEMPTS}) & (
        Q(**{f"{prefix}_retry_at__isnull": True}) | Q(**{f"{prefix}_retry_at__lte": now})
    )


def alert_notify_enqueue(*, alert_id: UUID) -> None:
    task_publish(ALERT_NOTIFY_TASK, str(alert_id))


@dataclass(frozen=True)
class Recipient:
    user_id: int | None
    email: str


def _recipients(clinicians: QuerySet[Clinician]) -> list[Recipient]:
    rows = (
        clinicians.filter(user__is_active=True)
        .exclude(user__email="")
        .values_list("user_id", "user__email")
    )
    by_email: dict[str, Recipient] = {}
    for user_id, email in rows:
        by_email.setdefault(email.lower(), Recipient(user_id=user_id, email=email))
    return [by_email[key] for key in sorted(by_email)]


def alert_notify_recipients(alert: Alert) -> list[Recipient]:
    """The care team; without one (or one without email), whoever answers for the clinic:
    the clinic still hears of it."""
    return _recipients(alert.patient.care_team.all()) or alert_escalation_recipients(alert)


def alert_escalation_recipients(alert: Alert) -> list[Recipient]:
    """The clinic's escalation contact; when it is blank, whoever answers for the clinic:
    its clinic admins, else every clinician of the clinic."""
    clinic = alert.patient.clinic
    if clinic.escalation_email:
        return [Recipient(user_id=None, email=clinic.escalation_email)]
    clinicians = Clinician.objects.filter(clinic=clinic)
    return _recipients(clinicians.filter(role=Clinician.Role.CLINIC_ADMIN)) or _recipients(
        clinicians
    )


def alerts_owed_notification(now: datetime) -> QuerySet[Alert]:
    """Alerts whose care team must still be emailed, not waiting out a back-off."""
    return Alert.objects.filter(_may_try("notify", now), notify_due=True, notified_at__isnull=True)


def alerts_owed_escalation(now: datetime) -> QuerySet[Alert]:
    """RF-META-01: open alerts past their deadline, not escalated, not waiting a back-off."""
    return Alert.objects.filter(
        _may_try("escalation", now),
        status=Alert.Status.OPEN,
        escalated_at__isnull=True,
        escalation_due_at__lte=now,
    )


def alert_notify_round(alert: Alert) -> str:
    """What makes this notification one: a reopened alert (new `opened_at`) is news again."""
    return alert.opened_at.isoformat()


def alert_escalation_round(alert: Alert) -> str:
    """A reopened alert gets a new escalation deadline, and a new escalation."""
    assert alert.escalation_due_at is not None
    return alert.escalation_due_at.isoformat()


def alert_email_facts(alert: Alert) -> dict[str, Any]:
    """What the alert's email may say: no clinical detail beyond the rule; the link leads
    to it."""
    return {
        "severity": alert.severity,
        "rule": alert.rule,
        "rule_version": alert.rule_version,
        "first_name": alert.patient.first_name,
        "last_initial": alert.patient.last_name[:1],
        "raised_at": alert.created_at,
        "link": f"{settings.PUBLIC_BASE_URL}/dashboard/alerts/{alert.pk}/",
    }


def alert_delivery_failed(*, alert_id: UUID, prefix: str, error: str, now: datetime) -> None:
    """Count a failed attempt to tell someone (`prefix` "notify" or "escalation") and set
    the next one, in the caller's transaction. Nobody to send to is such a failure: it is
    never recorded as delivered. `error` names the reason, never the message."""
    alert = Alert.objects.filter(pk=alert_id).values("rule", "severity", f"{prefix}_attempts")
    row = alert.first()
    if row is None:
        return
    attempts = min(row[f"{prefix}_attempts"] + 1, MAX_DELIVERY_ATTEMPTS)
    Alert.objects.filter(pk=alert_id).update(
        **{f"{prefix}_attempts": attempts, f"{prefix}_retry_at": retry_at(attempts, now)},
        delivery_error=f"{prefix}: {error}"[:2000],
    )
    logger.error(
        "safety %s of alert %s (%s, %s) failed, attempt %s of %s: %s",
        prefix,
        alert_id,
        row["rule"],
        row["severity"],
        attempts,
        MAX_DELIVERY_ATTEMPTS,
        error,
    )


def alert_notified(*, alert_id: UUID, recipients: list[str]) -> bool:
    """Record that the care team was emailed, once (a conditional UPDATE: the first
    delivery of the round to go out marks it); in the caller's transaction."""
    marked = Alert.objects.filter(pk=alert_id, notified_at__isnull=True).update(
        notified_at=timezone.now(),
        notify_retry_at=None,
        delivery_error="",
        updated_at=timezone.now(),
    )
    if marked:
        AlertEvent.objects.create(
            alert_id=alert_id, kind=AlertEvent.Kind.NOTIFIED, data={"recipients": recipients}
        )
    return bool(marked)


def alert_escalation_owed(*, alert_id: UUID) -> bool:
    """Whether an escalation still makes sense: nobody has acknowledged the alert."""
    return Alert.objects.filter(pk=alert_id, status=Alert.Status.OPEN).exists()


def alert_escalated(*, alert_id: UUID, recipients: list[str]) -> bool:
    """Record RF-META-01's escalation once, with the care team's in-app notifications."""
    marked = Alert.objects.filter(pk=alert_id, escalated_at__isnull=True).update(
        escalated_at=timezone.now(),
        escalation_retry_at=None,
        delivery_error="",
        updated_at=timezone.now(),
    )
    if not marked:
        return False
    alert = Alert.objects.select_related("patient").get(pk=alert_id)
    AlertEvent.objects.create(
        alert=alert,
        kind=AlertEvent.Kind.ESCALATED,
        data={"rule": ESCALATION.id, "recipients": recipients},
    )
    _care_team_notifications(
        alert=alert,
        kind=Notification.Kind.ESCALATION,
        message=f"Escalated: {_alert_message(alert)} was not acknowledged in time",
    )
    return True


def undelivered_alerts() -> QuerySet[Alert]:
    """Alerts whose email is owed and has failed at least once (or was given up on)."""
    now = timezone.now()
    notify_owed = Q(notify_due=True, notified_at__isnull=True, notify_attempts__gt=0)
    escalation_owed = Q(
        status=Alert.Status.OPEN,
        escalated_at__isnull=True,
        escalation_due_at__lte=now,
        escalation_attempts__gt=0,
    )
    return Alert.objects.filter(notify_owed | escalation_owed)
