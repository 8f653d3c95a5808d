"""Reads for the clinician web dashboard (dashboard/views.py).

Everything starts from the same scoped selectors as the API (`caseload_list`,
`alert_list`, `patient_get`), so the dashboard cannot see more than the API does.

The caseload's log and alert columns are annotations (correlated subqueries in
`dashboard_caseload`); the program columns (exercise adherence, current phase) are rules
in Python over a few set-based reads, so they are computed for the page shown only
(`caseload_program_columns`). Either way the page costs a constant number of queries
(tests/dashboard/test_caseload.py checks it at 5, 50 and 500 patients).

The patient page's sections (dashboard/sections.py) read through the
functions at the end of this module: each takes the viewer and the already scoped patient,
reads through `visible_to(user)` and costs a fixed number of queries however long the
record is.

One module, though over 500 lines: the dashboard's reads (caseload, patient page, alert
inbox) all start from the same scoped selectors and share the caseload's figures.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.db.models import (
    BooleanField,
    IntegerField,
    Prefetch,
    Q,
    QuerySet,
)

from patients.models import Patient, User
from programs import rules
from programs import selectors as program_selectors
from programs.models import (
    AssignedExercise,
    AssignedPhase,
    DosageVersion,
    ExerciseLog,
    ProgramAssignment,
    ProgressionProposal,
)
from rehab import progress, scoring
from rehab.models import (
    Alert,
    DailyLog,
    Diagnosis,
    ImagingFinding,
    Instrument,
    Intervention,
    ProvocativeTest,
    QuestionnaireResponse,
)
from rehab.models.logs import ROLLUP_RECENT_LOGS
from rehab.querysets import log_date
from rehab.safety.vocab import BOOLEAN_FIELDS, CHOICE_FIELDS
from rehab.selectors import record as record_selectors
from rehab.selectors.alerts import alert_list
from rehab.selectors.caseload import MISSED_LOG_DAYS, NO_ALERT_TIER, caseload_list, missed_logs
from rehab.selectors.logs import CURRENT, RollupScalar, window

STALE_DAYS = MISSED_LOG_DAYS
ADHERENCE_DAYS = 7


@dataclass(frozen=True)
class CaseloadFilters:
    search: str = ""
    # "any" (at least one open alert) or a severity
    alerts: str = ""
    # True: meaningful change reached; False: not (or not computable yet)
    mcid: bool | None = None
    stale: bool = False


def _logs_in_last_days(days: int) -> RollupScalar:
    """How many logs the patient wrote in the `days` local days ending today, from the
    rollup's latest logs (a window of at most ROLLUP_RECENT_LOGS days)."""
    assert days <= ROLLUP_RECENT_LOGS, "the rollup keeps too few logs for this window"
    logs = window(f"o.today - {days - 1}", "o.today")
    return RollupScalar(f"SELECT {logs.n}", output_field=IntegerField())


def _mcid_reached() -> RollupScalar:
    """progress.figures' "meaningful change reached" in SQL (False too when a window has
    fewer than MIN_LOGS logs, so that "not reached" includes not computable yet), over
    the windows of `with_log_figures`, from the patient's rollup row; needs `local_date`.

    The tests are on integer sums and counts, so that the filter agrees with the rows
    (`figures_of`, exact fractions) also on exact ties. With b = bs/bn, c = cs/cn and
    d = cs*bn - bs*cn:
        change = d / (bn*cn) <= -2          <=>  d <= -2 * bn * cn
        percent = 100 * d / (cn*bs) <= -30  <=>  100 * d <= -30 * cn * bs   (bs > 0)
    Means would miss the ties: 7/3 -> 1/3 is exactly -2 points, its numeric means made it
    -1.99999999999999996667. One subquery, the current window read once."""
    n = progress.MIN_LOGS
    # Both means need MIN_LOGS logs; a baseline of 0 cannot drop 2 points (and has no
    # percent change). No logs at all: o.bn is NULL, not reached, as figures_of says.
    sql = f"""SELECT CASE
        WHEN o.bn >= {n} AND c.n >= {n} AND o.bs > 0
        THEN x.d <= {progress.MCID_POINTS} * o.bn * c.n
            AND 100 * x.d <= {progress.MCID_PERCENT} * c.n * o.bs
        ELSE false
    END
    FROM (SELECT {CURRENT.total} AS total, {CURRENT.n} AS n) AS c
    CROSS JOIN LATERAL (SELECT c.total * o.bn - o.bs::bigint * c.n AS d) AS x"""  # noqa: S608
    return RollupScalar(sql, output_field=BooleanField())


