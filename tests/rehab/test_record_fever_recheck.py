"""A procedure recorded after the fact re-checks the fevers logged since (RF-INF-02)."""

from __future__ import annotations

import datetime as dt
import importlib

import pytest
from django.apps import apps
from django.utils import timezone

from rehab import tasks
from rehab.models import Alert, AlertOccurrence, Intervention
from rehab.selectors import safety_inputs
from rehab.services import alerts as alert_services
from rehab.services import record as services
from rehab.services import safety
from rehab.services import sweeps as sweep_services
from tests.rehab.factories_record import DailyLogFactory, InterventionFactory

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
    alert_services.alert_resolve(alert=urgent, actor=clinician.user, disposition="other")
    with django_capture_on_commit_callbacks(execute=False):
        injection = services.intervention_create(
            patient=patient,
            clinician=clinician,
            date=patient.local_today() - dt.timedelta(days=3),
            kind="prolotherapy",
        )
    assert services.intervention_fever_recheck(intervention_id=injection.pk) == 1
    assert services.intervention_fever_recheck(intervention_id=injection.pk) == 0  # done
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


# --------------------------------------------------------------------------- durability


def _record_but_lose_the_message(patient, clinician, *, days_ago: int = 10, kind="injection"):
    """The web process dies between the commit and the after-commit enqueue."""
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=False):
        return services.intervention_create(
            patient=patient,
            clinician=clinician,
            date=patient.local_today() - dt.timedelta(days=days_ago),
            kind=kind,
        )


def _age(intervention, seconds: int) -> None:
    Intervention.objects.filter(pk=intervention.pk).update(
        created_at=timezone.now() - dt.timedelta(seconds=seconds)
    )


def test_it_leaves_a_procedure_owed_its_recheck_until_the_recheck_has_run(
    patient, clinician, fever_yesterday
):
    injection = _record_but_lose_the_message(patient, clinician)
    injection.refresh_from_db()
    assert injection.fever_rechecked_at is None
    assert services.intervention_fever_recheck(intervention_id=injection.pk) == 1
    injection.refresh_from_db()
    assert injection.fever_rechecked_at is not None
    assert injection.fever_recheck_attempts == 1


def test_it_sweeps_a_procedure_whose_message_was_lost_and_raises_the_emergency(
    patient, clinician, fever_yesterday, worker
):
    injection = _record_but_lose_the_message(patient, clinician)
    assert not Alert.objects.filter(rule="RF-INF-02").exists()
    # Within the grace its own message may still be on the way.
    assert services.fever_rechecks_sweep() == 0
    _age(injection, 31)
    assert services.fever_rechecks_sweep() == 1
    assert worker == [str(injection.pk)]
    alert = Alert.objects.get(rule="RF-INF-02")
    assert (alert.severity, alert.log_id, alert.notify_due) == (
        "emergency",
        fever_yesterday.pk,
        True,
    )
    # Done: the next sweep finds nothing owed.
    assert services.fever_rechecks_sweep() == 0
    assert worker == [str(injection.pk)]


def test_it_raises_one_occurrence_when_the_recheck_runs_twice(
    patient, clinician, fever_yesterday, worker
):
    injection = _record_but_lose_the_message(patient, clinician)
    _age(injection, 60)
    # Two beats (a deployment mistake), or a sweep and the original message arriving late.
    tasks.intervention_fever_recheck_task(str(injection.pk))
    tasks.intervention_fever_recheck_task(str(injection.pk))
    assert services.fever_rechecks_sweep() == 0
    # Even with the stamp lost, an occurrence is recorded once per log.
    Intervention.objects.filter(pk=injection.pk).update(fever_rechecked_at=None)
    assert services.intervention_fever_recheck(intervention_id=injection.pk) == 1
    alert = Alert.objects.get(rule="RF-INF-02")
    assert alert.occurrence_count == 1
    assert AlertOccurrence.objects.filter(alert=alert).count() == 1


