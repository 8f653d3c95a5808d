"""Reads for views, tasks and other apps. The caseload functions are set-based: they answer
for any number of patients in a constant number of queries (the rehab dashboards call
them with a whole caseload).

One module, though over 500 lines: the reads of one model family (templates, assignments,
sessions, adherence), whose set-based caseload functions share the same window and
dosage-in-force helpers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, TypedDict
from uuid import UUID

from django.db import connections, router
from django.db.models import Count, Prefetch, Q, QuerySet, Sum
from django.shortcuts import get_object_or_404

from config.db import column, table
from patients.models import Patient, User
from programs import rules
from programs.models import (
    AssignedExercise,
    AssignedPhase,
    DosageVersion,
    Exercise,
    ExerciseLog,
    ProgramAssignment,
    ProgramTemplate,
    ProgressionProposal,
    TemplatePhase,
)

# --------------------------------------------------------------------------- library


def exercise_list(
    *, user: User, category: str | None = None, body_region: str | None = None
) -> QuerySet[Exercise]:
    qs = Exercise.objects.visible_to(user)
    if category:
        qs = qs.filter(category=category)
    if body_region:
        qs = qs.filter(body_region=body_region)
    return qs.order_by("name", "id")


def template_list(*, user: User) -> QuerySet[ProgramTemplate]:
    templates: QuerySet[ProgramTemplate] = (
        ProgramTemplate.objects.visible_to(user)
        .annotate(phase_count=Count("phases"), total_weeks=Sum("phases__length_weeks"))
        .order_by("name", "id")
    )
    return templates


def template_get(*, user: User, template_id: UUID | str) -> ProgramTemplate:
    qs = ProgramTemplate.objects.visible_to(user).prefetch_related(
        Prefetch(
            "phases",
            queryset=TemplatePhase.objects.order_by("position").prefetch_related(
                "exercises__exercise", "education_cards"
            ),
        )
    )
    template: ProgramTemplate = get_object_or_404(qs, pk=template_id)
    return template


# --------------------------------------------------------------------------- plans


def _with_program(qs: QuerySet[ProgramAssignment]) -> QuerySet[ProgramAssignment]:
    """Phases, exercises and dosage versions in three more queries, whatever the count."""
    return qs.prefetch_related(
        Prefetch("phases", queryset=AssignedPhase.objects.order_by("position")),
        Prefetch("phases__exercises", queryset=AssignedExercise.objects.order_by("position")),
        Prefetch(
            "phases__exercises__dosage_versions",
            queryset=DosageVersion.objects.order_by("effective_from"),
        ),
    )


def plan_of(assignment: ProgramAssignment) -> rules.ProgramPlan:
    """The pure shape of a prefetched assignment, for `programs.rules`."""
    return rules.ProgramPlan(
        id=assignment.pk,
        patient_id=assignment.patient_id,
        start_date=assignment.start_date,
        ended_on=assignment.ended_on,
        pain_ceiling=assignment.pain_ceiling,
        phases=tuple(
            rules.PhasePlan(
                id=phase.pk,
                position=phase.position,
                name=phase.name,
                length_weeks=phase.length_weeks,
                started_on=phase.started_on,
                exercises=tuple(
                    rules.ExercisePlan(
                        id=exercise.pk,
                        name=exercise.name,
                        versions=tuple(_spec(v) for v in exercise.dosage_versions.all()),
                    )
                    for exercise in phase.exercises.all()
                ),
            )
            for phase in assignment.phases.all()
        ),
    )


def assignments_between(
    patient_ids: Iterable[UUID], *, start: date, end: date
) -> dict[UUID, list[ProgramAssignment]]:
    """Each patient's assignments covering any day of `start`..`end`, prefetched (4 queries)."""
    qs = _with_program(
        ProgramAssignment.objects.filter(patient_id__in=list(patient_ids), start_date__lte=end)
        .filter(Q(ended_on__isnull=True) | Q(ended_on__gt=start))
        .order_by("start_date")
    )
    result: dict[UUID, list[ProgramAssignment]] = defaultdict(list)
    for assignment in qs:
        result[assignment.patient_id].append(assignment)
    return result


