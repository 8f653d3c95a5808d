"""The safety engine's Django side: context for the pure rules, alerts, delivery.

The pure rules (rehab/safety) decide; this module gathers their inputs, stores what they
decided as alerts, and makes sure every log is evaluated and every alert delivered even
when messages are lost: each step leaves a column (`evaluated_at`, `notified_at`,
`escalated_at`) that a beat sweeper can query for what is still owed.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import Any
from uuid import UUID

import redis
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from config.db import column, insert_unless_conflict
from config.db import table as quoted_table
from patients.models import Clinician, Patient
from rehab import progress
from rehab.models import (
    Alert,
    AlertEvent,
    AlertOccurrence,
    DailyLog,
    Intervention,
    Notification,
    SafetySubmission,
    Severity,
)
from rehab.safety import (
    EARLIER_LOG_FIELDS,
    ESCALATION,
    MESSAGE_LANGUAGE,
    MESSAGES,
    PREVIOUS_LOGS,
    RULES,
    EarlierLog,
    Evaluation,
    Firing,
    History,
    InterventionFact,
    LogFacts,
    MarkFact,
    PatientContext,
    SafetyAnswers,
    canonical_json,
    evaluate,
    record_needs,
)
from rehab.selectors.record import (
    SafetyFacts,
    fever_rechecks_owed,
    safety_facts_for_log,
    safety_facts_for_logs,
)

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
# The previous logs the trend rules read, and no more (each is a row to fetch and to build
# facts of, on every background evaluation): RF-NP-01 reads the last 7 logged nights.
RECENT_LOGS = PREVIOUS_LOGS


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
        safety=(
            safety
            if isinstance(safety := content.get("safety"), SafetyAnswers)
            else SafetyAnswers.from_mapping(safety)
        ),
    )


# What the rules read of the log being evaluated (`log_content`).
RULE_INPUTS = tuple(name for name in DailyLog.CONTENT_FIELDS if name != "notes")


def log_content(log: DailyLog) -> dict[str, Any]:
    return {name: getattr(log, name) for name in RULE_INPUTS}


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


def _column(name: str) -> str:
    return column(DailyLog, name)


def _baseline_back_pains(patient_ids: Collection[UUID]) -> dict[UUID, float | None]:
    """Per patient, the mean back pain over the baseline window from their first log
    (exact, as rehab.progress and the backtest compute it); None under MIN_LOGS answers.
    One statement for any number of patients: the worker runs it for every batch."""
    if not patient_ids:
        return {}
    table = quoted_table(DailyLog)
    patient, day, back_pain = _column("patient"), _column("date"), _column("back_pain")
    sql = f"""
        SELECT wanted.patient_id, window_.n, window_.total
        FROM unnest(%s::uuid[]) AS wanted(patient_id)
        CROSS JOIN LATERAL (
            SELECT min({day}) AS first FROM {table} WHERE {patient} = wanted.patient_id
        ) AS first_log
        CROSS JOIN LATERAL (
            SELECT count({back_pain}) AS n, sum({back_pain}) AS total FROM {table}
            WHERE {patient} = wanted.patient_id
              AND {day} >= first_log.first AND {day} <= first_log.first + %s
        ) AS window_
    """  # noqa: S608 - identifiers from the model, values as parameters
    result: dict[UUID, float | None] = dict.fromkeys(patient_ids)
    with connection.cursor() as cursor:
        cursor.execute(sql, [list(patient_ids), progress.BASELINE_DAYS - 1])
        for patient_id, n, total in cursor.fetchall():
            if n >= progress.MIN_LOGS:
                result[patient_id] = float(Fraction(int(total), n))
    return result


def _recent_logs(logs: Sequence[DailyLog]) -> dict[UUID, list[EarlierLog]]:
    """Per log, the rules' view of the patient's RECENT_LOGS logs dated before it, newest
    first: one statement (an index range per log on (patient, date)) for the whole batch,
    of the columns the trend rules read (`EarlierLog`), as plain rows (a batch of 50 reads
    300: whole rows and their safety checks were a quarter of the worker's Python)."""
    if not logs:
        return {}
    table = quoted_table(DailyLog)
    patient, day = _column("patient"), _column("date")
    columns = ", ".join(f"d.{_column(name)}" for name in EARLIER_LOG_FIELDS)
    sql = f"""
        SELECT wanted.for_log, {columns}
        FROM unnest(%s::uuid[], %s::uuid[], %s::date[]) AS wanted(for_log, patient_id, day)
        CROSS JOIN LATERAL (
            SELECT * FROM {table} AS d
            WHERE d.{patient} = wanted.patient_id AND d.{day} < wanted.day
            ORDER BY d.{day} DESC LIMIT %s
        ) AS d
        ORDER BY wanted.for_log, d.{day} DESC
    """  # noqa: S608 - identifiers from the model, values as parameters
    params: list[Any] = [
        [log.pk for log in logs],
        [log.patient_id for log in logs],
        [log.date for log in logs],
        RECENT_LOGS,
    ]
    result: dict[UUID, list[EarlierLog]] = {log.pk: [] for log in logs}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for for_log, *values in cursor.fetchall():
            result[for_log].append(EarlierLog(*values))
    return result


def full_contexts(logs: Sequence[DailyLog]) -> dict[UUID, PatientContext]:
    """Everything the background job gives the rules, history included, for each log
    (its `patient` loaded), in at most six statements whatever the number of logs.

    The clinical record is read, as in the request, only for the logs whose answers it
    can change (`record_needs`; none for a batch of quiet checks, the morning's bulk).
    The marks are those in force when the patient submitted these answers (`updated_at`,
    which the evaluation bookkeeping never touches), however late a worker gets to them.
    Procedures are read as recorded now: one recorded late is exactly what RF-INF-02's
    re-check is for.
    """
    if not logs:
        return {}
    keys = {log.pk: (log.patient_id, log.date) for log in logs}
    needs = {log.pk: record_needs(log_facts(log_content(log))) for log in logs}
    wanted = [log for log in logs if needs[log.pk].interventions or needs[log.pk].marks]
    facts = safety_facts_for_logs(
        keys=[keys[log.pk] for log in wanted],
        as_of_each={keys[log.pk]: log.updated_at for log in wanted},
        read_interventions=any(needs[log.pk].interventions for log in wanted),
        read_marks=any(needs[log.pk].marks for log in wanted),
    )
    nothing = SafetyFacts(interventions=(), marks=())
    recent = _recent_logs(logs)
    patient_ids = {log.patient_id for log in logs}
    baselines = _baseline_back_pains(patient_ids)
    # RF-NP-01's "no other RF rule open" means unresolved (clinical-rules.md): a red flag
    # a clinician has acknowledged is still being dealt with, and night pain on top of it
    # is not a separate finding.
    open_rules: dict[UUID, set[str]] = defaultdict(set)
    for patient_id, rule in (
        Alert.objects.filter(patient_id__in=patient_ids)
        .exclude(status=Alert.Status.RESOLVED)
        .values_list("patient_id", "rule")
    ):
        open_rules[patient_id].add(rule)
    contexts = {}
    for log in logs:
        patient, record = log.patient, facts.get(keys[log.pk], nothing)
        contexts[log.pk] = PatientContext(
            date_of_birth=patient.date_of_birth,
            history=History.from_mapping(patient.history),
            interventions=record.interventions,
            marks=record.marks,
            baseline_back_pain=baselines[log.patient_id],
            recent_logs=tuple(recent[log.pk]),
            open_alert_rules=frozenset(open_rules[log.patient_id]),
        )
    return contexts


def full_context(*, log: DailyLog) -> PatientContext:
    """`full_contexts` of one log."""
    return full_contexts([log])[log.pk]


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


# --------------------------------------------------------------------------- evaluation


# After a failed publish, this process leaves delivery to the sweepers for a while: a
# broker that hangs rather than refuses would otherwise cost every request its timeouts.
PUBLISH_PAUSE_SECONDS = 10.0
_publish_paused_until = 0.0


def task_publish(task: Any, *args: str) -> bool:
    """Send one task message, or give up at once; what is owed stays in its column."""
    global _publish_paused_until
    if time.monotonic() < _publish_paused_until:
        logger.info("broker recently failed; %s%s left to the sweeper", task.name, args)
        return False
    try:
        task.delay(*args)
    except Exception:  # noqa: BLE001 - broker outage; the sweeper has it
        _publish_paused_until = time.monotonic() + PUBLISH_PAUSE_SECONDS
        logger.warning("could not enqueue %s%s; the sweeper will", task.name, args)
        return False
    return True


# The flag "a task is evaluating the quiet logs, or is on its way": set by the first
# quiet log to find it unset, held by the running task, dropped by it when nothing is
# left. It lives on the broker (the one Redis that web and worker certainly share), and
# expires, so a lost message or a killed worker holds nothing up for longer than this.
QUIET_FLAG = "rehab:safety:quiet-logs-evaluating"
QUIET_FLAG_TTL_MS = 10_000
_broker_clients: dict[str, redis.Redis] = {}


def _broker_redis() -> redis.Redis:
    from config.celery import app

    url = str(app.conf.broker_url)
    client = _broker_clients.get(url)
    if client is None:
        # Bounded like the cache: a request never hangs on a Redis that does not answer.
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        _broker_clients[url] = client
    return client


# A process that found the flag held trusts it for this long without asking again (under
# a burst, most quiet logs then cost no round trip at all). Safe because the task, after
# dropping the flag, waits QUIET_LAST_LOOK_AFTER (longer) before its last look: a log
# committed while this process still trusted a flag that was held when it asked is
# committed before that look. `quiet_logs_request` times the trust from before it asks.
QUIET_FLAG_TRUST = 0.1
QUIET_LAST_LOOK_AFTER = 0.2
_quiet_flag_trusted_until = 0.0


def quiet_logs_request() -> bool:
    """After a quiet log's commit: make sure a task is evaluating the quiet logs.

    One flag test per log (none while a flag seen held is trusted), and a message only
    when no task is on it: under a burst the logs wait for the running task's next round,
    not for a message each. Whatever fails here, the log is owed in its column and the
    sweeper has it.
    """
    global _publish_paused_until, _quiet_flag_trusted_until
    from rehab.tasks import quiet_logs_evaluate_task

    asked = time.monotonic()
    if asked < _publish_paused_until:
        return False
    if asked < _quiet_flag_trusted_until:
        return True  # held a moment ago: the task's last look is still to come
    try:
        if not _broker_redis().set(QUIET_FLAG, "1", nx=True, px=QUIET_FLAG_TTL_MS):
            _quiet_flag_trusted_until = asked + QUIET_FLAG_TRUST
            return True  # the running task's next round takes this log
    except Exception:  # noqa: BLE001 - broker outage; the sweeper has it
        _publish_paused_until = time.monotonic() + PUBLISH_PAUSE_SECONDS
        logger.warning("could not reach the broker for the quiet logs; the sweeper will")
        return False
    if task_publish(quiet_logs_evaluate_task):
        _quiet_flag_trusted_until = asked + QUIET_FLAG_TRUST
        return True
    try:
        _broker_redis().delete(QUIET_FLAG)
    except Exception:  # noqa: BLE001 - it expires
        logger.warning("could not drop the quiet-logs flag; it expires")
    return False


def log_evaluation_enqueue(*, log: DailyLog) -> None:
    """Ask a worker to evaluate the log once the transaction commits.

    A log whose answers fired a rule in the request (the patient was just told what to
    do) gets a message of its own, evaluated alone, at once. A quiet log (the morning's
    bulk) is taken by the task evaluating quiet logs in batches (`quiet_logs_evaluate`).
    If the broker is down the publish fails after the commit; the log is already stored
    with `evaluated_at` NULL, so the sweeper delivers it later. The request still answers.
    """
    from rehab.tasks import log_evaluate_task

    if log.safety_advice is None:
        transaction.on_commit(quiet_logs_request)
        return
    log_id = str(log.pk)
    transaction.on_commit(lambda: task_publish(log_evaluate_task, log_id))


@dataclass(frozen=True)
class EvaluationOutcome:
    status: str  # "evaluated", "already", "stale", "failed", "missing"
    alerts: tuple[UUID, ...] = ()
    # Claimed logs of a batch left out because someone held their patient.
    skipped: tuple[UUID, ...] = ()


# A task evaluates its own log together with up to this many others still owed, whose own
# messages then find them done: under a morning burst the per-log reads become per-batch
# reads (a fixed number of statements for the whole batch) on the cores the web processes
# share. Small enough that a batch commits within tens of milliseconds. Only logs whose
# answers fired nothing in the request join another's batch: a red flag the patient has
# already been told about is evaluated by its own message, alone, at once.
EVALUATION_BATCH = 50


def log_evaluate(*, log_id: UUID | str) -> EvaluationOutcome:
    """Run every rule on a log and raise its alerts. Idempotent and safe to run twice.

    The attempt is counted first, in its own transaction, so that a log that kills its
    worker every time is eventually marked failed rather than retried forever. A first
    attempt also claims other owed logs (see EVALUATION_BATCH); a retry runs alone, so a
    log that breaks a batch is soon evaluated, or given up on, by itself.
    """
    claimed = DailyLog.objects.filter(
        pk=log_id, evaluated_at__isnull=True, evaluation_failed_at__isnull=True
    ).update(evaluation_attempts=F("evaluation_attempts") + 1)
    if not claimed:
        exists = DailyLog.objects.filter(pk=log_id).exists()
        return EvaluationOutcome(status="already" if exists else "missing")
    log = DailyLog.objects.only(
        "patient_id", "evaluation_attempts", "evaluation_error", "safety_advice"
    ).get(pk=log_id)
    if log.evaluation_attempts > MAX_EVALUATION_ATTEMPTS:
        DailyLog.objects.filter(pk=log.pk, evaluated_at__isnull=True).update(
            evaluation_failed_at=timezone.now(),
            evaluation_error=log.evaluation_error or "too many attempts",
        )
        logger.error("safety evaluation of log %s failed %s times", log.pk, MAX_EVALUATION_ATTEMPTS)
        return EvaluationOutcome(status="failed")
    fresh = log.evaluation_attempts == 1 and log.safety_advice is None
    others = (
        _claim_owed(besides=log.pk, patient_id=log.patient_id, limit=EVALUATION_BATCH - 1)
        if fresh
        else []
    )
    try:
        try:
            outcome = _evaluate_and_raise(log, others=others)
        except Exception:
            if not others:
                raise
            # Another log of the batch may be what broke it: this one, counted once, is
            # tried again on its own, and so is each of the others, by a message of its own.
            logger.exception("safety evaluation batch of log %s failed; retrying it alone", log.pk)
            _evaluate_alone_later(log_id for log_id, _ in others)
            outcome = _evaluate_and_raise(log, others=[])
        else:
            _evaluate_alone_later(outcome.skipped)
    except Exception as exc:
        DailyLog.objects.filter(pk=log.pk).update(evaluation_error=repr(exc)[:2000])
        raise
    return outcome


def _evaluate_alone_later(log_ids: Iterable[UUID]) -> int:
    """Claimed logs a batch did not evaluate (it failed, or someone held their patient):
    a message each, so each is evaluated alone (a retry) without waiting for the sweeper,
    which still has them if the broker is down. Returns how many were handed on."""
    from rehab.tasks import log_evaluate_task

    handed = 0
    for log_id in log_ids:
        task_publish(log_evaluate_task, str(log_id))
        handed += 1
    return handed


# A quiet-logs task hands over to a new message after this long, so that no task runs
# for ever under a long burst (time limits, worker recycling); the flag stays held.
QUIET_TASK_BUDGET = 5.0
# After a round that was not full, the task waits this long for more quiet logs to gather
# before the next: a worker that keeps up would otherwise evaluate them one by one, each
# at the full price of a batch. A quiet log fired nothing in the request; a quarter of a
# second more before its trend rules run changes nothing for the patient.
QUIET_GATHER = 0.25


def quiet_logs_evaluate() -> int:
    """Evaluate the quiet logs owed their first evaluation, EVALUATION_BATCH at a time,
    until none is left; returns how many.

    Each round takes what arrived during the last one (and QUIET_GATHER after a round
    that was not full), so batches size themselves to the load. The flag is held while
    rounds find work and dropped QUIET_LAST_LOOK_AFTER before the last look: a log
    committed after that look found the flag gone (no process still trusts it) and sent
    a message of its own.
    A round that fails, and a log whose patient someone holds, get messages of their
    own (each then evaluated alone).
    """
    from rehab.tasks import quiet_logs_evaluate_task

    started = time.monotonic()
    evaluated = 0
    flag_held = True
    while True:
        claimed = _claim_owed(besides=None, patient_id=None, limit=EVALUATION_BATCH)
        if not claimed:
            if not flag_held:
                return evaluated
            _broker_redis().delete(QUIET_FLAG)
            flag_held = False
            time.sleep(QUIET_LAST_LOOK_AFTER)
            continue
        if flag_held:
            _broker_redis().pexpire(QUIET_FLAG, QUIET_FLAG_TTL_MS)
        try:
            left = _evaluate_alone_later(_evaluate_and_raise(None, others=claimed).skipped)
        except Exception:
            logger.exception("safety evaluation of %s quiet logs failed", len(claimed))
            left = _evaluate_alone_later(log_id for log_id, _ in claimed)
        evaluated += len(claimed) - left
        if flag_held and len(claimed) < EVALUATION_BATCH:
            time.sleep(QUIET_GATHER)
        if time.monotonic() - started > QUIET_TASK_BUDGET:
            # Hand over; if the message is lost, the flag expires and the sweeper has them.
            task_publish(quiet_logs_evaluate_task)
            return evaluated


def _claim_owed(
    *, besides: UUID | None, patient_id: UUID | None, limit: int
) -> list[tuple[UUID, UUID]]:
    """Count an attempt on up to `limit` other logs owed their first evaluation whose
    answers fired nothing in the request, oldest first; (log id, patient id) of each.

    SKIP LOCKED and the `attempts = 0` test make the claims of concurrent batches
    disjoint: a log is claimed by at most one batch, ever (a later attempt runs alone).
    Nothing is claimed while someone holds the task's own patient (the review sweep,
    another evaluation): the task will wait for it, and the others need not.
    """
    table = quoted_table(DailyLog)
    pk, patient = _column("id"), _column("patient")
    attempts, advice = _column("evaluation_attempts"), _column("safety_advice")
    evaluated, failed = _column("evaluated_at"), _column("evaluation_failed_at")
    patients = quoted_table(Patient)
    params: list[Any] = []
    own_patient_free = ""
    if patient_id is not None:
        own_patient_free = f"""EXISTS (
            SELECT 1 FROM {patients} WHERE id = %s FOR NO KEY UPDATE SKIP LOCKED
        ) AND"""  # noqa: S608 - identifiers from the model
        params.append(patient_id)
    not_own = ""
    if besides is not None:
        not_own = f"AND {pk} <> %s"
        params.append(besides)
    # The candidates are chosen once, in a MATERIALIZED CTE. As `id IN (subquery)` the
    # planner may rescan the subquery for every row it updates (a nested loop, chosen
    # whenever the statistics say the table is small), and each rescan's FOR UPDATE skips
    # the rows this UPDATE has just claimed and takes newer ones: a batch then claimed
    # more than `limit` logs, out of submission order.
    sql = f"""
        WITH candidate AS MATERIALIZED (
            SELECT {pk} FROM {table}
            WHERE {own_patient_free} {evaluated} IS NULL AND {failed} IS NULL
              AND {attempts} = 0 AND {advice} IS NULL {not_own}
            ORDER BY {_column("updated_at")}
            LIMIT %s
            FOR UPDATE SKIP LOCKED
        )
        UPDATE {table} AS claimed SET {attempts} = claimed.{attempts} + 1
        FROM candidate WHERE claimed.{pk} = candidate.{pk}
        RETURNING claimed.{pk}, claimed.{patient}
    """  # noqa: S608 - identifiers from the model, values as parameters
    params.append(limit)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(row[0], row[1]) for row in cursor.fetchall()]


