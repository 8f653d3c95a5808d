"""Evaluating the safety rules on what patients send: in the request (the advice they are
shown at once) and in the worker (every rule, with the history, raising the alerts).

One thing, though over 500 lines: the path from a stored answer to its alerts, and the
bookkeeping that makes sure every answer gets there: a log's own message or the batch of
quiet logs, the claim and its attempts, the superseded versions and refused bodies that
are owed an evaluation too, and the operators' retries. The rule inputs live in
rehab/selectors/safety_inputs.py, the alert lifecycle in rehab/services/alerts.py, the
emails in rehab/services/delivery.py and the sweeps in rehab/services/sweeps.py
(docs/safety-path.md)."""

from __future__ import annotations

import hashlib
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any
from uuid import UUID

import redis
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from config.db import insert_unless_conflict
from config.db import table as quoted_table
from config.enqueue import (
    pause_publishing,
    publish_on_commit,
    publishing_paused,
    task_publish,
)
from patients.models import Patient
from rehab.models import (
    DailyLog,
    SafetySubmission,
    Severity,
)
from rehab.safety import (
    RULES,
    Evaluation,
    SafetyAnswers,
    canonical_json,
    evaluate,
)
from rehab.selectors.safety_inputs import (
    RULE_INPUTS,
    full_contexts,
    inline_context,
    log_column,
    log_content,
    log_facts,
    request_recent_logs,
)
from rehab.services.alerts import Told, alert_raise
from rehab.translations import localized_advice, localized_reminder

logger = logging.getLogger(__name__)

RULES_BY_ID = {rule.id: rule for rule in RULES}

# A log whose evaluation failed this many times is marked failed and shown to operators
# instead of being retried forever (a poison log must not starve the queue).
MAX_EVALUATION_ATTEMPTS = 5


def evaluate_inline(*, patient: Patient, content: dict[str, Any]) -> Evaluation:
    """The rules that need no history, in the request: advice never waits for a queue."""
    log = log_facts(content)
    return evaluate(log, inline_context(patient=patient, log=log))


@dataclass(frozen=True)
class RequestEvaluation:
    """What the request makes of a new log: the advice the patient is shown
    (`evaluation`, with no history, as `evaluate_inline`), and whether the request has
    decided every rule, none firing (`decided`): such a log is stored evaluated and no
    worker is asked for it (docs/safety-path.md § Decided in the request)."""

    evaluation: Evaluation
    decided: bool


def evaluate_in_request(*, patient: Patient, content: dict[str, Any]) -> RequestEvaluation:
    """`evaluate_inline`, then, for a log that fired nothing there but left rules to the
    history (RF-NP-01's nights, above all), the same rules again with the patient's latest
    logs: one indexed read. The advice shown stays the inline one: the rules the request
    publishes to the app are those that need no history. The second evaluation only
    decides whether the background job has anything left to do."""
    log = log_facts(content)
    context = inline_context(patient=patient, log=log)
    evaluation = evaluate(log, context)
    if evaluation.firings or evaluation.decided_quiet:
        return RequestEvaluation(evaluation=evaluation, decided=evaluation.decided_quiet)
    recent = request_recent_logs(patient_id=patient.pk, day=log.date)
    if recent is None:
        return RequestEvaluation(evaluation=evaluation, decided=False)
    with_history = evaluate(log, replace(context, recent_logs=recent))
    return RequestEvaluation(evaluation=evaluation, decided=with_history.decided_quiet)


def advice_json(evaluation: Evaluation) -> dict[str, Any] | None:
    """`safety_advice` as the patient is shown it: in the active language (the request's),
    stored so, with the language it was shown in (rehab/translations.py)."""
    return localized_advice(evaluation)


