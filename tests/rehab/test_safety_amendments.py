"""Nothing a patient tells us about a red flag is dropped (docs/safety-path.md): a version
edited before any worker evaluated it, and a body answered 409, still raise their alerts;
an edit never withdraws a red-flag alert; every alert says what the patient was told.

The worker's services are called in-process here, as a worker that comes back after an
outage would run them; test_worker_reliability.py races a real worker against the edit.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client

from config import enqueue
from patients.models import AuditEvent
from rehab.models import Alert, AlertOccurrence, DailyLog, SafetySubmission
from rehab.safety import FALL_REMINDER, MESSAGES, SUPPRESSED_REMINDER
from rehab.services import safety
from rehab.services import sweeps as sweep_services
from tests.rehab.factories_record import AssessedMarkFactory

pytestmark = pytest.mark.django_db

LOGS = "/api/v1/logs/"
ALERTS = "/api/v1/clinician/alerts/"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TODAY = date(2026, 11, 20)
BLADDER: dict[str, Any] = {"bladder_change": "new_or_worse"}


@pytest.fixture(autouse=True)
def _frozen_time():
    with time_machine.travel(NOW, tick=False):
        yield


def post(client: Any, *, day: date = TODAY, log_id: str | None = None, **fields: Any) -> Any:
    payload = {"id": log_id or str(uuid.uuid4()), "date": day.isoformat(), "pain": 5, **fields}
    return client.post(LOGS, payload)


def worker_catches_up() -> None:
    """What a worker does when it comes back: every owed log and submission, once."""
    for log_id in DailyLog.objects.filter(evaluated_at__isnull=True).values_list("pk", flat=True):
        safety.log_evaluate(log_id=log_id)
    owed = SafetySubmission.objects.filter(evaluated_at__isnull=True)
    for submission_id in owed.values_list("pk", flat=True):
        safety.submission_evaluate(submission_id=submission_id)


# --------------------------------------------------------------------------- §8.1 edits


def test_it_raises_the_red_flag_of_a_version_edited_away_before_evaluation(patient_client, patient):
    created = post(patient_client, safety=BLADDER)
    assert created.status_code == 201
    assert created.json()["safety_advice"]["rules"] == ["RF-CES-02"]
    edited = patient_client.patch(
        f"{LOGS}{created.json()['id']}/", {"safety": {"bladder_change": "no"}}
    )
    assert edited.status_code == 200
    assert edited.json()["safety_advice"] is None

    worker_catches_up()

    alert = Alert.objects.get(patient=patient)
    assert (alert.rule, alert.severity, alert.status) == ("RF-CES-02", "emergency", "open")
    assert str(alert.log_id) == created.json()["id"]
    assert alert.basis["safety.bladder_change"] == "new_or_worse"
    submission = alert.basis["submission"]
    assert (submission["kind"], submission["version"]) == ("superseded", 1)
    assert submission["answers"]["safety"]["bladder_change"] == "new_or_worse"
    assert (alert.advice_message_key, alert.advice_language) == ("ces", "en")
    occurrence = AlertOccurrence.objects.get(alert=alert)
    assert (occurrence.source, occurrence.log_version) == ("superseded", 1)
    # The escalation clock runs from when the patient sent those answers.
    assert alert.escalation_due_at == NOW + timedelta(minutes=60)
    assert alert.notify_due
    assert not SafetySubmission.objects.filter(evaluated_at__isnull=True).exists()


def test_it_keeps_every_unevaluated_version_of_a_log_edited_twice(patient_client, patient):
    created = post(patient_client, safety={"saddle_numbness": "new_or_worse"}).json()
    url = f"{LOGS}{created['id']}/"
    patient_client.patch(url, {"safety": {"saddle_numbness": "no", **BLADDER}})
    patient_client.patch(url, {"safety": {"bladder_change": "no"}})

    worker_catches_up()

    assert sorted(Alert.objects.values_list("rule", flat=True)) == ["RF-CES-01", "RF-CES-02"]
    versions = dict(AlertOccurrence.objects.values_list("alert__rule", "log_version"))
    assert versions == {"RF-CES-01": 1, "RF-CES-02": 2}


def test_it_keeps_no_submission_for_an_edit_after_evaluation(patient_client):
    created = post(patient_client, safety=BLADDER).json()
    worker_catches_up()
    patient_client.patch(f"{LOGS}{created['id']}/", {"pain": 2})

    assert not SafetySubmission.objects.exists()


def test_an_edit_never_withdraws_a_red_flag_alert(patient_client):
    created = post(patient_client, safety=BLADDER).json()
    worker_catches_up()
    patient_client.patch(f"{LOGS}{created['id']}/", {"safety": {"bladder_change": "no"}})
    worker_catches_up()

    alert = Alert.objects.get()
    assert (alert.rule, alert.status) == ("RF-CES-02", "open")


def test_a_superseded_version_is_evaluated_with_the_full_rules(patient_client, patient):
    # Night pain on 3 of 7 nights is a background-only rule: the superseded third night
    # still counts, as it would have had a worker reached it in time.
    for days in (2, 1):
        post(patient_client, day=TODAY - timedelta(days=days), sleep="constant_any_position")
    worker_catches_up()
    third = post(patient_client, sleep="constant_any_position").json()
    patient_client.patch(f"{LOGS}{third['id']}/", {"sleep": "disturbed"})

    worker_catches_up()

    alert = Alert.objects.get(rule="RF-NP-01")
    assert alert.basis["submission"]["kind"] == "superseded"
    assert alert.advice_message_key == ""  # the patient was told nothing for it


def test_it_evaluates_a_submission_once(patient_client):
    created = post(patient_client, safety=BLADDER).json()
    patient_client.patch(f"{LOGS}{created['id']}/", {"safety": {"bladder_change": "no"}})
    submission = SafetySubmission.objects.get()

    assert safety.submission_evaluate(submission_id=submission.pk).status == "evaluated"
    assert safety.submission_evaluate(submission_id=submission.pk).status == "already"
    SafetySubmission.objects.update(evaluated_at=None)
    safety.submission_evaluate(submission_id=submission.pk)
    assert AlertOccurrence.objects.count() == 1
    assert safety.submission_evaluate(submission_id=uuid.uuid4()).status == "missing"


def test_it_gives_up_on_a_submission_that_keeps_failing(patient_client, monkeypatch):
    created = post(patient_client, safety=BLADDER).json()
    patient_client.patch(f"{LOGS}{created['id']}/", {"safety": {"bladder_change": "no"}})
    submission = SafetySubmission.objects.get()

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("rule bug")

    monkeypatch.setattr(safety, "full_contexts", broken)
    for _ in range(safety.MAX_EVALUATION_ATTEMPTS):
        with pytest.raises(RuntimeError):
            safety.submission_evaluate(submission_id=submission.pk)
    assert safety.submission_evaluate(submission_id=submission.pk).status == "failed"
    assert sweep_services.safety_status()["failed_submissions"] == 1

    monkeypatch.undo()
    assert safety.submission_evaluation_retry(submission_ids=[submission.pk]) == [submission.pk]
    assert safety.submission_evaluate(submission_id=submission.pk).status == "evaluated"
    assert Alert.objects.get().rule == "RF-CES-02"


def test_the_sweeper_finds_submissions_whose_message_was_lost(
    patient_client, monkeypatch, django_capture_on_commit_callbacks
):
    from rehab import tasks

    sent: list[str] = []
    monkeypatch.setattr(tasks.submission_evaluate_task, "delay", sent.append)
    created = post(patient_client, safety=BLADDER).json()
    with django_capture_on_commit_callbacks(execute=True):
        patient_client.patch(f"{LOGS}{created['id']}/", {"safety": {"bladder_change": "no"}})
    submission = SafetySubmission.objects.get()
    assert sent == [str(submission.pk)]  # published on commit

    sent.clear()
    assert sweep_services.unevaluated_submissions_sweep() == 0  # within the grace period
    with time_machine.travel(NOW + enqueue.SWEEP_GRACE + timedelta(seconds=1), tick=False):
        assert sweep_services.unevaluated_submissions_sweep() == 1
        assert sweep_services.safety_status()["overdue_submissions"] == 0  # not yet 2 minutes
    assert sent == [str(submission.pk)]
    with time_machine.travel(NOW + timedelta(minutes=3), tick=False):
        assert sweep_services.safety_status()["overdue_submissions"] == 1


# --------------------------------------------------------------------------- §8.1 409s


def test_a_409_for_a_taken_date_carries_its_advice_and_raises_its_red_flag(patient_client, patient):
    stored = post(patient_client).json()
    response = post(patient_client, safety=BLADDER)

    assert response.status_code == 409
    body = response.json()
    assert body["existing_id"] == stored["id"]
    assert body["safety_advice"]["severity"] == "emergency"
    assert body["safety_advice"]["rules"] == ["RF-CES-02"]
    assert body["safety_advice"]["message"] == MESSAGES["ces"]

    worker_catches_up()

    alert = Alert.objects.get(patient=patient)
    assert (alert.rule, str(alert.log_id)) == ("RF-CES-02", stored["id"])
    submission = alert.basis["submission"]
    assert submission["kind"] == "refused"
    assert submission["answers"]["safety"]["bladder_change"] == "new_or_worse"
    assert AlertOccurrence.objects.get().source == "refused"
    # The stored log itself is untouched.
    assert DailyLog.objects.get().safety["bladder_change"] == "no"
    assert AuditEvent.objects.filter(object_type="safety_submission", action="create").count() == 1


def test_a_409_for_a_reused_id_raises_its_red_flag_on_that_log(patient_client):
    stored = post(patient_client).json()
    response = post(patient_client, log_id=stored["id"], pain=7, safety=BLADDER)

    assert response.status_code == 409
    assert response.json()["existing_id"] == stored["id"]
    worker_catches_up()
    assert str(Alert.objects.get(rule="RF-CES-02").log_id) == stored["id"]


def test_a_409_retried_is_one_submission(patient_client):
    post(patient_client)
    conflicting: dict[str, Any] = {"safety": BLADDER}
    for _ in range(3):
        assert post(patient_client, **conflicting).status_code == 409

    assert SafetySubmission.objects.count() == 1
    worker_catches_up()
    assert AlertOccurrence.objects.count() == 1


def test_a_409_raises_only_urgent_and_emergency_rules(patient_client):
    post(patient_client)
    quiet = post(patient_client, sleep="constant_any_position")
    assert quiet.status_code == 409
    assert quiet.json()["safety_advice"] is None
    assert not SafetySubmission.objects.exists()

    assert post(patient_client, safety={"weakness": "foot_drop"}).status_code == 409
    worker_catches_up()
    assert list(Alert.objects.values_list("rule", flat=True)) == ["RF-NEU-01"]


def test_a_retry_is_not_a_409_and_keeps_nothing(patient_client):
    first = post(patient_client, safety=BLADDER)
    again = patient_client.post(
        LOGS, {"id": first.json()["id"], "date": TODAY.isoformat(), "pain": 5, "safety": BLADDER}
    )
    assert (first.status_code, again.status_code) == (201, 200)
    assert not SafetySubmission.objects.exists()


def test_an_invalid_conflicting_body_is_a_400_and_keeps_nothing(patient_client):
    post(patient_client)
    response = post(patient_client, pain=11, safety=BLADDER)

    assert response.status_code == 400
    assert not SafetySubmission.objects.exists()


def test_a_409_does_not_attach_alerts_to_another_patients_log(
    patient_client, other_patient_client, patient
):
    theirs = post(other_patient_client).json()
    response = post(patient_client, log_id=theirs["id"], safety=BLADDER)

    assert response.status_code == 409
    worker_catches_up()
    alert = Alert.objects.get()
    assert alert.patient == patient
    assert alert.log_id is None


# --------------------------------------------------------------------------- §8.3, §8.6


def test_it_reminds_the_patient_after_a_fall(patient_client):
    response = post(patient_client, safety={"injury": "minor"})

    assert response.status_code == 201
    assert response.json()["safety_advice"] is None
    assert response.json()["safety_reminder"] == FALL_REMINDER


def test_it_sends_both_reminders_after_a_fall_under_a_mark(patient_client, patient, clinician):
    AssessedMarkFactory.create(
        patient=patient, symptom="both_legs", until=TODAY + timedelta(days=5), created_by=clinician
    )
    response = post(patient_client, safety={"injury": "minor", "both_legs": "unchanged_assessed"})

    assert response.json()["safety_reminder"] == f"{SUPPRESSED_REMINDER} {FALL_REMINDER}"


def test_a_fall_with_weakness_is_an_emergency_without_the_reminder(patient_client):
    response = post(patient_client, safety={"injury": "minor", "weakness": "one_leg_new"})
    advice = response.json()["safety_advice"]

    assert advice["severity"] == "emergency"
    assert advice["rules"] == ["RF-FX-03", "RF-NEU-01"]
    assert (advice["message_key"], advice["language"]) == ("fall_neuro", "en")
    assert response.json()["safety_reminder"] is None


def test_every_alert_carries_what_the_patient_was_told(patient_client, clinician_client):
    post(patient_client, safety={"weakness": "foot_drop", "thoracic_or_band_pain": True})
    worker_catches_up()

    for alert in Alert.objects.all():
        # One message was shown for the log: the most severe rule's (RF-NEU-01 < RF-TH-01).
        assert (alert.advice_message_key, alert.advice_language) == ("weakness", "en")
    alert = Alert.objects.get(rule="RF-TH-01")
    detail = clinician_client.get(f"{ALERTS}{alert.pk}/").json()
    assert detail["patient_told"] == {"message_key": "weakness", "language": "en"}
    assert detail["occurrences"][0]["source"] == "log"
    assert detail["occurrences"][0]["patient_told"]["message_key"] == "weakness"


# --------------------------------------------------------------------------- dashboard


def test_the_alert_page_shows_what_the_patient_first_said(patient_client, clinician, patient):
    created = post(patient_client, safety=BLADDER).json()
    patient_client.patch(f"{LOGS}{created['id']}/", {"safety": {"bladder_change": "no"}})
    worker_catches_up()
    alert = Alert.objects.get()
    web = Client()
    web.force_login(clinician.user)

    page = web.get(f"/dashboard/alerts/{alert.pk}/").content.decode()

    assert "What the patient first said" in page
    assert "version 1 of the log" in page
    row = page[page.index("safety.bladder_change") :]
    assert row.index("new_or_worse") < row.index("<td>no</td>")


def test_the_alert_page_shows_a_refused_submission(patient_client, clinician):
    post(patient_client)
    post(patient_client, safety=BLADDER)
    worker_catches_up()
    web = Client()
    web.force_login(clinician.user)

    page = web.get(f"/dashboard/alerts/{Alert.objects.get().pk}/").content.decode()

    assert "refused (409)" in page
    assert "safety.bladder_change" in page


def test_an_ordinary_alert_page_tells_no_story(patient_client, clinician):
    post(patient_client, safety=BLADDER)
    worker_catches_up()
    web = Client()
    web.force_login(clinician.user)

    page = web.get(f"/dashboard/alerts/{Alert.objects.get().pk}/").content.decode()

    assert "What the patient first said" not in page
    assert "“ces” advice" in page
