"""Telling clinicians: the care team's email about a new emergency or urgent alert, its
escalation (RF-META-01) when nobody acknowledges it in time, and the in-app notifications.

Each delivery is owed in a column of the alert (`notified_at`, `escalated_at`), claimed
with a row lock so that two workers or two beats never send twice, retried with a
back-off when it fails, and shown on /health/ until it succeeds (docs/safety-path.md)."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from config.enqueue import (
    SWEEP_TIME_BUDGET,
    task_publish,
)
from patients.models import Clinician
from rehab.models import (
    Alert,
    AlertEvent,
    Notification,
)
from rehab.safety import (
    ESCALATION,
)

logger = logging.getLogger(__name__)


def _care_team_notifications(*, alert: Alert, kind: str, message: str) -> None:
    Notification.objects.bulk_create(
        Notification(clinician=clinician, alert=alert, kind=kind, message=message[:300])
        for clinician in alert.patient.care_team.all()
    )


def _alert_message(alert: Alert) -> str:
    return f"{alert.severity.capitalize()} alert {alert.rule} for {alert.patient.full_name}"


# --------------------------------------------------------------------------- delivery

# A delivery that keeps failing (SMTP down, nobody to send to) is tried this many times,
# 1, 2, 4 ... minutes apart (at most 30), then left to operators: /health/ shows every
# alert whose delivery has failed and is still owed, from the first failure on.
MAX_DELIVERY_ATTEMPTS = 8
DELIVERY_BACKOFF_MAX = timedelta(minutes=30)


class NoRecipientsError(Exception):
    """Nobody to send a safety email to: never recorded as delivered."""


def _retry_at(attempts: int, now: datetime) -> datetime:
    return now + min(timedelta(minutes=2 ** (attempts - 1)), DELIVERY_BACKOFF_MAX)


def _may_try(prefix: str, now: datetime) -> Q:
    """Owed deliveries not given up on and not waiting out a back-off."""
    return Q(**{f"{prefix}_attempts__lt": MAX_DELIVERY_ATTEMPTS}) & (
        Q(**{f"{prefix}_retry_at__isnull": True}) | Q(**{f"{prefix}_retry_at__lte": now})
    )


def _delivery_failed(alert: Alert, *, prefix: str, exc: Exception, now: datetime) -> None:
    """Count a failed attempt and set the next one, in the caller's transaction."""
    attempts = getattr(alert, f"{prefix}_attempts") + 1
    Alert.objects.filter(pk=alert.pk).update(
        **{f"{prefix}_attempts": attempts, f"{prefix}_retry_at": _retry_at(attempts, now)},
        delivery_error=f"{prefix}: {exc!r}"[:2000],
    )
    logger.error(
        "safety %s of alert %s (%s, %s) failed, attempt %s of %s: %r",
        prefix,
        alert.pk,
        alert.rule,
        alert.severity,
        attempts,
        MAX_DELIVERY_ATTEMPTS,
        exc,
        exc_info=not isinstance(exc, NoRecipientsError),
    )


def _send(*, subject: str, body: str, recipients: list[str]) -> None:
    if not recipients:
        raise NoRecipientsError("no care team, escalation contact or clinician with an email")
    send_mail(
        subject=subject,
        message=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=recipients,
    )


def alert_notify_enqueue(*, alert_id: UUID) -> None:
    task_publish("rehab.tasks.alert_notify_task", str(alert_id))


def _emails(clinicians: Any) -> list[str]:
    return sorted(
        set(
            clinicians.filter(user__is_active=True)
            .exclude(user__email="")
            .values_list("user__email", flat=True)
        )
    )


def _care_team_emails(alert: Alert) -> list[str]:
    return _emails(alert.patient.care_team.all())


def _escalation_emails(alert: Alert) -> list[str]:
    """The clinic's escalation contact; when it is blank, whoever answers for the clinic:
    its clinic admins, else every clinician of the clinic."""
    clinic = alert.patient.clinic
    if clinic.escalation_email:
        return [clinic.escalation_email]
    clinicians = Clinician.objects.filter(clinic=clinic)
    return _emails(clinicians.filter(role=Clinician.Role.CLINIC_ADMIN)) or _emails(clinicians)