def plans_between(
    patient_ids: Iterable[UUID], *, start: date, end: date, in_force_only: bool = False
) -> dict[UUID, list[rules.ProgramPlan]]:
    """`plan_of` of each of `assignments_between`, in the same order, built from rows
    rather than model instances, in one query: the assignments with their phases,
    exercises and dosage versions in one joined statement.

    For the set-based readers that only need the rules' shapes (the caseload's program
    columns, weekly adherence, the current phase): a caseload page's ~1,500 prefetched
    instances cost ~40 ms of Python and, through the garbage collector, a slow tail, and
    building four ORM queries cost more than running them.

    `in_force_only`: only the phases, and the dosage versions, in force on some day of
    `start`..`end` (`ProgramPlan.phase_on`, `ExercisePlan.dosage_on`). On every day of the
    window each plan then answers `covers`, `phase_on`, `exercises_on` and `due_on` exactly
    as the whole plan does, from a fraction of the rows: a program's past and future
    phases and its superseded dosages are most of it.
    """
    assignments: dict[UUID, tuple[UUID, date, date | None, int]] = {}
    phases: dict[UUID, tuple[UUID, int, str, int, date | None]] = {}
    exercises: dict[UUID, tuple[UUID, str]] = {}
    versions: dict[UUID, list[rules.DosageSpec]] = defaultdict(list)
    for row in _plan_rows(list(patient_ids), start=start, end=end, in_force_only=in_force_only):
        assignment_id, patient_id, start_date, ended_on, pain_ceiling = row[:5]
        phase_id, position, name, length_weeks, started_on = row[5:10]
        exercise_id, exercise_name, version_id, effective_from, *dosage = row[10:]
        assignments.setdefault(assignment_id, (patient_id, start_date, ended_on, pain_ceiling))
        if phase_id is not None:
            phases.setdefault(phase_id, (assignment_id, position, name, length_weeks, started_on))
        if exercise_id is not None:
            exercises.setdefault(exercise_id, (phase_id, exercise_name))
        if version_id is not None:
            versions[exercise_id].append(
                rules.DosageSpec(
                    id=version_id,
                    effective_from=effective_from,
                    **dict(zip(DosageVersion.DOSAGE_FIELDS, dosage, strict=True)),
                )
            )
    # The rows come ordered by the assignment's start (then id), phase position, exercise
    # position and effective date, and dicts keep the order of first appearance: each
    # level is in the order plan_of has.
    by_phase: dict[UUID, list[rules.ExercisePlan]] = defaultdict(list)
    for exercise_id, (phase_id, name) in exercises.items():
        by_phase[phase_id].append(
            rules.ExercisePlan(id=exercise_id, name=name, versions=tuple(versions[exercise_id]))
        )
    by_assignment: dict[UUID, list[rules.PhasePlan]] = defaultdict(list)
    for phase_id, (assignment_id, position, name, length_weeks, started_on) in phases.items():
        by_assignment[assignment_id].append(
            rules.PhasePlan(
                id=phase_id,
                position=position,
                name=name,
                length_weeks=length_weeks,
                started_on=started_on,
                exercises=tuple(by_phase[phase_id]),
            )
        )
    result: dict[UUID, list[rules.ProgramPlan]] = defaultdict(list)
    for assignment_id, (patient_id, start_date, ended_on, pain_ceiling) in assignments.items():
        result[patient_id].append(
            rules.ProgramPlan(
                id=assignment_id,
                patient_id=patient_id,
                start_date=start_date,
                ended_on=ended_on,
                pain_ceiling=pain_ceiling,
                phases=tuple(by_assignment[assignment_id]),
            )
        )
    return result


