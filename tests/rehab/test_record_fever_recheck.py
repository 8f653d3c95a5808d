"""A procedure recorded after the fact re-checks the fevers logged since (RF-INF-02)."""

from __future__ import annotations

import datetime as dt

import pytest

from rehab import tasks
from rehab.models import Alert, AlertOccurrence
from rehab.services import record as services
from rehab.services import safety
from tests.rehab.factories_record import DailyLogFactory

pytestmark = pytest.mark.django_db

INTERVENTIONS = "/api/v1/clinician/patients/{}/interventions/"


@pytest.fixture
def fever_yesterday(patient):
    log = DailyLogFactory.create(
        patient=patient,
        date=patient.local_today() - dt.timedelta(days=1),
        safety={"fever": True},
    )
    assert safety.log_evaluate(log_id=log.pk).status == "evaluated"
    assert set(Alert.objects.values_list("rule", flat=True)) == {"RF-INF-01"}
    return log


@pytest.fixture
def worker(monkeypatch):
    """Runs the enqueued re-check at once, as a worker would."""
    sent: list[str] = []

    def delay(intervention_id: str) -> None:
        sent.append(intervention_id)
        tasks.intervention_fever_recheck_task(intervention_id)

    monkeypatch.setattr(tasks.intervention_fever_recheck_task, "delay", delay)
    return sent


def _record_injection(client, patient, *, days_ago: int, callbacks):
    day = patient.local_today() - dt.timedelta(days=days_ago)
    with callbacks(execute=True):
        response = client.post(
            INTERVENTIONS.format(patient.pk), {"date": day.isoformat(), "kind": "injection"}
        )
    assert response.status_code == 201
    return response.json()


def test_it_raises_an_emergency_for_a_fever_logged_after_a_procedure_recorded_late(
    clinician_client, patient, fever_yesterday, worker, django_capture_on_commit_callbacks
):
    injection = _record_injection(
        clinician_client, patient, days_ago=10, callbacks=django_capture_on_commit_callbacks
    )
    assert worker == [injection["id"]]
    alert = Alert.objects.get(rule="RF-INF-02")
    assert alert.severity == "emergency"
    assert alert.log_id == fever_yesterday.pk
    assert alert.notify_due is True
    assert alert.basis  # the rule's reasoning, with the intervention, is kept
    # The urgent alert stays as it was: nothing else was re-run.
    urgent = Alert.objects.get(rule="RF-INF-01")
    assert urgent.occurrence_count == 1


def test_it_raises_nothing_for_a_procedure_outside_the_six_weeks(
    clinician_client, patient, fever_yesterday, worker, django_capture_on_commit_callbacks
):
    _record_injection(
        clinician_client, patient, days_ago=50, callbacks=django_capture_on_commit_callbacks
    )
    assert len(worker) == 1
    assert set(Alert.objects.values_list("rule", flat=True)) == {"RF-INF-01"}


def test_it_does_not_reraise_other_rules_from_old_logs(
    patient, clinician, fever_yesterday, django_capture_on_commit_callbacks
):
    urgent = Alert.objects.get(rule="RF-INF-01")
    safety.alert_resolve(alert=urgent, actor=clinician.user, disposition="other")
    with django_capture_on_commit_callbacks(execute=False):
        injection = services.intervention_create(
            patient=patient,
            clinician=clinician,
            date=patient.local_today() - dt.timedelta(days=3),
            kind="prolotherapy",
        )
    assert services.intervention_fever_recheck(intervention_id=injection.pk) == 1
    assert services.intervention_fever_recheck(intervention_id=injection.pk) == 1
    assert Alert.objects.filter(rule="RF-INF-01").count() == 1  # the resolved one only
    assert AlertOccurrence.objects.filter(alert__rule="RF-INF-02").count() == 1


def test_it_rechecks_in_the_request_when_the_broker_is_down(
    clinician_client, patient, fever_yesterday, monkeypatch, django_capture_on_commit_callbacks
):
    def down(intervention_id: str) -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.intervention_fever_recheck_task, "delay", down)
    _record_injection(
        clinician_client, patient, days_ago=10, callbacks=django_capture_on_commit_callbacks
    )
    assert Alert.objects.filter(rule="RF-INF-02", severity="emergency").exists()


def test_it_does_not_recheck_for_an_intervention_that_is_not_a_procedure(
    clinician_client, patient, fever_yesterday, worker, django_capture_on_commit_callbacks
):
    day = patient.local_today() - dt.timedelta(days=10)
    with django_capture_on_commit_callbacks(execute=True):
        clinician_client.post(
            INTERVENTIONS.format(patient.pk), {"date": day.isoformat(), "kind": "other"}
        )
    assert worker == []
    assert not Alert.objects.filter(rule="RF-INF-02").exists()
