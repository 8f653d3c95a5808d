"""`plans_between`: the rules' shapes of a caseload's programs built from rows, which must
be exactly what `plan_of` makes of the prefetched assignments (issue 8)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from programs import rules, selectors, services
from programs.models import AssignedPhase, DosageVersion, ProgramAssignment
from tests.factories import PatientFactory
from tests.programs.conftest import START, exercises_of

pytestmark = pytest.mark.django_db


def _from_instances(patient_ids, *, start: date, end: date) -> dict[Any, Any]:
    return {
        pid: [selectors.plan_of(a) for a in assignments]
        for pid, assignments in selectors.assignments_between(
            patient_ids, start=start, end=end
        ).items()
    }


@pytest.fixture
def caseload(clinic, clinician, template) -> list[Any]:
    """Programs of every shape the rules read: phases started or not, dosage changed
    (twice, and in the future), an exercise without a dosage, an ended program followed by
    a new one, and a patient who never had a program."""
    patients = [PatientFactory.create(clinic=clinic) for _ in range(4)]
    _, moved, changed, renewed = patients
    for p in patients:
        services.assignment_create(
            patient=p, template=template, by=clinician, start_date=START, today=START
        )
    AssignedPhase.objects.filter(assignment__patient=moved, position=2).update(
        started_on=START + timedelta(days=14)
    )
    a, b = exercises_of(ProgramAssignment.objects.get(patient=changed), 1)
    base = DosageVersion.objects.filter(assigned_exercise=a).get()
    for days, sets in ((5, 4), (40, 5)):
        DosageVersion.objects.create(
            assigned_exercise=a,
            effective_from=START + timedelta(days=days),
            sets=sets,
            reps=base.reps,
            hold_seconds=base.hold_seconds,
            duration_minutes=base.duration_minutes,
            sessions_per_week=2,
            notes=f"from day {days}",
        )
    DosageVersion.objects.filter(assigned_exercise=b).delete()
    first = ProgramAssignment.objects.get(patient=renewed)
    ProgramAssignment.objects.filter(pk=first.pk).update(ended_on=START + timedelta(days=10))
    services.assignment_create(
        patient=renewed,
        template=template,
        by=clinician,
        start_date=START + timedelta(days=10),
        today=START + timedelta(days=10),
    )
    return [*patients, PatientFactory.create(clinic=clinic)]


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (START - timedelta(days=30), START - timedelta(days=1)),  # before every program
        (START, START),
        (START + timedelta(days=3), START + timedelta(days=12)),
        (START + timedelta(days=10), START + timedelta(days=10)),  # the renewal day
        (START - timedelta(days=7), START + timedelta(days=90)),
    ],
)
def test_it_builds_the_plans_plan_of_builds_from_the_prefetched_assignments(caseload, start, end):
    ids = [p.pk for p in caseload]
    plans = selectors.plans_between(ids, start=start, end=end)
    assert plans == _from_instances(ids, start=start, end=end)
    if end >= START:
        assert {len(plans[pid]) for pid in ids[:3]} == {1}
        assert ids[-1] not in plans


def test_it_keeps_the_shapes_the_rules_read(caseload):
    changed, renewed = caseload[2], caseload[3]
    plans = selectors.plans_between(
        [changed.pk, renewed.pk], start=START, end=START + timedelta(days=90)
    )
    (plan,) = plans[changed.pk]
    phase_1 = plan.phases[0]
    assert [p.position for p in plan.phases] == [1, 2, 3]
    a, b = phase_1.exercises
    assert [(v.effective_from, v.sets) for v in a.versions][1:] == [
        (START + timedelta(days=5), 4),
        (START + timedelta(days=40), 5),
    ]
    assert b.versions == ()
    # An ended program and the one after it, in start order.
    assert [(p.start_date, p.ended_on) for p in plans[renewed.pk]] == [
        (START, START + timedelta(days=10)),
        (START + timedelta(days=10), None),
    ]


def test_it_fetches_the_plans_in_one_query(caseload, django_assert_num_queries):
    ids = [p.pk for p in caseload]
    for in_force_only in (False, True):
        with django_assert_num_queries(1):
            selectors.plans_between(
                ids, start=START, end=START + timedelta(days=30), in_force_only=in_force_only
            )
    # No program in the window: the same query, no rows.
    with django_assert_num_queries(1):
        assert (
            selectors.plans_between(
                ids, start=START - timedelta(days=9), end=START - timedelta(days=1)
            )
            == {}
        )


def _day_answers(plan, day: date) -> tuple[Any, ...]:
    """What the rules read of a plan on one day, by id (a pruned plan's phases hold fewer
    exercises and dosages, so its objects are not equal to the whole plan's)."""
    phase = plan.phase_on(day)

    def items(due: list[Any]) -> list[Any]:
        return [(i.phase.id, i.exercise.id, i.dosage) for i in due]

    return (
        plan.covers(day),
        phase.id if phase else None,
        items(plan.exercises_on(day)),
        items(plan.due_on(day)),
    )


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (START - timedelta(days=30), START - timedelta(days=1)),
        (START, START),
        (START - timedelta(days=7), START + timedelta(days=6)),  # a caseload's window
        (START + timedelta(days=3), START + timedelta(days=12)),
        (START + timedelta(days=10), START + timedelta(days=16)),  # renewal, phase 2 start
        (START + timedelta(days=14), START + timedelta(days=14)),
        (START + timedelta(days=20), START + timedelta(days=45)),  # a dosage change inside
        (START + timedelta(days=41), START + timedelta(days=48)),  # after every change
    ],
)
def test_plans_in_force_answer_every_day_of_the_window_as_the_whole_plans(caseload, start, end):
    moved = caseload[1]
    # Two phases started the same day: the later position is the one in force.
    AssignedPhase.objects.filter(assignment__patient=moved, position=3).update(
        started_on=START + timedelta(days=14)
    )
    ids = [p.pk for p in caseload]
    whole = selectors.plans_between(ids, start=start, end=end)
    pruned = selectors.plans_between(ids, start=start, end=end, in_force_only=True)
    assert pruned.keys() == whole.keys()
    for pid, plans in whole.items():
        for full, part in zip(plans, pruned[pid], strict=True):
            for day in rules.days(start, end):
                assert _day_answers(part, day) == _day_answers(full, day), (pid, day)


