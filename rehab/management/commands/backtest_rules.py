"""Replay the current rule definitions over stored logs: what would each rule have raised?

    python manage.py backtest_rules [--rule ID ...] [--since DATE] [--until DATE]
                                    [--format table|json]

So that a rule change can be judged before it goes live. It writes nothing: everything
runs in a READ ONLY transaction that is rolled back at the end.

- Red-flag rules (§2): `rehab.safety.evaluate` on every log dated in the range, with the
  context the background job gives it (`full_context`): the previous logs the rules read, the
  first-week back-pain baseline as it stood on the log's date, the clinical record facts,
  and the rules "open" at that point of the replay. Logs are read once, in (patient, date)
  order through a server-side cursor, and replayed patient by patient from memory; the
  record facts are fetched per batch of ~2,000 logs, never per log.
- Review rules (§3): the pure reference functions of `rehab.safety.review`, day by day for
  each patient, from the range's start (or the patient's first log or account start) to
  its end (or the patient's local today), with the programs and exercise sessions
  fetched per batch too, and the clinical record's interventions for NR-POST-01.

Counts per rule: `firings` (every log or day on which it fired), `episodes` (the alerts it
would have raised, under one-unresolved-alert-per-patient-and-rule) and `patients`.
Episode model: an episode opens at a firing when none is open for that patient and rule,
and closes on the first later day with a log on which the rule does not fire. That is
exactly the review job's auto-resolution for routine review rules; for the rules only a
clinician resolves (red flags, NR-PAIN-03) it assumes the clinician resolves the alert
once its trigger is gone, since a replay cannot know when they did.

One module, though over 500 lines: one command replaying both rule families over the
same read of the logs, with its report.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal, cast
from uuid import UUID
from zoneinfo import ZoneInfo

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.utils import timezone

from patients.models import Patient
from programs import rules as program_rules
from programs import selectors as program_selectors
from programs.models import ExerciseLog
from rehab import progress
from rehab.models import DailyLog
from rehab.models.record import Intervention
from rehab.safety import (
    ESCALATION,
    RULES,
    History,
    InterventionFact,
    LogFacts,
    MarkFact,
    PatientContext,
    evaluate,
)
from rehab.safety import review as oracle
from rehab.safety.vocab import HISTORY_FLAGS, SEVERITIES
from rehab.selectors import record as record_selectors
from rehab.selectors.safety_inputs import RECENT_LOGS, RULE_INPUTS, log_facts

# Logs (or patients) held in memory between two rounds of batch queries.
CHUNK_LOGS = 2000
CHUNK_PATIENTS = 500

Kind = Literal["red_flag", "review"]
RecordFacts = tuple[tuple[InterventionFact, ...], tuple[MarkFact, ...]]


@dataclass(frozen=True)
class PatientDay:
    """What the review rules may read for one patient on one day of the replay."""

    today: dt.date
    # The latest logs dated up to today (see `_review_reach`), and the logs of the first
    # week (the baseline), in date order, without duplicates between them.
    series: Sequence[LogFacts]
    # NR-LOG-01's start for a patient without logs; None when they cannot log at all.
    since: dt.date | None
    # The program covering today, if any: its start and its adherence weeks (lazily).
    program_start: dt.date | None
    adherence: Callable[[], list[oracle.AdherenceWeek]]
    # The patient's recorded procedures (NR-POST-01), all dates.
    interventions: Sequence[InterventionFact] = ()
    # An urgent or emergency red-flag episode of the replay is open on this day (NR-PROG-03
    # stays silent beside one, amendment 8.4).
    red_flag_open: bool = False


def _missed(day: PatientDay) -> bool:
    if day.since is None:  # no active account: the job does not chase them either
        return False
    finding = oracle.missed_logs(day.series, today=day.today, since=day.since)
    # The 3-day step reminds the patient; only the 7-day step alerts a clinician.
    return finding is not None and finding.basis["action"] == "alert_clinician"


def _no_improvement(day: PatientDay) -> bool:
    return day.program_start is not None and (
        oracle.no_meaningful_improvement(
            day.series, today=day.today, program_start=day.program_start
        )
        is not None
    )


def _non_adherence(day: PatientDay) -> bool:
    return day.program_start is not None and (
        oracle.non_adherence(day.adherence(), today=day.today) is not None
    )


def _post_injection(day: PatientDay) -> bool:
    return bool(day.interventions) and (
        oracle.post_injection(day.series, today=day.today, interventions=day.interventions)
        is not None
    )


# Review rule id -> "would the job raise (or re-fire) its alert on this day?", through the
# reference functions. The order is REVIEW_RULES'.
REVIEW_REPLAYS: dict[str, Callable[[PatientDay], bool]] = {
    oracle.NR_PAIN_01.id: lambda d: oracle.pain_spike(d.series, today=d.today) is not None,
    oracle.NR_PAIN_02.id: lambda d: oracle.worsening_trend(d.series, today=d.today) is not None,
    oracle.NR_PAIN_03.id: lambda d: oracle.uncontrolled_pain(d.series, today=d.today) is not None,
    oracle.NR_PROG_01.id: _no_improvement,
    oracle.NR_PROG_03.id: lambda d: (
        oracle.recovered(d.series, today=d.today, red_flag_open=d.red_flag_open) is not None
    ),
    oracle.NR_ADH_01.id: _non_adherence,
    oracle.NR_LOG_01.id: _missed,
    oracle.NR_POST_01.id: _post_injection,
}
# Why a review rule cannot be replayed (none at present).
NOT_REPLAYABLE: dict[str, str] = {}
PROGRAM_RULES = {oracle.NR_PROG_01.id, oracle.NR_ADH_01.id}


def _review_reach() -> int:
    """How many of the latest logs the replayed review rules read: NR-PAIN-01 the previous
    `prior_logs` and today's; the others calendar windows of at most 2 x 7 days, which
    hold as many logs at most (one log per date); NR-LOG-01 only the last one. NR-PROG-01
    reads the first week's logs too; the replay adds them. NR-POST-01 reads back to the week
    before an injection up to six weeks ago."""
    spike = cast(oracle.PainSpikeParams, oracle.NR_PAIN_01.params)
    trend = cast(oracle.TrendParams, oracle.NR_PAIN_02.params)
    uncontrolled = cast(oracle.UncontrolledPainParams, oracle.NR_PAIN_03.params)
    no_improvement = cast(oracle.NoImprovementParams, oracle.NR_PROG_01.params)
    recovered = cast(oracle.RecoveredParams, oracle.NR_PROG_03.params)
    post = cast(oracle.PostInjectionParams, oracle.NR_POST_01.params)
    return max(
        spike.prior_logs + 1,
        2 * trend.window_days,
        uncontrolled.consecutive_days,
        no_improvement.window_days,
        recovered.days,
        # NR-POST-01: the week before an injection up to `until_day` days back, and today.
        post.until_day + post.pre_days + 1,
    )


# --------------------------------------------------------------------------- results


@dataclass
class RuleCount:
    rule: str
    version: int
    severity: str
    kind: Kind
    firings: int = 0
    episodes: int = 0
    patients: set[UUID] = field(default_factory=set)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "version": self.version,
            "severity": self.severity,
            "kind": self.kind,
            "firings": self.firings,
            "episodes": self.episodes,
            "patients": len(self.patients),
        }


@dataclass
class Backtest:
    since: dt.date | None
    until: dt.date | None
    counts: dict[str, RuleCount]
    logs_evaluated: int = 0
    patient_days: int = 0
    unreadable_logs: int = 0

    def as_dict(self) -> dict[str, Any]:
        severities = {
            severity: {
                "firings": sum(c.firings for c in self.counts.values() if c.severity == severity),
                "episodes": sum(c.episodes for c in self.counts.values() if c.severity == severity),
            }
            for severity in SEVERITIES
        }
        return {
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "logs_evaluated": self.logs_evaluated,
            "patient_days": self.patient_days,
            "unreadable_logs": self.unreadable_logs,
            "rules": [c.as_dict() for c in self.counts.values()],
            "severities": severities,
        }


# --------------------------------------------------------------------------- the replay


@dataclass(frozen=True)
class PatientFacts:
    id: UUID
    date_of_birth: dt.date
    history: History
    zone: ZoneInfo
    # NR-LOG-01's `since`: the account's start, for patients who can log at all.
    since: dt.date | None


def _patients() -> dict[UUID, PatientFacts]:
    fields = [f"history_{flag}" for flag in HISTORY_FLAGS]
    out = {}
    for row in Patient.objects.order_by().values(
        "id", "date_of_birth", "timezone", "user__date_joined", "user__is_active", *fields
    ):
        zone = ZoneInfo(row["timezone"])
        joined = row["user__date_joined"]
        out[row["id"]] = PatientFacts(
            id=row["id"],
            date_of_birth=row["date_of_birth"],
            history=History.from_mapping({flag: row[f"history_{flag}"] for flag in HISTORY_FLAGS}),
            zone=zone,
            since=joined.astimezone(zone).date()
            if joined is not None and row["user__is_active"]
            else None,
        )
    return out


LOG_FIELDS = ("patient_id", *RULE_INPUTS)


def _record_facts(keys: list[tuple[UUID, dt.date]]) -> dict[tuple[UUID, dt.date], RecordFacts]:
    """The clinical record's facts (interventions, assessed marks) for many logs at once.

    The clinical record branch brings `safety_facts_for_logs` (two queries per batch);
    until it is merged, its stub module has only the per-log function, which reads
    nothing, so calling it per log costs no query.
    """
    bulk = getattr(record_selectors, "safety_facts_for_logs", None)
    if bulk is not None:
        found = bulk(keys=keys)
    else:
        found = {k: record_selectors.safety_facts_for_log(patient_id=k[0], on=k[1]) for k in keys}
    return {
        key: (
            tuple(InterventionFact(date=i.date, kind=i.kind) for i in interventions),
            tuple(MarkFact(symptom=m.symptom, until=m.until) for m in marks),
        )
        for key, (interventions, marks) in found.items()
    }


@dataclass
class PatientBatch:
    """A few patients with their logs, and what is fetched once for all of them."""

    patients: list[tuple[PatientFacts, list[LogFacts]]] = field(default_factory=list)
    logs: int = 0
    record: dict[tuple[UUID, dt.date], RecordFacts] = field(default_factory=dict)
    programs: dict[UUID, list[program_rules.ProgramPlan]] = field(default_factory=dict)
    sessions: dict[UUID, list[tuple[UUID, dt.date]]] = field(default_factory=dict)
    interventions: dict[UUID, list[InterventionFact]] = field(default_factory=dict)


class Replay:
    def __init__(
        self,
        *,
        rules: Sequence[str],
        since: dt.date | None,
        until: dt.date | None,
        now: dt.datetime,
    ) -> None:
        self.since = since
        self.until = until
        self.now = now
        self.red_flags = [r.id for r in RULES if r.id in rules]
        self.all_red_flags = [r.id for r in RULES]
        self.serious = {r.id for r in RULES if r.severity in ("urgent", "emergency")}
        # Review rules that read whether a serious red flag is open replay the red flags
        # too (without counting them when they were not asked for).
        self.needs_red_flag_state = oracle.NR_PROG_03.id in rules
        # Per patient, after each replayed log: (date, a serious red flag is open).
        self.red_flag_state: dict[UUID, list[tuple[dt.date, bool]]] = {}
        self.reviews = [r for r in REVIEW_REPLAYS if r in rules]
        self.needs_programs = bool(PROGRAM_RULES & set(self.reviews))
        self.reach = _review_reach()
        rule_defs = {r.id: (r.version, r.severity) for r in RULES}
        rule_defs |= {r.id: (r.version, r.severity) for r in oracle.REVIEW_RULES}
        self.result = Backtest(
            since=since,
            until=until,
            counts={
                rule_id: RuleCount(
                    rule_id,
                    *rule_defs[rule_id],
                    kind="red_flag" if rule_id in self.red_flags else "review",
                )
                for rule_id in rules
            },
        )

    def run(self) -> Backtest:
        for batch in self._batches():
            self._fetch(batch)
            for patient, logs in batch.patients:
                if self.red_flags or self.needs_red_flag_state:
                    self._replay_red_flags(patient, logs, batch)
                if self.reviews:
                    self._replay_reviews(patient, logs, batch)
                self.red_flag_state.pop(patient.id, None)
        return self.result

    # ----------------------------------------------------------------------- reading

    def _batches(self) -> Iterator[PatientBatch]:
        """Every patient with their logs, in batches of about CHUNK_LOGS logs.

        The logs come through one server-side cursor in (patient, date) order, merged
        with the patients in the same order (PostgreSQL orders uuids as Python does).
        """
        patients = _patients()
        rows = DailyLog.objects.order_by("patient_id", "date").values_list(*LOG_FIELDS)
        if self.until is not None:
            rows = rows.filter(date__lte=self.until)
        groups = itertools.groupby(rows.iterator(chunk_size=CHUNK_LOGS), key=lambda r: r[0])
        pending = next(groups, None)
        batch = PatientBatch()
        for patient_id in sorted(patients):
            logs: list[LogFacts] = []
            if pending is not None and pending[0] == patient_id:
                logs = self._parse(pending[1])
                pending = next(groups, None)
            batch.patients.append((patients[patient_id], logs))
            batch.logs += len(logs)
            if batch.logs >= CHUNK_LOGS or len(batch.patients) >= CHUNK_PATIENTS:
                yield batch
                batch = PatientBatch()
        if batch.patients:
            yield batch
        if pending is not None:
            # Logs of a patient the merge skipped: the two orders disagree. Never
            # undercount silently.
            raise RuntimeError("logs and patients were not read in the same order")

    def _parse(self, rows: Iterable[tuple[Any, ...]]) -> list[LogFacts]:
        logs = []
        for row in rows:
            try:
                logs.append(log_facts(dict(zip(LOG_FIELDS[1:], row[1:], strict=True))))
            except ValueError:
                # A stored answer today's vocabulary does not know: the live job would
                # fail on it too. Counted, and left out of the replay.
                self.result.unreadable_logs += 1
        return logs

    def _fetch(self, batch: PatientBatch) -> None:
        """The batch's record facts, programs and exercise sessions: a few queries each."""
        if self.red_flags:
            batch.record = _record_facts(
                [
                    (patient.id, log.date)
                    for patient, logs in batch.patients
                    for log in logs
                    if self._evaluates(log.date)
                ]
            )
        if oracle.NR_POST_01.id in self.reviews:
            for patient_id, day, kind in Intervention.objects.filter(
                patient_id__in=[patient.id for patient, _ in batch.patients]
            ).values_list("patient_id", "date", "kind"):
                batch.interventions.setdefault(patient_id, []).append(
                    InterventionFact(date=day, kind=kind)
                )
        if self.needs_programs:
            ids = [patient.id for patient, _ in batch.patients]
            for patient_id, assignments in program_selectors.assignments_between(
                ids, start=dt.date.min, end=dt.date.max
            ).items():
                batch.programs[patient_id] = [program_selectors.plan_of(a) for a in assignments]
            for patient_id, exercise_id, day in (
                ExerciseLog.objects.filter(patient_id__in=list(batch.programs))
                .values_list("patient_id", "assigned_exercise_id", "date")
                .distinct()
            ):
                batch.sessions.setdefault(patient_id, []).append((exercise_id, day))

    def _evaluates(self, day: dt.date) -> bool:
        return (self.since is None or day >= self.since) and (
            self.until is None or day <= self.until
        )

    # ----------------------------------------------------------------------- counting

    def _count(self, rule_id: str, patient_id: UUID, fired: bool, open_: set[str]) -> None:
        if fired:
            count = self.result.counts[rule_id]
            count.firings += 1
            count.patients.add(patient_id)
            if rule_id not in open_:
                count.episodes += 1
                open_.add(rule_id)
        else:
            open_.discard(rule_id)

    def _replay_red_flags(
        self, patient: PatientFacts, logs: list[LogFacts], batch: PatientBatch
    ) -> None:
        if not logs:
            return
        open_: set[str] = set()
        baseline_end = logs[0].date + dt.timedelta(days=progress.BASELINE_DAYS - 1)
        first_week = [
            (x.date, x.back_pain)
            for x in logs
            if x.date <= baseline_end and x.back_pain is not None
        ]
        for i, log in enumerate(logs):
            if not self._evaluates(log.date):
                continue
            self.result.logs_evaluated += 1
            interventions, marks = batch.record.get((patient.id, log.date), ((), ()))
            # As `full_context` saw it then: the baseline from the logs dated so far.
            known = [bp for day, bp in first_week if day <= log.date]
            baseline = (
                float(Fraction(sum(known), len(known))) if len(known) >= progress.MIN_LOGS else None
            )
            ctx = PatientContext(
                date_of_birth=patient.date_of_birth,
                history=patient.history,
                interventions=interventions,
                marks=marks,
                baseline_back_pain=baseline,
                recent_logs=tuple(logs[max(0, i - RECENT_LOGS) : i]),
                open_alert_rules=frozenset(open_),
            )
            fired = set(evaluate(log, ctx).rule_ids)
            for rule_id in self.red_flags:
                self._count(rule_id, patient.id, rule_id in fired, open_)
            # Every red flag's open state, counted or not: RF-NP-01 reads whether any
            # other RF rule is open, so `--rule RF-NP-01` must see the same open alerts
            # as the full run, or it would count night pain the live engine suppresses.
            for rule_id in self.all_red_flags:
                if rule_id in fired:
                    open_.add(rule_id)
                else:
                    open_.discard(rule_id)
            self.red_flag_state.setdefault(patient.id, []).append(
                (log.date, bool(open_ & self.serious))
            )

    def _replay_reviews(
        self, patient: PatientFacts, logs: list[LogFacts], batch: PatientBatch
    ) -> None:
        plans = batch.programs.get(patient.id, [])
        starts = [d for d in (logs[0].date if logs else None, patient.since) if d is not None]
        starts += [plan.start_date for plan in plans]
        if not starts:
            return
        first = max(min(starts), self.since) if self.since else min(starts)
        local_today = self.now.astimezone(patient.zone).date()
        last = min(local_today, self.until) if self.until else local_today
        dates = [x.date for x in logs]
        head = bisect.bisect_left(
            dates, dates[0] + dt.timedelta(days=progress.BASELINE_DAYS) if dates else dt.date.max
        )
        weeks = _AdherenceWeeks(plans, batch.sessions.get(patient.id, []))
        state = self.red_flag_state.get(patient.id, [])
        state_dates = [day for day, _ in state]
        open_: set[str] = set()
        for today in _days(first, last):
            self.result.patient_days += 1
            end = bisect.bisect_right(dates, today)
            plan = next((p for p in plans if p.covers(today)), None)
            day = PatientDay(
                today=today,
                series=logs[: min(head, end)] + logs[max(head, end - self.reach) : end],
                since=patient.since,
                program_start=plan.start_date if plan else None,
                adherence=functools.partial(weeks.before, plan, today),
                interventions=batch.interventions.get(patient.id, ()),
                red_flag_open=_open_on(state, state_dates, today),
            )
            logged = end > 0 and dates[end - 1] == today
            for rule_id in self.reviews:
                fired = REVIEW_REPLAYS[rule_id](day)
                # A day without a log is no news: nothing closes (as in the review job).
                if fired or logged:
                    self._count(rule_id, patient.id, fired, open_)


