"""The review rules (docs/safety-rules.md § Review rules) as set-based SQL over every patient.

Each detector answers one question in one statement: for which patients does this rule
fire on their local today? It returns the same `ReviewFinding` (date, basis and all) that
the pure reference function in `rehab.safety.review` returns for that patient and day;
tests/rehab/test_review_jobs.py holds them to it on a randomized cohort. The parameters
are the rule definitions' (`REVIEW_RULES`), passed as query parameters, never repeated.

How the SQL stays exact and fast:
- "Today" is each patient's own calendar date, `timezone(p.timezone, <now>)::date`, with
  <now> from Python (`timezone.now()`) so that one clock rules both sides and tests can
  freeze it.
- Each detector reads, per patient, only the logs of a window ending on that date, in a
  LATERAL subquery holding an aggregate (or a LIMIT): the planner cannot flatten it into
  a hash join, so it probes the existing (patient_id, date) unique index once per patient,
  and the cost grows with the number of patients, not with the years of history. A plain
  join on `l.date > <per-patient today> - 7` made the planner scan the whole log table.
  EXPLAIN ANALYZE on 2,000 patients x 365 days (620k logs): 100-430 ms per rule with the
  join, 11-40 ms with the probes. `pt` is MATERIALIZED so that each patient's today is
  computed once, not once per log row in the FILTER clauses. No new index is needed.
- Means are compared cross-multiplied in integers (sum_a * n_b >= ... * n_a), never as
  rounded `numeric` quotients; the median of integer scores is a multiple of 1/2, which
  `percentile_cont`'s double precision holds exactly. So a threshold sits exactly where
  the oracle (and the clinical table) puts it.

NR-ADH-01 is the exception that is not one statement: which sessions a program
prescribes (phase in force, dosage versions, due days) is defined once, in
`programs.rules`, and shared with the patient's plan and the caseload; rewriting it in SQL
would give the clinician two definitions of adherence that could disagree. So SQL picks
the patients with two completed program weeks, `programs.selectors` computes their weeks
in a fixed number of queries, and the reference function decides.

The registry `REVIEW_DETECTORS` holds the rules whose inputs exist in this codebase.
NR-POST-01 reads the clinical record's interventions.
`CHANGED_DAY_DETECTORS` runs the rules that judge one day's log (NR-PAIN-01, NR-PAIN-03,
NR-POST-01) on the earlier days whose logs changed recently, from the same SQL with
another `pt`: see `_CHANGED_PT`.

One module, though over 500 lines: one detector per review rule, each a single statement,
sharing the "patient's today" SQL and the finding builders; together they are the
review job's one read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any, Final, Protocol
from uuid import UUID

from django.db import connection

from config.db import sql_names
from patients.models import Patient, User
from patients.querysets import ACTIVE_PATIENT_SQL
from programs import rules as program_rules
from programs.models import ProgramAssignment
from programs.selectors import adherence_weeks_for_patients
from rehab import progress
from rehab.models import Alert, DailyLog, Intervention
from rehab.safety.review import (
    NR_ADH_01,
    NR_LOG_01,
    NR_PAIN_01,
    NR_PAIN_02,
    NR_PAIN_03,
    NR_POST_01,
    NR_PROG_01,
    NR_PROG_03,
    AdherenceParams,
    AdherenceWeek,
    MissedLogsAction,
    MissedLogsParams,
    NoImprovementParams,
    PainSpikeParams,
    PostInjectionParams,
    RecoveredParams,
    ReviewFinding,
    ReviewRule,
    TrendParams,
    UncontrolledPainParams,
    _num,
    non_adherence,
)
from rehab.safety.vocab import JsonObject


class Detector(Protocol):
    def __call__(self, *, now: dt.datetime) -> dict[UUID, ReviewFinding]: ...


class ChangedDetector(Protocol):
    def __call__(
        self, *, now: dt.datetime, changed: Changed
    ) -> list[tuple[UUID, ReviewFinding]]: ...


def _rows(sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows: list[tuple[Any, ...]] = cursor.fetchall()
    return rows


def _finding(rule: ReviewRule, today: dt.date, basis: JsonObject) -> ReviewFinding:
    return ReviewFinding(rule.id, rule.version, rule.severity, today, basis)


def _params(rule: ReviewRule, expected: type) -> Any:
    # The rule object is the single source of the thresholds; a rule redefined with
    # another kind of parameters must not be silently read with the wrong names.
    if not isinstance(rule.params, expected):
        raise TypeError(f"{rule.id}: expected {expected.__name__}")
    return rule.params


# Restricted patients (an approved erasure, docs/data-rights.md) are judged by no rule:
# their account is closed and nobody is to act on their record any more.
_ACTIVE = ACTIVE_PATIENT_SQL

# The patient's local today: the calendar date their logs are dated in.
# The tables of the hand-written SQL below, named through the models (config.db).
_PATIENTS = sql_names(Patient).table
_USERS = sql_names(User).table
_LOGS = sql_names(DailyLog).table
_ALERTS = sql_names(Alert).table
_INTERVENTIONS = sql_names(Intervention).table
_ASSIGNMENTS = sql_names(ProgramAssignment).table
_LOCAL_TODAY = "(timezone(p.timezone, %(now)s::timestamptz))::date"

# The days a detector judges, as `pt (id, today)`. Normally each patient's local today.
_TODAY_PT = f"""pt AS MATERIALIZED (
    SELECT p.id, {_LOCAL_TODAY} AS today FROM {_PATIENTS} p
    WHERE {_ACTIVE}
)"""  # noqa: S608 - only constants: the table names, _LOCAL_TODAY and _ACTIVE

# The rules that judge one day's log (NR-PAIN-01, NR-PAIN-03, NR-POST-01) must also judge
# the earlier days whose logs changed since the previous runs: a log made after the last
# run before local midnight, a backfilled log, an edit to an earlier day would otherwise
# never be looked at, since at the next run "today" has moved on. A changed log of day X
# can make the rule fire on X and, for a window of `spread` days (NR-PAIN-03: both days
# of the pair), on the days up to X + spread - 1; never on today, which `_TODAY_PT`
# covers, and never before the backfill window (the API accepts no older log). One probe
# of the (patient_id, date) index per patient, as everywhere here.
_CHANGED_PT = f"""pt AS MATERIALIZED (
    SELECT DISTINCT q.id, c.date + s.k AS today
    FROM (SELECT p.id, {_LOCAL_TODAY} AS local_today FROM {_PATIENTS} p WHERE {_ACTIVE}) AS q
    CROSS JOIN LATERAL (
        SELECT l.date
        FROM {_LOGS} l
        WHERE l.patient_id = q.id
          AND l.date >= q.local_today - %(backfill_days)s::int AND l.date < q.local_today
          AND l.updated_at >= %(changed_since)s
    ) AS c
    CROSS JOIN generate_series(0, %(spread)s::int - 1) AS s(k)
    WHERE c.date + s.k < q.local_today
)"""  # noqa: S608 - only the constants _LOCAL_TODAY and _ACTIVE


@dataclass(frozen=True)
class Changed:
    """Which earlier days to judge: those whose logs changed since `since`."""

    since: dt.datetime
    backfill_days: int


def _pt(changed: Changed | None, spread: int) -> tuple[str, dict[str, Any]]:
    if changed is None:
        return _TODAY_PT, {}
    return _CHANGED_PT, {
        "changed_since": changed.since,
        "backfill_days": changed.backfill_days,
        "spread": spread,
    }


Pairs = list[tuple[UUID, ReviewFinding]]


# --------------------------------------------------------------------------- NR-PAIN-01

_PAIN_SPIKE_SQL = f"""
WITH {{pt}},
today_log AS (
    SELECT pt.id AS patient_id, pt.today, t.is_leg, t.value
    FROM pt
    CROSS JOIN LATERAL (
        SELECT l.leg_pain IS NOT NULL AS is_leg, coalesce(l.leg_pain, l.pain) AS value
        FROM {_LOGS} l
        WHERE l.patient_id = pt.id AND l.date = pt.today
        -- One log per date anyway; the LIMIT keeps this an index probe per patient.
        LIMIT 1
    ) AS t
),
-- The previous logs' figures in a LATERAL per day judged, not a CTE joined back on
-- (patient, day): the planner cannot estimate how many logs changed recently (their
-- `updated_at` lies past its statistics), guessed one, and re-ran the aggregate for every
-- row of the join: 58 s for 4,900 changed days (make bench), now one index probe each.
prior AS (
    SELECT t.patient_id, t.today, t.value, t.is_leg, x.n, x.median, x.dates
    FROM today_log t
    CROSS JOIN LATERAL (
        SELECT count(*) AS n,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY p.value)::numeric AS median,
               array_agg(p.date ORDER BY p.date) AS dates
        FROM (
            SELECT l.date, coalesce(l.leg_pain, l.pain) AS value
            FROM {_LOGS} l
            WHERE l.patient_id = t.patient_id AND l.date < t.today
            ORDER BY l.date DESC
            LIMIT %(prior_logs)s
        ) AS p
    ) AS x
)
SELECT patient_id, today, value, is_leg, median, dates
FROM prior
WHERE n >= %(min_prior_logs)s
  AND value >= median + %(min_rise)s
  AND value >= median * %(min_ratio)s::numeric
