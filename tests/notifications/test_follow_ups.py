"""The safety follow-up: a few hours after emergency or urgent advice the patient is asked
whether they were seen (feed, push, and email when the patient's channels include it),
once, and the answer lands on the alert's timeline and page."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Literal

import pytest
import time_machine
from django.core import mail
from django.db import transaction

from notifications import follow_ups
from notifications.models import Delivery, FeedItem, ReminderSettings, SafetyFollowUp
from patients.models import AuditEvent, AuthToken, Patient
from rehab.models import Alert, AlertEvent, DailyLog
from rehab.safety import Firing
from rehab.services import alerts as alert_services
from tests.factories import PatientFactory, UserFactory
from tests.notifications.test_delivery import _run_at_once
from tests.notifications.test_fanout import ANDROID_TOKEN

pytestmark = pytest.mark.django_db

RAISED = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
FEED = "/api/v1/me/notifications/"


def raise_alert(
    patient: Patient,
    *,
    severity: Literal["emergency", "urgent"] = "emergency",
    advice: str = "rf_ces",
) -> Alert:
    log = DailyLog.objects.create(patient=patient, date=date(2026, 11, 20), pain=5)
    firing = Firing(
        rule_id="RF-CES-01" if severity == "emergency" else "RF-INF-01",
        version=1,
        severity=severity,
        basis={},
        message_key=advice,
    )
    with time_machine.travel(RAISED, tick=False), transaction.atomic():
        return alert_services.alert_raise(
            patient=patient,
            firing=firing,
            log=log,
            fired_on=log.date,
            # What the app showed (docs/safety-path.md § 8.6).
            told=alert_services.Told(message_key=advice, language="en" if advice else ""),
        ).alert


def at(hours: float) -> time_machine.travel:
    return time_machine.travel(RAISED + timedelta(hours=hours), tick=False)


def phone(patient: Patient) -> None:
    assert patient.user is not None
    token, _ = AuthToken.objects.create(user=patient.user)
    patient.user.push_devices.create(auth_token=token, platform="android", token=ANDROID_TOKEN)


def test_it_asks_once_after_the_delay_by_push_and_in_the_feed(
    push_providers, patient, run_published, django_capture_on_commit_callbacks
):
    phone(patient)
    alert = raise_alert(patient)
    assert alert.advice_message_key == "rf_ces"

    with at(3.9):
        assert follow_ups.follow_ups_sweep() == 0
    follow_up = SafetyFollowUp.objects.get(alert=alert)
    assert follow_up.due_at == RAISED + timedelta(hours=4)
    with at(4), django_capture_on_commit_callbacks(execute=True):
        assert follow_ups.follow_ups_sweep() == 1
        assert follow_ups.follow_ups_sweep() == 0

    follow_up.refresh_from_db()
    assert follow_up.status == "asked"
    item = FeedItem.objects.get(follow_up=follow_up)
    push = Delivery.objects.get(feed_item=item, channel="fcm")
    assert (push.kind, push.status) == ("safety_follow_up", "sent")
    # The default channels are push and email: the question is emailed too, once.
    emailed = Delivery.objects.get(feed_item=item, channel="email")
    assert (emailed.address, emailed.status) == (patient.email, "sent")
    (email,) = mail.outbox
    assert email.to == [patient.email]
    assert email.subject == "Were you seen?"
    assert "Emergency Department" in email.body


def test_it_emails_the_question_in_the_patients_language_without_an_unsubscribe_link(
    patient, run_published, django_capture_on_commit_callbacks
):
    patient.language = "es"
    patient.save()
    raise_alert(patient)
    with at(4), django_capture_on_commit_callbacks(execute=True):
        assert follow_ups.follow_ups_sweep() == 1
    (email,) = mail.outbox
    assert email.subject == "¿Le han atendido?"
    assert "Urgencias" in email.body
    # A safety message: never unsubscribable (docs/safety-path.md, "Safety follow-up").
    assert "List-Unsubscribe" not in email.extra_headers
    assert "/unsubscribe/" not in email.body


def test_it_asks_a_patient_who_chose_push_only_by_push_and_the_feed_alone(
    push_providers, patient, run_published, django_capture_on_commit_callbacks
):
    phone(patient)
    ReminderSettings.objects.create(patient=patient, channels="push")
    raise_alert(patient)
    with at(4), django_capture_on_commit_callbacks(execute=True):
        assert follow_ups.follow_ups_sweep() == 1
    item = FeedItem.objects.get(kind="safety_follow_up")
    assert list(Delivery.objects.filter(feed_item=item).values_list("channel", flat=True)) == [
        "fcm"
    ]
    assert mail.outbox == []


def test_it_emails_a_patient_who_chose_push_only_but_has_no_device(
    patient, run_published, django_capture_on_commit_callbacks
):
    # Every phone signed out: push alone would leave the question in an unopened app.
    ReminderSettings.objects.create(patient=patient, channels="push")
    raise_alert(patient)
    with at(4), django_capture_on_commit_callbacks(execute=True):
        assert follow_ups.follow_ups_sweep() == 1
    item = FeedItem.objects.get(kind="safety_follow_up")
    assert list(Delivery.objects.filter(feed_item=item).values_list("channel", flat=True)) == [
        "email"
    ]
    (email,) = mail.outbox
    assert email.to == [patient.email]


def test_it_asks_a_patient_without_a_device_by_email_even_with_every_reminder_off(
    patient, run_published, django_capture_on_commit_callbacks
):
    ReminderSettings.objects.create(
        patient=patient,
        daily_log=False,
        questionnaire_due=False,
        exercise_days=False,
        missed_log_email=False,
        channels="email",
    )
    raise_alert(patient, severity="urgent", advice="rf_inf")
    with at(4), django_capture_on_commit_callbacks(execute=True):
        assert follow_ups.follow_ups_sweep() == 1
    (email,) = mail.outbox
    assert "GP" in email.body


def test_no_follow_up_without_advice_or_for_routine_alerts(patient):
    raise_alert(patient, advice="")
    with at(5):
        assert follow_ups.follow_ups_sweep() == 0
    assert not SafetyFollowUp.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_ask_each_patient_once(clinic, clinician, run_published):
    patients = [
        PatientFactory.create(clinic=clinic, user=UserFactory.create(), care_team=[clinician])
        for _ in range(8)
    ]
    for patient in patients:
        raise_alert(patient)
    with at(0):
        follow_ups.follow_ups_plan(now=RAISED)

    sweep: Callable[[], int] = follow_ups.follow_ups_sweep
    with at(4.5):
        asked = _run_at_once(sweep, sweep)

    assert sum(asked) == 8, asked
    assert set(SafetyFollowUp.objects.values_list("status", flat=True)) == {"asked"}
    assert FeedItem.objects.filter(kind="safety_follow_up").count() == 8


def test_a_restricted_patient_is_never_asked(patient, other_patient):
    # Recorded, then the record is restricted before the question is due.
    raise_alert(patient)
    with at(1):
        follow_ups.follow_ups_sweep()
    Patient.objects.filter(pk=patient.pk).update(restricted_at=RAISED)
    # Restricted before the sweep ever saw the alert.
    Patient.objects.filter(pk=other_patient.pk).update(restricted_at=RAISED)
    raise_alert(other_patient)

    with at(5):
        assert follow_ups.follow_ups_sweep() == 0

    assert list(SafetyFollowUp.objects.values_list("patient_id", "status")) == [
        (patient.pk, "skipped")
    ]
    assert not FeedItem.objects.exists()
    assert not Delivery.objects.filter(kind="safety_follow_up").exists()


def test_the_answer_lands_on_the_alerts_timeline_and_page(
    patient, patient_client, clinician, client
):
    alert = raise_alert(patient)
    with at(4):
        follow_ups.follow_ups_sweep()
    item = patient_client.get(FEED).json()["results"][0]
    assert item["kind"] == "safety_follow_up"
    question = item["follow_up"]
    assert "emergency_department" in [choice["value"] for choice in question["choices"]]

    answer = patient_client.post(
        f"/api/v1/me/follow-ups/{question['id']}/answer/",
        {"seen_by": "emergency_department"},
        format="json",
    )
    again = patient_client.post(
        f"/api/v1/me/follow-ups/{question['id']}/answer/",
        {"seen_by": "emergency_department"},
        format="json",
    )

    assert answer.status_code == again.status_code == 200
    assert answer.json()["seen_by"] == "emergency_department"
    event = AlertEvent.objects.get(alert=alert, kind="follow_up")
    assert event.actor_id == patient.user_id
    assert event.note == "Emergency Department"
    assert event.data["seen_by"] == "emergency_department"
    assert (
        AuditEvent.objects.filter(
            object_type="safety_follow_up", action="update", patient_id=patient.pk
        ).count()
        == 1
    )
    assert patient_client.get(FEED).json()["results"][0]["read_at"] is not None
    client.force_login(clinician.user)
    page = client.get(f"/dashboard/alerts/{alert.pk}/").content.decode()
    assert "Patient answered the follow-up" in page
    assert "answered <strong>Emergency Department</strong>" in page


def test_a_later_different_answer_is_added_beside_the_first(patient, patient_client):
    alert = raise_alert(patient)
    with at(4):
        follow_ups.follow_ups_sweep()
    follow_up = SafetyFollowUp.objects.get()
    url = f"/api/v1/me/follow-ups/{follow_up.pk}/answer/"

    patient_client.post(url, {"seen_by": "not_yet"}, format="json")
    patient_client.post(url, {"seen_by": "gp"}, format="json")

    answers = AlertEvent.objects.filter(alert=alert, kind="follow_up").order_by("id")
    assert [e.data["seen_by"] for e in answers] == ["not_yet", "gp"]


def test_a_bad_answer_changes_nothing(patient, patient_client):
    raise_alert(patient)
    with at(4):
        follow_ups.follow_ups_sweep()
    url = f"/api/v1/me/follow-ups/{SafetyFollowUp.objects.get().pk}/answer/"

    for body in ({"seen_by": "the moon"}, {}, {"seen_by": "gp", "extra": 1}):
        response = patient_client.post(url, body, format="json")
        assert response.status_code == 400, body

    assert SafetyFollowUp.objects.get().seen_by == ""
    assert not AlertEvent.objects.filter(kind="follow_up").exists()


def test_another_patients_or_an_unasked_follow_up_is_not_found(
    patient, other_patient, patient_client, other_patient_client
):
    raise_alert(patient)
    with at(1):
        follow_ups.follow_ups_sweep()
    url = f"/api/v1/me/follow-ups/{SafetyFollowUp.objects.get().pk}/answer/"

    # Not asked yet: nothing to answer.
    assert patient_client.post(url, {"seen_by": "gp"}, format="json").status_code == 404
    with at(4):
        follow_ups.follow_ups_sweep()
    assert other_patient_client.post(url, {"seen_by": "gp"}, format="json").status_code == 404
    assert SafetyFollowUp.objects.get().seen_by == ""


@pytest.mark.db_owner
def test_operators_see_follow_ups_read_only_in_the_admin(patient):
    from django.test import Client

    raise_alert(patient)
    with at(4):
        follow_ups.follow_ups_sweep()
    operator = UserFactory.create(email="ops@example.com", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(operator)

    listed = client.get("/admin/notifications/safetyfollowup/?status__exact=asked")

    assert listed.status_code == 200
    assert "1 safety follow up" in listed.content.decode()
    follow_up = SafetyFollowUp.objects.get()
    change = client.post(
        f"/admin/notifications/safetyfollowup/{follow_up.pk}/change/", {"status": "due"}
    )
    assert change.status_code == 403


def test_a_follow_up_left_unasked_shows_on_health(patient, client):
    raise_alert(patient)
    with at(1):
        follow_ups.follow_ups_plan(now=RAISED)

    with at(4.01):
        assert client.get("/health/").json()["notifications"]["overdue_follow_ups"] == 0
    with at(4.5):
        health = client.get("/health/").json()["notifications"]
        assert health["overdue_follow_ups"] == 1
        assert health["ok"] is False
        follow_ups.follow_ups_sweep()
        assert client.get("/health/").json()["notifications"]["overdue_follow_ups"] == 0