def dashboard_caseload(*, user: User, filters: CaseloadFilters) -> QuerySet[Patient]:
    """The caseload in triage order, narrowed by the dashboard's filters; one SQL query
    per page whatever the clinic's size (every figure is a correlated subquery)."""
    patients = caseload_list(user=user, search=filters.search).annotate(
        logs_7d=_logs_in_last_days(ADHERENCE_DAYS)
    )
    if filters.alerts == "any":
        patients = patients.filter(Q(alert_tier__lt=NO_ALERT_TIER))
    elif filters.alerts:
        patients = patients.filter(**{f"open_{filters.alerts}__gt": 0})
    if filters.mcid is not None:
        # "Not reached" includes not computable yet (no baseline, or no current mean).
        patients = patients.alias(mcid_reached=_mcid_reached()).filter(mcid_reached=filters.mcid)
    if filters.stale:
        patients = patients.filter(missed_logs())
    return patients


def unresolved_alert_count(*, user: User) -> int:
    """For the navigation bar: how many alerts still wait for someone."""
    return Alert.objects.visible_to(user).filter(status=Alert.Status.OPEN).count()


def inbox_alerts(
    *, user: User, status: str = "", severity: str = "", patient_id: Any = None
) -> QuerySet[Alert]:
    """The inbox: unresolved alerts unless a status is asked for; most severe, then
    longest waiting, first (the selector's order)."""
    alerts = alert_list(
        user=user, status=status or None, severity=severity or None, patient_id=patient_id
    )
    if not status:
        alerts = alerts.exclude(status=Alert.Status.RESOLVED)
    # The log's date from the claimed ids (`log_date`), not a join of the log table: a
    # join by id alone is planned over every monthly partition.
    return alerts.annotate(log_date=log_date()).select_related("acknowledged_by", "resolved_by")


def patient_alerts(*, user: User, patient: Patient, past: int = 20) -> dict[str, list[Alert]]:
    """The patient's unresolved alerts (all of them) and the most recent resolved ones."""
    alerts = (
        alert_list(user=user, patient_id=patient.pk)
        .annotate(log_date=log_date())
        .select_related("acknowledged_by", "resolved_by")
    )
    return {
        "unresolved": list(alerts.exclude(status=Alert.Status.RESOLVED)),
        "past": list(
            alerts.filter(status=Alert.Status.RESOLVED).order_by("-resolved_at", "-id")[:past]
        ),
    }


# --------------------------------------------------------------------------- daily logs


@dataclass(frozen=True)
class SafetyAnswer:
    field: str
    label: str
    value: str
    # Anything but "no"/"none"/false: what the clinician's eye must land on.
    notable: bool


_SAFETY_LABELS = {
    "saddle_numbness": "Numbness between the legs (saddle)",
    "bladder_change": "Bladder change",
    "bowel_change": "Bowel change",
    "sexual_function_change": "Sexual function change",
    "both_legs": "Symptoms in both legs",
    "weakness": "Weakness",
    "numbness_spread": "Numbness spreading",
    "walking_unsteady_new": "New unsteady walking",
    "fever": "Fever",
    "temperature_c": "Temperature",
    "feel_very_unwell": "Feels very unwell",
    "injury": "Injury",
    "pain_new_or_rapidly_worse": "Pain new or rapidly worse",
    "unexplained_weight_loss": "Unexplained weight loss",
    "thoracic_or_band_pain": "Thoracic or band-like pain",
}
# RF-INF-01's threshold: a recorded temperature below it is an answer, not a finding.
FEVER_C = 38.0


def safety_answers(safety: dict[str, Any] | None) -> list[SafetyAnswer]:
    """Every answer of a log's safety check, in the contract's order, notable ones marked."""
    safety = safety or {}
    answers = []
    for field, label in _SAFETY_LABELS.items():
        raw = safety.get(field)
        if field in CHOICE_FIELDS:
            value = raw or CHOICE_FIELDS[field][0]
            notable = value not in ("no", "none")
            shown = str(value).replace("_", " ")
        elif field in BOOLEAN_FIELDS:
            notable = bool(raw)
            shown = "yes" if raw else "no"
        else:  # temperature_c
            notable = raw is not None and float(raw) >= FEVER_C
            shown = f"{raw} °C" if raw is not None else "not taken"
        answers.append(SafetyAnswer(field=field, label=label, value=shown, notable=notable))
    return answers


