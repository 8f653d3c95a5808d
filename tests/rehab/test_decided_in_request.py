"""A new log the request can decide is stored evaluated, and no worker is asked for it.

The request evaluates the rules that need no history to tell the patient what to do, then,
for a log that fired nothing but left rules to the history, evaluates them again with the
patient's latest earlier logs (one read). When every rule is then known and none fires,
the log goes in evaluated: the background job, with everything it reads, would fire
nothing (tests/rehab/test_safety_record_needs.py holds that over generated logs). Anything
else is owed to the worker as before (docs/safety-path.md § Decided in the request).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from patients.models import Patient
from rehab.models import Alert, DailyLog
from rehab.safety import evaluate
from rehab.selectors.safety_inputs import (
    REQUEST_HISTORY_DAYS,
    full_context,
    log_content,
    log_facts,
    request_recent_logs,
)
from rehab.services import safety
from tests.rehab.factories_record import DailyLogFactory

pytestmark = pytest.mark.django_db

LOGS = "/api/v1/logs/"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TODAY = date(2026, 11, 20)
CONSTANT = "constant_any_position"


@pytest.fixture(autouse=True)
def _frozen_time() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def quiet_flag() -> Iterator[Any]:
    """The broker's quiet-logs flag, unset at the start: a quiet log owed to the worker
    sets it when its transaction commits (`quiet_logs_request`)."""
    broker = safety._broker_redis()
    broker.delete(safety.QUIET_FLAG)
    yield lambda: bool(broker.exists(safety.QUIET_FLAG))
    broker.delete(safety.QUIET_FLAG)


def earlier_logs(patient: Patient, sleeps: list[str], *, first_gap: int = 1) -> None:
    """One log a day before TODAY (the newest `first_gap` days back), newest first."""
    for i, sleep in enumerate(sleeps):
        DailyLogFactory.create(
            patient=patient,
            date=TODAY - timedelta(days=first_gap + i),
            sleep=sleep,
            safety={},
            safety_advice=None,
            evaluated_at=NOW,
        )


def post(client: Any, **fields: Any) -> DailyLog:
    payload = {"id": str(uuid.uuid4()), "date": TODAY.isoformat(), "pain": 4, **fields}
    response = client.post(LOGS, payload)
    assert response.status_code == 201, response.json()
    return DailyLog.objects.get(pk=payload["id"])


def test_a_quiet_log_after_a_week_of_logs_is_stored_evaluated_and_sends_nothing(
    patient_client, patient, quiet_flag, django_capture_on_commit_callbacks
):
    earlier_logs(patient, ["disturbed"] * 6)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        log = post(patient_client, sleep="disturbed", back_pain=3)

    assert (log.evaluated_at, log.evaluated_version, log.evaluation_attempts) == (NOW, 1, 0)
    assert log.safety_advice is None
    assert callbacks == []
    assert not quiet_flag()
    # Nothing owed: the worker's next round finds nothing to claim.
    assert safety.quiet_logs_evaluate() == 0
    assert not Alert.objects.exists()


def test_the_request_reads_the_earlier_logs_in_one_statement_before_the_write(
    patient_client, patient
):
    earlier_logs(patient, ["undisturbed"] * 6)
    with CaptureQueriesContext(connection) as queries:
        response = patient_client.post(LOGS, {"date": TODAY.isoformat(), "pain": 4})
    assert response.status_code == 201, response.json()

    # The token with its user and patient, the earlier logs, then the log and its audit
    # row in one statement (in a savepoint, inside the test's transaction).
    assert [q["sql"].split()[0] for q in queries.captured_queries] == [
        "SELECT",
        "SELECT",
        "SAVEPOINT",
        "WITH",
        "RELEASE",
    ]


def test_a_night_that_could_make_three_of_seven_is_left_to_the_worker(
    patient_client, patient, quiet_flag, django_capture_on_commit_callbacks
):
    # RF-NP-01: constant night pain on 3 of the last 7 logged nights. The inline advice
    # cannot know the nights before, so the patient is told nothing; the worker raises it.
    earlier_logs(patient, [CONSTANT, "disturbed", CONSTANT, "disturbed", "disturbed", "disturbed"])

    with django_capture_on_commit_callbacks(execute=True):
        log = post(patient_client, sleep=CONSTANT)

    assert log.evaluated_at is None
    assert log.safety_advice is None
    assert quiet_flag()
    assert safety.log_evaluate(log_id=log.pk).status == "evaluated"
    assert list(Alert.objects.values_list("rule", "log_id")) == [("RF-NP-01", log.pk)]


def test_three_constant_nights_before_an_untroubled_one_are_left_to_the_worker(
    patient_client, patient
):
    # "The last 7 logged nights, this one included": the night itself need not be bad.
    earlier_logs(patient, [CONSTANT, CONSTANT, "disturbed", CONSTANT, "disturbed", "disturbed"])

    log = post(patient_client, sleep="undisturbed")

    assert log.evaluated_at is None
    safety.log_evaluate(log_id=log.pk)
    assert list(Alert.objects.values_list("rule", flat=True)) == ["RF-NP-01"]


@pytest.mark.parametrize(
    ("earlier", "first_gap"),
    [
        (5, 1),  # a new patient: fewer than 6 earlier logs
        (6, REQUEST_HISTORY_DAYS - 4),  # the sixth is older than the window
    ],
)
def test_without_the_six_earlier_logs_in_the_window_the_log_is_left_to_the_worker(
    patient_client, patient, earlier, first_gap
):
    earlier_logs(patient, ["undisturbed"] * earlier, first_gap=first_gap)

    log = post(patient_client, sleep="undisturbed")

    assert log.evaluated_at is None


def test_a_red_flag_is_never_decided_in_the_request(patient_client, patient):
    earlier_logs(patient, ["disturbed"] * 6)

    log = post(patient_client, safety={"saddle_numbness": "new_or_worse"})

    assert log.safety_advice is not None
    assert log.evaluated_at is None


def test_a_patient_with_a_history_of_cancer_is_left_to_the_worker(patient_client, patient):
    # RF-CA-02's rising back pain needs the baseline, which only the worker reads.
    patient.history_cancer = True
    patient.save(update_fields=["history_cancer"])
    earlier_logs(patient, ["disturbed"] * 6)

    assert post(patient_client, sleep="disturbed").evaluated_at is None


def test_it_reads_the_latest_six_earlier_logs_within_the_window(patient):
    earlier_logs(patient, ["undisturbed"] * 8)

    recent = request_recent_logs(patient_id=patient.pk, day=TODAY)
    assert recent is not None
    assert [x.date for x in recent] == [TODAY - timedelta(days=n) for n in range(1, 7)]
    assert request_recent_logs(patient_id=patient.pk, day=TODAY - timedelta(days=3)) is None


def test_every_log_the_request_decided_is_one_the_job_fires_nothing_on(
    patient_client, patient, django_capture_on_commit_callbacks
):
    # Three weeks of a patient's real posts, with bad nights, pain that rises over the
    # baseline, and the odd red flag; each log the request stored evaluated is then
    # evaluated as the background job would, with everything it reads.
    rng = random.Random(11)
    for days_ago in range(20, -1, -1):
        day = TODAY - timedelta(days=days_ago)
        fields: dict[str, Any] = {
            "date": day.isoformat(),
            "back_pain": rng.randint(0, 3) if days_ago > 13 else rng.randint(4, 10),
            "sleep": rng.choice([CONSTANT, "disturbed", "undisturbed", "undisturbed"]),
        }
        if rng.random() < 0.1:
            fields["safety"] = {"weakness": "foot_drop"}
        # Each day's log posted that day, as a phone would.
        with (
            time_machine.travel(NOW - timedelta(days=days_ago), tick=False),
            django_capture_on_commit_callbacks(execute=True),
        ):
            post(patient_client, **fields)
    decided = list(DailyLog.objects.filter(patient=patient, evaluated_at__isnull=False))
    owed = DailyLog.objects.filter(patient=patient, evaluated_at__isnull=True).count()

    assert decided
    assert owed
    for log in decided:
        assert evaluate(log_facts(log_content(log)), full_context(log=log)).firings == ()
