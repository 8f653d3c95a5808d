"""The alert lifecycle: a rule's firing becomes an alert (or another occurrence of the
unresolved one), which a clinician acknowledges and resolves (docs/safety-path.md)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from patients.models import Patient
from rehab.models import (
    Alert,
    AlertEvent,
    AlertOccurrence,
    DailyLog,
    Notification,
    Severity,
)
from rehab.safety import (
    ESCALATION,
    MESSAGE_LANGUAGE,
    MESSAGES,
    Firing,
)
from rehab.services.delivery import _alert_message, _care_team_notifications, alert_notify_enqueue

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Raised:
    alert: Alert
    created: bool


def advice_message_key(advice: dict[str, Any] | None) -> str:
    """The key of the message a stored `safety_advice` showed ("" for none). Advice stored
    before it carried its key is matched by its text."""
    if not advice:
        return ""
    key = advice.get("message_key")
    if key:
        return str(key)
    return next((k for k, text in MESSAGES.items() if text == advice.get("message")), "")


@dataclass(frozen=True)
class Told:
    """What the patient was told for the answers that fired (§8.6 of the rules)."""

    message_key: str = ""
    language: str = ""

    @classmethod
    def of(cls, advice: dict[str, Any] | None) -> Told:
        key = advice_message_key(advice)
        if not key:
            return cls()
        return cls(
            message_key=key, language=str((advice or {}).get("language") or MESSAGE_LANGUAGE)
        )


def alert_raise(
    *,
    patient: Patient,
    firing: Firing,
    log: DailyLog | None,
    fired_on: date,
    title: str = "",
    source: str | None = None,
    log_version: int | None = None,
    told: Told | None = None,
    submitted_at: datetime | None = None,
) -> Raised:
    """Record one firing: a new alert, or another occurrence of the unresolved one.

    `source` says which answers fired (the log as stored, by default; a superseded version
    or a refused submission naming the log), `told` what the patient was shown for them,
    `submitted_at` when they sent them (the escalation clock; by default the log's).

    Callers hold the patient's row lock (see `log_evaluate`), so two evaluations of the
    same patient cannot interleave here; the partial unique index is the backstop.
    """
    now = timezone.now()
    clock = min(submitted_at, now) if submitted_at is not None else _escalation_clock(log, now)
    if source is None:
        source = AlertOccurrence.Source.LOG if log is not None else AlertOccurrence.Source.REVIEW
    if told is None:
        told = Told.of(log.safety_advice) if log is not None else Told()
    if log_version is None and log is not None and source == AlertOccurrence.Source.LOG:
        log_version = log.version
    alert = (
        Alert.objects.select_for_update()
        .filter(patient=patient, rule=firing.rule_id)
        .exclude(status=Alert.Status.RESOLVED)
        .first()
    )
    occurrence = AlertOccurrence(
        log=log,
        fired_on=fired_on,
        rule_version=firing.version,
        basis=firing.basis,
        source=source,
        log_version=log_version,
        advice_message_key=told.message_key,
        advice_language=told.language,
    )
    if alert is None:
        alert = Alert.objects.create(
            patient=patient,
            rule=firing.rule_id,
            rule_version=firing.version,
            severity=firing.severity,
            title=title,
            basis=firing.basis,
            log=log,
            advice_message_key=told.message_key,
            advice_language=told.language,
            last_fired_at=now,
            opened_at=now,
            notify_due=firing.severity in (Severity.EMERGENCY, Severity.URGENT),
            escalation_due_at=_escalation_due(firing.severity, clock),
        )
        occurrence.alert = alert
        occurrence.save(force_insert=True)
        AlertEvent.objects.create(
            alert=alert, kind=AlertEvent.Kind.CREATED, data=_event_data(log, source)
        )
        if alert.notify_due:
            _care_team_notifications(
                alert=alert, kind=Notification.Kind.ALERT, message=_alert_message(alert)
            )
            transaction.on_commit(lambda: alert_notify_enqueue(alert_id=alert.pk))
        return Raised(alert=alert, created=True)

    # This log (or, for a trend rule, this day) already recorded: a re-evaluation. Looked
    # up first (under the patient's lock, so no race) rather than caught as a unique
    # violation, which PostgreSQL would log with the basis in it (docs/safety-path.md,
    # "No patient data in the database server's log").
    recorded = AlertOccurrence.objects.filter(alert=alert)
    recorded = (
        recorded.filter(log=log)
        if log is not None
        else recorded.filter(log__isnull=True, fired_on=fired_on)
    )
    if recorded.exists():
        return Raised(alert=alert, created=False)
    try:
        with transaction.atomic():
            occurrence.alert = alert
            occurrence.save(force_insert=True)
    except IntegrityError:
        return Raised(alert=alert, created=False)
    alert.occurrence_count = F("occurrence_count") + 1
    alert.last_fired_at = now
    fields = ["occurrence_count", "last_fired_at", "updated_at"]
    if alert.status == Alert.Status.ACKNOWLEDGED:
        # The contract: a new firing turns an acknowledged alert back to open, and the
        # escalation clock starts again.
        alert.status = Alert.Status.OPEN
        alert.opened_at = now
        alert.escalation_due_at = _escalation_due(alert.severity, clock)
        alert.escalated_at = None
        alert.escalation_attempts = 0
        alert.escalation_retry_at = None
        fields += [
            "status",
            "opened_at",
            "escalation_due_at",
            "escalated_at",
            "escalation_attempts",
            "escalation_retry_at",
        ]
        AlertEvent.objects.create(
            alert=alert, kind=AlertEvent.Kind.REOPENED, data=_event_data(log, source)
        )
        if alert.severity in (Severity.EMERGENCY, Severity.URGENT):
            _care_team_notifications(
                alert=alert, kind=Notification.Kind.ALERT, message=_alert_message(alert)
            )
            # The care team acknowledged the last episode; this one is news, and they
            # must hear of it by email at once, as of a new alert (not only in-app).
            alert.notify_due = True
            alert.notified_at = None
            alert.notify_attempts = 0
            alert.notify_retry_at = None
            fields += ["notify_due", "notified_at", "notify_attempts", "notify_retry_at"]
            alert_id = alert.pk
            transaction.on_commit(lambda: alert_notify_enqueue(alert_id=alert_id))
    else:
        AlertEvent.objects.create(
            alert=alert, kind=AlertEvent.Kind.REFIRED, data=_event_data(log, source)
        )
    alert.save(update_fields=fields)
    alert.refresh_from_db(fields=["occurrence_count"])
    return Raised(alert=alert, created=False)


def _event_data(log: DailyLog | None, source: str) -> dict[str, Any]:
    data: dict[str, Any] = {"log": _id(log)}
    if source in (AlertOccurrence.Source.SUPERSEDED, AlertOccurrence.Source.REFUSED):
        data["source"] = source
    return data


def _id(log: DailyLog | None) -> str | None:
    return str(log.pk) if log is not None else None


def _escalation_clock(log: DailyLog | None, now: datetime) -> datetime:
    """When RF-META-01's 60 minutes (urgent: 4 hours) start: when the patient submitted
    the answers that fired, not when a worker got round to them, so that a broker outage
    or a queue backlog does not stretch the window. `updated_at` is the submission time
    of the current answers (set by the create or the patient's last edit; the evaluation
    bookkeeping never touches it). Trend rules have no log: the run's time."""
    if log is None or log.updated_at is None:
        return now
    return min(log.updated_at, now)


def _escalation_due(severity: str, now: datetime) -> datetime | None:
    return ESCALATION.due_at(severity, now)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- clinicians


def alert_acknowledge(*, alert: Alert, actor: Any, note: str = "") -> Alert:
    """A clinician has seen the alert: stop the escalation clock. Idempotent."""
    with transaction.atomic():
        alert = Alert.objects.select_for_update().get(pk=alert.pk)
        if alert.status == Alert.Status.RESOLVED:
            from config.exceptions import ApplicationError

            raise ApplicationError("This alert is already resolved.")
        if alert.status == Alert.Status.OPEN:
            alert.status = Alert.Status.ACKNOWLEDGED
            alert.acknowledged_at = timezone.now()
            alert.acknowledged_by = actor
            alert.acknowledged_note = note
            alert.save(
                update_fields=[
                    "status",
                    "acknowledged_at",
                    "acknowledged_by",
                    "acknowledged_note",
                    "updated_at",
                ]
            )
            AlertEvent.objects.create(
                alert=alert, kind=AlertEvent.Kind.ACKNOWLEDGED, actor=actor, note=note
            )
    return alert


def alert_resolve(*, alert: Alert, actor: Any, disposition: str, note: str = "") -> Alert:
    with transaction.atomic():
        alert = Alert.objects.select_for_update().get(pk=alert.pk)
        if alert.status == Alert.Status.RESOLVED:
            from config.exceptions import ApplicationError

            raise ApplicationError("This alert is already resolved.")
        now = timezone.now()
        if alert.acknowledged_at is None:
            # Resolving implies having seen it.
            alert.acknowledged_at = now
            alert.acknowledged_by = actor
        alert.status = Alert.Status.RESOLVED
        alert.resolved_at = now
        alert.resolved_by = actor
        alert.disposition = disposition
        alert.resolved_note = note
        alert.save()
        AlertEvent.objects.create(
            alert=alert,
            kind=AlertEvent.Kind.RESOLVED,
            actor=actor,
            note=note,
            data={"disposition": disposition},
        )
    return alert


def alert_follow_up_answered(
    *, alert_id: Any, actor: Any, seen_by: str, answer: str, asked_at: datetime
) -> AlertEvent:
    """Put the patient's answer to the safety follow-up ("were you seen?") on the alert's
    timeline, for the clinician (docs/safety-path.md, "Safety follow-up"); in the
    caller's transaction. `answer` is the choice as the patient read it."""
    return AlertEvent.objects.create(
        alert_id=alert_id,
        kind=AlertEvent.Kind.FOLLOW_UP,
        actor=actor,
        note=answer,
        data={"seen_by": seen_by, "asked_at": asked_at.isoformat()},
    )