@dataclass(frozen=True)
class RecentLog:
    log: DailyLog
    answers: list[SafetyAnswer]

    @property
    def notable(self) -> list[SafetyAnswer]:
        return [a for a in self.answers if a.notable]


def recent_logs(*, user: User, patient: Patient, limit: int = 14) -> list[RecentLog]:
    logs = DailyLog.objects.visible_to(user).filter(patient=patient).order_by("-date")[:limit]
    return [RecentLog(log=log, answers=safety_answers(log.safety)) for log in logs]


def chart_window(*, today: date, days: int | None, first_log: date | None) -> tuple[date, date]:
    """The chart's dates: the last `days` days to today (all logs for None), starting no
    earlier than the first log, so that a new patient's few weeks fill the chart."""
    start = today - timedelta(days=(days or 30) - 1)
    if first_log is not None and (days is None or first_log > start):
        start = first_log
    # At least a week wide: a date axis of one day has nothing to scale.
    return min(start, today - timedelta(days=6)), today


# --------------------------------------------------------------------------- caseload: programs


@dataclass(frozen=True)
class ProgramColumns:
    """A caseload row's program cells."""

    # The 7 complete days before the patient's today; `adherence` is None when nothing
    # was prescribed in them (no program, or one that had not started).
    week: rules.WeekAdherence | None
    phase: program_selectors.CurrentPhase | None


def caseload_program_columns(patients: Sequence[Patient]) -> dict[UUID, ProgramColumns]:
    """Exercise adherence and current phase for one page of `dashboard_caseload`.

    The page's patients are already scoped; their `local_date` annotation is their today,
    so this costs the API caseload's fixed queries for the same figures
    (`caseload_program_figures`: one fetch of the programs for both columns) whatever the
    page size.
    """
    ids = [p.pk for p in patients]
    today_by_patient: dict[UUID, date] = {}
    for p in patients:
        local_date = getattr(p, "local_date", None)
        if local_date is not None:
            today_by_patient[p.pk] = local_date
    figures = program_selectors.caseload_program_figures(ids, today_by_patient=today_by_patient)
    return {
        pid: ProgramColumns(week=figures.week_7d.get(pid), phase=figures.phases.get(pid))
        for pid in ids
    }


# --------------------------------------------------------------------------- patient: program


@dataclass(frozen=True)
class PhaseSpan:
    """A phase as it actually ran: from its start to the day before the next phase started
    (a clinician's accepted progression), the program's end, or today."""

    assignment: ProgramAssignment
    phase: AssignedPhase
    start: date
    end: date  # inclusive
    current: bool


@dataclass(frozen=True)
class TodayExercise:
    exercise: AssignedExercise
    dosage: rules.DosageSpec
    due_today: bool


@dataclass
class PatientProgram:
    assignment: ProgramAssignment  # in force today, else the active one, else the latest
    in_force: bool  # does it cover today?
    phase: AssignedPhase | None
    phase_count: int
    week: int | None
    planned_end: date | None
    exercises: list[TodayExercise]
    weeks: list[rules.WeekAdherence]  # most recent first
    spans: list[PhaseSpan]  # every program's phases, oldest first
    proposals: list[ProgressionProposal]

    @property
    def last_7_days(self) -> rules.WeekAdherence | None:
        return self.weeks[0] if self.weeks else None

    @property
    def past_planned_length(self) -> bool:
        return (
            self.week is not None
            and self.phase is not None
            and (self.week > self.phase.length_weeks)
        )


def _phase_spans(
    assignment: ProgramAssignment, plan: rules.ProgramPlan, today: date
) -> list[PhaseSpan]:
    # The order `ProgramPlan.phase_on` resolves ties in: a later start wins, then position.
    started = sorted(
        (p for p in assignment.phases.all() if p.started_on is not None),
        key=lambda p: (p.started_on, p.position),
    )
    last_day = today
    if assignment.ended_on is not None:
        last_day = min(last_day, assignment.ended_on - timedelta(days=1))
    in_force = plan.phase_on(today)
    spans = []
    for i, phase in enumerate(started):
        assert phase.started_on is not None  # filtered above
        end = last_day
        if i + 1 < len(started):
            next_start = started[i + 1].started_on
            assert next_start is not None
            end = min(end, next_start - timedelta(days=1))
        if end < phase.started_on:
            continue  # superseded on its first day, or not begun yet
        spans.append(
            PhaseSpan(
                assignment=assignment,
                phase=phase,
                start=phase.started_on,
                end=end,
                current=in_force is not None and in_force.id == phase.pk,
            )
        )
    return spans


