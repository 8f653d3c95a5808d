"""The patient's reminder settings (`/api/v1/me/reminders/`) and the signed one-click
unsubscribe page of reminder emails."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core import mail, signing
from django.utils import timezone

from notifications import reminders, services
from notifications.models import ReminderSettings
from patients.models import AuditEvent
from rehab.models import MissedLogReminder

pytestmark = pytest.mark.django_db

URL = "/api/v1/me/reminders/"
DEFAULTS = {
    "remind_at": "19:00",
    "daily_log": True,
    "questionnaire_due": True,
    "exercise_days": True,
    "missed_log_email": True,
    "channels": "both",
    "quiet_start": None,
    "quiet_end": None,
    "timezone": "Europe/London",
}


def test_it_shows_the_defaults_and_audits_the_read(patient_client, patient):
    response = patient_client.get(URL)
    assert response.status_code == 200
    assert response.json() == DEFAULTS
    event = AuditEvent.objects.filter(object_type="reminder_settings").latest("id")
    assert (event.action, event.patient_id) == (AuditEvent.Action.READ, patient.pk)


def test_it_changes_the_settings_and_audits_the_change(patient_client, patient):
    body = {
        "remind_at": "08:30",
        "exercise_days": False,
        "channels": "email",
        "quiet_start": "22:00",
        "quiet_end": "07:00",
    }
    response = patient_client.patch(URL, body, format="json")
    assert response.status_code == 200, response.json()
    assert response.json() == {**DEFAULTS, **body}
    event = AuditEvent.objects.filter(object_type="reminder_settings").latest("id")
    assert (event.action, event.patient_id) == (AuditEvent.Action.UPDATE, patient.pk)
    assert event.changes["remind_at"] == {"from": "19:00", "to": "08:30"}
    assert event.changes["channels"] == {"from": "both", "to": "email"}
    # Quiet hours switched off again.
    response = patient_client.patch(URL, {"quiet_start": None, "quiet_end": None}, format="json")
    assert response.json()["quiet_start"] is None


@pytest.mark.parametrize(
    "body",
    [
        {"remind_at": "25:00"},
        {"channels": "sms"},
        {"daily_log": "maybe"},
        {"quiet_start": "22:00"},  # no end
        {"quiet_start": "22:00", "quiet_end": "22:00"},
        {"daily_log": False, "timezone": "UTC"},  # unknown field
    ],
)
def test_it_refuses_bad_settings_and_changes_nothing(patient_client, patient, body):
    response = patient_client.patch(URL, body, format="json")
    assert response.status_code == 400, response.json()
    assert "code" in response.json()
    assert not ReminderSettings.objects.filter(patient=patient).exists()
    assert not AuditEvent.objects.filter(
        object_type="reminder_settings", action=AuditEvent.Action.UPDATE
    ).exists()


def test_only_a_patient_has_reminders_and_only_their_own(
    anon_client, clinician_client, other_patient_client, patient, other_patient
):
    assert anon_client.get(URL).status_code == 401
    assert clinician_client.get(URL).status_code == 403
    assert clinician_client.patch(URL, {"daily_log": False}).status_code == 403
    assert other_patient_client.patch(URL, {"daily_log": False}).status_code == 200
    assert not ReminderSettings.objects.filter(patient=patient).exists()
    assert ReminderSettings.objects.get(patient=other_patient).daily_log is False


def test_the_schema_describes_the_endpoint(client):
    schema = client.get("/api/schema/?format=json").json()
    assert "/api/v1/me/reminders/" in schema["paths"]
    assert "ReminderSettings" in schema["components"]["schemas"]


# --------------------------------------------------------------------------- unsubscribe


def _path(token: str) -> str:
    return f"/unsubscribe/{token}/"


def test_a_get_confirms_and_changes_nothing(client, patient):
    token = reminders.unsubscribe_token(patient_id=patient.pk, what="questionnaire_due")
    response = client.get(_path(token))
    assert response.status_code == 200
    assert b"questionnaire reminders" in response.content
    assert b"<form" in response.content
    assert not ReminderSettings.objects.filter(patient=patient).exists()


def test_a_post_unsubscribes_that_kind_and_is_audited(client, patient):
    token = reminders.unsubscribe_token(patient_id=patient.pk, what="exercise_days")
    response = client.post(_path(token), {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert b"You are unsubscribed" in response.content
    prefs = ReminderSettings.objects.get(patient=patient)
    assert (prefs.exercise_days, prefs.daily_log) == (False, True)
    event = AuditEvent.objects.filter(object_type="reminder_settings").latest("id")
    assert (event.action, event.patient_id, event.actor_id) == (
        AuditEvent.Action.UPDATE,
        patient.pk,
        None,
    )
    assert event.changes == {"exercise_days": {"from": True, "to": False}}
    # Clicking twice is harmless.
    assert client.post(_path(token)).status_code == 200


def test_a_tampered_token_is_a_clear_400(client, patient):
    token = reminders.unsubscribe_token(patient_id=patient.pk, what="daily_log")
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for method in (client.get, client.post):
        response = method(_path(tampered))
        assert response.status_code == 400
        assert b"This link does not work" in response.content
    forged = signing.dumps({"p": str(patient.pk), "k": "daily_log"}, salt="another")
    assert client.post(_path(forged)).status_code == 400
    assert not ReminderSettings.objects.filter(patient=patient).exists()


def test_an_expired_token_is_a_clear_400(client, patient):
    with time_machine.travel(timezone.now() - reminders.UNSUBSCRIBE_MAX_AGE - timedelta(days=1)):
        token = reminders.unsubscribe_token(patient_id=patient.pk, what="daily_log")
    response = client.post(_path(token))
    assert response.status_code == 400
    assert not ReminderSettings.objects.filter(patient=patient).exists()


def test_the_missed_log_email_has_an_unsubscribe_link_that_works(client, patient):
    reminder = MissedLogReminder.objects.create(
        patient=patient, streak_from=timezone.localdate() - timedelta(days=3), missed_days=3
    )
    assert services.missed_log_reminder_send(reminder_id=reminder.pk) is True
    (email,) = mail.outbox
    url = email.extra_headers["List-Unsubscribe"].strip("<>")
    assert email.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert url in email.body
    path = "/" + url.split("://", 1)[1].partition("/")[2]
    assert client.post(path).status_code == 200
    assert ReminderSettings.objects.get(patient=patient).missed_log_email is False
    # The next missed-log reminder is not sent.
    second = MissedLogReminder.objects.create(
        patient=patient, streak_from=timezone.localdate() - timedelta(days=9), missed_days=7
    )
    assert services.missed_log_reminder_send(reminder_id=second.pk) is False
    assert len(mail.outbox) == 1


def test_the_unsubscribe_page_speaks_the_patients_language(client, patient):
    patient.language = "es"
    patient.save()
    token = reminders.unsubscribe_token(patient_id=patient.pk, what="daily_log")
    response = client.get(_path(token))
    assert "¿Dejar de recibir los recordatorios del registro diario?" in response.content.decode()
