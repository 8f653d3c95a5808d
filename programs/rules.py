"""The program rules as pure functions: which phase and dosage are in force on a day, which
exercises are due, adherence, and when to propose the next phase. No Django here, so the
rules are tested without a database and the same code serves one patient or a caseload.

Definitions (product decisions, marked [D] as in docs/clinical-record.md):

Phase in force
    A program covers `start_date` up to (not including) `ended_on`. Phase 1 starts on the
    start date; a later phase has a start date only once a clinician accepted moving to it.
    The phase in force on a day is the started phase with the latest start on or before it.
    Nothing moves by the calendar: a phase past its planned `length_weeks` stays in force
    (and is then eligible for a progression proposal).

Due days ("sessions per week")
    Counted from the phase's start (day 0), an exercise with n sessions a week is due on
    the days whose offset modulo 7 is in `due_offsets(n)`: spread evenly through every
    7-day block, first day always due. 7 = daily; 3 = days 0, 2, 4; 1 = day 0. Because the
    pattern repeats every 7 days, any 7 consecutive days of one dosage hold exactly n due
    days, whichever day they start on.

Sessions done and adherence
    A session is one exercise on one day: any number of logs of that exercise that day
    count once (a log with `stopped_for_pain` still counts: the patient turned up). Logs on
    a day the exercise was not due count too, since patients shuffle days within a week.
    Over a window, per exercise, done = days logged, capped at the sessions prescribed in
    that window; adherence = sum(capped done) / sum(prescribed), None when nothing was
    prescribed. Weeks are 7-day windows of complete local days ending yesterday (today is
    not over yet, so it neither helps nor hurts): adherence_7d on day D covers D-7..D-1.

Progression proposal, evaluated for a day `on` (see `progression_check`)
    1. The phase in force on `on` has a next phase and has run its planned length:
       on >= started_on + 7 * length_weeks.
    2. "The last sessions were done": in the 7 days before `on` every prescribed session of
       the phase was done (capped adherence 1.0, at least one session prescribed).
    3. ... "with pain during at or under the ceiling": every log of the phase's exercises in
       those days has pain_during <= the assignment's ceiling and none stopped for pain.
    4. "Next-day pain not above the 7-day mean": take the latest day L in the window with a
       session whose next day's daily pain is known; pain(L+1) <= mean daily pain of
       L-6..L (at least 3 logged days, as for the contract's 7-day figures). Using the
       latest *known* next day keeps a patient who exercises daily from never qualifying
       just because today's pain is not logged yet.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache
from typing import Any, TypeVar
from uuid import UUID

K = TypeVar("K", bound=Hashable)

WEEK = 7
MIN_PAIN_DAYS_FOR_MEAN = 3


@cache  # seven possible answers, asked for every exercise of every day of a caseload
def due_offsets(sessions_per_week: int) -> frozenset[int]:
    """Day offsets (0-6) within each 7-day block on which an exercise is due."""
    if not 1 <= sessions_per_week <= WEEK:
        raise ValueError(f"sessions_per_week must be 1-7, not {sessions_per_week}")
    return frozenset((k * WEEK) // sessions_per_week for k in range(sessions_per_week))


def is_due(*, sessions_per_week: int, anchor: date, day: date) -> bool:
    """Is an exercise with this dosage due on `day`, counting from `anchor` (phase start)?"""
    if day < anchor:
        return False
    return (day - anchor).days % WEEK in due_offsets(sessions_per_week)


def week_number(*, anchor: date, day: date) -> int:
    """1 for the first 7 days from `anchor`, 2 for the next 7, ..."""
    return (day - anchor).days // WEEK + 1


def days(start: date, end: date) -> Iterable[date]:
    """Every day from `start` to `end`, both included."""
    for n in range((end - start).days + 1):
        yield start + timedelta(days=n)


def adherence_share(*, prescribed: Mapping[K, int], done: Mapping[K, int]) -> float | None:
    """Share of prescribed sessions done, each key's done capped at its prescribed."""
    total = sum(prescribed.values())
    if total <= 0:
        return None
    capped = sum(min(done.get(key, 0), count) for key, count in prescribed.items())
    return capped / total


