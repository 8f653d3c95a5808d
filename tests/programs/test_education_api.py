"""The education API: a patient's cards, versions and read receipts, assignment by hand and
with a program, scope with the fixed cast, audit events and bad input."""

from __future__ import annotations

from typing import Any

import pytest
from django.apps import apps
from django.utils import translation

from patients.models import AuditEvent
from programs import services
from programs.education import content
from programs.education import services as education_services
from programs.models import CardAssignment, CardRead, EducationCard, EducationCardVersion
from tests.programs.conftest import START
from tests.programs.factories import make_template

pytestmark = pytest.mark.django_db

ME = "/api/v1/me/education/"
LIBRARY = "/api/v1/clinician/education-cards/"


def patient_cards_url(patient: Any) -> str:
    return f"/api/v1/clinician/patients/{patient.pk}/education/"


@pytest.fixture
def card(clinician: Any) -> EducationCard:
    return education_services.card_create(
        clinician=clinician,
        language="en",
        title="Sleeping positions",
        body="Try a **pillow** between your knees.",
        condition="Sciatica",
    )


@pytest.fixture
def given(patient: Any, clinician: Any, card: EducationCard) -> CardAssignment:
    assignment, _ = education_services.card_assign(patient=patient, card=card, by=clinician)
    return assignment


def _events(**filters: Any) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(**filters).order_by("id"))


# --------------------------------------------------------------------------- patient


def test_it_lists_my_cards_with_their_read_state(patient_client, given, card, patient) -> None:
    response = patient_client.get(ME)
    assert response.status_code == 200
    (item,) = response.json()["results"]
    assert item["id"] == str(card.pk)
    assert item["title"] == "Sleeping positions"
    assert item["language"] == "en"
    assert item["version"] == 1
    assert item["read"] is False
    assert item["read_at"] is None
    assert item["with_program"] is False
    assert _events(object_type="education_card", action="read", patient_id=patient.pk)


def test_it_shows_one_card_as_markdown_and_safe_html(patient_client, given, card, patient) -> None:
    response = patient_client.get(f"{ME}{card.pk}/")
    assert response.status_code == 200
    (event,) = _events(object_type="education_card", action="read", object_id=str(card.pk))
    assert event.patient_id == patient.pk
    body = response.json()
    assert body["body_markdown"] == "Try a **pillow** between your knees."
    assert body["html"] == "<p>Try a <strong>pillow</strong> between your knees.</p>\n"


def test_it_marks_a_card_read_once(patient_client, given, card, patient) -> None:
    first = patient_client.post(f"{ME}{card.pk}/read/", {}, format="json")
    assert first.status_code == 201
    again = patient_client.post(f"{ME}{card.pk}/read/", {}, format="json")
    assert again.status_code == 200
    assert again.json()["read_at"] == first.json()["read_at"]
    assert CardRead.objects.filter(patient=patient).count() == 1
    assert len(_events(object_type="card_read", patient_id=patient.pk)) == 1
    (item,) = patient_client.get(ME).json()["results"]
    assert item["read"] is True


def test_it_makes_an_edited_card_unread_and_keeps_the_receipt_of_the_old_version(
    patient_client, clinician_client, given, card, patient
) -> None:
    patient_client.post(f"{ME}{card.pk}/read/", {}, format="json")
    old = EducationCardVersion.objects.get(card=card)
    response = clinician_client.post(
        f"{LIBRARY}{card.pk}/versions/",
        {"language": "en", "title": "Sleeping positions", "body": "Pillow between the knees."},
        format="json",
    )
    assert response.status_code == 201
    (item,) = patient_client.get(ME).json()["results"]
    assert item["version"] == 2
    assert item["read"] is False
    assert item["updated_since_read"] is True
    receipt = CardRead.objects.get(patient=patient)
    assert receipt.version_id == old.pk  # what was read, word for word
    old.refresh_from_db()
    assert old.body == "Try a **pillow** between your knees."