def _mark_evaluated(batch: Sequence[DailyLog], *, now: datetime) -> int:
    """Mark each log evaluated if it is still the version read; how many were.

    One statement over (id, version) pairs: as a filter of OR-ed Q objects the ORM
    spent more on compiling it than the evaluation of the batch's rules took."""
    table = quoted_table(DailyLog)
    pk, version = _column("id"), _column("version")
    sql = f"""
        UPDATE {table} SET {_column("evaluated_at")} = %s,
            {_column("evaluated_version")} = {version}, {_column("evaluation_error")} = ''
        WHERE ({pk}, {version}) IN (SELECT * FROM unnest(%s::uuid[], %s::integer[]))
    """  # noqa: S608 - identifiers from the model, values as parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, [now, [row.pk for row in batch], [row.version for row in batch]])
        return cursor.rowcount


def _evaluate_and_raise(
    log: DailyLog | None, *, others: Sequence[tuple[UUID, UUID]]
) -> EvaluationOutcome:
    """Evaluate `log` and the claimed `others` in one transaction; `log`'s outcome (with
    no `log`, the batch's).

    One evaluation per patient at a time (the alert dedup reads then writes): the log's
    own patient is waited for; another's that someone holds (another batch, the review
    sweep) is skipped (`skipped`; the caller gives it a message of its own). Patient rows are
    always locked before log or alert rows, as everywhere else.
    """
    with transaction.atomic():
        patients = (
            {
                p.pk: p
                for p in Patient.objects.select_for_update(no_key=True).filter(pk=log.patient_id)
            }
            if log is not None
            else {}
        )
        other_patients = {patient_id for _, patient_id in others} - patients.keys()
        if other_patients:
            locked = (
                Patient.objects.select_for_update(no_key=True, skip_locked=True)
                .filter(pk__in=other_patients)
                .order_by("pk")
            )
            patients.update((p.pk, p) for p in locked)
        wanted = [log_id for log_id, patient_id in others if patient_id in patients]
        skipped = tuple(log_id for log_id, patient_id in others if patient_id not in patients)
        if log is not None:
            wanted.append(log.pk)
        # A log evaluated meanwhile (another message of it held the patient first) is done;
        # one edited meanwhile is owed again, and evaluated with its new answers.
        batch = list(
            DailyLog.objects.filter(
                pk__in=wanted, evaluated_at__isnull=True, evaluation_failed_at__isnull=True
            ).order_by("updated_at", "pk")
        )
        own = log.pk if log is not None else None
        if not batch or (own is not None and not any(row.pk == own for row in batch)):
            return EvaluationOutcome(status="already", skipped=skipped)
        for row in batch:
            row.patient = patients[row.patient_id]
        contexts = full_contexts(batch)
        raised: dict[UUID, list[UUID]] = {}
        # Alerts raised for a patient's earlier log of this batch are open for the next.
        opened: dict[UUID, set[str]] = defaultdict(set)
        for row in batch:
            context = contexts[row.pk]
            if opened[row.patient_id]:
                context = replace(
                    context, open_alert_rules=context.open_alert_rules | opened[row.patient_id]
                )
            evaluation = evaluate(log_facts(log_content(row)), context)
            raised[row.pk] = [
                alert_raise(
                    patient=row.patient,
                    firing=firing,
                    log=row,
                    fired_on=row.date,
                    title=RULES_BY_ID[firing.rule_id].title,
                ).alert.pk
                for firing in evaluation.firings
            ]
            opened[row.patient_id].update(firing.rule_id for firing in evaluation.firings)
        # Only the version we read counts as evaluated: an edit that landed meanwhile
        # leaves the log owed, and its own message evaluates the new answers.
        now = timezone.now()
        updated = _mark_evaluated(batch, now=now)
        if own is None:
            alerts = tuple(alert for row in batch for alert in raised[row.pk])
            return EvaluationOutcome(
                status="evaluated" if updated else "stale", alerts=alerts, skipped=skipped
            )
        done = updated == len(batch) or (DailyLog.objects.filter(pk=own, evaluated_at=now).exists())
    return EvaluationOutcome(
        status="evaluated" if done else "stale", alerts=tuple(raised[own]), skipped=skipped
    )


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