def _plan_rows(
    patient_ids: list[UUID], *, start: date, end: date, in_force_only: bool
) -> list[tuple[Any, ...]]:
    """`assignments_between`'s assignments (id, patient id, start date, ended on, pain
    ceiling), in its order (by start date; then by id, which it leaves to chance), each
    with its phases (NULLs for none), each with its exercises (NULLs for none), each with
    its dosage versions (NULLs for none), ordered by phase position, exercise position and
    effective date: written in SQL, as building the ORM queries cost more than running
    them.

    In force on some day of `start`..`end` (with `in_force_only`): a phase that started
    by `end` and that no phase of its program outranks in `phase_on`'s order (a later
    start, or the same start and a later position) by `start`, or from its own first day;
    a dosage version effective by `end` with no later version of its exercise effective
    by `start` (one version per exercise and date: a constraint).
    """
    pa, ph, ex, ver = ProgramAssignment, AssignedPhase, AssignedExercise, DosageVersion
    dosage = ", ".join(f"v.{column(ver, name)}" for name in DosageVersion.DOSAGE_FIELDS)
    phase_in_force = version_in_force = ""
    if in_force_only:
        phase_in_force = f"""
            WHERE p.{column(ph, "started_on")} <= %(end)s
            AND NOT EXISTS (
                SELECT 1 FROM {table(ph)} AS o
                WHERE o.{column(ph, "assignment")} = p.{column(ph, "assignment")}
                  AND ((o.{column(ph, "started_on")} > p.{column(ph, "started_on")}
                        AND o.{column(ph, "started_on")} <= %(start)s)
                    OR (o.{column(ph, "started_on")} = p.{column(ph, "started_on")}
                        AND o.{column(ph, "position")} > p.{column(ph, "position")}))
            )"""  # noqa: S608 - identifiers from the models
        version_in_force = f"""
            AND v.{column(ver, "effective_from")} <= %(end)s
            AND NOT EXISTS (
                SELECT 1 FROM {table(ver)} AS w
                WHERE w.{column(ver, "assigned_exercise")} = v.{column(ver, "assigned_exercise")}
                  AND w.{column(ver, "effective_from")} > v.{column(ver, "effective_from")}
                  AND w.{column(ver, "effective_from")} <= %(start)s
            )"""  # noqa: S608 - identifiers from the models
    sql = f"""
        SELECT a.{column(pa, "id")}, a.{column(pa, "patient")}, a.{column(pa, "start_date")},
               a.{column(pa, "ended_on")}, a.{column(pa, "pain_ceiling")},
               p.{column(ph, "id")}, p.{column(ph, "position")}, p.{column(ph, "name")},
               p.{column(ph, "length_weeks")}, p.{column(ph, "started_on")},
               e.{column(ex, "id")}, e.{column(ex, "name")},
               v.{column(ver, "id")}, v.{column(ver, "effective_from")}, {dosage}
        FROM {table(pa)} AS a
        LEFT JOIN (SELECT * FROM {table(ph)} AS p {phase_in_force}) AS p
            ON p.{column(ph, "assignment")} = a.{column(pa, "id")}
        LEFT JOIN {table(ex)} AS e ON e.{column(ex, "phase")} = p.{column(ph, "id")}
        LEFT JOIN {table(ver)} AS v
            ON v.{column(ver, "assigned_exercise")} = e.{column(ex, "id")} {version_in_force}
        WHERE a.{column(pa, "patient")} = ANY(%(patients)s)
          AND a.{column(pa, "start_date")} <= %(end)s
          AND (a.{column(pa, "ended_on")} IS NULL OR a.{column(pa, "ended_on")} > %(start)s)
        ORDER BY a.{column(pa, "start_date")}, a.{column(pa, "id")},
                 p.{column(ph, "position")}, p.{column(ph, "id")},
                 e.{column(ex, "position")}, e.{column(ex, "id")}, v.{column(ver, "effective_from")}
    """  # noqa: S608 - identifiers from the models, values as parameters
    with connections[router.db_for_read(ProgramAssignment)].cursor() as cursor:
        cursor.execute(sql, {"patients": patient_ids, "start": start, "end": end})
        rows: list[tuple[Any, ...]] = cursor.fetchall()
    return rows


def assignment_on(*, patient: Patient, day: date) -> ProgramAssignment | None:
    """The patient's assignment covering `day`, prefetched."""
    return assignments_between([patient.pk], start=day, end=day).get(patient.pk, [None])[-1]


