from __future__ import annotations

import random
from datetime import date

import pytest

from programs import selectors
from programs.demo import seed_programs_demo
from programs.models import ExerciseLog, ProgramAssignment, ProgressionProposal
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db

TODAY = date(2026, 4, 20)


@pytest.fixture
def demo_patients(clinic, clinician, seeded_templates):
    conditions = ["Deep gluteal syndrome (left)", "Sciatica (L5)"] * 4
    return [
        PatientFactory.create(clinic=clinic, care_team=[clinician], condition=c) for c in conditions
    ]


def test_it_puts_demo_patients_on_the_seeded_programs(demo_patients):
    seed_programs_demo(patients=demo_patients, today=TODAY, rng=random.Random(7))

    assignments = {a.patient_id: a for a in ProgramAssignment.objects.all()}
    assert set(assignments) == {p.pk for p in demo_patients}
    assert assignments[demo_patients[0].pk].name.startswith("Deep gluteal syndrome")
    assert assignments[demo_patients[1].pk].name.startswith("Sciatica")
    assert all(a.start_date < TODAY for a in assignments.values())
    assert ExerciseLog.objects.filter(date__gte=TODAY).count() == 0
    assert ProgressionProposal.objects.filter(status="pending").count() >= 1

    adherence = selectors.adherence_7d_for_patients([p.pk for p in demo_patients], on=TODAY)
    values = [v for v in adherence.values() if v is not None]
    assert max(values) >= 0.9  # mostly adherent...
    assert min(values) < 0.7  # ...some not


def test_it_moves_good_progressors_on_through_accepted_proposals(demo_patients):
    seed_programs_demo(patients=demo_patients, today=TODAY, rng=random.Random(7))
    accepted = ProgressionProposal.objects.filter(status="accepted")
    assert accepted.exists()
    for proposal in accepted:
        assert proposal.to_phase.started_on == proposal.effective_from


def test_it_skips_patients_who_already_have_a_program(demo_patients):
    seed_programs_demo(patients=demo_patients, today=TODAY, rng=random.Random(7))
    counts = (ProgramAssignment.objects.count(), ExerciseLog.objects.count())
    seed_programs_demo(patients=demo_patients, today=TODAY, rng=random.Random(8))
    assert (ProgramAssignment.objects.count(), ExerciseLog.objects.count()) == counts