def test_it_sweeps_the_owed_procedures_in_batches(patient, clinician, worker):
    procedures = [InterventionFactory.create(patient=patient, kind="surgery") for _ in range(5)]
    for p in procedures:
        _age(p, 60)
    assert services.fever_rechecks_sweep(batch=2) == 5
    assert sorted(worker) == sorted(str(p.pk) for p in procedures)
    # No fever to re-check: each is stamped all the same.
    assert not Intervention.objects.filter(fever_rechecked_at__isnull=True).exists()


def test_it_does_not_sweep_an_intervention_that_is_not_a_procedure(patient, clinician, worker):
    other = _record_but_lose_the_message(patient, clinician, kind="other")
    _age(other, 600)
    assert services.fever_rechecks_sweep() == 0
    assert worker == []
    assert sweep_services.safety_status()["overdue_fever_rechecks"] == 0


def test_it_gives_up_on_a_recheck_that_keeps_failing_and_reports_it(
    patient, clinician, fever_yesterday, monkeypatch, worker
):
    injection = _record_but_lose_the_message(patient, clinician)
    _age(injection, 600)

    def boom(*, log):
        raise RuntimeError("rule engine exploded")

    monkeypatch.setattr(safety_inputs, "full_context", boom)
    for _ in range(services.MAX_FEVER_RECHECK_ATTEMPTS):
        with pytest.raises(RuntimeError):
            services.intervention_fever_recheck(intervention_id=injection.pk)
    assert sweep_services.safety_status()["overdue_fever_rechecks"] == 1
    assert services.intervention_fever_recheck(intervention_id=injection.pk) == 0
    injection.refresh_from_db()
    assert injection.fever_recheck_failed_at is not None
    assert injection.fever_rechecked_at is None
    status = sweep_services.safety_status()
    assert (status["failed_fever_rechecks"], status["overdue_fever_rechecks"]) == (1, 0)
    # Surfaced, not retried forever.
    assert services.fever_rechecks_sweep() == 0
    assert worker == []


def test_it_shows_an_overdue_recheck_in_health_until_it_has_run(
    client, patient, clinician, fever_yesterday, worker
):
    injection = _record_but_lose_the_message(patient, clinician)
    _age(injection, 60)
    # Owed, but not yet longer than the sweeper needs.
    body = client.get("/health/").json()
    assert (body["safety"]["ok"], body["safety"]["overdue_fever_rechecks"]) == (True, 0)
    _age(injection, 180)
    response = client.get("/health/")
    assert response.status_code == 200  # degraded, not down
    body = response.json()
    assert (body["status"], body["safety"]["ok"]) == ("degraded", False)
    assert body["safety"]["overdue_fever_rechecks"] == 1
    services.fever_rechecks_sweep()
    body = client.get("/health/").json()
    assert (body["status"], body["safety"]["overdue_fever_rechecks"]) == ("ok", 0)


def test_it_shows_a_failed_recheck_in_health(client, patient):
    InterventionFactory.create(patient=patient, fever_recheck_failed_at=timezone.now())
    body = client.get("/health/").json()
    assert (body["status"], body["safety"]["failed_fever_rechecks"]) == ("degraded", 1)


def test_it_sweeps_the_fever_rechecks_every_minute_with_beat(settings):
    from config.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["safety-fever-rechecks-sweep"]
    assert entry["task"] == "rehab.tasks.fever_rechecks_sweep_task"
    assert entry["schedule"] <= 60.0
    app.loader.import_default_modules()
    assert entry["task"] in app.tasks


def test_it_counts_the_procedures_recorded_before_the_migration_as_rechecked(patient):
    migration = importlib.import_module("rehab.migrations.0007_intervention_fever_recheck")
    old = InterventionFactory.create(patient=patient, kind="injection")
    migration.stamp_existing(apps, None)
    old.refresh_from_db()
    assert old.fever_rechecked_at == old.created_at