def todays(
    patient_ids: Sequence[UUID],
    *,
    on: date | None = None,
    today_by_patient: Mapping[UUID, date] | None = None,
) -> dict[UUID, date]:
    """The day to answer for, per patient: `on`, else the mapping, else their local today
    (one query for the time zones)."""
    if on is not None:
        return dict.fromkeys(patient_ids, on)
    known = dict(today_by_patient or {})
    missing = [pid for pid in patient_ids if pid not in known]
    if missing:
        for patient in Patient.objects.filter(pk__in=missing).only("id", "timezone"):
            known[patient.pk] = patient.local_today()
    return {pid: known[pid] for pid in patient_ids if pid in known}


@dataclass
class PlanItem:
    exercise: AssignedExercise
    dosage: rules.DosageSpec
    due: bool
    done: bool
    log_ids: list[UUID] = field(default_factory=list)


@dataclass
class DayPlan:
    day: date
    assignment: ProgramAssignment | None = None
    phase: AssignedPhase | None = None
    week: int | None = None
    planned_end: date | None = None
    items: list[PlanItem] = field(default_factory=list)


def day_plan(*, patient: Patient, day: date) -> DayPlan:
    """The phase in force on `day` and the exercises due (or done) that day."""
    plan = DayPlan(day=day)
    assignment = assignment_on(patient=patient, day=day)
    if assignment is None:
        return plan
    program = plan_of(assignment)
    phase_plan = program.phase_on(day)
    plan.assignment = assignment
    if phase_plan is None or phase_plan.started_on is None:
        return plan
    phases = {phase.pk: phase for phase in assignment.phases.all()}
    phase = phases[phase_plan.id]
    exercises = {exercise.pk: exercise for exercise in phase.exercises.all()}
    plan.phase = phase
    plan.week = rules.week_number(anchor=phase_plan.started_on, day=day)
    plan.planned_end = phase_plan.planned_end()

    logs: dict[UUID, list[UUID]] = defaultdict(list)
    for log_id, exercise_id in (
        ExerciseLog.objects.filter(patient=patient, date=day, assigned_exercise__in=exercises)
        .order_by("created_at")
        .values_list("id", "assigned_exercise_id")
    ):
        logs[exercise_id].append(log_id)
    due = {item.exercise.id for item in program.due_on(day)}
    for item in program.exercises_on(day):
        if item.exercise.id in due or item.exercise.id in logs:
            plan.items.append(
                PlanItem(
                    exercise=exercises[item.exercise.id],
                    dosage=item.dosage,
                    due=item.exercise.id in due,
                    done=item.exercise.id in logs,
                    log_ids=logs.get(item.exercise.id, []),
                )
            )
    return plan


# --------------------------------------------------------------------------- clinician view


@dataclass
class ExerciseView:
    exercise: AssignedExercise
    dosage: rules.DosageSpec | None
    dosage_history: list[DosageVersion]


@dataclass
class PhaseView:
    phase: AssignedPhase
    planned_end: date | None
    exercises: list[ExerciseView]


@dataclass
class ProgramView:
    assignment: ProgramAssignment
    date: date
    current_phase: CurrentPhase | None
    adherence_7d: float | None
    phases: list[PhaseView]


def assignment_list(*, user: User) -> QuerySet[ProgramAssignment]:
    qs: QuerySet[ProgramAssignment] = ProgramAssignment.objects.visible_to(user)
    return qs


def assignment_get(*, user: User, assignment_id: UUID | str) -> ProgramAssignment:
    assignment: ProgramAssignment = get_object_or_404(
        assignment_list(user=user).select_related("patient"), pk=assignment_id
    )
    return assignment


def assigned_exercise_get(*, user: User, assigned_exercise_id: UUID | str) -> AssignedExercise:
    qs = AssignedExercise.objects.visible_to(user).select_related(
        "phase__assignment__patient", "exercise"
    )
    exercise: AssignedExercise = get_object_or_404(qs, pk=assigned_exercise_id)
    return exercise