"""  # noqa: S608 - the only interpolations are the models' table names


def _pain_spike(*, now: dt.datetime, changed: Changed | None) -> Pairs:
    params: PainSpikeParams = _params(NR_PAIN_01, PainSpikeParams)
    pt, extra = _pt(changed, 1)
    rows = _rows(
        _PAIN_SPIKE_SQL.format(pt=pt),
        {
            "now": now,
            "prior_logs": params.prior_logs,
            "min_prior_logs": params.min_prior_logs,
            "min_rise": params.min_rise,
            "min_ratio": params.min_ratio,
            **extra,
        },
    )
    return [
        (
            patient_id,
            _finding(
                NR_PAIN_01,
                today,
                {
                    "value": value,
                    "field": "leg_pain" if is_leg else "pain",
                    "prior_median": _num(Fraction(Decimal(median))),
                    "prior_dates": [d.isoformat() for d in dates],
                },
            ),
        )
        for patient_id, today, value, is_leg, median, dates in rows
    ]


def pain_spike_firing(*, now: dt.datetime) -> dict[UUID, ReviewFinding]:
    """NR-PAIN-01: today's leg pain (else pain) >= median of the previous 7 logs + 2 and
    >= that median x 1.3, with at least 4 previous logs."""
    return dict(_pain_spike(now=now, changed=None))


def pain_spike_changed(*, now: dt.datetime, changed: Changed) -> Pairs:
    """NR-PAIN-01 on the earlier days whose log changed (see `_CHANGED_PT`)."""
    return _pain_spike(now=now, changed=changed)


# --------------------------------------------------------------------------- NR-PAIN-02

_TREND_SQL = f"""
WITH pt AS MATERIALIZED (
    SELECT p.id, {_LOCAL_TODAY} AS today FROM {_PATIENTS} p
    WHERE {_ACTIVE}
),
windows AS (
    SELECT pt.id AS patient_id, pt.today, w.*
    FROM pt
    CROSS JOIN LATERAL (
        SELECT count(*) FILTER (WHERE l.date > pt.today - %(days)s::int) AS n_now,
               coalesce(sum(l.pain) FILTER (WHERE l.date > pt.today - %(days)s::int), 0)
                   AS s_now,
               count(*) FILTER (WHERE l.date <= pt.today - %(days)s::int) AS n_before,
               coalesce(sum(l.pain) FILTER (WHERE l.date <= pt.today - %(days)s::int), 0)
                   AS s_before
        FROM {_LOGS} l
        WHERE l.patient_id = pt.id
          AND l.date > pt.today - 2 * %(days)s::int AND l.date <= pt.today
    ) AS w
)
SELECT patient_id, today, s_now, n_now, s_before, n_before
FROM windows
WHERE n_now >= %(min_logs)s AND n_before >= %(min_logs)s
  -- mean_now >= mean_before + min_rise, cross-multiplied: exact in integers.
  AND s_now * n_before >= (s_before + %(min_rise)s * n_before) * n_now