# --------------------------------------------------------------------------- submissions
# Answers the patient was shown advice for that are not a log's current version: a version
# an edit replaced before a worker evaluated it, or the body of a POST answered 409. Each
# is a `SafetySubmission` row written in the request's own transaction, evaluated by a
# message of its own, and found by the sweeper if the message is lost (docs/safety-path.md).

# Severities a refused submission raises alerts for: the 409 told the patient what to do
# (the advice travels in its body), but only what needs the care team today is raised on
# the stored log it names, whose own answers stand.
REFUSED_RAISES = (Severity.EMERGENCY, Severity.URGENT)


def _content_json(content: dict[str, Any]) -> dict[str, Any]:
    """The rules' inputs of a log's content, as JSON (what a submission stores)."""
    out = {name: content.get(name) for name in RULE_INPUTS}
    out["date"] = content["date"].isoformat()
    safety = out["safety"]
    out["safety"] = (
        safety.as_dict()
        if isinstance(safety, SafetyAnswers)
        else SafetyAnswers.from_mapping(safety).as_dict()
    )
    return out


def _content_from_json(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "date": date.fromisoformat(data["date"])}


def _digest(*parts: Any) -> str:
    return hashlib.sha256(canonical_json(list(parts)).encode()).hexdigest()


def submission_supersede(*, log: DailyLog) -> SafetySubmission | None:
    """Before an edit replaces `log`'s current version (the caller holds the log's row
    lock, in the edit's transaction): if no worker has evaluated that version yet, keep it
    as owed, so that its red flags still become alerts. None when it was evaluated."""
    if log.evaluated_at is not None:
        return None
    submission = SafetySubmission(
        patient_id=log.patient_id,
        log=log,
        kind=SafetySubmission.Kind.SUPERSEDED,
        version=log.version,
        content=_content_json(log_content(log)),
        content_hash=_digest(str(log.pk), log.version),
        safety_advice=log.safety_advice,
        submitted_at=log.updated_at,
    )
    if not insert_unless_conflict(submission):
        return None  # this version is kept already (an edit retried after a failure)
    _submission_enqueue(submission)
    return submission


