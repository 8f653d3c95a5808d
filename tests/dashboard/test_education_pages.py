"""Education cards in the dashboard (dashboard/views_education.py): the library, writing
and editing (versions), giving a card and reading receipts; scope, audit, bad input."""

from __future__ import annotations

import pytest
from django.apps import apps

from patients.models import AuditEvent
from programs.education import content
from programs.education import services as education_services
from programs.models import CardAssignment, CardRead, EducationCard, EducationCardVersion

pytestmark = pytest.mark.django_db


@pytest.fixture
def card(clinician) -> EducationCard:
    return education_services.card_create(
        clinician=clinician, language="en", title="Sleeping positions", body="A **pillow**."
    )


def test_it_lists_our_and_the_seeded_cards_only(web, card, other_clinic_clinician) -> None:
    content.seed_cards(apps)
    theirs = education_services.card_create(
        clinician=other_clinic_clinician, language="en", title="Hilltop only", body="x"
    )
    page = web.get("/dashboard/education/").content.decode()
    assert "Sleeping positions" in page
    assert "When to go to the Emergency Department" in page
    assert "English v1, Spanish v1" in page
    assert theirs.versions.get().title not in page


def test_it_creates_a_card(web, clinician) -> None:
    response = web.post(
        "/dashboard/education/new/",
        {"language": "es", "title": "Caminar", "body": "Camina *cada* día.", "condition": ""},
    )
    assert response.status_code == 302
    card = EducationCard.objects.get(clinic=clinician.clinic)
    assert card.versions.get().language == "es"
    assert AuditEvent.objects.filter(object_type="education_card", action="create").exists()


@pytest.mark.parametrize(
    "body",
    [
        {"language": "fr", "title": "x", "body": "x"},
        {"language": "en", "title": "", "body": "x"},
        {"language": "en", "title": "x", "body": ""},
        {"language": "en", "title": "x", "body": "x" * 20_001},
    ],
)
def test_it_refuses_a_bad_card_and_creates_nothing(web, clinician, body) -> None:
    assert web.post("/dashboard/education/new/", body).status_code == 400
    assert not EducationCard.objects.filter(clinic=clinician.clinic).exists()


def test_editing_a_card_adds_a_version_and_keeps_the_old_one(web, card, patient) -> None:
    first = card.versions.get()
    education_services.card_assign(patient=patient, card=card, by=card.created_by)
    education_services.card_mark_read(patient=patient, version=first)
    response = web.post(
        f"/dashboard/education/{card.pk}/",
        {"language": "en", "title": "Sleeping positions", "body": "A pillow between the knees."},
    )
    assert response.status_code == 302
    assert list(card.versions.order_by("number").values_list("number", "body")) == [
        (1, "A **pillow**."),
        (2, "A pillow between the knees."),
    ]
    assert CardRead.objects.get(patient=patient).version_id == first.pk
    page = web.get(f"/dashboard/patients/{patient.pk}/education/").content.decode()
    assert "English v1 on" in page
    assert "Updated since" in page


def test_it_renders_a_cards_text_sanitised(web, clinician) -> None:
    card = education_services.card_create(
        clinician=clinician,
        language="en",
        title="Tricky",
        body='<img src=x onerror="alert(1)"> [x](javascript:alert(1)) **ok**',
    )
    page = web.get(f"/dashboard/education/{card.pk}/").content.decode()
    assert "<strong>ok</strong>" in page
    assert "<img" not in page
    assert 'href="javascript' not in page


def test_a_seeded_card_cannot_be_edited(web) -> None:
    content.seed_cards(apps)
    seeded = EducationCard.objects.get(slug="after-a-fall")
    before = EducationCardVersion.objects.filter(card=seeded).count()
    page = web.get(f"/dashboard/education/{seeded.pk}/")
    assert page.status_code == 200
    assert b"Save a new version" not in page.content
    response = web.post(
        f"/dashboard/education/{seeded.pk}/", {"language": "en", "title": "x", "body": "x"}
    )
    assert response.status_code == 403
    assert EducationCardVersion.objects.filter(card=seeded).count() == before


def test_it_gives_a_card_and_shows_who_read_which_version(web, card, patient) -> None:
    url = f"/dashboard/patients/{patient.pk}/education/"
    assert web.post(url, {"card": card.pk}).status_code == 302
    assignment = CardAssignment.objects.get(patient=patient, card=card)
    education_services.card_mark_read(patient=patient, version=card.versions.get())
    page = web.get(url).content.decode()
    assert f'data-card-id="{card.pk}" data-read-latest="true"' in page
    assert "English v1 on" in page
    assert AuditEvent.objects.filter(
        object_type="card_receipts", action="read", patient_id=patient.pk
    ).exists()
    assert AuditEvent.objects.filter(
        object_type="card_assignment", object_id=str(assignment.pk)
    ).exists()
    # Bad input: no card, an unknown one, or one already given.
    for bad in ({}, {"card": "00000000-0000-0000-0000-000000000000"}, {"card": card.pk}):
        assert web.post(url, bad).status_code == 400
    assert CardAssignment.objects.count() == 1


def test_another_clinic_sees_none_of_our_cards_or_patients(
    other_web, card, patient, other_patient, other_clinic_clinician
) -> None:
    assert other_web.get(f"/dashboard/education/{card.pk}/").status_code == 404
    response = other_web.post(
        f"/dashboard/education/{card.pk}/", {"language": "en", "title": "x", "body": "x"}
    )
    assert response.status_code == 404
    url = f"/dashboard/patients/{patient.pk}/education/"
    assert other_web.get(url).status_code == 404
    assert other_web.post(url, {"card": card.pk}).status_code == 404
    assert card.versions.count() == 1
    assert not CardAssignment.objects.exists()
    # Nor can they give our card to their own patient.
    mine = f"/dashboard/patients/{other_patient.pk}/education/"
    assert other_web.post(mine, {"card": card.pk}).status_code == 400
    assert not CardAssignment.objects.exists()