"""  # noqa: S608 - only the constants _LOCAL_TODAY and _ACTIVE


def worsening_trend_firing(*, now: dt.datetime) -> dict[UUID, ReviewFinding]:
    """NR-PAIN-02: mean pain of the 7 days ending today >= mean of the 7 days before + 2."""
    params: TrendParams = _params(NR_PAIN_02, TrendParams)
    rows = _rows(
        _TREND_SQL,
        {
            "now": now,
            "days": params.window_days,
            "min_logs": params.min_logs,
            "min_rise": params.min_rise,
        },
    )
    return {
        patient_id: _finding(
            NR_PAIN_02,
            today,
            {
                "mean_pain": _num(Fraction(s_now, n_now)),
                "previous_mean_pain": _num(Fraction(s_before, n_before)),
            },
        )
        for patient_id, today, s_now, n_now, s_before, n_before in rows
    }


# --------------------------------------------------------------------------- NR-PAIN-03

_UNCONTROLLED_SQL = f"""
WITH {{pt}}
SELECT pt.id, pt.today, w.dates, w.worst
FROM pt
CROSS JOIN LATERAL (
    SELECT count(*) AS n,
           array_agg(l.date ORDER BY l.date) AS dates,
           array_agg(l.worst_pain ORDER BY l.date) AS worst
    FROM {_LOGS} l
    WHERE l.patient_id = pt.id
      AND l.date > pt.today - %(days)s::int AND l.date <= pt.today
      AND l.worst_pain >= %(at_least)s
) AS w
-- One log per patient and date: as many qualifying logs as days is every day.
WHERE w.n = %(days)s
"""  # noqa: S608 - the only interpolations are the models' table names


def _uncontrolled_pain(*, now: dt.datetime, changed: Changed | None) -> Pairs:
    params: UncontrolledPainParams = _params(NR_PAIN_03, UncontrolledPainParams)
    pt, extra = _pt(changed, params.consecutive_days)
    rows = _rows(
        _UNCONTROLLED_SQL.format(pt=pt),
        {
            "now": now,
            "days": params.consecutive_days,
            "at_least": params.worst_pain_at_least,
            **extra,
        },
    )
    return [
        (
            patient_id,
            _finding(
                NR_PAIN_03,
                today,
                {
                    "worst_pain": [
                        {"date": d.isoformat(), "worst_pain": w}
                        for d, w in zip(dates, worst, strict=True)
                    ]
                },
            ),
        )
        for patient_id, today, dates, worst in rows
    ]


def uncontrolled_pain_firing(*, now: dt.datetime) -> dict[UUID, ReviewFinding]:
    """NR-PAIN-03: `worst_pain` >= 9 today and yesterday (calendar days, both logged)."""
    return dict(_uncontrolled_pain(now=now, changed=None))


def uncontrolled_pain_changed(*, now: dt.datetime, changed: Changed) -> Pairs:
    """NR-PAIN-03 on the earlier days whose log (or the day before's) changed."""
    return _uncontrolled_pain(now=now, changed=changed)


# --------------------------------------------------------------------------- NR-PROG-01

# The program covering a day: started on or before it, not ended (`ended_on` is the first
# day off the program). One at most per patient and day (the programs app's constraints).
_ON_PROGRAM = f"""
    JOIN {_ASSIGNMENTS} a ON a.patient_id = pt.id
        AND a.start_date <= pt.today AND (a.ended_on IS NULL OR a.ended_on > pt.today)
"""

_NO_IMPROVEMENT_SQL = f"""
WITH pt AS MATERIALIZED (
    SELECT p.id, {_LOCAL_TODAY} AS today FROM {_PATIENTS} p
    WHERE {_ACTIVE}
),
on_program AS MATERIALIZED (
    SELECT pt.id, pt.today, a.start_date
    FROM pt
    {_ON_PROGRAM}
    WHERE pt.today >= a.start_date + %(after_days)s::int
)
SELECT o.id, o.today, o.start_date, b.s, b.n, c.s, c.n
FROM on_program o
CROSS JOIN LATERAL (
    SELECT min(l.date) AS first
    FROM {_LOGS} l
    WHERE l.patient_id = o.id AND l.date <= o.today
) AS f
-- Baseline: the week from the first log; current: the week ending today (the contract's
-- progress figures).
CROSS JOIN LATERAL (
    SELECT coalesce(sum(l.pain), 0) AS s, count(*) AS n
    FROM {_LOGS} l
    WHERE l.patient_id = o.id
      AND l.date >= f.first AND l.date < f.first + %(days)s::int AND l.date <= o.today
) AS b
CROSS JOIN LATERAL (
    SELECT coalesce(sum(l.pain), 0) AS s, count(*) AS n
    FROM {_LOGS} l
    WHERE l.patient_id = o.id AND l.date > o.today - %(days)s::int AND l.date <= o.today
) AS c
WHERE b.n >= %(min_logs)s AND c.n >= %(min_logs)s
  AND b.s > 0  -- a baseline of 0 has nothing to improve on
  -- (baseline - current) / baseline x 100 < 30, cross-multiplied by n_b x n_c x baseline.
  AND (b.s * c.n - c.s * b.n) * 100 < %(min_reduction_pct)s * b.s * c.n
"""  # noqa: S608 - only the constants _LOCAL_TODAY, _ACTIVE, _ON_PROGRAM


def no_improvement_firing(*, now: dt.datetime) -> dict[UUID, ReviewFinding]:
    """NR-PROG-01: from day 42 of the program, pain down less than 30 % from baseline."""
    params: NoImprovementParams = _params(NR_PROG_01, NoImprovementParams)
    rows = _rows(
        _NO_IMPROVEMENT_SQL,
        {
            "now": now,
            "after_days": params.after_days,
            "days": params.window_days,
            "min_logs": params.min_logs,
            "min_reduction_pct": params.min_reduction_pct,
        },
    )
    found = {}
    for patient_id, today, start, b_sum, b_n, c_sum, c_n in rows:
        baseline, current = Fraction(b_sum, b_n), Fraction(c_sum, c_n)
        # The SQL's condition restates progress.percent_change (held to it by
        # tests/rehab/test_figures_sql.py); the figures shown are Python's.
        percent = progress.percent_change(baseline, current)
        assert percent is not None  # the SQL keeps only baselines above 0
        found[patient_id] = _finding(
            NR_PROG_01,
            today,
            {
                "baseline_pain": _num(baseline),
                "current_pain_7d": _num(current),
                "percent_change": _num(percent),
                "program_start": start.isoformat(),
                "program_day": (today - start).days,
            },
        )
    return found


# --------------------------------------------------------------------------- NR-ADH-01

_ADHERENCE_CANDIDATES_SQL = f"""
WITH pt AS MATERIALIZED (
    SELECT p.id, {_LOCAL_TODAY} AS today FROM {_PATIENTS} p
    WHERE {_ACTIVE}
)
SELECT pt.id, pt.today, a.start_date
FROM pt
{_ON_PROGRAM}
WHERE pt.today >= a.start_date + %(weeks)s * %(week)s
"""  # noqa: S608 - only the constants _LOCAL_TODAY, _ACTIVE, _ON_PROGRAM


def non_adherence_firing(*, now: dt.datetime) -> dict[UUID, ReviewFinding]:
    """NR-ADH-01: under 50 % of prescribed sessions done in each of the last 2 completed
    program weeks (weeks counted from the program's start)."""
    params: AdherenceParams = _params(NR_ADH_01, AdherenceParams)
    week = program_rules.WEEK
    candidates = _rows(
        _ADHERENCE_CANDIDATES_SQL, {"now": now, "weeks": params.consecutive_weeks, "week": week}
    )
    if not candidates:
        return {}
    # The day after the latest completed program week: the programs app's weeks are the
    # 7-day windows ending the day before the day asked for, so these are program weeks.
    anchors = {
        patient_id: start + dt.timedelta(days=week * ((today - start).days // week))
        for patient_id, today, start in candidates
    }
    by_patient = adherence_weeks_for_patients(
        list(anchors), weeks=params.consecutive_weeks, today_by_patient=anchors
    )
    found = {}
    for patient_id, today, _ in candidates:
        weeks = [
            AdherenceWeek(start=w.start, prescribed=w.prescribed, done=w.done)
            for w in by_patient.get(patient_id, [])
        ]
        finding = non_adherence(weeks, today=today, params=params)
        if finding is not None:
            found[patient_id] = finding
    return found


# --------------------------------------------------------------------------- NR-PROG-03

_RECOVERED_SQL = f"""
WITH pt AS MATERIALIZED (
    SELECT p.id, {_LOCAL_TODAY} AS today FROM {_PATIENTS} p
    WHERE {_ACTIVE}
)
SELECT pt.id, pt.today, w.pains
FROM pt
CROSS JOIN LATERAL (
    SELECT count(*) AS n, array_agg(l.pain ORDER BY l.date) AS pains
    FROM {_LOGS} l
    WHERE l.patient_id = pt.id
      AND l.date > pt.today - %(days)s::int AND l.date <= pt.today
      AND l.pain <= %(at_most)s
) AS w
WHERE w.n = %(days)s
  AND NOT EXISTS (
      SELECT 1 FROM {_ALERTS} a
      WHERE a.patient_id = pt.id AND a.rule LIKE 'RF-%%' AND a.status <> 'resolved'
        AND a.severity IN ('urgent', 'emergency')
  )
"""  # noqa: S608 - only the constants _LOCAL_TODAY and _ACTIVE


def recovered_firing(*, now: dt.datetime) -> dict[UUID, ReviewFinding]:
    """NR-PROG-03: pain <= 1 on each of the 7 calendar days ending today."""
    params: RecoveredParams = _params(NR_PROG_03, RecoveredParams)
    rows = _rows(_RECOVERED_SQL, {"now": now, "days": params.days, "at_most": params.pain_at_most})
    return {
        patient_id: _finding(
            NR_PROG_03,
            today,
            {
                "pain": list(pains),
                "from": (today - dt.timedelta(days=params.days - 1)).isoformat(),
            },
        )
        for patient_id, today, pains in rows
    }


# --------------------------------------------------------------------------- NR-LOG-01

# Only patients who can log: a registered, active account. With no log at all, days are
# counted from the account's start in the patient's zone (the oracle's `since`).
_MISSED_LOGS_SQL = f"""
WITH pt AS MATERIALIZED (
    SELECT p.id, {_LOCAL_TODAY} AS today, (timezone(p.timezone, u.date_joined))::date AS since
    FROM {_PATIENTS} p
    JOIN {_USERS} u ON u.id = p.user_id
    WHERE u.is_active AND {_ACTIVE}
),
missed AS (
    SELECT pt.id AS patient_id, pt.today, last.date AS last_date,
           CASE WHEN last.date IS NULL THEN pt.today - pt.since
                ELSE pt.today - last.date - 1 END AS missed
    FROM pt
    CROSS JOIN LATERAL (
        SELECT max(l.date) AS date
        FROM {_LOGS} l
        WHERE l.patient_id = pt.id AND l.date <= pt.today
    ) AS last
)
SELECT patient_id, today, last_date, missed FROM missed WHERE missed >= %(at_least)s
"""  # noqa: S608 - only the constants _LOCAL_TODAY and _ACTIVE


def missed_logs_findings(*, now: dt.datetime, at_least: int) -> dict[UUID, ReviewFinding]:
    """NR-LOG-01 for every patient with `at_least` whole days without a log, today not
    counted (the patient can still log today); the basis's `action` says which step."""
    params: MissedLogsParams = _params(NR_LOG_01, MissedLogsParams)
    found: dict[UUID, ReviewFinding] = {}
    for patient_id, today, last_date, missed in _rows(
        _MISSED_LOGS_SQL, {"now": now, "at_least": at_least}
    ):
        action: MissedLogsAction
        if missed >= params.alert_after_days:
            action = "alert_clinician"
        elif missed >= params.remind_after_days:
            action = "remind_patient"
        else:
            continue
        found[patient_id] = _finding(
            NR_LOG_01,
            today,
            {
                "missed_days": missed,
                "last_log_date": None if last_date is None else last_date.isoformat(),
                "action": action,
            },
        )
    return found


def missed_logs_firing(*, now: dt.datetime) -> dict[UUID, ReviewFinding]:
    """NR-LOG-01's clinician step: 7 whole days without a log."""
    params: MissedLogsParams = _params(NR_LOG_01, MissedLogsParams)
    return missed_logs_findings(now=now, at_least=params.alert_after_days)


def missed_logs_reminder_list(*, now: dt.datetime) -> dict[UUID, ReviewFinding]:
    """NR-LOG-01's patient step: 3 to 6 whole days without a log, who to remind today.

    `rehab.services.review.missed_log_reminders_send` emails each of them once per
    streak. From 7 days the clinician is alerted instead (`missed_logs_firing`).
    """
    params: MissedLogsParams = _params(NR_LOG_01, MissedLogsParams)
    return {
        patient_id: finding
        for patient_id, finding in missed_logs_findings(
            now=now, at_least=params.remind_after_days
        ).items()
        if finding.basis["action"] == "remind_patient"
    }


# --------------------------------------------------------------------------- NR-POST-01

# The latest injection-type procedure on or before each patient's today (one indexed
# lookup per patient), then today's log against the mean of the week before it.
_POST_INJECTION_SQL = f"""
WITH {{pt}},
inj AS MATERIALIZED (
    SELECT pt.id, pt.today, i.date AS inj_date, i.kind
    FROM pt
    CROSS JOIN LATERAL (
        SELECT i.date, i.kind
        FROM {_INTERVENTIONS} i
        WHERE i.patient_id = pt.id AND i.kind = ANY(%(kinds)s) AND i.date <= pt.today
        ORDER BY i.date DESC, i.kind
        LIMIT 1
    ) AS i
    WHERE pt.today - i.date BETWEEN %(from_day)s AND %(until_day)s
)
SELECT inj.id, inj.today, inj.inj_date, inj.kind, t.pain, b.s, b.n
FROM inj
JOIN {_LOGS} t ON t.patient_id = inj.id AND t.date = inj.today
CROSS JOIN LATERAL (
    SELECT coalesce(sum(l.pain), 0) AS s, count(*) AS n
    FROM {_LOGS} l
    WHERE l.patient_id = inj.id
      AND l.date >= inj.inj_date - %(pre_days)s::int AND l.date < inj.inj_date
) AS b
WHERE b.n >= %(min_pre_logs)s AND t.pain * b.n > b.s
"""  # noqa: S608 - the only interpolations are the models' table names


def _post_injection(*, now: dt.datetime, changed: Changed | None) -> Pairs:
    params: PostInjectionParams = _params(NR_POST_01, PostInjectionParams)
    pt, extra = _pt(changed, 1)
    rows = _rows(
        _POST_INJECTION_SQL.format(pt=pt),
        {
            "now": now,
            "kinds": list(params.kinds),
            "from_day": params.from_day,
            "until_day": params.until_day,
            "pre_days": params.pre_days,
            "min_pre_logs": params.min_pre_logs,
            **extra,
        },
    )
    return [
        (
            patient_id,
            _finding(
                NR_POST_01,
                today,
                {
                    "pain": pain,
                    "pre_injection_mean_pain": _num(Fraction(total, count)),
                    "intervention": {"kind": kind, "date": injected.isoformat()},
                    "days_after": (today - injected).days,
                },
            ),
        )
        for patient_id, today, injected, kind, pain, total, count in rows
    ]


def post_injection_firing(*, now: dt.datetime) -> dict[UUID, ReviewFinding]:
    """NR-POST-01: today's pain above the pre-injection 7-day mean, > 72 h after it."""
    return dict(_post_injection(now=now, changed=None))


def post_injection_changed(*, now: dt.datetime, changed: Changed) -> Pairs:
    """NR-POST-01 on the earlier days whose log changed."""
    return _post_injection(now=now, changed=changed)


# --------------------------------------------------------------------------- registry

# Rule id -> its firing set. The order is the order of REVIEW_RULES.
REVIEW_DETECTORS: Final[dict[str, Detector]] = {
    NR_PAIN_01.id: pain_spike_firing,
    NR_PAIN_02.id: worsening_trend_firing,
    NR_PAIN_03.id: uncontrolled_pain_firing,
    NR_PROG_01.id: no_improvement_firing,
    NR_PROG_03.id: recovered_firing,
    NR_ADH_01.id: non_adherence_firing,
    NR_LOG_01.id: missed_logs_firing,
    NR_POST_01.id: post_injection_firing,
}

# The rules that judge one day's log also judge earlier days whose logs changed. The other
# rules read a window ending today, which a late or edited log still reaches.
CHANGED_DAY_DETECTORS: Final[dict[str, ChangedDetector]] = {
    NR_PAIN_01.id: pain_spike_changed,
    NR_PAIN_03.id: uncontrolled_pain_changed,
    NR_POST_01.id: post_injection_changed,
}