def refused_should_evaluate(evaluation: Evaluation) -> bool:
    """Whether a refused body can raise anything: an urgent or emergency rule fired in the
    request, or one that only the background job, with the history, can decide."""
    return any(f.severity in REFUSED_RAISES for f in evaluation.firings) or any(
        RULES_BY_ID[rule_id].severity in REFUSED_RAISES for rule_id in evaluation.undecided
    )


def submission_refuse(
    *,
    patient: Patient,
    log: DailyLog | None,
    content: dict[str, Any],
    evaluation: Evaluation,
) -> SafetySubmission | None:
    """Keep the body of a POST answered 409, owed an evaluation, when it can raise an
    urgent or emergency alert; committed at once (the 409 rolls nothing of it back).
    The same body refused again (a phone retrying) is the same submission."""
    if not refused_should_evaluate(evaluation):
        return None
    answers = _content_json(content)
    submission = SafetySubmission(
        patient_id=patient.pk,
        log=log,
        kind=SafetySubmission.Kind.REFUSED,
        content=answers,
        content_hash=_digest(str(log.pk) if log else None, answers),
        safety_advice=advice_json(evaluation),
        submitted_at=timezone.now(),
    )
    with transaction.atomic():
        if not insert_unless_conflict(submission):
            return None
        _submission_enqueue(submission)
    return submission


