"""The patient's language as a profile setting: GET/PATCH /api/v1/me/settings/, the
clinician's invitation and patient edit, and the invitation email in that language."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail

from patients.models import AuditEvent, Patient

pytestmark = pytest.mark.django_db

SETTINGS = "/api/v1/me/settings/"


def test_it_shows_and_sets_the_patients_language(patient_client, patient):
    response = patient_client.get(SETTINGS)
    assert response.status_code == 200
    assert response.json() == {"language": "", "language_shown": "en"}

    response = patient_client.patch(SETTINGS, {"language": "es"})
    assert response.status_code == 200, response.json()
    assert response.json() == {"language": "es", "language_shown": "es"}
    patient.refresh_from_db()
    assert patient.language == "es"
    event = AuditEvent.objects.filter(object_type="patient_settings").latest("id")
    assert (event.action, event.patient_id) == (AuditEvent.Action.UPDATE, patient.pk)
    assert event.changes == {"language": {"from": "", "to": "es"}}

    assert patient_client.get("/api/v1/me/").json()["language"] == "es"
    # Blank again: the phone's language decides.
    response = patient_client.patch(SETTINGS, {"language": ""}, HTTP_ACCEPT_LANGUAGE="es")
    assert response.json() == {"language": "", "language_shown": "es"}


def test_reading_the_settings_is_audited(patient_client, patient):
    patient_client.get(SETTINGS)
    event = AuditEvent.objects.filter(object_type="patient_settings").latest("id")
    assert (event.action, event.patient_id) == (AuditEvent.Action.READ, patient.pk)


@pytest.mark.parametrize(
    "body", [{"language": "fr"}, {"language": None}, {"language": "es", "timezone": "UTC"}]
)
def test_it_refuses_bad_settings_and_changes_nothing(patient_client, patient, body):
    response = patient_client.patch(SETTINGS, body)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    patient.refresh_from_db()
    assert (patient.language, patient.timezone) == ("", "Europe/London")


def test_only_a_patient_has_settings_and_only_their_own(
    anon_client, clinician_client, other_patient_client, patient, other_patient
):
    assert anon_client.get(SETTINGS).status_code == 401
    assert clinician_client.patch(SETTINGS, {"language": "es"}).status_code == 403
    assert other_patient_client.patch(SETTINGS, {"language": "es"}).status_code == 200
    patient.refresh_from_db()
    other_patient.refresh_from_db()
    assert (patient.language, other_patient.language) == ("", "es")


def test_the_clinician_sets_the_language_of_their_patient_only(
    clinician_client, other_clinic_clinician_client, patient
):
    url = f"/api/v1/clinician/patients/{patient.pk}/"
    assert other_clinic_clinician_client.patch(url, {"language": "es"}).status_code == 404
    response = clinician_client.patch(url, {"language": "es"})
    assert response.status_code == 200
    assert response.json()["language"] == "es"
    assert clinician_client.patch(url, {"language": "de"}).status_code == 400
    patient.refresh_from_db()
    assert patient.language == "es"


def _invite_body(**overrides: Any) -> dict[str, Any]:
    return {
        "email": "lucia.new@example.com",
        "first_name": "Lucía",
        "last_name": "Nueva",
        "date_of_birth": "1980-03-14",
        "timezone": "Europe/Madrid",
        **overrides,
    }


def test_the_invitation_is_emailed_by_the_worker_in_the_patients_language(
    clinician_client, django_capture_on_commit_callbacks, enqueued
):
    # The clinician's own request is in English; the worker writes in the patient's.
    with django_capture_on_commit_callbacks(execute=True):
        response = clinician_client.post(
            "/api/v1/clinician/invitations/", _invite_body(language="es")
        )
    assert response.status_code == 201, response.json()
    assert Patient.objects.get(pk=response.json()["patient_id"]).language == "es"
    (message,) = mail.outbox
    assert message.subject.endswith("le invita a seguir su rehabilitación")
    assert message.body.startswith("Hola, Lucía:")
    assert 'elija "Tengo un código"' in message.body
    # Spanish dates: "7 de diciembre de 2026".
    assert re.search(r"caduca el \d{1,2} de [a-z]+ de \d{4}\.", str(message.body)), message.body
    assert response.json()["code"] in message.body


def test_an_invitation_without_a_language_is_emailed_in_english(
    clinician_client, django_capture_on_commit_callbacks, enqueued
):
    with django_capture_on_commit_callbacks(execute=True):
        response = clinician_client.post(
            "/api/v1/clinician/invitations/", _invite_body(), HTTP_ACCEPT_LANGUAGE="es"
        )
    assert response.status_code == 201
    (message,) = mail.outbox
    assert message.subject.endswith("invites you to track your rehab")
    assert message.body.startswith("Hello Lucía,")