def program_view(*, assignment: ProgramAssignment, on: date) -> ProgramView:
    """An assignment with every phase and exercise, the dosage in force on `on` and the
    dosage history, the current phase and adherence. Constant queries."""
    assignment = _with_program(
        ProgramAssignment.objects.filter(pk=assignment.pk).select_related("patient")
    ).get()
    program = plan_of(assignment)
    phases = []
    for phase, phase_plan in zip(assignment.phases.all(), program.phases, strict=True):
        exercises = [
            ExerciseView(
                exercise=exercise,
                dosage=exercise_plan.dosage_on(max(on, assignment.start_date)),
                dosage_history=list(exercise.dosage_versions.all()),
            )
            for exercise, exercise_plan in zip(
                phase.exercises.all(), phase_plan.exercises, strict=True
            )
        ]
        phases.append(
            PhaseView(phase=phase, planned_end=phase_plan.planned_end(), exercises=exercises)
        )
    return ProgramView(
        assignment=assignment,
        date=on,
        current_phase=_current_phase(program, on),
        adherence_7d=adherence_7d_for_patients([assignment.patient_id], on=on).get(
            assignment.patient_id
        ),
        phases=phases,
    )


def program_for_patient(*, patient: Patient, on: date) -> ProgramView | None:
    """The patient's active program, else their latest; None if they never had one."""
    assignments = list(
        ProgramAssignment.objects.filter(patient=patient).order_by("-start_date", "-created_at")
    )
    if not assignments:
        return None
    assignment = next((a for a in assignments if a.ended_on is None), assignments[0])
    return program_view(assignment=assignment, on=on)


def assigned_exercise_view(
    *, user: User, assigned_exercise_id: UUID | str, on: date
) -> ExerciseView:
    qs = AssignedExercise.objects.visible_to(user).prefetch_related(
        Prefetch("dosage_versions", queryset=DosageVersion.objects.order_by("effective_from"))
    )
    exercise: AssignedExercise = get_object_or_404(qs, pk=assigned_exercise_id)
    history = list(exercise.dosage_versions.all())
    current = [v for v in history if v.effective_from <= on]
    return ExerciseView(
        exercise=exercise,
        dosage=_spec(current[-1]) if current else None,
        dosage_history=history,
    )


def _spec(version: DosageVersion) -> rules.DosageSpec:
    return rules.DosageSpec(
        id=version.pk,
        effective_from=version.effective_from,
        **version.dosage_dict(),  # type: ignore[arg-type]  # the fields' own types
    )


# --------------------------------------------------------------------------- caseload


class CurrentPhase(TypedDict):
    assignment_id: UUID
    phase_id: UUID
    phase_index: int
    phase_name: str
    week: int
    length_weeks: int
    started_on: date


def _current_phase(program: rules.ProgramPlan, on: date) -> CurrentPhase | None:
    phase = program.phase_on(on)
    if phase is None or phase.started_on is None:
        return None
    return CurrentPhase(
        assignment_id=program.id,
        phase_id=phase.id,
        phase_index=phase.position,
        phase_name=phase.name,
        week=rules.week_number(anchor=phase.started_on, day=on),
        length_weeks=phase.length_weeks,
        started_on=phase.started_on,
    )


def current_phase_for_patients(
    patient_ids: Sequence[UUID],
    *,
    on: date | None = None,
    today_by_patient: Mapping[UUID, date] | None = None,
) -> dict[UUID, CurrentPhase | None]:
    """Per patient, the phase in force on their day (`on`, else the mapping, else their
    local today): assignment id, phase index (1-based), name, and week within the phase.
    None when not on a program. Constant queries; callers pass ids they already scoped."""
    days = todays(patient_ids, on=on, today_by_patient=today_by_patient)
    if not days:
        return dict.fromkeys(patient_ids)
    plans = plans_between(
        days, start=min(days.values()), end=max(days.values()), in_force_only=True
    )
    return _current_phases(patient_ids, days, plans)