# --------------------------------------------------------------------------- program shape


@dataclass(frozen=True)
class DosageSpec:
    effective_from: date
    sets: int
    sessions_per_week: int
    reps: int | None = None
    hold_seconds: int | None = None
    duration_minutes: int | None = None
    notes: str = ""
    id: Any = None


@dataclass(frozen=True)
class ExercisePlan:
    id: UUID
    name: str
    versions: tuple[DosageSpec, ...]  # sorted by effective_from

    def dosage_on(self, day: date) -> DosageSpec | None:
        """The version in force on `day`: the latest one effective on or before it."""
        current = None
        for version in self.versions:
            if version.effective_from <= day:
                current = version
            else:
                break
        return current


@dataclass(frozen=True)
class PhasePlan:
    id: UUID
    position: int
    name: str
    length_weeks: int
    started_on: date | None
    exercises: tuple[ExercisePlan, ...]

    def planned_end(self) -> date | None:
        """The last day of the planned length (the phase may run on past it)."""
        if self.started_on is None:
            return None
        return self.started_on + timedelta(days=WEEK * self.length_weeks - 1)


@dataclass(frozen=True)
class DueItem:
    phase: PhasePlan
    exercise: ExercisePlan
    dosage: DosageSpec


@dataclass(frozen=True)
class ProgramPlan:
    id: UUID
    patient_id: UUID
    start_date: date
    ended_on: date | None
    pain_ceiling: int
    phases: tuple[PhasePlan, ...]  # sorted by position

    def covers(self, day: date) -> bool:
        return self.start_date <= day and (self.ended_on is None or day < self.ended_on)

    def phase_on(self, day: date) -> PhasePlan | None:
        if not self.covers(day):
            return None
        started = [p for p in self.phases if p.started_on is not None and p.started_on <= day]
        if not started:
            return None
        return max(started, key=lambda p: (p.started_on or date.min, p.position))

    def next_phase(self, phase: PhasePlan) -> PhasePlan | None:
        later = [p for p in self.phases if p.position > phase.position]
        return min(later, key=lambda p: p.position) if later else None

    def exercises_on(self, day: date) -> list[DueItem]:
        """Every exercise of the phase in force on `day`, with its dosage that day."""
        phase = self.phase_on(day)
        if phase is None:
            return []
        items = []
        for exercise in phase.exercises:
            dosage = exercise.dosage_on(day)
            if dosage is not None:
                items.append(DueItem(phase=phase, exercise=exercise, dosage=dosage))
        return items

    def due_on(self, day: date) -> list[DueItem]:
        return [
            item
            for item in self.exercises_on(day)
            if is_due(
                sessions_per_week=item.dosage.sessions_per_week,
                anchor=item.phase.started_on or self.start_date,
                day=day,
            )
        ]

    def prescribed_between(self, start: date, end: date) -> dict[UUID, int]:
        """Sessions due per exercise over `start`..`end` (both included): `due_on` of each
        day, counted without building its items (a caseload page asks this of every
        patient's week; tests/programs/test_rules.py holds the two to each other).

        Where nothing changes inside the window (no phase starts after its first day, the
        program neither starts nor ends there), one phase is in force every day of it, from
        on or before its first day; an exercise whose dosage does not change there either
        is then due on the days of each 7-day block that its sessions per week say, so it
        is counted by arithmetic rather than day by day (due_offsets)."""
        if end < start:
            return {}
        if not self._changes_within(start, end):
            phase = self.phase_on(start)
            if phase is None:
                return {}
            return _steady_counts(phase, start, end)
        counts: dict[UUID, int] = defaultdict(int)
        for day in days(start, end):
            phase = self.phase_on(day)
            if phase is None:
                continue
            anchor = phase.started_on or self.start_date
            for exercise in phase.exercises:
                dosage = exercise.dosage_on(day)
                if dosage is not None and is_due(
                    sessions_per_week=dosage.sessions_per_week, anchor=anchor, day=day
                ):
                    counts[exercise.id] += 1
        return dict(counts)

    def _changes_within(self, start: date, end: date) -> bool:
        """Does the phase in force (or whether the program covers the day) change on some
        day after `start`, up to `end`?"""
        if start < self.start_date <= end:
            return True
        if self.ended_on is not None and start < self.ended_on <= end:
            return True
        return any(p.started_on is not None and start < p.started_on <= end for p in self.phases)