def _submission_enqueue(submission: SafetySubmission) -> None:
    from rehab.tasks import submission_evaluate_task

    submission_id = str(submission.pk)
    transaction.on_commit(lambda: task_publish(submission_evaluate_task, submission_id))


def submission_evaluate(*, submission_id: UUID | str) -> EvaluationOutcome:
    """Evaluate a superseded version or a refused submission with the full rules, as its
    log would be, and raise its alerts on the log it belongs to or names. Idempotent:
    a second run finds it evaluated; an alert's occurrence is recorded once per log.

    The attempt is counted first, in its own transaction, as for a log: one that keeps
    killing its worker is given up on (and shown on /health/) rather than retried for ever.
    """
    claimed = SafetySubmission.objects.filter(
        pk=submission_id, evaluated_at__isnull=True, evaluation_failed_at__isnull=True
    ).update(evaluation_attempts=F("evaluation_attempts") + 1)
    if not claimed:
        exists = SafetySubmission.objects.filter(pk=submission_id).exists()
        return EvaluationOutcome(status="already" if exists else "missing")
    submission = SafetySubmission.objects.get(pk=submission_id)
    if submission.evaluation_attempts > MAX_EVALUATION_ATTEMPTS:
        SafetySubmission.objects.filter(pk=submission.pk, evaluated_at__isnull=True).update(
            evaluation_failed_at=timezone.now(),
            evaluation_error=submission.evaluation_error or "too many attempts",
        )
        logger.error("safety evaluation of submission %s failed repeatedly", submission.pk)
        return EvaluationOutcome(status="failed")
    try:
        return _submission_evaluate(submission)
    except Exception as exc:
        SafetySubmission.objects.filter(pk=submission.pk).update(evaluation_error=repr(exc)[:2000])
        raise


