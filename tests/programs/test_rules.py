"""The program rules, without a database."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from programs import rules

MON = date(2026, 3, 2)
A, B, C = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def d(day: int) -> date:
    """March 2026: d(2) is Monday the 2nd."""
    return date(2026, 3, day)


def _plan(*, p2_started: date | None = None, ended_on: date | None = None, ceiling: int = 3):
    def exercise(ex_id, per_week, versions=None):
        return rules.ExercisePlan(
            id=ex_id,
            name=str(ex_id),
            versions=versions
            or (rules.DosageSpec(effective_from=MON, sets=3, reps=10, sessions_per_week=per_week),),
        )

    return rules.ProgramPlan(
        id=uuid.uuid4(),
        patient_id=uuid.uuid4(),
        start_date=MON,
        ended_on=ended_on,
        pain_ceiling=ceiling,
        phases=(
            rules.PhasePlan(uuid.uuid4(), 1, "One", 2, MON, (exercise(A, 7), exercise(B, 3))),
            rules.PhasePlan(uuid.uuid4(), 2, "Two", 1, p2_started, (exercise(C, 7),)),
        ),
    )


@pytest.mark.parametrize(
    ("per_week", "offsets"),
    [
        (7, {0, 1, 2, 3, 4, 5, 6}),
        (6, {0, 1, 2, 3, 4, 5}),
        (5, {0, 1, 2, 4, 5}),
        (4, {0, 1, 3, 5}),
        (3, {0, 2, 4}),
        (2, {0, 3}),
        (1, {0}),
    ],
)
def test_it_spreads_sessions_evenly_through_the_week(per_week, offsets):
    assert rules.due_offsets(per_week) == offsets


@pytest.mark.parametrize("per_week", range(1, 8))
def test_it_has_exactly_n_due_days_in_any_seven_consecutive_days(per_week):
    for first in range(0, 21):
        start = MON + timedelta(days=first)
        due = [
            rules.is_due(sessions_per_week=per_week, anchor=MON, day=start + timedelta(days=k))
            for k in range(7)
        ]
        assert sum(due) == per_week


def test_it_is_never_due_before_the_anchor():
    assert not rules.is_due(sessions_per_week=7, anchor=MON, day=MON - timedelta(days=1))


@pytest.mark.parametrize("per_week", [0, 8])
def test_it_rejects_impossible_sessions_per_week(per_week):
    with pytest.raises(ValueError, match="1-7"):
        rules.due_offsets(per_week)


def test_it_caps_sessions_done_at_sessions_prescribed():
    share = rules.adherence_share(prescribed={A: 7, B: 3}, done={A: 5, B: 6, C: 4})
    assert share == pytest.approx(8 / 10)


def test_it_has_no_adherence_when_nothing_was_prescribed():
    assert rules.adherence_share(prescribed={}, done={A: 3}) is None


def test_it_keeps_a_phase_until_the_next_one_is_started():
    plan = _plan()
    assert plan.phase_on(d(1)) is None  # before the program
    assert plan.phase_on(d(2)).position == 1
    # Planned length is 2 weeks, but nothing moves by itself.
    assert plan.phase_on(d(30)).position == 1


def test_it_changes_phase_on_the_day_the_next_one_starts():
    plan = _plan(p2_started=d(18))
    assert plan.phase_on(d(17)).position == 1
    assert plan.phase_on(d(18)).position == 2
    assert [item.exercise.id for item in plan.due_on(d(18))] == [C]


def test_it_ends_the_program_on_ended_on():
    plan = _plan(ended_on=d(10))
    assert plan.phase_on(d(9)) is not None
    assert plan.phase_on(d(10)) is None


def test_it_uses_the_dosage_version_in_force_that_day():
    exercise = rules.ExercisePlan(
        id=A,
        name="A",
        versions=(
            rules.DosageSpec(effective_from=d(2), sets=3, reps=10, sessions_per_week=7),
            rules.DosageSpec(effective_from=d(9), sets=4, reps=12, sessions_per_week=7),
        ),
    )
    assert exercise.dosage_on(d(1)) is None
    assert [(v.sets, v.reps) for v in map(exercise.dosage_on, [d(8), d(9), d(30)]) if v] == [
        (3, 10),
        (4, 12),
        (4, 12),
    ]


def test_it_counts_due_sessions_from_the_phase_start():
    plan = _plan()
    # B (3x/week) is due on days 0, 2, 4 of each week from Monday the 2nd.
    due_b = [
        day.day for day in rules.days(d(2), d(15)) if B in {i.exercise.id for i in plan.due_on(day)}
    ]
    assert due_b == [2, 4, 6, 9, 11, 13]
    assert plan.prescribed_between(d(9), d(15)) == {A: 7, B: 3}


def _due_counts(plan: rules.ProgramPlan, start: date, end: date) -> dict[Any, Any]:
    counts: dict[Any, Any] = {}
    for day in rules.days(start, end):
        for item in plan.due_on(day):
            counts[item.exercise.id] = counts.get(item.exercise.id, 0) + 1
    return counts


@pytest.mark.parametrize(
    "plan",
    [
        _plan(),
        _plan(p2_started=d(12)),
        _plan(p2_started=d(12), ended_on=d(20)),
        rules.ProgramPlan(
            id=uuid.uuid4(),
            patient_id=uuid.uuid4(),
            start_date=MON,
            ended_on=None,
            pain_ceiling=3,
            phases=(
                # Started later than the program (an edited start), a dosage that changes
                # its sessions mid-week, an exercise with no dosage yet.
                rules.PhasePlan(
                    uuid.uuid4(),
                    1,
                    "One",
                    1,
                    d(4),
                    (
                        rules.ExercisePlan(
                            A,
                            "A",
                            (
                                rules.DosageSpec(effective_from=d(4), sets=3, sessions_per_week=2),
                                rules.DosageSpec(effective_from=d(11), sets=3, sessions_per_week=5),
                            ),
                        ),
                        rules.ExercisePlan(B, "B", ()),
                    ),
                ),
            ),
        ),
    ],
)
def test_it_prescribes_the_sessions_due_on_each_day_of_a_window(plan):
    for first in range(1, 25):
        for length in (1, 7, 13):
            start, end = d(first), d(first) + timedelta(days=length - 1)
            assert plan.prescribed_between(start, end) == _due_counts(plan, start, end)


@st.composite
def _plans(draw: st.DrawFn) -> rules.ProgramPlan:
    """A program in March 2026 with up to three phases (started or not, in any order of
    start), each with up to three exercises of up to three dosage versions (or none),
    and perhaps an end."""

    def day() -> date:
        return d(draw(st.integers(1, 31)))

    start = day()
    ended_on = draw(st.none() | st.builds(lambda n: start + timedelta(days=n), st.integers(1, 25)))
    phases = []
    for position in range(1, draw(st.integers(1, 3)) + 1):
        exercises = []
        for _ in range(draw(st.integers(0, 3))):
            froms = sorted(set(draw(st.lists(st.builds(day), max_size=3))))
            versions = tuple(
                rules.DosageSpec(
                    effective_from=when, sets=3, sessions_per_week=draw(st.integers(1, 7))
                )
                for when in froms
            )
            exercises.append(rules.ExercisePlan(uuid.uuid4(), "E", versions))
        started_on = draw(st.none() | st.builds(day))
        phases.append(rules.PhasePlan(uuid.uuid4(), position, "P", 1, started_on, tuple(exercises)))
    return rules.ProgramPlan(uuid.uuid4(), uuid.uuid4(), start, ended_on, 3, tuple(phases))


def _changes(plan: rules.ProgramPlan) -> list[date]:
    """The days on which the phase, the dosage or the program's cover may change."""
    days = [plan.start_date, *([plan.ended_on] if plan.ended_on else [])]
    for phase in plan.phases:
        days += [phase.started_on] if phase.started_on else []
        days += [v.effective_from for e in phase.exercises for v in e.versions]
    return days


