"""`plans_between`: the rules' shapes of a caseload's programs built from rows, which must
be exactly what `plan_of` makes of the prefetched assignments (issue 8)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from programs import selectors, services
from programs.models import AssignedExercise, AssignedPhase, DosageVersion, ProgramAssignment
from tests.factories import PatientFactory
from tests.programs.conftest import START, exercises_of

pytestmark = pytest.mark.django_db


def _from_instances(patient_ids, *, start: date, end: date) -> dict:
    return {
        pid: [selectors.plan_of(a) for a in assignments]
        for pid, assignments in selectors.assignments_between(
            patient_ids, start=start, end=end
        ).items()
    }


@pytest.fixture
def caseload(clinic, clinician, template) -> list:
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


def test_it_fetches_the_plans_in_the_prefetchs_four_queries(caseload, django_assert_num_queries):
    ids = [p.pk for p in caseload]
    with django_assert_num_queries(4):
        selectors.plans_between(ids, start=START, end=START + timedelta(days=30))
    # Nothing to attach the next level to: no query for it, as with prefetch_related.
    with django_assert_num_queries(1):
        assert (
            selectors.plans_between(
                ids, start=START - timedelta(days=9), end=START - timedelta(days=1)
            )
            == {}
        )
    AssignedExercise.objects.all().delete()
    with django_assert_num_queries(3):
        selectors.plans_between(ids, start=START, end=START + timedelta(days=30))