def reminder_text(evaluation: Evaluation) -> str | None:
    """`safety_reminder` in the active language, as `advice_json`."""
    return localized_reminder(evaluation)


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
    global _quiet_flag_trusted_until
    asked = time.monotonic()
    if publishing_paused():
        return False
    if asked < _quiet_flag_trusted_until:
        return True  # held a moment ago: the task's last look is still to come
    try:
        if not _broker_redis().set(QUIET_FLAG, "1", nx=True, px=QUIET_FLAG_TTL_MS):
            _quiet_flag_trusted_until = asked + QUIET_FLAG_TRUST
            return True  # the running task's next round takes this log
    except Exception:  # noqa: BLE001 - broker outage; the sweeper has it
        pause_publishing()
        logger.warning("could not reach the broker for the quiet logs; the sweeper will")
        return False
    if task_publish("rehab.tasks.quiet_logs_evaluate_task"):
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
    A log decided in the request (`evaluate_in_request`) was stored evaluated: nothing
    is owed, and nothing is sent.
    """
    if log.evaluated_at is not None:
        return
    if log.safety_advice is None:
        transaction.on_commit(quiet_logs_request)
        return
    log_id = str(log.pk)
    publish_on_commit("rehab.tasks.log_evaluate_task", log_id)


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
    # Every read and write of the log by id here names its date too (`by_id`): planned
    # over its month's partition alone.
    day = DailyLog.objects.date_of(log_id)
    for _ in range(3):
        if day is None:
            return EvaluationOutcome(status="missing")
        logs = DailyLog.objects.filter(pk=log_id, date=day)
        claimed = logs.filter(evaluated_at__isnull=True, evaluation_failed_at__isnull=True).update(
            evaluation_attempts=F("evaluation_attempts") + 1
        )
        if claimed:
            break
        if logs.exists():
            return EvaluationOutcome(status="already")
        # Gone, or moved to another month by an edit since its date was read.
        moved = DailyLog.objects.date_of(log_id)
        if moved == day:
            return EvaluationOutcome(status="missing")
        day = moved
    else:
        # Moved by an edit at every look: each edit made it owed again and sent a message
        # of its own, which evaluates it (and the sweeper, if that message is lost).
        return EvaluationOutcome(status="already")
    fields = ("patient_id", "date", "evaluation_attempts", "evaluation_error", "safety_advice")
    try:
        log = DailyLog.objects.only(*fields).get(pk=log_id, date=day)
    except DailyLog.DoesNotExist:
        # Moved to another month by an edit since it was claimed.
        log = DailyLog.objects.only(*fields).get_by_id(log_id)
    if log.evaluation_attempts > MAX_EVALUATION_ATTEMPTS:
        DailyLog.objects.filter(pk=log.pk, date=log.date, evaluated_at__isnull=True).update(
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
            _evaluate_alone_later(log_id for log_id, *_ in others)
            outcome = _evaluate_and_raise(log, others=[])
        else:
            _evaluate_alone_later(outcome.skipped)
    except Exception as exc:
        DailyLog.objects.filter(pk=log.pk, date=log.date).update(evaluation_error=repr(exc)[:2000])
        raise
    return outcome


def _evaluate_alone_later(log_ids: Iterable[UUID]) -> int:
    """Claimed logs a batch did not evaluate (it failed, or someone held their patient):
    a message each, so each is evaluated alone (a retry) without waiting for the sweeper,
    which still has them if the broker is down. Returns how many were handed on."""
    handed = 0
    for log_id in log_ids:
        task_publish("rehab.tasks.log_evaluate_task", str(log_id))
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
            left = _evaluate_alone_later(log_id for log_id, *_ in claimed)
        evaluated += len(claimed) - left
        if flag_held and len(claimed) < EVALUATION_BATCH:
            time.sleep(QUIET_GATHER)
        if time.monotonic() - started > QUIET_TASK_BUDGET:
            # Hand over; if the message is lost, the flag expires and the sweeper has them.
            task_publish("rehab.tasks.quiet_logs_evaluate_task")
            return evaluated


def _claim_owed(
    *, besides: UUID | None, patient_id: UUID | None, limit: int
) -> list[tuple[UUID, UUID, date]]:
    """Count an attempt on up to `limit` other logs owed their first evaluation whose
    answers fired nothing in the request, oldest first; (log id, patient id, date) of
    each.

    SKIP LOCKED and the `attempts = 0` test make the claims of concurrent batches
    disjoint: a log is claimed by at most one batch, ever (a later attempt runs alone).
    Nothing is claimed while someone holds the task's own patient (the review sweep,
    another evaluation): the task will wait for it, and the others need not.
    """
    table = quoted_table(DailyLog)
    pk, patient = log_column("id"), log_column("patient")
    attempts, advice = log_column("evaluation_attempts"), log_column("safety_advice")
    evaluated, failed = log_column("evaluated_at"), log_column("evaluation_failed_at")
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
            ORDER BY {log_column("updated_at")}
            LIMIT %s
            FOR UPDATE SKIP LOCKED
        )
        UPDATE {table} AS claimed SET {attempts} = claimed.{attempts} + 1
        FROM candidate WHERE claimed.{pk} = candidate.{pk}
        RETURNING claimed.{pk}, claimed.{patient}, claimed.{log_column("date")}
    """  # noqa: S608 - identifiers from the model, values as parameters
    params.append(limit)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(row[0], row[1], row[2]) for row in cursor.fetchall()]