def patient_program(
    *, user: User, patient: Patient, today: date, weeks: int = 4
) -> PatientProgram | None:
    """The patient's program for the patient page, or None if they never had one.

    Six queries whatever the program's size: the assignments with their phases, exercises
    and dosage versions (four), the exercise logs of the last `weeks` weeks, the pending
    proposals. Adherence uses the same rule as the caseload (`programs.rules`).
    """
    assignments = list(
        ProgramAssignment.objects.visible_to(user)
        .filter(patient=patient)
        .order_by("start_date", "created_at")
        .prefetch_related(
            Prefetch("phases", queryset=AssignedPhase.objects.order_by("position")),
            Prefetch("phases__exercises", queryset=AssignedExercise.objects.order_by("position")),
            Prefetch(
                "phases__exercises__dosage_versions",
                queryset=DosageVersion.objects.order_by("effective_from"),
            ),
        )
    )
    if not assignments:
        return None
    plans = {a.pk: program_selectors.plan_of(a) for a in assignments}
    shown = next((a for a in reversed(assignments) if plans[a.pk].covers(today)), None) or next(
        (a for a in reversed(assignments) if a.ended_on is None), assignments[-1]
    )
    plan = plans[shown.pk]
    in_force = plan.phase_on(today)
    phases = {p.pk: p for p in shown.phases.all()}
    exercises = {e.pk: e for p in phases.values() for e in p.exercises.all()}
    due = {item.exercise.id for item in plan.due_on(today)}

    sessions = (
        ExerciseLog.objects.visible_to(user)
        .filter(patient=patient, date__range=(today - timedelta(days=rules.WEEK * weeks), today))
        .values_list("assigned_exercise_id", "date")
        .distinct()
    )
    return PatientProgram(
        assignment=shown,
        in_force=plan.covers(today),
        phase=phases[in_force.id] if in_force else None,
        phase_count=len(phases),
        week=(
            rules.week_number(anchor=in_force.started_on, day=today)
            if in_force and in_force.started_on
            else None
        ),
        planned_end=in_force.planned_end() if in_force else None,
        exercises=[
            TodayExercise(
                exercise=exercises[item.exercise.id],
                dosage=item.dosage,
                due_today=item.exercise.id in due,
            )
            for item in plan.exercises_on(today)
        ],
        weeks=rules.weekly_adherence(
            plans=list(plans.values()), sessions=list(sessions), today=today, weeks=weeks
        ),
        spans=[span for a in assignments for span in _phase_spans(a, plans[a.pk], today)],
        proposals=list(
            program_selectors.proposal_list(user=user, patient_id=patient.pk).filter(
                status=ProgressionProposal.Status.PENDING
            )
        ),
    )


# --------------------------------------------------------------------------- patient: record


@dataclass(frozen=True)
class InterventionRow:
    intervention: Intervention
    course_size: int  # sessions of its course recorded so far

    @property
    def in_course(self) -> bool:
        return self.course_size > 1 or self.intervention.session_number > 1


def patient_interventions(*, user: User, patient: Patient) -> list[InterventionRow]:
    """Every intervention, newest first, with the size of its course; one query."""
    interventions = list(
        record_selectors.intervention_list(user=user, patient=patient).order_by(
            "-date", "-created_at"
        )
    )
    sizes = Counter(i.course_id for i in interventions)
    return [InterventionRow(intervention=i, course_size=sizes[i.course_id]) for i in interventions]


@dataclass(frozen=True)
class Examination:
    """Tests recorded together at one time."""

    performed_at: datetime
    date: date  # the patient's local date
    tests: list[ProvocativeTest]

    @property
    def positive(self) -> int:
        return sum(t.result == ProvocativeTest.Result.POSITIVE for t in self.tests)


@dataclass
class TestHistory:
    """One test on one side: its result at each examination (None: not examined)."""

    test: str
    label: str
    side: str
    results: list[ProvocativeTest | None] = dataclass_field(default_factory=list)

    @property
    def recorded(self) -> list[ProvocativeTest]:
        return [r for r in self.results if r is not None]

    @property
    def turned_negative(self) -> bool:
        """Positive once, negative at the latest examination: what §6's case report shows."""
        recorded = self.recorded
        return (
            len(recorded) > 1
            and recorded[-1].result == ProvocativeTest.Result.NEGATIVE
            and any(r.result == ProvocativeTest.Result.POSITIVE for r in recorded[:-1])
        )