def _steady_counts(phase: PhasePlan, start: date, end: date) -> dict[UUID, int]:
    """`prescribed_between` when `phase` is in force on every day of `start`..`end` (so it
    started on or before `start`)."""
    anchor = phase.started_on
    assert anchor is not None, "a phase in force has started"
    assert anchor <= start, "the phase must be in force from start"
    span = (end - start).days + 1
    blocks, rest = divmod(span, WEEK)
    first = (start - anchor).days
    counts: dict[UUID, int] = {}
    for exercise in phase.exercises:
        if any(start < version.effective_from <= end for version in exercise.versions):
            # The dosage changes inside the window: day by day, for this exercise only.
            n = 0
            for day in days(start, end):
                dosage = exercise.dosage_on(day)
                if dosage is not None and is_due(
                    sessions_per_week=dosage.sessions_per_week, anchor=anchor, day=day
                ):
                    n += 1
        else:
            dosage = exercise.dosage_on(start)
            if dosage is None:
                continue
            offsets = due_offsets(dosage.sessions_per_week)
            # Every 7 consecutive days hold each offset once; then the last `rest` days.
            n = blocks * len(offsets) + sum(1 for i in range(rest) if (first + i) % WEEK in offsets)
        if n:
            counts[exercise.id] = n
    return counts


def sessions_done(
    sessions: Iterable[tuple[UUID, date]], *, start: date, end: date
) -> dict[UUID, int]:
    """Days with at least one log, per exercise, over `start`..`end`."""
    seen = {(exercise_id, day) for exercise_id, day in sessions if start <= day <= end}
    counts: dict[UUID, int] = defaultdict(int)
    for exercise_id, _ in seen:
        counts[exercise_id] += 1
    return dict(counts)


@dataclass(frozen=True)
class WeekAdherence:
    start: date
    end: date
    prescribed: int
    done: int
    adherence: float | None


def week_windows(today: date, weeks: int) -> list[tuple[date, date]]:
    """The last `weeks` complete 7-day windows before `today` (first and last day), most
    recent first."""
    return [
        (today - timedelta(days=WEEK * (k + 1)), today - timedelta(days=WEEK * k + 1))
        for k in range(weeks)
    ]


def week_adherence(
    *, plans: Sequence[ProgramPlan], done: Mapping[UUID, int], start: date, end: date
) -> WeekAdherence:
    """Adherence over `start`..`end` from the sessions done per exercise there
    (`sessions_done`, or the same count made by the database)."""
    prescribed: dict[UUID, int] = defaultdict(int)
    for plan in plans:
        for exercise_id, count in plan.prescribed_between(start, end).items():
            prescribed[exercise_id] += count
    return WeekAdherence(
        start=start,
        end=end,
        prescribed=sum(prescribed.values()),
        done=sum(min(done.get(key, 0), count) for key, count in prescribed.items()),
        adherence=adherence_share(prescribed=prescribed, done=done),
    )


