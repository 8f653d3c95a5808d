"""What a patient reads, in their language (docs/app-developers.md § Languages): safety
advice and reminders, the English beside unreviewed translations, the offline catalogue
per language, error messages, and the missed-log reminder email."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
import time_machine
from django.contrib.admin.models import LogEntry
from django.core import mail
from django.test import Client

from rehab import tasks
from rehab.models import Alert, DailyLog, TranslationReview
from rehab.safety import FALL_REMINDER, MESSAGES
from rehab.services import safety as safety_services
from rehab.services.translations import translations_mark_reviewed
from rehab.translations import SAFETY_TEXTS, safety_text
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

LOGS = "/api/v1/logs/"
RULES = "/api/v1/safety/rules/"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TODAY = date(2026, 11, 20)
CES_ES = safety_text("ces", "es")


@pytest.fixture(autouse=True)
def _frozen_time():
    with time_machine.travel(NOW, tick=False):
        yield


def _log(**safety: Any) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "date": TODAY.isoformat(), "pain": 6, "safety": safety}


def _speaks(patient: Any, language: str) -> None:
    patient.language = language
    patient.save(update_fields=["language"])


def test_the_spanish_catalogue_translates_every_safety_text():
    assert all(safety_text(key, "es") != text for key, text in SAFETY_TEXTS.items())
    assert "Vaya ahora al servicio de Urgencias" in CES_ES
    assert safety_text("ces", "en") == MESSAGES["ces"]


# --------------------------------------------------------------------------- advice


def test_it_answers_safety_advice_in_the_patients_language(patient_client, patient):
    _speaks(patient, "es")
    response = patient_client.post(LOGS, _log(saddle_numbness="new_or_worse"))
    assert response.status_code == 201, response.json()
    advice = response.json()["safety_advice"]
    assert advice["severity"] == "emergency"
    assert (advice["message_key"], advice["language"]) == ("ces", "es")
    assert advice["message"] == CES_ES
    # Nobody has reviewed the Spanish yet: the English is shown beside it.
    assert advice["message_en"] == MESSAGES["ces"]

    # Stored as shown, and the alert records the language the patient was shown.
    log = DailyLog.objects.get(pk=response.json()["id"])
    assert log.safety_advice == advice
    safety_services.log_evaluate(log_id=log.pk)
    alert = Alert.objects.get(patient=patient, rule="RF-CES-01")
    assert (alert.advice_message_key, alert.advice_language) == ("ces", "es")


def test_a_reviewed_translation_is_shown_without_the_english(patient_client, patient):
    _speaks(patient, "es")
    reviewer = UserFactory.create(email="reviewer@example.com")
    assert len(translations_mark_reviewed(reviewer=reviewer, language="es", keys=["ces"])) == 1
    # Marking again records nothing new.
    assert translations_mark_reviewed(reviewer=reviewer, language="es", keys=["ces"]) == []

    advice = patient_client.post(LOGS, _log(saddle_numbness="new_or_worse")).json()["safety_advice"]
    assert advice["message"] == CES_ES
    assert "message_en" not in advice


def test_a_changed_translation_is_unreviewed_again(patient_client, patient):
    _speaks(patient, "es")
    reviewer = UserFactory.create(email="reviewer@example.com")
    # A review of an earlier wording of the translation: another hash than today's.
    TranslationReview.objects.create(
        language="es",
        message_key="ces",
        translation_hash="0" * 64,
        source_text=MESSAGES["ces"],
        translated_text="Una traducción anterior.",
        reviewed_by=reviewer,
    )
    advice = patient_client.post(LOGS, _log(saddle_numbness="new_or_worse")).json()["safety_advice"]
    assert advice["message_en"] == MESSAGES["ces"]


def test_it_falls_back_to_accept_language_then_english(patient_client, patient):
    assert patient.language == ""
    day = TODAY.toordinal()

    def advice(**headers: str) -> dict[str, Any]:
        nonlocal day
        day -= 1
        body = {**_log(saddle_numbness="new_or_worse"), "date": date.fromordinal(day).isoformat()}
        response = patient_client.post(LOGS, body, **headers)
        assert response.status_code == 201, response.json()
        assert "Accept-Language" in response["Vary"]
        given: dict[str, Any] = response.json()["safety_advice"]
        return given

    assert advice(HTTP_ACCEPT_LANGUAGE="es-MX,es;q=0.9,en;q=0.5")["language"] == "es"
    assert advice(HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9")["language"] == "en"
    english = advice()
    assert (english["language"], english["message"]) == ("en", MESSAGES["ces"])
    assert "message_en" not in english


def test_the_profile_language_wins_over_accept_language(patient_client, patient):
    _speaks(patient, "es")
    response = patient_client.post(
        LOGS, _log(saddle_numbness="new_or_worse"), HTTP_ACCEPT_LANGUAGE="en-GB,en"
    )
    assert response.json()["safety_advice"]["language"] == "es"


def test_it_translates_the_fall_reminder_with_the_english_after_it(patient_client, patient):
    _speaks(patient, "es")
    response = patient_client.post(LOGS, _log(injury="minor"))
    assert response.status_code == 201
    reminder = response.json()["safety_reminder"]
    spanish = safety_text("fall_reminder", "es")
    assert reminder == f"{spanish}\n\n{FALL_REMINDER}"


def test_the_advice_note_is_translated_with_its_english_beside(patient_client, patient):
    _speaks(patient, "es")
    response = patient_client.post(LOGS, _log(injury="minor", unexplained_weight_loss=True))
    advice = response.json()["safety_advice"]
    assert (advice["message_key"], advice["language"]) == ("weight_loss", "es")
    assert advice["message"] == safety_text("weight_loss", "es")
    assert advice["note"] == safety_text("fall_reminder", "es")
    assert advice["note_en"] == FALL_REMINDER
    assert advice["message_en"] == MESSAGES["weight_loss"]


def test_a_request_in_spanish_leaves_the_next_one_in_english(patient_client, patient):
    _speaks(patient, "es")
    patient_client.post(LOGS, _log(saddle_numbness="new_or_worse"))
    # The same thread serves an anonymous request next: nothing of the patient's remains.
    response = Client().get(RULES)
    assert response.json()["language"] == "en"


# --------------------------------------------------------------------------- catalogue


def test_the_catalogue_serves_each_language_with_its_own_version_and_etag():
    english = Client().get(RULES)
    spanish = Client().get(RULES, {"lang": "es"})
    assert english.status_code == spanish.status_code == 200
    assert english.json()["language"] == "en"
    assert spanish.json()["language"] == "es"
    assert spanish.json()["messages"]["ces"] == CES_ES
    assert spanish.json()["fall_reminder"] == safety_text("fall_reminder", "es")
    assert english.json()["messages"]["ces"] == MESSAGES["ces"]
    assert english.json()["version"] != spanish.json()["version"]
    assert english["ETag"] != spanish["ETag"]
    assert "Accept-Language" in spanish["Vary"]
    # Unreviewed: the English beside each translation; none in the English catalogue.
    assert spanish.json()["english_beside"]["ces"] == MESSAGES["ces"]
    assert "english_beside" not in english.json()

    # Accept-Language picks the language when `lang` is absent.
    by_header = Client().get(RULES, HTTP_ACCEPT_LANGUAGE="es-ES")
    assert by_header["ETag"] == spanish["ETag"]
    # Each ETag revalidates its own language only.
    again = Client().get(RULES, {"lang": "es"}, HTTP_IF_NONE_MATCH=spanish["ETag"])
    assert again.status_code == 304
    assert Client().get(RULES, HTTP_IF_NONE_MATCH=spanish["ETag"]).status_code == 200


def test_a_review_changes_the_spanish_catalogue_and_its_etag():
    before = Client().get(RULES, {"lang": "es"})
    reviewer = UserFactory.create(email="reviewer@example.com")
    translations_mark_reviewed(reviewer=reviewer, language="es", keys=["ces"])
    after = Client().get(RULES, {"lang": "es"})
    assert "ces" not in after.json()["english_beside"]
    assert after["ETag"] != before["ETag"]
    assert Client().get(RULES, {"lang": "es"}, HTTP_IF_NONE_MATCH=before["ETag"]).status_code == 200


def test_the_catalogue_refuses_an_unknown_language():
    response = Client().get(RULES, {"lang": "fr"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert response.json()["errors"][0]["field"] == "lang"


# --------------------------------------------------------------------------- errors


def test_error_messages_are_in_spanish_with_the_same_code(patient_client, patient):
    english = patient_client.post(LOGS, {**_log(), "pain": 11}).json()
    _speaks(patient, "es")
    spanish = patient_client.post(LOGS, {**_log(), "pain": 11}).json()
    assert english["code"] == spanish["code"] == "invalid"
    assert (english["detail"], spanish["detail"]) == ("Invalid input.", "Datos no válidos.")
    assert english["errors"][0]["code"] == spanish["errors"][0]["code"] == "max_value"
    # DRF's own message, in its Spanish.
    assert spanish["errors"][0]["message"] != english["errors"][0]["message"]
    assert "10" in spanish["errors"][0]["message"]

    future = patient_client.post(LOGS, {**_log(), "date": "2026-11-21"}).json()
    assert future["errors"][0]["message"] == "La fecha es posterior a su fecha de hoy (2026-11-20)."

    missing = patient_client.get(f"{LOGS}{uuid.uuid4()}/")
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
    assert missing.json()["detail"] == "No encontrado."
    # No view authenticates an unknown URL: only the phone's Accept-Language is known there.
    unknown = patient_client.get("/api/v1/no-such-thing/", HTTP_ACCEPT_LANGUAGE="es")
    assert (unknown.json()["code"], unknown.json()["detail"]) == ("not_found", "No encontrado.")


def test_a_clinicians_errors_stay_in_english(clinician_client, patient):
    _speaks(patient, "es")
    response = clinician_client.get(f"/api/v1/clinician/patients/{uuid.uuid4()}/")
    assert response.json()["detail"] == "Not found."


# --------------------------------------------------------------------------- emails


def test_the_missed_log_reminder_is_emailed_in_the_patients_language(patient, run_published):
    _speaks(patient, "es")
    DailyLog.objects.create(patient=patient, date=date(2026, 11, 16), pain=3)  # 3 days missed
    assert tasks.missed_log_reminders_task() == 1
    (message,) = mail.outbox
    assert message.subject == "¿Qué tal se encuentra?"
    assert "Hace 3 días que no recibimos su registro diario" in message.body
    assert "vaya a Urgencias ahora" in message.body


# --------------------------------------------------------------------------- admin


def test_the_admin_lists_unreviewed_translations_and_records_a_review():
    operator = UserFactory.create(email="ops@example.com", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(operator)
    url = "/admin/rehab/translationreview/"
    page = client.get(url)
    assert page.status_code == 200
    assert CES_ES.encode() in page.content
    assert b'value="es:ces"' in page.content

    response = client.post(f"{url}review/", {"translation": ["es:ces", "es:fall_reminder"]})
    assert response.status_code == 302
    reviews = TranslationReview.objects.order_by("message_key")
    assert [(r.message_key, r.reviewed_by) for r in reviews] == [
        ("ces", operator),
        ("fall_reminder", operator),
    ]
    assert LogEntry.objects.filter(user=operator).count() == 2
    assert b'value="es:ces"' not in client.get(url).content


def test_only_a_reviewer_may_mark_translations_reviewed():
    staff = UserFactory.create(email="staff@example.com", is_staff=True)
    client = Client()
    client.force_login(staff)
    response = client.post("/admin/rehab/translationreview/review/", {"translation": ["es:ces"]})
    assert response.status_code == 403
    assert not TranslationReview.objects.exists()
