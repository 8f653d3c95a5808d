"""The safety engine's Django side: context for the pure rules, alerts, delivery.

The pure rules (rehab/safety) decide; this module gathers their inputs, stores what they
decided as alerts, and makes sure every log is evaluated and every alert delivered even
when messages are lost: each step leaves a column (`evaluated_at`, `notified_at`,
`escalated_at`) that a beat sweeper can query for what is still owed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import Any
from uuid import UUID

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Avg, Count, DateField, ExpressionWrapper, F, Q, Subquery
from django.utils import timezone

from patients.models import Clinician, Patient
from rehab import progress
from rehab.models import (
    Alert,
    AlertEvent,
    AlertOccurrence,
    DailyLog,
    Intervention,
    Notification,
    Severity,
)
from rehab.safety import (
    ESCALATION,
    RULES,
    Evaluation,
    Firing,
    History,
    InterventionFact,
    LogFacts,
    MarkFact,
    PatientContext,
    SafetyAnswers,
    evaluate,
    record_needs,
)
from rehab.selectors.record import fever_rechecks_owed, safety_facts_for_log

logger = logging.getLogger(__name__)

RULES_BY_ID = {rule.id: rule for rule in RULES}
# A log whose evaluation failed this many times is marked failed and shown to operators
# instead of being retried forever (a poison log must not starve the queue).
MAX_EVALUATION_ATTEMPTS = 5
# How long the direct message gets before the sweeper sends another: long enough not to
# double the work of a healthy queue, short enough to meet "within 2 minutes".
SWEEP_GRACE = timedelta(seconds=30)
# A sweep stops taking new work after this long; the next beat carries on. Well under
# the email tasks' soft time limit, so a slow SMTP server ends a sweep, not the worker.
SWEEP_TIME_BUDGET = 20.0
# Trend rules read this many previous logs (RF-NP-01 reads the last 7 logged nights).
RECENT_LOGS = 14


# --------------------------------------------------------------------------- rule inputs


def log_facts(content: dict[str, Any]) -> LogFacts:
    return LogFacts(
        date=content["date"],
        pain=content["pain"],
        leg_pain=content.get("leg_pain"),
        back_pain=content.get("back_pain"),
        worst_pain=content.get("worst_pain"),
        leg_pain_side=content.get("leg_pain_side"),
        function=content.get("function"),
        sleep=content.get("sleep"),
        safety=SafetyAnswers.from_mapping(content.get("safety")),
    )


def log_content(log: DailyLog) -> dict[str, Any]:
    return {
        "date": log.date,
        "pain": log.pain,
        "leg_pain": log.leg_pain,
        "back_pain": log.back_pain,
        "worst_pain": log.worst_pain,
        "leg_pain_side": log.leg_pain_side,
        "function": log.function,
        "sleep": log.sleep,
        "safety": log.safety,
    }


def _record_facts(
    *, patient: Patient, on: date, as_of: datetime | None = None
) -> tuple[tuple[InterventionFact, ...], tuple[MarkFact, ...]]:
    """Recent procedures (RF-INF-02's 42 days) and the assessed marks holding on `on`, as
    they stood at `as_of` (None: now)."""
    facts = safety_facts_for_log(patient_id=patient.pk, on=on, as_of=as_of)
    return facts.interventions, facts.marks


def inline_context(*, patient: Patient, log: LogFacts) -> PatientContext:
    # Only the record facts that can change this log's evaluation (`record_needs`): most
    # logs answer no fever and nothing `unchanged_assessed`, and then cost no query. In
    # the request the answers are being submitted now: the marks in force now.
    needs = record_needs(log)
    interventions: tuple[InterventionFact, ...] = ()
    marks: tuple[MarkFact, ...] = ()
    if needs.interventions or needs.marks:
        interventions, marks = safety_facts_for_log(
            patient_id=patient.pk,
            on=log.date,
            read_interventions=needs.interventions,
            read_marks=needs.marks,
        )
    return PatientContext(
        date_of_birth=patient.date_of_birth,
        history=History.from_mapping(patient.history),
        interventions=interventions,
        marks=marks,
    )


def evaluate_inline(*, patient: Patient, content: dict[str, Any]) -> Evaluation:
    """The rules that need no history, in the request: advice never waits for a queue."""
    log = log_facts(content)
    return evaluate(log, inline_context(patient=patient, log=log))


def advice_json(evaluation: Evaluation) -> dict[str, Any] | None:
    return evaluation.advice.as_dict() if evaluation.advice is not None else None


def _baseline_back_pain(patient: Patient) -> float | None:
    """Mean back pain over the baseline window from the patient's first log; None under
    MIN_LOGS answers. One statement (it was three): the worker runs it for every log."""
    first_date = DailyLog.objects.filter(patient=patient).order_by("date").values("date")[:1]
    window_end = ExpressionWrapper(
        Subquery(first_date) + timedelta(days=progress.BASELINE_DAYS - 1),
        output_field=DateField(),
    )
    figures = DailyLog.objects.filter(
        patient=patient, date__lte=window_end, back_pain__isnull=False
    ).aggregate(n=Count("id"), mean=Avg("back_pain"))
    if figures["n"] < progress.MIN_LOGS or figures["mean"] is None:
        return None
    return float(Fraction(figures["mean"]))


def full_context(*, log: DailyLog) -> PatientContext:
    """Everything the background job gives the rules, history included."""
    patient = log.patient
    # The marks as they stood when the patient submitted these answers (`updated_at`, which
    # the evaluation bookkeeping never touches), however late a worker gets to them.
    # Procedures are read as recorded now: one recorded late is exactly what RF-INF-02's
    # re-check is for.
    interventions, marks = _record_facts(patient=patient, on=log.date, as_of=log.updated_at)
    recent = DailyLog.objects.filter(patient=patient, date__lt=log.date).order_by("-date")[
        :RECENT_LOGS
    ]
    # RF-NP-01's "no other RF rule open" means unresolved (clinical-rules.md): a red flag
    # a clinician has acknowledged is still being dealt with, and night pain on top of it
    # is not a separate finding.
    open_rules = frozenset(
        Alert.objects.filter(patient=patient)
        .exclude(status=Alert.Status.RESOLVED)
        .values_list("rule", flat=True)
    )
    return PatientContext(
        date_of_birth=patient.date_of_birth,
        history=History.from_mapping(patient.history),
        interventions=interventions,
        marks=marks,
        baseline_back_pain=_baseline_back_pain(patient),
        recent_logs=tuple(log_facts(log_content(row)) for row in recent),
        open_alert_rules=open_rules,
    )


# --------------------------------------------------------------------------- alerts


@dataclass(frozen=True)
class Raised:
    alert: Alert
    created: bool


def _care_team_notifications(*, alert: Alert, kind: str, message: str) -> None:
    Notification.objects.bulk_create(
        Notification(clinician=clinician, alert=alert, kind=kind, message=message[:300])
        for clinician in alert.patient.care_team.all()
    )


def _alert_message(alert: Alert) -> str:
    return f"{alert.severity.capitalize()} alert {alert.rule} for {alert.patient.full_name}"


def alert_raise(
    *,
    patient: Patient,
    firing: Firing,
    log: DailyLog | None,
    fired_on: date,
    title: str = "",
) -> Raised:
    """Record one firing: a new alert, or another occurrence of the unresolved one.

    Callers hold the patient's row lock (see `log_evaluate`), so two evaluations of the
    same patient cannot interleave here; the partial unique index is the backstop.
    """
    now = timezone.now()
    clock = _escalation_clock(log, now)
    alert = (
        Alert.objects.select_for_update()
        .filter(patient=patient, rule=firing.rule_id)
        .exclude(status=Alert.Status.RESOLVED)
        .first()
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
            last_fired_at=now,
            opened_at=now,
            notify_due=firing.severity in (Severity.EMERGENCY, Severity.URGENT),
            escalation_due_at=_escalation_due(firing.severity, clock),
        )
        AlertOccurrence.objects.create(
            alert=alert, log=log, fired_on=fired_on, rule_version=firing.version, basis=firing.basis
        )
        AlertEvent.objects.create(alert=alert, kind=AlertEvent.Kind.CREATED, data={"log": _id(log)})
        if alert.notify_due:
            _care_team_notifications(
                alert=alert, kind=Notification.Kind.ALERT, message=_alert_message(alert)
            )
            transaction.on_commit(lambda: alert_notify_enqueue(alert_id=alert.pk))
        return Raised(alert=alert, created=True)

    try:
        with transaction.atomic():
            AlertOccurrence.objects.create(
                alert=alert,
                log=log,
                fired_on=fired_on,
                rule_version=firing.version,
                basis=firing.basis,
            )
    except IntegrityError:
        # This log (or, for a trend rule, this day) is already recorded: a re-evaluation.
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
            alert=alert, kind=AlertEvent.Kind.REOPENED, data={"log": _id(log)}
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
        AlertEvent.objects.create(alert=alert, kind=AlertEvent.Kind.REFIRED, data={"log": _id(log)})
    alert.save(update_fields=fields)
    alert.refresh_from_db(fields=["occurrence_count"])
    return Raised(alert=alert, created=False)


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


# --------------------------------------------------------------------------- evaluation


# After a failed publish, this process leaves delivery to the sweepers for a while: a
# broker that hangs rather than refuses would otherwise cost every request its timeouts.
PUBLISH_PAUSE_SECONDS = 10.0
_publish_paused_until = 0.0


def task_publish(task: Any, object_id: str) -> bool:
    """Send one task message, or give up at once; what is owed stays in its column."""
    global _publish_paused_until
    if time.monotonic() < _publish_paused_until:
        logger.info("broker recently failed; %s(%s) left to the sweeper", task.name, object_id)
        return False
    try:
        task.delay(object_id)
    except Exception:  # noqa: BLE001 - broker outage; the sweeper has it
        _publish_paused_until = time.monotonic() + PUBLISH_PAUSE_SECONDS
        logger.warning("could not enqueue %s(%s); the sweeper will", task.name, object_id)
        return False
    return True


def log_evaluation_enqueue(*, log: DailyLog) -> None:
    """Ask a worker to evaluate the log once the transaction commits.

    If the broker is down the publish fails after the commit; the log is already stored
    with `evaluated_at` NULL, so the sweeper delivers it later. The request still answers.
    """
    from rehab.tasks import log_evaluate_task

    log_id = str(log.pk)
    transaction.on_commit(lambda: task_publish(log_evaluate_task, log_id))


@dataclass(frozen=True)
class EvaluationOutcome:
    status: str  # "evaluated", "already", "stale", "failed", "missing"
    alerts: tuple[UUID, ...] = ()


def log_evaluate(*, log_id: UUID | str) -> EvaluationOutcome:
    """Run every rule on a log and raise its alerts. Idempotent and safe to run twice.

    The attempt is counted first, in its own transaction, so that a log that kills its
    worker every time is eventually marked failed rather than retried forever.
    """
    claimed = DailyLog.objects.filter(
        pk=log_id, evaluated_at__isnull=True, evaluation_failed_at__isnull=True
    ).update(evaluation_attempts=F("evaluation_attempts") + 1)
    if not claimed:
        exists = DailyLog.objects.filter(pk=log_id).exists()
        return EvaluationOutcome(status="already" if exists else "missing")
    log = DailyLog.objects.select_related("patient").get(pk=log_id)
    if log.evaluation_attempts > MAX_EVALUATION_ATTEMPTS:
        DailyLog.objects.filter(pk=log.pk, evaluated_at__isnull=True).update(
            evaluation_failed_at=timezone.now(),
            evaluation_error=log.evaluation_error or "too many attempts",
        )
        logger.error("safety evaluation of log %s failed %s times", log.pk, MAX_EVALUATION_ATTEMPTS)
        return EvaluationOutcome(status="failed")
    try:
        return _evaluate_and_raise(log)
    except Exception as exc:
        DailyLog.objects.filter(pk=log.pk).update(evaluation_error=repr(exc)[:2000])
        raise


def _evaluate_and_raise(log: DailyLog) -> EvaluationOutcome:
    with transaction.atomic():
        # One evaluation per patient at a time: the alert dedup reads then writes.
        patient = Patient.objects.select_for_update(no_key=True).get(pk=log.patient_id)
        log = DailyLog.objects.select_related("patient").get(pk=log.pk)
        version = log.version
        evaluation = evaluate(log_facts(log_content(log)), full_context(log=log))
        raised = [
            alert_raise(
                patient=patient,
                firing=firing,
                log=log,
                fired_on=log.date,
                title=RULES_BY_ID[firing.rule_id].title,
            ).alert.pk
            for firing in evaluation.firings
        ]
        # Only the version we read counts as evaluated: an edit that landed meanwhile
        # leaves the log owed, and the sweeper evaluates the new answers.
        done = DailyLog.objects.filter(pk=log.pk, version=version).update(
            evaluated_at=timezone.now(), evaluated_version=version, evaluation_error=""
        )
    return EvaluationOutcome(status="evaluated" if done else "stale", alerts=tuple(raised))


def unevaluated_logs_sweep(*, batch: int = 1000, budget: float = SWEEP_TIME_BUDGET) -> int:
    """Re-enqueue every log still owed an evaluation (lost message, dead worker, outage).

    In batches, oldest first, until none is left or the time budget is spent: after a
    long broker outage thousands may be owed, and "evaluated within 2 minutes of the
    broker being back" must not wait for one batch per beat. The batches walk the owed
    logs by (updated_at, id), since those just enqueued stay owed until a worker runs them.
    """
    from rehab.tasks import log_evaluate_task

    owed = DailyLog.objects.filter(
        evaluated_at__isnull=True,
        evaluation_failed_at__isnull=True,
        updated_at__lt=timezone.now() - SWEEP_GRACE,
    )
    return sweep_enqueue(owed, task=log_evaluate_task, by="updated_at", batch=batch, budget=budget)


def sweep_enqueue(owed: Any, *, task: Any, by: str, batch: int, budget: float) -> int:
    """Enqueue `task(id)` for every row of `owed`, oldest first by `by` (then id), in
    batches until none is left or `budget` seconds are spent; returns how many.

    The batches walk the rows by (`by`, id) rather than re-reading the first batch: the
    rows just enqueued stay owed until a worker has run them.
    """
    started = time.monotonic()
    owed = owed.order_by(by, "pk")
    sent = 0
    after: tuple[datetime, UUID] | None = None
    while True:
        page = owed
        if after is not None:
            page = page.filter(
                Q(**{f"{by}__gt": after[0]}) | Q(**{by: after[0], "pk__gt": after[1]})
            )
        rows = list(page.values_list(by, "pk")[:batch])
        for _, object_id in rows:
            task.delay(str(object_id))
        sent += len(rows)
        if len(rows) < batch or time.monotonic() - started > budget:
            return sent
        after = rows[-1]


def safety_status() -> dict[str, int]:
    """What operators need to see: evaluations owed and evaluations given up on."""
    overdue = timezone.now() - timedelta(minutes=2)
    owed = DailyLog.objects.filter(evaluated_at__isnull=True, evaluation_failed_at__isnull=True)
    return {
        "unevaluated_logs": owed.count(),
        "overdue_logs": owed.filter(updated_at__lt=overdue).count(),
        "failed_logs": DailyLog.objects.filter(evaluation_failed_at__isnull=False).count(),
        # RF-INF-02's re-check of a procedure recorded late: an emergency may hang on it.
        "overdue_fever_rechecks": fever_rechecks_owed().filter(created_at__lt=overdue).count(),
        "failed_fever_rechecks": Intervention.objects.filter(
            fever_recheck_failed_at__isnull=False
        ).count(),
        # An emergency no one was told about is as bad as a log never evaluated.
        "undelivered_alerts": undelivered_alerts().count(),
    }


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
    from rehab.tasks import alert_notify_task

    task_publish(alert_notify_task, str(alert_id))


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


def rule_ids(firings: Iterable[Firing]) -> list[str]:
    return [f.rule_id for f in firings]


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


# --------------------------------------------------------------------------- operators


def log_evaluation_retry(*, log_ids: Iterable[UUID | str]) -> list[UUID]:
    """An operator's retry of logs still owed an evaluation (failed, or never run): clear
    the failure bookkeeping, so that `log_evaluate` claims them again, and enqueue each on
    commit. An evaluated log is left alone. Returns the ids retried."""
    # Local imports: `rehab.tasks` imports this module, and partial binds each id now.
    from functools import partial

    from rehab.tasks import log_evaluate_task

    with transaction.atomic():
        ids = list(
            DailyLog.objects.select_for_update()
            .filter(pk__in=list(log_ids), evaluated_at__isnull=True)
            .values_list("pk", flat=True)
        )
        DailyLog.objects.filter(pk__in=ids).update(
            evaluation_failed_at=None, evaluation_attempts=0, evaluation_error=""
        )
        for log_id in ids:
            # The broker may be down: `task_publish` gives up quietly, the sweeper has them.
            transaction.on_commit(partial(task_publish, log_evaluate_task, str(log_id)))
    return ids
