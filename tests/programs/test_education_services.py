"""Education services: versions per language, no-op edits, assignment with a program and
what a later template edit does (nothing to patients already on it); the template API's
progression ceiling."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from programs import services
from programs.education import selectors as education_selectors
from programs.education import services as education_services
from programs.models import CardAssignment, EducationCardVersion, ProgramAssignment
from tests.programs.conftest import START
from tests.programs.factories import ExerciseFactory, make_template

pytestmark = pytest.mark.django_db


def test_it_numbers_versions_per_language_and_skips_an_unchanged_edit(clinician) -> None:
    card = education_services.card_create(
        clinician=clinician, language="en", title="Walking", body="Walk daily."
    )
    es = education_services.card_version_create(
        card=card, clinician=clinician, language="es", title="Caminar", body="Camina."
    )
    en2 = education_services.card_version_create(
        card=card, clinician=clinician, language="en", title="Walking", body="Walk every day."
    )
    same = education_services.card_version_create(
        card=card, clinician=clinician, language="en", title="Walking", body="Walk every day."
    )
    assert (es.number, en2.number, same.pk) == (1, 2, en2.pk)
    assert EducationCardVersion.objects.filter(card=card).count() == 3


def test_it_refuses_another_clinics_card_edit(clinician, other_clinic_clinician) -> None:
    card = education_services.card_create(
        clinician=clinician, language="en", title="Ours", body="x"
    )
    with pytest.raises(ValidationError):
        education_services.card_version_create(
            card=card, clinician=other_clinic_clinician, language="en", title="T", body="y"
        )
    assert EducationCardVersion.objects.filter(card=card).count() == 1


def test_a_template_edit_gives_no_card_to_a_patient_already_on_it(
    patient, clinician, clinic
) -> None:
    template = make_template(clinic=clinic, name="Edited later", phases=[(1, [7])])
    services.assignment_create(
        patient=patient, template=template, by=clinician, start_date=START, today=START
    )
    card = education_services.card_create(clinician=clinician, language="en", title="New", body="x")
    phases = services.template_phases_of(template)
    phases[0]["cards"] = [card]
    services.template_update(
        template=template, clinician=clinician, name="Edited later", phases=phases
    )
    assert template.phases.get().education_cards.get() == card
    assert not CardAssignment.objects.filter(patient=patient).exists()
    # The patient's cards come with the program they were given, not the template now.
    assert (
        education_selectors.patient_cards(user=clinician.user, patient=patient, language="en") == []
    )


def test_a_program_starts_from_its_templates_pain_ceiling(patient, clinician, clinic) -> None:
    template = make_template(clinic=clinic, name="Gentle", phases=[(1, [7])])
    template.pain_ceiling = 2
    template.save()
    assignment = services.assignment_create(
        patient=patient, template=template, by=clinician, start_date=START, today=START
    )
    assert ProgramAssignment.objects.get(pk=assignment.pk).pain_ceiling == 2


def test_the_template_api_takes_and_shows_the_ceiling_and_cards(clinician_client) -> None:
    exercise = ExerciseFactory.create()
    body = {
        "name": "Ceiling four",
        "pain_ceiling": 4,
        "phases": [
            {
                "name": "One",
                "length_weeks": 1,
                "exercises": [
                    {
                        "exercise_id": str(exercise.pk),
                        "sets": 1,
                        "reps": 5,
                        "sessions_per_week": 3,
                    }
                ],
            }
        ],
    }
    response = clinician_client.post("/api/v1/clinician/program-templates/", body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["pain_ceiling"] == 4
    assert response.json()["phases"][0]["education_card_ids"] == []
    bad = clinician_client.post(
        "/api/v1/clinician/program-templates/",
        {**body, "name": "Eleven", "pain_ceiling": 11},
        format="json",
    )
    assert bad.status_code == 400