def _submission_evaluate(submission: SafetySubmission) -> EvaluationOutcome:
    with transaction.atomic():
        # The patient's lock first, as every evaluation takes it (see `_evaluate_and_raise`).
        patient = Patient.objects.select_for_update(no_key=True).get(pk=submission.patient_id)
        submission = SafetySubmission.objects.select_for_update().get(pk=submission.pk)
        if submission.evaluated_at is not None:
            return EvaluationOutcome(status="already")
        content = _content_from_json(submission.content)
        # The answers as the log they were (or were sent as): the same date, history and
        # marks in force when they were submitted (`updated_at`), evaluated like any log.
        row = DailyLog(
            id=submission.log_id or submission.pk,
            patient=patient,
            updated_at=submission.submitted_at,
            version=submission.version or 0,
            **content,
        )
        context = full_contexts([row])[row.pk]
        evaluation = evaluate(log_facts(content), context)
        refused = submission.kind == SafetySubmission.Kind.REFUSED
        # The answers the patient sent, beside the inputs the rule read: the dashboard shows
        # them against the log as it stands (what they said, what they changed it to).
        marker: dict[str, Any] = {
            "kind": submission.kind,
            "submitted_at": submission.submitted_at.isoformat(),
            "version": submission.version,
            "answers": submission.content,
        }
        told = Told.of(submission.safety_advice)
        alerts = []
        for firing in evaluation.firings:
            if refused and firing.severity not in REFUSED_RAISES:
                continue
            raised = alert_raise(
                patient=patient,
                firing=replace(firing, basis={**firing.basis, "submission": marker}),
                log=submission.log,
                fired_on=content["date"],
                title=RULES_BY_ID[firing.rule_id].title,
                source=submission.kind,
                log_version=submission.version,
                told=told,
                submitted_at=submission.submitted_at,
            )
            alerts.append(raised.alert.pk)
        submission.evaluated_at = timezone.now()
        submission.evaluation_error = ""
        submission.save(update_fields=["evaluated_at", "evaluation_error"])
    return EvaluationOutcome(status="evaluated", alerts=tuple(alerts))