@dataclass(frozen=True)
class ProvocativeTimeline:
    examinations: list[Examination]  # oldest first
    histories: list[TestHistory]  # in the vocabulary's order, left before right


def patient_provocative_tests(*, user: User, patient: Patient) -> ProvocativeTimeline:
    """Each test and side over time, one column per examination; one query."""
    by_time: dict[datetime, list[ProvocativeTest]] = defaultdict(list)
    for test in record_selectors.provocative_test_list(user=user, patient=patient).order_by(
        "performed_at", "test", "side"
    ):
        by_time[test.performed_at].append(test)
    examinations = [
        Examination(performed_at=at, date=at.astimezone(patient.tz).date(), tests=tests)
        for at, tests in sorted(by_time.items())
    ]
    labels = dict(ProvocativeTest.Test.choices)
    order = {code: i for i, code in enumerate(ProvocativeTest.Test.values)}
    sides = {code: i for i, code in enumerate(ProvocativeTest.Side.values)}
    keys = sorted(
        {(t.test, t.side) for exam in examinations for t in exam.tests},
        key=lambda key: (order.get(key[0], len(order)), sides.get(key[1], len(sides))),
    )
    histories = []
    for code, side in keys:
        history = TestHistory(test=code, label=labels.get(code, code), side=side)
        for exam in examinations:
            found = [t for t in exam.tests if t.test == code and t.side == side]
            history.results.append(found[0] if found else None)
        histories.append(history)
    return ProvocativeTimeline(examinations=examinations, histories=histories)


def patient_questionnaire_scores(
    *, user: User, patient: Patient
) -> list[record_selectors.InstrumentScores]:
    """The instruments answered at least once, with their scores against §5; one query.

    `record.questionnaire_scores` trusts its caller to have scoped the patient; here the
    responses themselves are read through `visible_to`, as every section's reads are, and
    judged by the record's own rule (`_score_points`), so that the page and the API agree.
    """
    grouped: dict[str, list[QuestionnaireResponse]] = defaultdict(list)
    for response in (
        QuestionnaireResponse.objects.visible_to(user)
        .filter(patient=patient)
        .order_by("submitted_at", "pk")
    ):
        grouped[response.instrument].append(response)
    return [
        record_selectors.InstrumentScores(
            instrument=scoring.INSTRUMENTS[code],
            baseline=grouped[code][0],
            series=record_selectors._score_points(grouped[code]),
        )
        for code in Instrument.values
        if grouped.get(code)
    ]


def threshold_summary(instrument: scoring.Instrument) -> str:
    """§5's meaningful-change rule for `instrument`, in words, from `rehab.scoring`."""
    t = instrument.thresholds
    parts = []
    if t.points is not None:
        parts.append(f"{_n(t.points)} points")
    if t.percent is not None:
        parts.append(f"{_n(t.percent)} % of the baseline")
    if t.single_item_points is not None:
        parts.append(f"{_n(t.single_item_points)} points on one activity")
    text = (
        "Meaningful change: " + " or ".join(parts)
        if parts
        else "No meaningful-change threshold is defined for this questionnaire"
    )
    if t.recovered_at_or_below is not None:
        text += f"; recovered at or below {_n(t.recovered_at_or_below)}"
    if t.success_at_or_below is not None:
        text += f"; success at or below {_n(t.success_at_or_below)}"
    better = "higher" if t.higher_is_better else "lower"
    scale = f"{_n(instrument.score_min)} to {_n(instrument.score_max)}"
    return f"{text}. Scores {scale}, {better} is better."


def _n(value: Decimal) -> str:
    return f"{value.normalize():f}"


def patient_diagnoses(*, user: User, patient: Patient) -> list[Diagnosis]:
    """Current working diagnoses first, then past ones, most recent first; one query."""
    diagnoses = list(
        record_selectors.diagnosis_list(user=user, patient=patient).order_by(
            "-date_from", "-created_at"
        )
    )
    return sorted(diagnoses, key=lambda d: d.date_to is not None)


def patient_imaging(*, user: User, patient: Patient) -> list[ImagingFinding]:
    return list(
        record_selectors.imaging_finding_list(user=user, patient=patient).order_by(
            "-date", "-created_at"
        )
    )
