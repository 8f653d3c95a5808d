"""The patient's notifications feed: `GET /api/v1/me/notifications/` and its read marks."""

from __future__ import annotations

from datetime import date, timedelta
from uuid import uuid4

import pytest
import yaml
from django.utils import timezone

from notifications import services
from notifications.models import Delivery, FeedItem
from patients.models import AuditEvent, Patient
from rehab.models import MissedLogReminder

pytestmark = pytest.mark.django_db

FEED = "/api/v1/me/notifications/"


def remind(patient: Patient, days_ago: int = 0, missed_days: int = 3) -> FeedItem:
    reminder = MissedLogReminder.objects.create(
        patient=patient,
        streak_from=date(2026, 11, 1) + timedelta(days=days_ago),
        missed_days=missed_days,
    )
    feed_item_id, _ = services.patient_message_plan(
        kind=Delivery.Kind.MISSED_LOG_REMINDER,
        key=f"missed_log_reminder:{reminder.pk}",
        patient_id=patient.pk,
        user_id=patient.user_id,
        object_id=reminder.pk,
        due_at=timezone.now() - timedelta(days=days_ago),
    )
    return FeedItem.objects.get(pk=feed_item_id)


def test_it_lists_the_patients_own_messages_newest_first(patient_client, patient, other_patient):
    older = remind(patient, days_ago=2, missed_days=4)
    newer = remind(patient, days_ago=0, missed_days=3)
    remind(other_patient)

    response = patient_client.get(FEED)

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [item["id"] for item in body["results"]] == [str(newer.pk), str(older.pk)]
    first = body["results"][0]
    assert first["kind"] == "missed_log_reminder"
    assert first["read_at"] is None
    assert first["follow_up"] is None
    assert "3 days" in first["body"]
    assert first["title"]


def test_it_pages_and_refuses_a_bad_page_size(patient_client, patient):
    for n in range(3):
        remind(patient, days_ago=n)

    page = patient_client.get(FEED, {"page_size": 2}).json()
    assert (page["count"], len(page["results"])) == (3, 2)
    assert page["next"]
    bad = patient_client.get(FEED, {"page_size": 500})
    assert bad.status_code == 400
    assert "page_size" in str(bad.json())


def test_reading_the_feed_is_audited(patient_client, patient):
    remind(patient)

    patient_client.get(FEED)

    event = AuditEvent.objects.get(object_type="feed")
    assert (event.action, event.patient_id, event.actor_id) == ("read", patient.pk, patient.user_id)


def test_a_read_mark_is_kept_once_and_audited_once(patient_client, patient):
    item = remind(patient)

    first = patient_client.post(f"{FEED}{item.pk}/read/")
    again = patient_client.post(f"{FEED}{item.pk}/read/")

    assert first.status_code == again.status_code == 200
    assert first.json()["read_at"] is not None
    assert again.json()["read_at"] == first.json()["read_at"]
    assert patient_client.get(FEED).json()["results"][0]["read_at"] == first.json()["read_at"]
    marks = AuditEvent.objects.filter(object_type="feed_item", object_id=str(item.pk))
    assert [(e.action, e.patient_id) for e in marks] == [("update", patient.pk)]


def test_another_patients_message_is_not_found_and_stays_unread(patient_client, other_patient):
    theirs = remind(other_patient)

    response = patient_client.post(f"{FEED}{theirs.pk}/read/")

    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None
    assert AuditEvent.objects.filter(action="denied").exists()


def test_an_unknown_or_malformed_id_is_not_found(patient_client):
    assert patient_client.post(f"{FEED}{uuid4()}/read/").status_code == 404
    assert patient_client.post(f"{FEED}not-a-uuid/read/").status_code == 404


def test_clinicians_and_strangers_have_no_feed(clinician_client, anon_client, patient):
    remind(patient)

    assert clinician_client.get(FEED).status_code == 403
    assert anon_client.get(FEED).status_code == 401


def test_the_feed_is_in_the_schema(client):
    document = yaml.safe_load(client.get("/api/schema/").content)

    assert "get" in document["paths"]["/api/v1/me/notifications/"]
    assert "post" in document["paths"]["/api/v1/me/notifications/{item_id}/read/"]
    assert "post" in document["paths"]["/api/v1/me/follow-ups/{follow_up_id}/answer/"]