def _mark_evaluated(batch: Sequence[DailyLog], *, now: datetime) -> int:
    """Mark each log evaluated if it is still the version read; how many were.

    One statement over (id, version) pairs: as a filter of OR-ed Q objects the ORM
    spent more on compiling it than the evaluation of the batch's rules took."""
    table = quoted_table(DailyLog)
    pk, version, day = log_column("id"), log_column("version"), log_column("date")
    # The batch's dates, as constants: planned over their months' partitions alone (a row
    # moved to another month meanwhile was edited, so its version no longer matches).
    sql = f"""
        UPDATE {table} SET {log_column("evaluated_at")} = %s,
            {log_column("evaluated_version")} = {version}, {log_column("evaluation_error")} = ''
        WHERE ({pk}, {version}) IN (SELECT * FROM unnest(%s::uuid[], %s::integer[]))
          AND {day} = ANY(%s::date[])
    """  # noqa: S608 - identifiers from the model, values as parameters
    days = sorted({row.date for row in batch})
    with connection.cursor() as cursor:
        cursor.execute(sql, [now, [row.pk for row in batch], [row.version for row in batch], days])
        return int(cursor.rowcount)


def _evaluate_and_raise(
    log: DailyLog | None, *, others: Sequence[tuple[UUID, UUID, date]]
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
        other_patients = {patient_id for _, patient_id, _ in others} - patients.keys()
        if other_patients:
            locked = (
                Patient.objects.select_for_update(no_key=True, skip_locked=True)
                .filter(pk__in=other_patients)
                .order_by("pk")
            )
            patients.update((p.pk, p) for p in locked)
        wanted = [log_id for log_id, patient_id, _ in others if patient_id in patients]
        skipped = tuple(log_id for log_id, patient_id, _ in others if patient_id not in patients)
        if log is not None:
            wanted.append(log.pk)
        # A log evaluated meanwhile (another message of it held the patient first) is done;
        # one edited meanwhile is owed again, and evaluated with its new answers. Read with
        # their dates, from their months' partitions alone (docs/clinical-record.md): an
        # edit that moved one to another month meanwhile made it owed again, with a message
        # of its own, so missing it here loses nothing.
        # The others' dates are those their claim returned.
        days = {day for _, patient_id, day in others if patient_id in patients}
        if log is not None:
            days.add(log.date)
        batch = list(
            DailyLog.objects.filter(
                pk__in=wanted,
                date__in=sorted(days),
                evaluated_at__isnull=True,
                evaluation_failed_at__isnull=True,
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
        if log is None:
            alerts = tuple(alert for row in batch for alert in raised[row.pk])
            return EvaluationOutcome(
                status="evaluated" if updated else "stale", alerts=alerts, skipped=skipped
            )
        done = updated == len(batch) or (
            DailyLog.objects.filter(pk=log.pk, date=log.date, evaluated_at=now).exists()
        )
    return EvaluationOutcome(
        status="evaluated" if done else "stale", alerts=tuple(raised[log.pk]), skipped=skipped
    )


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
    publish_on_commit("rehab.tasks.submission_evaluate_task", str(submission.pk))


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


# --------------------------------------------------------------------------- operators


def log_evaluation_retry(*, log_ids: Iterable[UUID | str]) -> list[UUID]:
    """An operator's retry of logs still owed an evaluation (failed, or never run): clear
    the failure bookkeeping, so that `log_evaluate` claims them again, and enqueue each on
    commit. An evaluated log is left alone. Returns the ids retried."""
    return _evaluation_retry(DailyLog, ids=log_ids, task="rehab.tasks.log_evaluate_task")


def submission_evaluation_retry(*, submission_ids: Iterable[UUID | str]) -> list[UUID]:
    """An operator's retry of submissions still owed their evaluation, as
    `log_evaluation_retry` does for logs. Returns the ids retried."""
    return _evaluation_retry(
        SafetySubmission, ids=submission_ids, task="rehab.tasks.submission_evaluate_task"
    )


def _evaluation_retry(
    model: type[DailyLog] | type[SafetySubmission], *, ids: Iterable[UUID | str], task: str
) -> list[UUID]:
    # `partial` binds each id now, not the loop variable at commit time.

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
            publish_on_commit(task, str(object_id))
    return owed