def weekly_adherence(
    *,
    plans: Sequence[ProgramPlan],
    sessions: Iterable[tuple[UUID, date]],
    today: date,
    weeks: int,
) -> list[WeekAdherence]:
    """The last `weeks` complete 7-day windows before `today`, most recent first."""
    sessions = list(sessions)
    return [
        week_adherence(
            plans=plans, done=sessions_done(sessions, start=start, end=end), start=start, end=end
        )
        for start, end in week_windows(today, weeks)
    ]


# --------------------------------------------------------------------------- progression


@dataclass(frozen=True)
class SessionLog:
    exercise_id: UUID
    day: date
    pain_during: int
    stopped_for_pain: bool


@dataclass(frozen=True)
class ProgressionCheck:
    ready: bool
    reason: str
    from_phase: PhasePlan | None = None
    to_phase: PhasePlan | None = None
    basis: dict[str, Any] = field(default_factory=dict)


def mean_pain(daily_pain: Mapping[date, int], *, start: date, end: date) -> float | None:
    values = [pain for day, pain in daily_pain.items() if start <= day <= end]
    if len(values) < MIN_PAIN_DAYS_FOR_MEAN:
        return None
    return sum(values) / len(values)


def progression_check(
    *,
    plan: ProgramPlan,
    on: date,
    logs: Iterable[SessionLog],
    daily_pain: Mapping[date, int],
) -> ProgressionCheck:
    """Should moving `plan` to its next phase be proposed on `on`? See the module doc."""
    phase = plan.phase_on(on)
    if phase is None or phase.started_on is None:
        return ProgressionCheck(False, "no phase in force")
    to_phase = plan.next_phase(phase)
    if to_phase is None:
        return ProgressionCheck(False, "last phase")
    if on < phase.started_on + timedelta(days=WEEK * phase.length_weeks):
        return ProgressionCheck(False, "planned length not reached")

    start, end = on - timedelta(days=WEEK), on - timedelta(days=1)
    exercise_ids = {exercise.id for exercise in phase.exercises}
    window_logs = [
        log for log in logs if log.exercise_id in exercise_ids and start <= log.day <= end
    ]
    prescribed = {
        key: count
        for key, count in plan.prescribed_between(start, end).items()
        if key in exercise_ids
    }
    done = sessions_done(((log.exercise_id, log.day) for log in window_logs), start=start, end=end)
    share = adherence_share(prescribed=prescribed, done=done)
    basis: dict[str, Any] = {
        "window": [start.isoformat(), end.isoformat()],
        "sessions_prescribed": sum(prescribed.values()),
        "sessions_done": sum(min(done.get(k, 0), n) for k, n in prescribed.items()),
        "pain_ceiling": plan.pain_ceiling,
    }
    if share is None or share < 1.0:
        return ProgressionCheck(False, "not every session done", phase, to_phase, basis)

    basis["max_pain_during"] = max(log.pain_during for log in window_logs)
    if basis["max_pain_during"] > plan.pain_ceiling:
        return ProgressionCheck(False, "pain during above ceiling", phase, to_phase, basis)
    if any(log.stopped_for_pain for log in window_logs):
        return ProgressionCheck(False, "stopped for pain", phase, to_phase, basis)

    session_days = sorted({log.day for log in window_logs}, reverse=True)
    last = next((day for day in session_days if day + timedelta(days=1) in daily_pain), None)
    if last is None:
        return ProgressionCheck(False, "next-day pain not logged", phase, to_phase, basis)
    next_day_pain = daily_pain[last + timedelta(days=1)]
    mean = mean_pain(daily_pain, start=last - timedelta(days=WEEK - 1), end=last)
    basis.update(
        last_session=last.isoformat(),
        next_day_pain=next_day_pain,
        mean_pain_7d=None if mean is None else round(mean, 2),
    )
    if mean is None:
        return ProgressionCheck(False, "too few pain logs for a 7-day mean", phase, to_phase, basis)
    if next_day_pain > mean:
        return ProgressionCheck(False, "next-day pain above 7-day mean", phase, to_phase, basis)
    return ProgressionCheck(True, "ready", phase, to_phase, basis)