@given(plan=_plans(), data=st.data(), length=st.integers(1, 22))
@settings(max_examples=500, deadline=None)
def test_it_prescribes_what_due_on_says_for_any_program_and_window(plan, data, length):
    # The arithmetic for a window without changes and the day-by-day count for the rest,
    # against the definition (due_on, day by day); windows that end on, start on, or
    # straddle a change, or fall anywhere.
    change = data.draw(st.sampled_from(_changes(plan)))
    start = data.draw(
        st.builds(lambda n: change - timedelta(days=n), st.integers(-1, length))
        | st.builds(d, st.integers(1, 31))
    )
    end = start + timedelta(days=length - 1)
    assert plan.prescribed_between(start, end) == _due_counts(plan, start, end)


def test_it_computes_weekly_adherence_on_hand_counted_weeks():
    plan = _plan()
    sessions = [(A, d(n)) for n in range(9, 14)]  # A on 5 of 7 days in week 2
    sessions += [(A, d(10))]  # a second log the same day counts once
    sessions += [(B, d(n)) for n in (9, 10, 11, 12)]  # B 4 times: capped at 3
    sessions += [(A, d(n)) for n in range(2, 9)]  # A every day of week 1, B never
    weeks = rules.weekly_adherence(plans=[plan], sessions=sessions, today=d(16), weeks=3)

    assert [(w.start, w.end) for w in weeks] == [
        (d(9), d(15)),
        (d(2), d(8)),
        (date(2026, 2, 23), d(1)),
    ]
    assert (weeks[0].prescribed, weeks[0].done, weeks[0].adherence) == (10, 8, 0.8)
    assert (weeks[1].prescribed, weeks[1].done, weeks[1].adherence) == (10, 7, 0.7)
    assert (weeks[2].prescribed, weeks[2].done, weeks[2].adherence) == (0, 0, None)


