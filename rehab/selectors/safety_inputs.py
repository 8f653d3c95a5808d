"""What the safety rules read: a log's answers as rule inputs, and the patient's context
(history, clinical record, earlier logs, baselines), in the request and in the worker.

Reads only; the evaluation that uses them is in rehab/services/safety.py."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection, Sequence
from datetime import date, timedelta
from fractions import Fraction
from typing import Any
from uuid import UUID

from django.db import connection

from config.db import column
from config.db import table as quoted_table
from patients.models import Patient
from rehab import progress
from rehab.models import (
    Alert,
    DailyLog,
)
from rehab.safety import (
    EARLIER_LOG_FIELDS,
    PREVIOUS_LOGS,
    EarlierLog,
    History,
    InterventionFact,
    LogFacts,
    MarkFact,
    PatientContext,
    SafetyAnswers,
    record_needs,
)
from rehab.selectors.record import (
    SafetyFacts,
    safety_facts_for_log,
    safety_facts_for_logs,
)

logger = logging.getLogger(__name__)


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


def log_column(name: str) -> str:
    """A daily-log column, quoted for the raw SQL of the safety path."""
    return column(DailyLog, name)


def _baseline_back_pains(patient_ids: Collection[UUID]) -> dict[UUID, float | None]:
    """Per patient, the mean back pain over the baseline window from their first log
    (exact, as rehab.progress and the backtest compute it); None under MIN_LOGS answers.
    One statement for any number of patients: the worker runs it for every batch."""
    if not patient_ids:
        return {}
    table = quoted_table(DailyLog)
    patient, day, back_pain = log_column("patient"), log_column("date"), log_column("back_pain")
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
    patient, day = log_column("patient"), log_column("date")
    columns = ", ".join(f"d.{log_column(name)}" for name in EARLIER_LOG_FIELDS)
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


# How far before a log the request looks for the RECENT_LOGS logs before it: at most two
# months' partitions to search (docs/safety-path.md § Decided in the request).
REQUEST_HISTORY_DAYS = 31


def request_recent_logs(*, patient_id: UUID, day: date) -> tuple[EarlierLog, ...] | None:
    """The patient's RECENT_LOGS latest logs before `day`, as the background job reads
    them (`_recent_logs`), when all of them are dated within REQUEST_HISTORY_DAYS before
    it; None when fewer are (the request cannot tell "no older log" from "older than the
    window" without searching every month, so it gives no history rather than a short
    one: the trend rules read a short history as the whole of it).

    Through the function `rehab_recent_logs` (rehab/migrations/0017_recent_logs_function.py):
    its statement is planned once per connection, not over the log table's partitions on
    every POST."""
    since = day - timedelta(days=REQUEST_HISTORY_DAYS)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT * FROM rehab_recent_logs(%s, %s, %s, %s)", [patient_id, day, since, RECENT_LOGS]
        )
        rows = cursor.fetchall()
    if len(rows) < RECENT_LOGS:
        return None
    return tuple(EarlierLog(*row) for row in rows)


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
    # RF-NP-01's "no other RF rule open" means unresolved (docs/safety-rules.md): a red flag
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