def alert_notify(*, alert_id: UUID | str) -> bool:
    """Email the care team about a new emergency or urgent alert, exactly once.

    The row lock makes a second worker (or a second beat) wait and then find the alert
    already notified. A failed send (or nobody to send to) is counted and tried again
    later; it is never recorded as notified.
    """
    now = timezone.now()
    with transaction.atomic():
        alert = (
            Alert.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("patient", "patient__clinic")
            .filter(_may_try("notify", now), pk=alert_id, notify_due=True, notified_at__isnull=True)
            .first()
        )
        if alert is None:
            return False
        try:
            # Without a care team (or one without email) the clinic still hears of it.
            recipients = _care_team_emails(alert) or _escalation_emails(alert)
            _send(
                subject=f"[{alert.severity.upper()}] {alert.rule} for a patient needs review",
                body=_alert_email_body(alert),
                recipients=recipients,
            )
        except SoftTimeLimitExceeded:
            raise
        except Exception as exc:  # noqa: BLE001 - counted, logged, retried, shown in /health/
            _delivery_failed(alert, prefix="notify", exc=exc, now=now)
            return False
        alert.notified_at = timezone.now()
        alert.notify_retry_at = None
        alert.delivery_error = ""
        alert.save(update_fields=["notified_at", "notify_retry_at", "delivery_error", "updated_at"])
        AlertEvent.objects.create(
            alert=alert, kind=AlertEvent.Kind.NOTIFIED, data={"recipients": recipients}
        )
    return True


def _alert_email_body(alert: Alert, *, escalation: bool = False) -> str:
    # No clinical details in email: it leaves our systems. The link leads to them.
    link = f"{settings.PUBLIC_BASE_URL}/dashboard/alerts/{alert.pk}/"
    lead = (
        f"This {alert.severity} alert has not been acknowledged in time and is escalated to "
        "you (RF-META-01)."
        if escalation
        else f"A new {alert.severity} safety alert was raised for a patient in your care."
    )
    return (
        f"{lead}\n\nRule: {alert.rule} (version {alert.rule_version})\n"
        f"Patient: {alert.patient.first_name} {alert.patient.last_name[:1]}.\n"
        f"Raised: {alert.created_at:%Y-%m-%d %H:%M} UTC\n\nReview it: {link}\n"
    )


def notifications_sweep(*, limit: int = 200, budget: float = SWEEP_TIME_BUDGET) -> int:
    """Send every notification still owed (a lost message, an SMTP outage).

    Alerts waiting out a back-off are not picked, so a failing one cannot take the place
    of the others run after run.
    """
    started = time.monotonic()
    ids = list(
        Alert.objects.filter(_may_try("notify", timezone.now()))
        .filter(notify_due=True, notified_at__isnull=True)
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
    sent = 0
    for alert_id in ids:
        sent += _notify_quietly(alert_id)
        if time.monotonic() - started > budget:
            break  # at least one per run, whatever the budget
    return sent


def _notify_quietly(alert_id: UUID) -> bool:
    try:
        return alert_notify(alert_id=alert_id)
    except SoftTimeLimitExceeded:
        raise
    except Exception:
        # A database error, say: the alert stays owed for the next sweep.
        logger.exception("could not notify alert %s", alert_id)
        return False


def escalations_sweep(*, limit: int = 200, budget: float = SWEEP_TIME_BUDGET) -> int:
    """RF-META-01: escalate every open alert past its deadline, once each.

    Claimed row by row with SKIP LOCKED and a conditional UPDATE, so two beat processes
    (a deployment mistake) escalate nothing twice. A failed escalation is counted and
    put back with a back-off, and the sweep goes on with the others: one bad alert must
    not stall RF-META-01 for every clinic.
    """
    escalated = 0
    now = timezone.now()
    started = time.monotonic()
    for _ in range(limit):
        with transaction.atomic():
            alert = (
                Alert.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("patient", "patient__clinic")
                .filter(
                    _may_try("escalation", now),
                    status=Alert.Status.OPEN,
                    escalated_at__isnull=True,
                    escalation_due_at__lte=now,
                )
                .order_by("escalation_due_at")
                .first()
            )
            if alert is None:
                break
            escalated += _escalate(alert, now=now)
        if time.monotonic() - started > budget:
            break  # at least one per run, whatever the budget
    return escalated


def _escalate(alert: Alert, *, now: datetime) -> bool:
    try:
        recipients = _escalation_emails(alert)
        _send(
            subject=f"[ESCALATED {alert.severity.upper()}] {alert.rule} not acknowledged",
            body=_alert_email_body(alert, escalation=True),
            recipients=recipients,
        )
    except SoftTimeLimitExceeded:
        raise
    except Exception as exc:  # noqa: BLE001 - counted, logged, retried, shown in /health/
        _delivery_failed(alert, prefix="escalation", exc=exc, now=now)
        return False
    alert.escalated_at = timezone.now()
    alert.escalation_retry_at = None
    alert.delivery_error = ""
    alert.save(
        update_fields=["escalated_at", "escalation_retry_at", "delivery_error", "updated_at"]
    )
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


def undelivered_alerts() -> Any:
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