def test_it_leaves_today_out_of_the_weekly_window():
    plan = _plan()
    weeks = rules.weekly_adherence(plans=[plan], sessions=[(A, d(16))], today=d(16), weeks=1)
    assert weeks[0].end == d(15)
    assert weeks[0].done == 0


# --------------------------------------------------------------------------- progression


def _good_week(pain_during: int = 2) -> list[rules.SessionLog]:
    logs = [rules.SessionLog(A, d(n), pain_during, False) for n in range(9, 16)]
    logs += [rules.SessionLog(B, d(n), pain_during, False) for n in (9, 11, 13)]
    return logs


# Daily pain: 4 until the 12th, then 3. Mean of 8th-14th = 26/7 = 3.71.
PAIN = {d(n): 4 for n in range(2, 13)} | {d(13): 3, d(14): 3, d(15): 3}


def test_it_proposes_the_next_phase_when_the_rule_holds():
    plan = _plan()
    check = rules.progression_check(plan=plan, on=d(16), logs=_good_week(), daily_pain=PAIN)
    assert check.ready, check.reason
    assert check.from_phase is not None
    assert check.to_phase is not None
    assert (check.from_phase.position, check.to_phase.position) == (1, 2)
    # Today's (16th) pain is not logged yet: the last session with a known next day is the
    # 14th, and the 15th's pain (3) is not above the 8th-14th mean.
    assert check.basis["last_session"] == "2026-03-14"
    assert check.basis["next_day_pain"] == 3
    assert check.basis["mean_pain_7d"] == pytest.approx(3.71)
    assert check.basis["sessions_prescribed"] == check.basis["sessions_done"] == 10


def test_it_accepts_pain_during_equal_to_the_ceiling():
    check = rules.progression_check(
        plan=_plan(), on=d(16), logs=_good_week(pain_during=3), daily_pain=PAIN
    )
    assert check.ready


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("too early", "planned length not reached"),
        ("missed a session", "not every session done"),
        ("pain above ceiling", "pain during above ceiling"),
        ("stopped for pain", "stopped for pain"),
        ("flare next day", "next-day pain above 7-day mean"),
        ("no next-day pain", "next-day pain not logged"),
        ("too few pain logs", "too few pain logs for a 7-day mean"),
        ("last phase", "last phase"),
        ("lower ceiling", "pain during above ceiling"),
    ],
)
def test_it_does_not_propose_when_a_criterion_fails(case, reason):
    plan, on, logs, pain = _plan(), d(16), _good_week(), dict(PAIN)
    if case == "too early":
        on = d(15)
    elif case == "missed a session":
        logs = [log for log in logs if not (log.exercise_id == B and log.day == d(11))]
    elif case == "pain above ceiling":
        logs[0] = rules.SessionLog(A, d(9), 4, False)
    elif case == "stopped for pain":
        logs[0] = rules.SessionLog(A, d(9), 1, True)
    elif case == "flare next day":
        pain[d(15)] = 5
    elif case == "no next-day pain":
        pain = {day: p for day, p in pain.items() if day < d(10)}
    elif case == "too few pain logs":
        pain = {d(14): 3, d(15): 3}
    elif case == "last phase":
        plan = _plan(p2_started=d(9))
        on = d(30)
    elif case == "lower ceiling":
        plan = _plan(ceiling=1)
    check = rules.progression_check(plan=plan, on=on, logs=logs, daily_pain=pain)
    assert not check.ready
    assert check.reason == reason