def _current_phases(
    patient_ids: Sequence[UUID],
    days: Mapping[UUID, date],
    plans: Mapping[UUID, list[rules.ProgramPlan]],
) -> dict[UUID, CurrentPhase | None]:
    result: dict[UUID, CurrentPhase | None] = dict.fromkeys(patient_ids)
    for pid, day in days.items():
        for program in plans.get(pid, []):
            if program.covers(day):
                result[pid] = _current_phase(program, day)
    return result


def adherence_weeks_for_patients(
    patient_ids: Sequence[UUID],
    *,
    weeks: int,
    on: date | None = None,
    today_by_patient: Mapping[UUID, date] | None = None,
) -> dict[UUID, list[rules.WeekAdherence]]:
    """Per patient, the last `weeks` complete 7-day windows before their day, most recent
    first (see `programs.rules` for the definition). Six queries at most, any count."""
    days = todays(patient_ids, on=on, today_by_patient=today_by_patient)
    if not days:
        return {}
    start, end = _adherence_window(days, weeks)
    plans = plans_between(days, start=start, end=end, in_force_only=True)
    return _weekly_adherence(days, plans, weeks)


def _adherence_window(days: Mapping[UUID, date], weeks: int) -> tuple[date, date]:
    start = min(days.values()) - timedelta(days=rules.WEEK * weeks)
    return start, max(days.values()) - timedelta(days=1)


def _weekly_adherence(
    days: Mapping[UUID, date],
    plans: Mapping[UUID, list[rules.ProgramPlan]],
    weeks: int,
) -> dict[UUID, list[rules.WeekAdherence]]:
    done = _sessions_done_by_week(days, weeks)
    result: dict[UUID, list[rules.WeekAdherence]] = {}
    for pid, day in days.items():
        patient_plans = plans.get(pid, [])
        result[pid] = [
            rules.week_adherence(
                plans=patient_plans, done=done.get((pid, k), {}), start=start, end=end
            )
            for k, (start, end) in enumerate(rules.week_windows(day, weeks))
        ]
    return result


def _sessions_done_by_week(
    days: Mapping[UUID, date], weeks: int
) -> dict[tuple[UUID, int], dict[UUID, int]]:
    """`rules.sessions_done` of each patient's weeks (`rules.week_windows` of their day),
    counted by the database: per (patient, week k, 0 the most recent), the days with at
    least one log per exercise. One statement, one row per patient, week and exercise
    logged, rather than one per session (a caseload page's week is ~700 sessions)."""
    log = ExerciseLog
    sql = f"""
        SELECT l.{column(log, "patient")}, (w.today - 1 - l.{column(log, "date")}) / {rules.WEEK},
               l.{column(log, "assigned_exercise")}, COUNT(DISTINCT l.{column(log, "date")})
        FROM unnest(%(patients)s::uuid[], %(days)s::date[]) AS w(patient_id, today)
        JOIN {table(log)} AS l
            ON l.{column(log, "patient")} = w.patient_id
           AND l.{column(log, "date")} >= w.today - %(span)s
           AND l.{column(log, "date")} < w.today
        GROUP BY 1, 2, 3
    """  # noqa: S608 - identifiers from the models, values as parameters
    params: dict[str, Any] = {
        "patients": list(days),
        "days": list(days.values()),
        "span": rules.WEEK * weeks,
    }
    done: dict[tuple[UUID, int], dict[UUID, int]] = defaultdict(dict)
    with connections[router.db_for_read(ExerciseLog)].cursor() as cursor:
        cursor.execute(sql, params)
        for pid, week, exercise_id, count in cursor.fetchall():
            done[pid, week][exercise_id] = count
    return done


def adherence_7d_for_patients(
    patient_ids: Sequence[UUID],
    *,
    on: date | None = None,
    today_by_patient: Mapping[UUID, date] | None = None,
) -> dict[UUID, float | None]:
    """Per patient, the share (0-1) of prescribed sessions done in the 7 complete days
    before their day; None when nothing was prescribed. For the caseload rows."""
    by_week = adherence_weeks_for_patients(
        patient_ids, weeks=1, on=on, today_by_patient=today_by_patient
    )
    return {pid: (by_week[pid][0].adherence if pid in by_week else None) for pid in patient_ids}