def test_it_shows_a_card_in_my_language_and_falls_back_to_english(
    patient_client, clinician, given, card
) -> None:
    with translation.override("es"):
        (item,) = patient_client.get(ME).json()["results"]
    assert item["language"] == "en"  # no Spanish version yet
    education_services.card_version_create(
        card=card, clinician=clinician, language="es", title="Posturas para dormir",
        body="Pon una almohada entre las rodillas.",
    )  # fmt: skip
    with translation.override("es"):
        (item,) = patient_client.get(ME).json()["results"]
        detail = patient_client.get(f"{ME}{card.pk}/").json()
    assert item["language"] == "es"
    assert item["title"] == "Posturas para dormir"
    assert "almohada" in detail["html"]
    with translation.override("fr"):
        (item,) = patient_client.get(ME).json()["results"]
    assert item["language"] == "en"


def test_it_records_the_version_the_patient_says_they_read(
    patient_client, clinician, given, card, patient
) -> None:
    first = EducationCardVersion.objects.get(card=card)
    education_services.card_version_create(
        card=card, clinician=clinician, language="en", title="New", body="New text."
    )
    response = patient_client.post(
        f"{ME}{card.pk}/read/", {"version_id": str(first.pk)}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["version"] == 1
    assert CardRead.objects.get(patient=patient).version_id == first.pk


@pytest.mark.parametrize(
    "body",
    [
        {"version_id": "not-a-uuid"},
        {"version_id": "00000000-0000-0000-0000-000000000000"},
        {"read": True},
    ],
)
def test_it_refuses_a_bad_read_and_stores_nothing(patient_client, given, card, body) -> None:
    response = patient_client.post(f"{ME}{card.pk}/read/", body, format="json")
    assert response.status_code == 400
    assert CardRead.objects.count() == 0


def test_it_refuses_a_version_of_another_card(
    patient_client, clinician, given, card, patient
) -> None:
    other = education_services.card_create(
        clinician=clinician, language="en", title="Other", body="Other."
    )
    version = EducationCardVersion.objects.get(card=other)
    response = patient_client.post(
        f"{ME}{card.pk}/read/", {"version_id": str(version.pk)}, format="json"
    )
    assert response.status_code == 400
    assert CardRead.objects.count() == 0


# --------------------------------------------------------------------------- scope


def test_a_patient_sees_only_their_own_cards(
    other_patient_client, patient_client, clinician, given, card
) -> None:
    assert other_patient_client.get(ME).json()["results"] == []
    assert other_patient_client.get(f"{ME}{card.pk}/").status_code == 404
    response = other_patient_client.post(f"{ME}{card.pk}/read/", {}, format="json")
    assert response.status_code == 404
    # A card in the library but not given to me does not exist for me either.
    unassigned = education_services.card_create(
        clinician=clinician, language="en", title="Unassigned", body="x"
    )
    assert patient_client.get(f"{ME}{unassigned.pk}/").status_code == 404
    assert CardRead.objects.count() == 0


def test_another_clinic_sees_no_card_or_patient_of_ours(
    other_clinic_clinician_client, patient, card, given
) -> None:
    c = other_clinic_clinician_client
    ids = [item["id"] for item in c.get(LIBRARY, {"page_size": 200}).json()["results"]]
    assert str(card.pk) not in ids
    assert c.get(f"{LIBRARY}{card.pk}/").status_code == 404
    body = {"language": "en", "title": "Mine now", "body": "x"}
    assert c.post(f"{LIBRARY}{card.pk}/versions/", body, format="json").status_code == 404
    assert c.get(patient_cards_url(patient)).status_code == 404
    assert (
        c.post(patient_cards_url(patient), {"card_id": str(card.pk)}, format="json").status_code
        == 404
    )
    assert EducationCardVersion.objects.filter(card=card).count() == 1


def test_another_clinics_card_cannot_be_given_to_our_patient(
    clinician_client, other_clinic_clinician, patient
) -> None:
    theirs = education_services.card_create(
        clinician=other_clinic_clinician, language="en", title="Theirs", body="x"
    )
    response = clinician_client.post(
        patient_cards_url(patient), {"card_id": str(theirs.pk)}, format="json"
    )
    assert response.status_code == 400
    assert CardAssignment.objects.count() == 0


def test_the_wrong_role_is_refused(patient_client, clinician_client, anon_client) -> None:
    assert patient_client.get(LIBRARY).status_code == 403
    assert clinician_client.get(ME).status_code == 403
    assert anon_client.get(ME).status_code == 401


# --------------------------------------------------------------------------- clinician


def test_it_gives_a_card_once_and_shows_the_receipts(
    clinician_client, patient_client, clinician, card, patient
) -> None:
    url = patient_cards_url(patient)
    first = clinician_client.post(url, {"card_id": str(card.pk)}, format="json")
    assert first.status_code == 201
    assert clinician_client.post(url, {"card_id": str(card.pk)}, format="json").status_code == 200
    assert CardAssignment.objects.filter(patient=patient).count() == 1
    (event,) = _events(object_type="card_assignment", patient_id=patient.pk)
    assert event.actor_id == clinician.user_id
    assert event.changes == {"card_id": str(card.pk)}

    patient_client.post(f"{ME}{card.pk}/read/", {}, format="json")
    (row,) = clinician_client.get(url).json()["results"]
    assert row["card_id"] == str(card.pk)
    assert row["read_latest"] is True
    (receipt,) = row["reads"]
    assert receipt["version"] == 1
    assert receipt["language"] == "en"
    assert _events(object_type="card_receipts", action="read", patient_id=patient.pk)


@pytest.mark.parametrize(
    "body",
    [{}, {"card_id": "nope"}, {"card_id": "00000000-0000-0000-0000-000000000000"}, {"x": 1}],
)
def test_it_refuses_a_bad_assignment(clinician_client, patient, body) -> None:
    response = clinician_client.post(patient_cards_url(patient), body, format="json")
    assert response.status_code == 400
    assert CardAssignment.objects.count() == 0


def test_it_creates_a_card_and_refuses_bad_ones(clinician_client, clinician) -> None:
    ok = clinician_client.post(
        LIBRARY,
        {"language": "es", "title": "Caminar", "body": "Camina cada día.", "condition": ""},
        format="json",
    )
    assert ok.status_code == 201
    assert ok.json()["clinic_id"] == str(clinician.clinic_id)
    assert ok.json()["texts"][0]["html"] == "<p>Camina cada día.</p>\n"
    assert _events(object_type="education_card", action="create")
    for body in (
        {"language": "fr", "title": "x", "body": "x"},
        {"language": "en", "title": "", "body": "x"},
        {"language": "en", "title": "x", "body": "x" * 20_001},
        {"language": "en", "title": "x"},
    ):
        assert clinician_client.post(LIBRARY, body, format="json").status_code == 400
    assert EducationCard.objects.filter(clinic=clinician.clinic).count() == 1


def test_it_refuses_to_edit_a_seeded_card(clinician_client) -> None:
    content.seed_cards(apps)
    seeded = EducationCard.objects.get(slug="after-a-fall")
    before = EducationCardVersion.objects.filter(card=seeded).count()
    response = clinician_client.post(
        f"{LIBRARY}{seeded.pk}/versions/",
        {"language": "en", "title": "Edited", "body": "x"},
        format="json",
    )
    assert response.status_code == 400
    assert EducationCardVersion.objects.filter(card=seeded).count() == before


def test_it_lists_the_seeded_cards_in_both_languages(clinician_client) -> None:
    content.seed_cards(apps)
    results = clinician_client.get(LIBRARY, {"page_size": 200}).json()["results"]
    seeded = {item["slug"]: item for item in results if item["clinic_id"] is None}
    assert set(seeded) == set(content.CARDS)
    for item in seeded.values():
        assert [v["language"] for v in item["latest"]] == ["en", "es"]


# --------------------------------------------------------------------------- with a program


def test_a_program_brings_the_cards_of_its_phases(
    patient_client, patient, clinician, clinic, card
) -> None:
    template = make_template(clinic=clinic, name="With cards", phases=[(2, [7]), (1, [7])])
    phase_2 = template.phases.get(position=2)
    phase_2.education_cards.add(card)
    assignment = services.assignment_create(
        patient=patient, template=template, by=clinician, start_date=START, today=START
    )
    given = CardAssignment.objects.get(patient=patient, card=card)
    assert given.program_phase == assignment.phases.get(position=2)
    (item,) = patient_client.get(ME).json()["results"]
    assert item["with_program"] is True
    # Giving it by hand as well changes nothing.
    _, created = education_services.card_assign(patient=patient, card=card, by=clinician)
    assert created is False
