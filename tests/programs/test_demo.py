from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

import pytest

from programs import selectors
from programs.demo import seed_programs_demo
from programs.models import ExerciseLog, ProgramAssignment, ProgressionProposal
from tests.factories import ClinicFactory, PatientFactory

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


def _rising(patients, days: int = 60) -> dict[Any, Any]:
    """Daily pain that rises every day: the next day is always above the 7-day mean, so
    the progression rule never fires on it."""
    return {
        p.pk: {TODAY - timedelta(days=n): max(0, 10 - n // 6) for n in range(days)}
        for p in patients
    }


def _pending(patients) -> list[ProgressionProposal]:
    return list(
        ProgressionProposal.objects.filter(
            status="pending", assignment__patient__in=patients
        ).select_related("assignment")
    )


@pytest.mark.parametrize("seed", range(5))
def test_it_always_leaves_a_pending_proposal(demo_patients, seed):
    seed_programs_demo(patients=demo_patients, today=TODAY, rng=random.Random(seed))
    assert len(_pending(demo_patients)) == 1


def test_it_leaves_a_pending_proposal_when_the_first_patient_has_no_clinician(demo_patients):
    alone = PatientFactory.create(clinic=ClinicFactory.create(), condition="Sciatica")
    seed_programs_demo(patients=[alone, *demo_patients], today=TODAY, rng=random.Random(7))
    assert not ProgramAssignment.objects.filter(patient=alone).exists()
    assert len(_pending(demo_patients)) == 1


def test_it_tries_the_next_patient_when_the_first_ones_pain_rose(demo_patients):
    daily_pain = _rising(demo_patients[:1])
    seed_programs_demo(
        patients=demo_patients, today=TODAY, rng=random.Random(7), daily_pain=daily_pain
    )
    (proposal,) = _pending(demo_patients)
    assert proposal.assignment.patient_id == demo_patients[1].pk


def test_it_leaves_a_pending_proposal_even_when_every_logged_pain_rose(demo_patients):
    seed_programs_demo(
        patients=demo_patients,
        today=TODAY,
        rng=random.Random(7),
        daily_pain=_rising(demo_patients),
    )
    (proposal,) = _pending(demo_patients)
    assert proposal.assignment.patient_id == demo_patients[0].pk
    assert proposal.to_phase.position == 2
