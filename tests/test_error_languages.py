"""The error messages a patient reads, in Spanish, with the same codes as in English
(docs/app-developers.md § Languages): programs and education, exercise media, the
questionnaires' answers, the data rights (exports, erasure, consent), and the guards that
answer before any token is read (which follow `Accept-Language`)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client, override_settings

from programs.education import services as education_services
from tests.rehab.factories_record import QuestionnaireDueFactory

pytestmark = pytest.mark.django_db


def _speaks(patient: Any, language: str) -> None:
    patient.language = language
    patient.save(update_fields=["language"])


def _message(body: dict[str, Any], field: str) -> str:
    (error,) = [e for e in body["errors"] if e["field"] == field]
    message: str = error["message"]
    return message


def _in_both(patient: Any, send: Any) -> tuple[Any, Any]:
    """The same request in English, then in Spanish (the patient's profile setting)."""
    english = send()
    _speaks(patient, "es")
    spanish = send()
    _speaks(patient, "")
    return english, spanish


# --------------------------------------------------------------------------- programs


def test_program_errors_are_in_spanish_with_the_same_code(patient_client, patient, clinician):
    english, spanish = _in_both(
        patient,
        lambda: patient_client.get(
            "/api/v1/exercise-logs/", {"from": "2026-11-10", "to": "2026-11-01"}
        ),
    )
    assert english.status_code == spanish.status_code == 400
    assert english.json()["errors"][0]["code"] == spanish.json()["errors"][0]["code"]
    assert _message(english.json(), "from") == "Must not be after `to`."
    assert _message(spanish.json(), "from") == "No debe ser posterior a `to`."

    card = education_services.card_create(
        clinician=clinician, language="en", title="Sleeping positions", body="A pillow."
    )
    education_services.card_assign(patient=patient, card=card, by=clinician)
    url = f"/api/v1/me/education/{card.pk}/read/"
    body = {"version_id": "00000000-0000-0000-0000-000000000000"}
    english, spanish = _in_both(patient, lambda: patient_client.post(url, body, format="json"))
    assert english.status_code == spanish.status_code == 400
    assert _message(english.json(), "version_id") == "Not a version of this card."
    assert _message(spanish.json(), "version_id") == "No es una versión de esta ficha."


def test_a_bad_media_link_is_refused_in_the_phones_language():
    english = Client().get("/api/v1/media/not-a-link/")
    spanish = Client().get("/api/v1/media/not-a-link/", HTTP_ACCEPT_LANGUAGE="es")
    assert english.status_code == spanish.status_code == 400
    assert english.json()["code"] == spanish.json()["code"] == "media_link_invalid"
    assert spanish.json()["detail"] == (
        "Este enlace multimedia no es válido o ha caducado; vuelva a cargar el plan."
    )


# --------------------------------------------------------------------------- questionnaires


def test_questionnaire_errors_are_in_spanish_with_the_same_code(patient_client, patient):
    due = QuestionnaireDueFactory.create(patient=patient, instrument="sbi")
    url = f"/api/v1/me/questionnaires/{due.pk}/responses/"
    answers = {"leg_pain": 9, "numbness_tingling": None, "weakness": None, "sitting_pain": 1}
    english, spanish = _in_both(patient, lambda: patient_client.post(url, {"answers": answers}))
    assert english.status_code == spanish.status_code == 400
    assert english.json()["code"] == spanish.json()["code"] == "invalid"
    fields = [e["field"] for e in english.json()["errors"]]
    assert fields == [e["field"] for e in spanish.json()["errors"]]
    assert [e["code"] for e in english.json()["errors"]] == [
        e["code"] for e in spanish.json()["errors"]
    ]
    (field,) = fields
    assert _message(english.json(), field) == "Must be a whole number from 0 to 6, or null."
    assert _message(spanish.json(), field) == "Debe ser un número entero del 0 al 6, o null."

    # Two items skipped: the scoring module's message with its figures, translated.
    answers = {"leg_pain": 2, "numbness_tingling": None, "weakness": None, "sitting_pain": 1}
    _speaks(patient, "es")
    skipped = patient_client.post(url, {"answers": answers}).json()
    assert [e["message"] for e in skipped["errors"]] == [
        "Se puede omitir como máximo 1 pregunta; se omitieron 2."
    ]

    # The service's own refusals.
    answers = {"leg_pain": 2, "numbness_tingling": 1, "weakness": 0, "sitting_pain": 1}
    assert patient_client.post(url, {"answers": answers}).status_code == 201
    answers["leg_pain"] = 3
    conflict = patient_client.post(url, {"answers": answers})
    assert conflict.status_code == 409
    assert conflict.json()["code"] == "already_answered"
    assert conflict.json()["detail"] == ("Este cuestionario ya se respondió con otras respuestas.")


# --------------------------------------------------------------------------- data rights


def test_data_rights_errors_are_in_spanish_with_the_same_code(patient_client, patient):
    _speaks(patient, "es")
    assert patient_client.post("/api/v1/me/erasure-request/", {"reason": ""}).status_code == 201
    again = patient_client.post("/api/v1/me/erasure-request/", {"reason": ""})
    assert again.status_code == 409
    assert again.json()["code"] == "erasure_request_pending"
    assert again.json()["detail"] == (
        "Ya hay una solicitud de supresión pendiente de la decisión de su clínica."
    )

    link = Client().get("/api/v1/exports/download/not-a-token/", HTTP_ACCEPT_LANGUAGE="es")
    assert link.status_code == 400
    assert link.json()["code"] == "export_link_invalid"
    assert link.json()["detail"] == (
        "Este enlace de descarga no es válido o ha caducado; solicite uno nuevo."
    )


def test_consent_errors_are_in_spanish_with_the_same_code(patient_client, patient, api_client_for):
    from patients.models import Clinician
    from tests.factories import ClinicianFactory

    admin = ClinicianFactory.create(clinic=patient.clinic, role=Clinician.Role.CLINIC_ADMIN)
    docs = "/api/v1/clinician/consent-documents/"
    admin_client = api_client_for(admin.user)
    created = admin_client.post(
        docs, {"kind": "terms", "title": "T", "body": "T", "required": True}
    )
    assert admin_client.post(f"{docs}{created.json()['id']}/publish/").status_code == 200

    english, spanish = _in_both(patient, lambda: patient_client.get("/api/v1/me/plan/"))
    assert english.status_code == spanish.status_code == 403
    assert english.json()["code"] == spanish.json()["code"] == "consent_required"
    assert spanish.json()["detail"] == (
        "Lea y acepte los términos actualizados de su clínica para continuar."
    )

    _speaks(patient, "es")
    declined = patient_client.post(
        f"/api/v1/me/consents/{created.json()['id']}/", {"decision": "declined"}
    )
    assert declined.status_code == 400
    assert declined.json()["code"] == "consent_required_document"
    assert declined.json()["detail"].startswith("Este documento es obligatorio")


def test_registration_errors_follow_the_phones_language():
    body = {"code": "NOPE-NOPE", "email": "sam.new@example.com", "password": "a long passphrase 7"}
    english = Client().post("/api/v1/auth/register/", body, content_type="application/json")
    spanish = Client().post(
        "/api/v1/auth/register/", body, content_type="application/json", HTTP_ACCEPT_LANGUAGE="es"
    )
    assert english.status_code == spanish.status_code == 400
    assert english.json()["errors"][0]["code"] == spanish.json()["errors"][0]["code"] == "invalid"
    assert _message(english.json(), "code") == "This code is unknown, expired or already used."
    assert _message(spanish.json(), "code") == (
        "Este código no existe, ha caducado o ya se ha usado."
    )


# --------------------------------------------------------------------------- guards


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1024)
def test_the_guards_before_any_token_follow_accept_language(patient_client, patient):
    big = "x" * 2048
    english = Client().post("/api/v1/logs/", big, content_type="application/json")
    spanish = Client().post(
        "/api/v1/logs/", big, content_type="application/json", HTTP_ACCEPT_LANGUAGE="es"
    )
    assert english.status_code == spanish.status_code == 413
    assert english.json()["detail"] == "The request body is larger than 1 KB."
    assert spanish.json()["detail"] == "El cuerpo de la solicitud supera 1 KB."
    assert "Accept-Language" in spanish["Vary"]

    nul = Client().get("/api/v1/safety/rules/", {"lang": "a\x00"}, HTTP_ACCEPT_LANGUAGE="es")
    assert nul.status_code == 400
    assert (
        nul.json()["detail"] == "Los parámetros de la consulta no pueden contener caracteres NUL."
    )

    # The JSON parser runs in the view, in the patient's own language.
    _speaks(patient, "es")
    body = '{"date": "2026-11-20", "pain": 4, "notes": "a\\u0000b"}'
    parsed = patient_client.post("/api/v1/logs/", body, content_type="application/json")
    assert parsed.status_code == 400
    assert parsed.json()["code"] == "parse_error"
    assert parsed.json()["detail"] == (
        "El texto no puede contener caracteres NUL ni sustitutos sueltos."
    )