def test_plans_in_force_leave_out_the_phases_and_dosages_of_other_days(caseload):
    moved, changed = caseload[1], caseload[2]
    start, end = START + timedelta(days=20), START + timedelta(days=27)
    (whole,) = selectors.plans_between([moved.pk], start=start, end=end)[moved.pk]
    (pruned,) = selectors.plans_between([moved.pk], start=start, end=end, in_force_only=True)[
        moved.pk
    ]
    # Phase 2 started on day 14 and is still in force; phase 1 is over, phase 3 to come.
    assert [p.position for p in whole.phases] == [1, 2, 3]
    assert [p.position for p in pruned.phases] == [2]
    # Phase 3 started the same day as phase 2: phase 2 was never in force.
    AssignedPhase.objects.filter(assignment__patient=moved, position=3).update(
        started_on=START + timedelta(days=14)
    )
    (pruned,) = selectors.plans_between([moved.pk], start=start, end=end, in_force_only=True)[
        moved.pk
    ]
    assert [p.position for p in pruned.phases] == [3]

    start, end = START + timedelta(days=6), START + timedelta(days=12)
    (pruned,) = selectors.plans_between([changed.pk], start=start, end=end, in_force_only=True)[
        changed.pk
    ]
    (a, _) = pruned.phases[0].exercises
    # The dosage of day 5 is in force all week: the first is superseded, day 40's is to come.
    assert [v.effective_from for v in a.versions] == [START + timedelta(days=5)]