def _open_on(state: list[tuple[dt.date, bool]], dates: list[dt.date], day: dt.date) -> bool:
    """Whether a serious red-flag episode is open on `day`: as the last log up to it left
    it (a day without a log changes nothing)."""
    at = bisect.bisect_right(dates, day)
    return at > 0 and state[at - 1][1]


class _AdherenceWeeks:
    """The two latest completed program weeks before a day, as the review job reads them
    (programs.rules on the same plans and sessions), computed once per program week."""

    def __init__(
        self, plans: list[program_rules.ProgramPlan], sessions: list[tuple[UUID, dt.date]]
    ) -> None:
        self.plans = plans
        self.sessions = sessions
        self.cache: dict[dt.date, list[oracle.AdherenceWeek]] = {}

    def before(
        self, plan: program_rules.ProgramPlan | None, today: dt.date
    ) -> list[oracle.AdherenceWeek]:
        if plan is None:
            return []
        week = program_rules.WEEK
        anchor = plan.start_date + dt.timedelta(
            days=week * ((today - plan.start_date).days // week)
        )
        if anchor not in self.cache:
            params = cast(oracle.AdherenceParams, oracle.NR_ADH_01.params)
            self.cache[anchor] = [
                oracle.AdherenceWeek(start=w.start, prescribed=w.prescribed, done=w.done)
                for w in program_rules.weekly_adherence(
                    plans=self.plans,
                    sessions=self.sessions,
                    today=anchor,
                    weeks=params.consecutive_weeks,
                )
                # Weeks before the program started are no program weeks.
                if w.start >= plan.start_date
            ]
        return self.cache[anchor]


def _days(first: dt.date, last: dt.date) -> Iterable[dt.date]:
    return (first + dt.timedelta(days=n) for n in range((last - first).days + 1))


# --------------------------------------------------------------------------- the command


def _known_rules() -> list[str]:
    return [r.id for r in RULES] + [r.id for r in oracle.REVIEW_RULES]


def _rules(asked: Sequence[str] | None) -> list[str]:
    replayable = [r.id for r in RULES] + list(REVIEW_REPLAYS)
    if not asked:
        return replayable
    wanted = {rule_id.strip().upper() for rule_id in asked}
    for rule_id in sorted(wanted):
        if rule_id == ESCALATION.id:
            raise CommandError(f"{rule_id} is about alerts, not logs: there is nothing to replay.")
        if rule_id in NOT_REPLAYABLE:
            raise CommandError(f"{rule_id} cannot be replayed yet: {NOT_REPLAYABLE[rule_id]}.")
        if rule_id not in replayable:
            raise CommandError(f"Unknown rule {rule_id!r}. Rules: {', '.join(_known_rules())}.")
    return [rule_id for rule_id in replayable if rule_id in wanted]


def _date(option: str, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{option} {value!r} is not a date: use YYYY-MM-DD.") from None


def backtest(
    *,
    rules: Sequence[str] | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
    now: dt.datetime | None = None,
) -> Backtest:
    """Replay inside a READ ONLY transaction that is rolled back: it cannot write."""
    selected = _rules(rules)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION READ ONLY")
        result = Replay(rules=selected, since=since, until=until, now=now or timezone.now()).run()
        transaction.set_rollback(True)
    return result


def render_table(result: Backtest) -> str:
    start = result.since.isoformat() if result.since else "the first log"
    end = result.until.isoformat() if result.until else "each patient's local today"
    span = f"{start} to {end}"
    header = ("rule", "version", "severity", "firings", "episodes", "patients")
    rows = [
        (c.rule, str(c.version), c.severity, str(c.firings), str(c.episodes), str(len(c.patients)))
        for c in result.counts.values()
    ]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(w) if i < 3 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    data = result.as_dict()
    out = [
        f"Backtest of the current rule definitions, {span}",
        f"{result.logs_evaluated} logs replayed through the red-flag rules, "
        f"{result.patient_days} patient-days through the review rules"
        + (f", {result.unreadable_logs} unreadable logs skipped" if result.unreadable_logs else ""),
        "",
        line(header),
        line(["-" * w for w in widths]),
        *(line(r) for r in rows),
        "",
        "Per severity (firings / episodes):",
        *(
            f"  {severity:<10} {counts['firings']:>6} / {counts['episodes']}"
            for severity, counts in data["severities"].items()
        ),
        "",
        "Episodes are the alerts that would have been raised: one per run of firings, closed",
        "by the first later logged day on which the rule does not fire.",
    ]
    return "\n".join(out) + "\n"


class Command(BaseCommand):
    help = (
        "Replay the current red-flag and review rule definitions over stored logs and report "
        "how many alerts each would have raised, per severity. Writes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--rule",
            action="extend",
            nargs="+",
            metavar="ID",
            help="only these rules (repeatable), e.g. --rule RF-NP-01 NR-PAIN-01",
        )
        parser.add_argument("--since", metavar="DATE", help="first log date to replay")
        parser.add_argument("--until", metavar="DATE", help="last log date to replay")
        parser.add_argument("--format", choices=("table", "json"), default="table")

    def handle(self, *args: Any, **options: Any) -> None:
        since = _date("--since", options["since"])
        until = _date("--until", options["until"])
        if since and until and since > until:
            raise CommandError(f"--since {since} is after --until {until}.")
        result = backtest(rules=options["rule"], since=since, until=until)
        if options["format"] == "json":
            self.stdout.write(json.dumps(result.as_dict(), indent=2))
        else:
            self.stdout.write(render_table(result), ending="")