@dataclass(frozen=True)
class CaseloadProgramFigures:
    adherence_7d: dict[UUID, float | None]
    phases: dict[UUID, CurrentPhase | None]
    # The week behind `adherence_7d` (sessions done and prescribed), for the caseload page.
    week_7d: dict[UUID, rules.WeekAdherence | None]


def caseload_program_figures(
    patient_ids: Sequence[UUID], *, today_by_patient: Mapping[UUID, date] | None = None
) -> CaseloadProgramFigures:
    """`adherence_7d_for_patients` (and its week, as `adherence_weeks_for_patients` with
    one week gives it) and `current_phase_for_patients` for one caseload page, sharing one
    fetch of the programs (2 queries: the programs, the sessions done; the page is the hot
    path).

    The fetch covers both windows (the 7 complete days before each patient's day, and the
    day itself); an assignment outside one window prescribes nothing there and covers no
    day there, so each figure is the same as from its own fetch.
    """
    days = todays(patient_ids, today_by_patient=today_by_patient)
    if not days:
        nothing = dict.fromkeys(patient_ids)
        return CaseloadProgramFigures(nothing, dict(nothing), dict(nothing))
    start, _ = _adherence_window(days, 1)
    plans = plans_between(days, start=start, end=max(days.values()), in_force_only=True)
    by_week = _weekly_adherence(days, plans, 1)
    weeks = {pid: (by_week[pid][0] if pid in by_week else None) for pid in patient_ids}
    return CaseloadProgramFigures(
        adherence_7d={pid: (week.adherence if week else None) for pid, week in weeks.items()},
        phases=_current_phases(patient_ids, days, plans),
        week_7d=weeks,
    )


# --------------------------------------------------------------------------- logs


def exercise_log_list(
    *, user: User, patient: Patient, date_from: date | None = None, date_to: date | None = None
) -> QuerySet[ExerciseLog]:
    qs = (
        ExerciseLog.objects.visible_to(user)
        .filter(patient=patient)
        .select_related("assigned_exercise")
    )
    if date_from is not None:
        qs = qs.filter(date__gte=date_from)
    if date_to is not None:
        qs = qs.filter(date__lte=date_to)
    result: QuerySet[ExerciseLog] = qs.order_by("-date", "-created_at", "id")
    return result


def exercise_log_get(*, user: User, log_id: UUID | str) -> ExerciseLog:
    qs = ExerciseLog.objects.visible_to(user).select_related("assigned_exercise")
    log: ExerciseLog = get_object_or_404(qs, pk=log_id)
    return log


def session_logs_between(
    patient_ids: Iterable[UUID], *, start: date, end: date
) -> dict[UUID, list[rules.SessionLog]]:
    result: dict[UUID, list[rules.SessionLog]] = defaultdict(list)
    for pid, exercise_id, day, pain, stopped in ExerciseLog.objects.filter(
        patient_id__in=list(patient_ids), date__range=(start, end)
    ).values_list("patient_id", "assigned_exercise_id", "date", "pain_during", "stopped_for_pain"):
        result[pid].append(rules.SessionLog(exercise_id, day, pain, stopped))
    return result


# --------------------------------------------------------------------------- proposals


def _proposals() -> Any:
    return ProgressionProposal.objects.select_related(
        "assignment__patient", "from_phase", "to_phase", "decided_by__user"
    )


def proposal_list(
    *, user: User, patient_id: UUID | None = None, status: str | None = "pending"
) -> QuerySet[ProgressionProposal]:
    qs = _proposals().visible_to(user)
    if patient_id is None:
        # The clinic's inbox leaves restricted patients out (docs/data-rights.md).
        qs = qs.of_active_patients()
    if status:
        qs = qs.filter(status=status)
    if patient_id is not None:
        qs = qs.filter(assignment__patient_id=patient_id)
    result: QuerySet[ProgressionProposal] = qs.order_by("created_at", "id")
    return result


def proposal_get(*, user: User, proposal_id: UUID | str) -> ProgressionProposal:
    proposal: ProgressionProposal = get_object_or_404(_proposals().visible_to(user), pk=proposal_id)
    return proposal