def unevaluated_submissions_sweep(*, batch: int = 1000, budget: float = SWEEP_TIME_BUDGET) -> int:
    """Re-enqueue every submission still owed its evaluation (a lost message, a dead
    worker, a broker outage), oldest first, as `unevaluated_logs_sweep` does for logs."""
    from rehab.tasks import submission_evaluate_task

    owed = SafetySubmission.objects.filter(
        evaluated_at__isnull=True,
        evaluation_failed_at__isnull=True,
        created_at__lt=timezone.now() - SWEEP_GRACE,
    )
    return sweep_enqueue(
        owed, task=submission_evaluate_task, by="created_at", batch=batch, budget=budget
    )


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
    submissions = SafetySubmission.objects.filter(
        evaluated_at__isnull=True, evaluation_failed_at__isnull=True
    )
    return {
        "unevaluated_logs": owed.count(),
        "overdue_logs": owed.filter(updated_at__lt=overdue).count(),
        "failed_logs": DailyLog.objects.filter(evaluation_failed_at__isnull=False).count(),
        # Superseded versions and refused submissions owed their red-flag evaluation.
        "overdue_submissions": submissions.filter(created_at__lt=overdue).count(),
        "failed_submissions": SafetySubmission.objects.filter(
            evaluation_failed_at__isnull=False
        ).count(),
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
    from rehab.tasks import log_evaluate_task

    return _evaluation_retry(DailyLog, ids=log_ids, task=log_evaluate_task)


def submission_evaluation_retry(*, submission_ids: Iterable[UUID | str]) -> list[UUID]:
    """An operator's retry of submissions still owed their evaluation, as
    `log_evaluation_retry` does for logs. Returns the ids retried."""
    from rehab.tasks import submission_evaluate_task

    return _evaluation_retry(SafetySubmission, ids=submission_ids, task=submission_evaluate_task)


def _evaluation_retry(
    model: type[DailyLog] | type[SafetySubmission], *, ids: Iterable[UUID | str], task: Any
) -> list[UUID]:
    # `partial` binds each id now, not the loop variable at commit time.
    from functools import partial

    with transaction.atomic():
        owed = list(
            model.objects.select_for_update()
            .filter(pk__in=list(ids), evaluated_at__isnull=True)
            .values_list("pk", flat=True)
        )
        model.objects.filter(pk__in=owed).update(
            evaluation_failed_at=None, evaluation_attempts=0, evaluation_error=""
        )
        for object_id in owed:
            # The broker may be down: `task_publish` gives up quietly, the sweeper has them.
            transaction.on_commit(partial(task_publish, task, str(object_id)))
    return owed
