"""The worker's batches (`safety.EVALUATION_BATCH`): a task evaluates its own log and other
owed logs in one transaction, in a fixed number of statements, with exactly the findings
one-by-one evaluation gives; red flags and retries are never batched; a batch that breaks
or meets a locked patient leaves nothing unevaluated (test_worker_reliability.py runs the
same with a real worker)."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from patients.models import Patient
from rehab.models import Alert, AlertOccurrence, DailyLog
from rehab.services import safety
from tests.factories import PatientFactory
from tests.rehab.factories_record import (
    AssessedMarkFactory,
    DailyLogFactory,
    InterventionFactory,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TODAY = date(2026, 11, 20)
DAYS = 12


@pytest.fixture(autouse=True)
def _frozen_time() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


def owed_in_order() -> list[Any]:
    """The owed logs in the order a batch takes them (and a queue would deliver them)."""
    return list(
        DailyLog.objects.filter(evaluated_at__isnull=True)
        .order_by("updated_at", "pk")
        .values_list("pk", flat=True)
    )


def make_cohort(seed: int, patients: int = 8) -> list[Patient]:
    """Patients whose logs exercise every kind of background input: trends over previous
    logs (night pain, back pain above the baseline), age and history, procedures, and
    assessed marks made before and after the answers they would cover."""
    rng = random.Random(seed)
    cohort = []
    for i in range(patients):
        patient = PatientFactory.create(
            date_of_birth=date(1950, 3, 1) if i % 2 else date(1990, 3, 1),
            history_cancer=i % 4 == 3,
        )
        if i % 3 == 0:
            InterventionFactory.create(
                patient=patient, kind="injection", date=TODAY - timedelta(days=rng.randint(1, 20))
            )
        marked = i % 4 == 1
        for day in range(DAYS):
            answers: dict[str, Any] = {}
            if marked and day >= DAYS - 4:
                answers["both_legs"] = "unchanged_assessed"
            if rng.random() < 0.15:
                answers["fever"] = True  # after a procedure: RF-INF-02 from the worker
            log = DailyLogFactory.create(
                patient=patient,
                date=TODAY - timedelta(days=DAYS - 1 - day),
                pain=rng.randint(2, 9),
                back_pain=rng.randint(1, 3) if day < 7 else rng.randint(3, 10),
                sleep=rng.choice(["constant_any_position", "disturbed", "undisturbed"]),
                safety=answers,
                safety_advice=None,
            )
            # Submitted one after the other: both cohorts are evaluated in the same order.
            DailyLog.objects.filter(pk=log.pk).update(
                updated_at=NOW - timedelta(hours=1) + timedelta(seconds=i * DAYS + day)
            )
        if marked:
            # Made while the patient was answering: only the last two logs lean on it.
            with time_machine.travel(NOW + timedelta(seconds=1), tick=False):
                mark = AssessedMarkFactory.create(patient=patient, symptom="both_legs")
            for days_ago in (1, 0):
                DailyLog.objects.filter(
                    patient=patient, date=TODAY - timedelta(days=days_ago)
                ).update(updated_at=mark.created_at + timedelta(seconds=i * 2 + 1 - days_ago))
        cohort.append(patient)
    return cohort


def findings(cohort: list[Patient]) -> dict[str, list[tuple[Any, ...]]]:
    index = {p.pk: i for i, p in enumerate(cohort)}
    alerts = Alert.objects.filter(patient__in=cohort).select_related("log")
    occurrences = AlertOccurrence.objects.filter(alert__patient__in=cohort).select_related(
        "alert", "log"
    )
    return {
        "alerts": sorted(
            (
                index[a.patient_id],
                a.rule,
                a.status,
                a.severity,
                a.occurrence_count,
                a.log.date if a.log else None,
            )
            for a in alerts
        ),
        "occurrences": sorted(
            (index[o.alert.patient_id], o.alert.rule, o.fired_on, o.log.date if o.log else None)
            for o in occurrences
        ),
        "owed": sorted(
            (index[log.patient_id], log.date)
            for log in DailyLog.objects.filter(patient__in=cohort, evaluated_at__isnull=True)
        ),
    }


@pytest.mark.django_db
def test_a_batch_finds_exactly_what_one_by_one_evaluation_finds(monkeypatch):
    batched = make_cohort(seed=7)
    statuses = [safety.log_evaluate(log_id=log_id).status for log_id in owed_in_order()]
    # 96 logs, 50 a batch: two tasks did the work, the other messages found it done.
    assert statuses.count("evaluated") == 2
    assert statuses.count("already") == len(statuses) - 2
    by_batch = findings(batched)

    monkeypatch.setattr(safety, "EVALUATION_BATCH", 1)
    alone = make_cohort(seed=7)
    statuses = [safety.log_evaluate(log_id=log_id).status for log_id in owed_in_order()]
    assert set(statuses) == {"evaluated"}

    assert by_batch == findings(alone)
    rules = {rule for _, rule, *_ in by_batch["alerts"]}
    # The cohort really exercises the history, the record and the in-batch ordering.
    assert {"RF-NP-01", "RF-INF-02"} <= rules, rules
    assert len(by_batch["occurrences"]) > len(by_batch["alerts"])
    assert by_batch["owed"] == []


@pytest.mark.django_db
@pytest.mark.parametrize("others", [2, 29])
@pytest.mark.parametrize(
    ("answers", "record_reads"),
    [
        ({}, []),  # quiet checks, the morning's bulk: the record cannot change them
        ({"fever": True}, ["rehab_intervention"]),
        ({"bladder_change": "unchanged_assessed"}, ["rehab_assessedmark"]),
        (
            {"fever": True, "bladder_change": "unchanged_assessed"},
            ["rehab_intervention", "rehab_assessedmark"],
        ),
    ],
)
def test_a_batch_costs_the_same_statements_whatever_its_size(others, answers, record_reads):
    logs = [
        DailyLogFactory.create(patient=PatientFactory.create(), date=TODAY, safety_advice=None)
        for _ in range(others + 1)
    ]
    # One log of the batch whose answers the record can change, and that fires nothing: a
    # fever without pain that day, a bladder change a clinician has assessed.
    DailyLog.objects.filter(pk=logs[-1].pk).update(safety=answers, pain=0, leg_pain=0, back_pain=0)
    AssessedMarkFactory.create(patient=logs[-1].patient, symptom="bladder_change")
    with CaptureQueriesContext(connection) as ctx:
        assert safety.log_evaluate(log_id=logs[0].pk).status == "evaluated"
    assert DailyLog.objects.filter(evaluated_at__isnull=True).count() == 0
    assert not Alert.objects.exists()
    # the log's date (its claimed id: every read of it by id is then planned over its
    # month's partition alone), claim, read, claim the others, lock the patients (own,
    # others), read the batch, previous logs, baselines, open alerts, mark evaluated, and
    # the transaction's own two statements; the record's procedures and marks only if a
    # log can need them.
    sql = [q["sql"] for q in ctx.captured_queries]
    assert len(sql) == 13 + len(record_reads), [q[:80] for q in sql]
    tables = ("rehab_intervention", "rehab_assessedmark")
    read = [table for table in tables if any(f'FROM "{table}"' in q for q in sql)]
    assert read == record_reads


@pytest.mark.django_db
def test_a_red_flag_is_evaluated_alone_and_never_waits_in_another_batch():
    quiet = [DailyLogFactory.create(date=TODAY, safety_advice=None) for _ in range(3)]
    flagged = DailyLogFactory.create(
        date=TODAY,
        safety={"saddle_numbness": "new_or_worse"},
        safety_advice={"severity": "emergency", "rules": ["RF-CES-01"], "message": "Go now."},
    )
    assert safety.log_evaluate(log_id=flagged.pk).status == "evaluated"
    assert Alert.objects.get().rule == "RF-CES-01"
    untouched = DailyLog.objects.filter(pk__in=[log.pk for log in quiet])
    assert list(untouched.values_list("evaluation_attempts", flat=True)) == [0, 0, 0]

    other_flag = DailyLogFactory.create(
        date=TODAY - timedelta(days=1),
        patient=flagged.patient,
        safety={"saddle_numbness": "new_or_worse"},
        safety_advice={"severity": "emergency", "rules": ["RF-CES-01"], "message": "Go now."},
    )
    safety.log_evaluate(log_id=quiet[0].pk)
    assert untouched.filter(evaluated_at__isnull=True).count() == 0
    other_flag.refresh_from_db()
    assert (other_flag.evaluated_at, other_flag.evaluation_attempts) == (None, 0)


@pytest.mark.django_db
def test_a_retry_runs_alone():
    retried = DailyLogFactory.create(date=TODAY, safety_advice=None, evaluation_attempts=1)
    fresh = [DailyLogFactory.create(date=TODAY, safety_advice=None) for _ in range(3)]
    assert safety.log_evaluate(log_id=retried.pk).status == "evaluated"
    assert DailyLog.objects.filter(pk__in=[log.pk for log in fresh], evaluation_attempts=0).count()


@pytest.fixture
def batches_break(monkeypatch: pytest.MonkeyPatch) -> None:
    """Evaluating more than one log at a time fails; a log alone is evaluated as ever."""
    original = safety.full_contexts

    def breaks_in_a_batch(batch: Any) -> Any:
        if len(batch) > 1:
            raise RuntimeError("one log of the batch breaks the rules engine")
        return original(batch)

    monkeypatch.setattr(safety, "full_contexts", breaks_in_a_batch)


@pytest.mark.django_db
def test_a_broken_batch_still_evaluates_its_own_log_and_leaves_the_others_owed(
    batches_break: None,
):
    logs = [DailyLogFactory.create(date=TODAY, safety_advice=None) for _ in range(4)]
    assert safety.log_evaluate(log_id=logs[0].pk).status == "evaluated"
    others = DailyLog.objects.filter(pk__in=[log.pk for log in logs[1:]])
    assert set(others.values_list("evaluated_at", "evaluation_attempts")) == {(None, 1)}
    # Their own messages follow, each a retry, evaluated alone.
    for log in logs[1:]:
        assert safety.log_evaluate(log_id=log.pk).status == "evaluated"
    assert not DailyLog.objects.filter(evaluated_at__isnull=True).exists()
    assert set(DailyLog.objects.values_list("evaluation_error", flat=True)) == {""}


@pytest.mark.django_db(transaction=True)
def test_a_batch_skips_a_patient_someone_else_holds_and_their_message_evaluates_it():
    mine, held = (DailyLogFactory.create(date=TODAY, safety_advice=None) for _ in range(2))
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                Patient.objects.select_for_update().get(pk=held.patient_id)
                locked.set()
                release.wait(30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(30)
        # The batch does not wait for the held patient: it leaves that log owed.
        assert safety.log_evaluate(log_id=mine.pk).status == "evaluated"
        held.refresh_from_db()
        assert (held.evaluated_at, held.evaluation_attempts) == (None, 1)
    finally:
        release.set()
        holder.join(30)
    assert safety.log_evaluate(log_id=held.pk).status == "evaluated"


@pytest.mark.django_db
def test_the_logs_a_broken_batch_did_not_evaluate_get_messages_of_their_own(
    monkeypatch, batches_break: None
):
    from rehab import tasks

    sent: list[str] = []
    monkeypatch.setattr(tasks.log_evaluate_task, "delay", sent.append)
    logs = [DailyLogFactory.create(date=TODAY, safety_advice=None) for _ in range(3)]
    assert safety.log_evaluate(log_id=logs[0].pk).status == "evaluated"
    # No waiting for the sweeper: quiet logs have no message of their own otherwise.
    assert sorted(sent) == sorted(str(log.pk) for log in logs[1:])


@pytest.mark.django_db
@pytest.mark.parametrize("planner", ["default", "nested_loop"])
def test_a_claim_takes_exactly_the_oldest_owed_logs_whatever_the_plan(planner):
    # Autoanalyze of a table that a test run had just emptied once led PostgreSQL to a
    # nested-loop plan that rescanned the claim's LIMIT ... FOR UPDATE subquery for every
    # row: each rescan skipped the rows the UPDATE had just claimed and took newer ones,
    # so a batch claimed more than its size, out of submission order (a patient's later
    # log was then judged before an earlier one).
    logs = [
        DailyLogFactory.create(date=TODAY - timedelta(days=n), safety_advice=None)
        for n in range(10)
    ]
    for n, log in enumerate(logs):
        DailyLog.objects.filter(pk=log.pk).update(updated_at=NOW - timedelta(minutes=n))
    oldest = [log.pk for log in reversed(logs)][:3]
    if planner == "nested_loop":
        with connection.cursor() as cursor:
            for setting in ("hashjoin", "mergejoin", "hashagg", "material"):
                cursor.execute(f"SET LOCAL enable_{setting} = off")
    claimed = safety._claim_owed(besides=None, patient_id=None, limit=3)
    assert sorted(log_id for log_id, *_ in claimed) == sorted(oldest)
    attempts = dict(DailyLog.objects.values_list("pk", "evaluation_attempts"))
    assert sorted(pk for pk, n in attempts.items() if n) == sorted(oldest)
