"""The per-patient log rollup (rehab.models.PatientLogRollup) against its definitions.

The database keeps the rollup (a trigger, rehab/migrations/0013_patientlogrollup.py):
after random sequences of creates, edits, moves, deletions, evaluations and erasures'
note clearing, the stored row is the one computed here in Python from the patient's
logs, and the caseload's figures read from it (`with_log_figures`, the dashboard's MCID
filter and 7-day count) are rehab.progress's, for "todays" before, on and after the
logs (logs dated after a patient's today take the selectors' fallback to the log table).
A rebuild restores a row the trigger did not keep; two connections writing one
patient's logs at once lose neither.
"""

from __future__ import annotations

import importlib
import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboard.selectors import _logs_in_last_days, _mcid_reached
from patients.models import Patient
from rehab import progress
from rehab.models import DailyLog, PatientLogRollup
from rehab.models.logs import ROLLUP_RECENT_LOGS
from rehab.selectors.logs import figures_of, with_log_figures
from rehab.services.rollup import log_rollups_rebuild
from tests.factories import PatientFactory

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TODAY = date(2026, 11, 20)  # Europe/London at NOW
DAYS = 24  # logs fall on TODAY - DAYS + 3 .. TODAY + 2: some after the patient's today

DAY = st.integers(min_value=-2, max_value=DAYS - 3)  # days before TODAY
PAIN = st.integers(min_value=0, max_value=10)
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("create"), DAY, PAIN),
        st.tuples(st.just("bulk"), st.lists(st.tuples(DAY, PAIN), max_size=9)),
        st.tuples(st.just("pain"), st.integers(0, 50), PAIN),
        st.tuples(st.just("move"), st.integers(0, 50), DAY),
        st.tuples(st.just("delete"), st.integers(0, 50)),
        st.tuples(st.just("evaluate"), st.integers(0, 50)),
        st.tuples(st.just("erase_notes")),
        st.tuples(st.just("save"), st.integers(0, 50), PAIN),
    ),
    max_size=14,
)
EXAMPLES = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def expected_rollup(patient: Patient) -> tuple[Any, ...] | None:
    """The row's definition: None without logs."""
    logs = list(
        DailyLog.objects.filter(patient=patient).order_by("date").values_list("date", "pain")
    )
    if not logs:
        return None
    first = logs[0][0]
    baseline = [
        pain for day, pain in logs if day <= first + timedelta(days=progress.BASELINE_DAYS - 1)
    ]
    recent = logs[-ROLLUP_RECENT_LOGS:]
    running = [0]
    for _, pain in recent:
        running.append(running[-1] + pain)
    return (
        first,
        logs[-1][0],
        logs[-1][1],
        sum(baseline),
        len(baseline),
        [day for day, _ in recent],
        running,
    )


def stored_rollup(patient: Patient) -> tuple[Any, ...] | None:
    row = PatientLogRollup.objects.filter(patient=patient).first()
    if row is None:
        return None
    return (
        row.first_log_date,
        row.last_log_date,
        row.latest_pain,
        row.baseline_sum,
        row.baseline_n,
        row.recent_dates,
        # Running totals from any base: their differences are the pains.
        [total - row.recent_pain_sums[0] for total in row.recent_pain_sums],
    )


def _apply(patient: Patient, op: tuple[Any, ...]) -> None:
    logs = list(DailyLog.objects.filter(patient=patient).order_by("date"))
    taken = {log.date for log in logs}
    kind = op[0]
    if kind == "create":
        day = TODAY - timedelta(days=op[1])
        if day not in taken:
            DailyLog.objects.create(patient=patient, date=day, pain=op[2])
    elif kind == "bulk":
        new = {TODAY - timedelta(days=back): pain for back, pain in op[1]}
        DailyLog.objects.bulk_create(
            DailyLog(patient=patient, date=day, pain=pain)
            for day, pain in new.items()
            if day not in taken
        )
    elif not logs:
        return
    elif kind == "pain":
        DailyLog.objects.filter(pk=logs[op[1] % len(logs)].pk).update(pain=op[2])
    elif kind == "move":
        day = TODAY - timedelta(days=op[2])
        if day not in taken:
            DailyLog.objects.filter(pk=logs[op[1] % len(logs)].pk).update(date=day)
    elif kind == "delete":
        logs[op[1] % len(logs)].delete()
    elif kind == "evaluate":
        DailyLog.objects.filter(pk=logs[op[1] % len(logs)].pk).update(
            evaluated_at=NOW, evaluated_version=1
        )
    elif kind == "erase_notes":  # what an approved erasure does to the logs it keeps
        DailyLog.objects.filter(patient=patient).update(notes="")
    elif kind == "save":  # the ORM's save() writes every column
        log = logs[op[1] % len(logs)]
        log.pain = op[2]
        log.save()


def _python_figures(patient: Patient, today: date) -> tuple[progress.Progress, int, bool]:
    pains = list(DailyLog.objects.filter(patient=patient).values_list("date", "pain"))
    baseline, current = progress.means(pains, today=today)
    in_week = sum(1 for day, _ in pains if today - timedelta(days=6) <= day <= today)
    return progress.progress(pains, today=today), in_week, progress.mcid_reached(baseline, current)


@pytest.mark.django_db
@EXAMPLES
@given(ops=OPS, other_ops=OPS)
def test_the_rollup_is_its_definition_after_any_writes(patient, ops, other_ops):
    other = PatientFactory.create(clinic=patient.clinic)
    DailyLog.objects.filter(patient=patient).delete()
    for mine, theirs in zip(ops, other_ops, strict=False):
        _apply(patient, mine)
        _apply(other, theirs)
        assert stored_rollup(patient) == expected_rollup(patient), mine
        assert stored_rollup(other) == expected_rollup(other), theirs
    for op in ops[len(other_ops) :]:
        _apply(patient, op)
    assert stored_rollup(patient) == expected_rollup(patient)

    # The caseload's figures, read from the rollup, are rehab.progress's on any today.
    for shift in (-3, -1, 0, 1, 4, 9):
        at = NOW + timedelta(days=shift)
        with time_machine.travel(at, tick=False):
            row = (
                with_log_figures(Patient.objects.filter(pk=patient.pk))
                .annotate(reached=_mcid_reached(), logs_7d=_logs_in_last_days(7))
                .get()
            )
            want, in_week, reached = _python_figures(patient, TODAY + timedelta(days=shift))
        got = figures_of(row)
        assert (got.baseline_pain, got.current_pain_7d, got.change, got.percent_change) == (
            want.baseline_pain,
            want.current_pain_7d,
            want.change,
            want.percent_change,
        ), shift
        assert got.mcid_reached is want.mcid_reached
        assert row.reached is reached
        assert row.logs_7d == in_week


@pytest.mark.django_db
def test_a_patient_without_logs_has_no_row_and_deletes_cleanly(patient):
    log = DailyLog.objects.create(patient=patient, date=TODAY, pain=4)
    assert stored_rollup(patient) == (TODAY, TODAY, 4, 4, 1, [TODAY], [0, 4])
    log.delete()
    assert stored_rollup(patient) is None

    DailyLog.objects.create(patient=patient, date=TODAY, pain=4)
    # Django deletes the rollup row and the logs in its own order; the trigger must not
    # leave a row behind that the patient's deletion then trips over.
    with transaction.atomic():
        Patient.objects.filter(pk=patient.pk).delete()
    assert not PatientLogRollup.objects.exists()


@pytest.mark.django_db
def test_the_rebuild_restores_rows_the_trigger_did_not_keep(patient, clinic):
    other = PatientFactory.create(clinic=clinic)
    elsewhere = PatientFactory.create()
    for who in (patient, other, elsewhere):
        DailyLog.objects.bulk_create(
            DailyLog(patient=who, date=TODAY - timedelta(days=d), pain=(d * 3) % 11)
            for d in range(12)
        )
    want = {p.pk: expected_rollup(p) for p in (patient, other, elsewhere)}
    # A load with triggers off, or a repair: rows wrong, missing, and one for no logs.
    PatientLogRollup.objects.filter(patient=patient).update(baseline_sum=999)
    PatientLogRollup.objects.filter(patient=other).delete()
    stray = PatientFactory.create(clinic=clinic)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO rehab_patientlogrollup VALUES (%s, %s, %s, 1, 1, 1, %s, %s)",
            [stray.pk, TODAY, TODAY, [TODAY], [0, 1]],
        )
    PatientLogRollup.objects.filter(patient=elsewhere).update(latest_pain=9)

    assert log_rollups_rebuild(patient_id=patient.pk) == 1
    assert stored_rollup(patient) == want[patient.pk]
    assert stored_rollup(other) is None  # not in that scope

    call_command("rebuild_log_rollups", "--clinic", str(clinic.pk), stdout=None)
    assert stored_rollup(other) == want[other.pk]
    assert stored_rollup(stray) is None
    assert stored_rollup(elsewhere) != want[elsewhere.pk]  # another clinic: untouched

    assert log_rollups_rebuild(batch=3) == Patient.objects.count() == 4  # batches of 3
    assert stored_rollup(elsewhere) == want[elsewhere.pk]


def test_the_rollups_sql_keeps_the_progress_constants():
    # The trigger's SQL (a migration: history) wrote these down; a change in
    # rehab.progress needs a migration that rewrites it (the tests above would fail).
    assert (progress.BASELINE_DAYS, ROLLUP_RECENT_LOGS) == (7, 7)


# --------------------------------------------------------------------------- concurrency


def _waiting_on_a_lock(seconds: float = 10) -> bool:
    """True once some other backend waits on a lock (the second writer, queued)."""
    deadline = time.monotonic() + seconds
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            # pg_locks, not pg_stat_activity: the application role may not see other
            # sessions' wait events. Only this database's sessions count: other test
            # workers run beside this one (docs/testing.md).
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND pid IN"
                " (SELECT pid FROM pg_stat_activity WHERE datname = current_database())"
            )
            if cursor.fetchone()[0]:
                return True
            time.sleep(0.05)
    return False


def _in_thread(work: Any) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("first_logs", [0, 9])
@pytest.mark.parametrize("second", ["create", "delete", "move"])
def test_two_connections_writing_one_patients_logs_lose_no_update(first_logs, second):
    """A's write commits while B's waits on the patient's rollup lock; B's trigger then
    reads A's log too. Without the lock (computing before waiting) B would write a row
    without A's log: the lost update this guards against."""
    patient = PatientFactory.create()
    DailyLog.objects.bulk_create(
        DailyLog(patient=patient, date=TODAY - timedelta(days=20 + d), pain=d % 11)
        for d in range(first_logs)
    )
    victim = DailyLog.objects.filter(patient=patient).order_by("date").first()
    a_wrote, a_may_commit = threading.Event(), threading.Event()

    def writer_a() -> None:
        with transaction.atomic():
            DailyLog.objects.create(patient=patient, date=TODAY, pain=9)
            a_wrote.set()
            assert a_may_commit.wait(20)

    def writer_b() -> None:
        with transaction.atomic():
            if second == "create" or victim is None:
                DailyLog.objects.create(patient=patient, date=TODAY - timedelta(days=1), pain=2)
            elif second == "delete":
                DailyLog.objects.filter(pk=victim.pk).delete()
            else:
                DailyLog.objects.filter(pk=victim.pk).update(date=TODAY - timedelta(days=2))

    a, a_errors = _in_thread(writer_a)
    assert a_wrote.wait(20)
    b, b_errors = _in_thread(writer_b)
    try:
        assert _waiting_on_a_lock(), "the second writer did not queue behind the first"
    finally:
        a_may_commit.set()
        a.join(20)
        b.join(20)
    assert not a_errors, a_errors
    assert not b_errors, b_errors

    row = stored_rollup(patient)
    assert row == expected_rollup(patient)
    assert row is not None
    assert row[1] == TODAY  # A's log is in the row B's trigger wrote last


@pytest.mark.django_db(transaction=True)
def test_an_evaluation_beside_a_log_write_neither_waits_nor_loses_anything():
    # The worker's evaluation writes other columns: the trigger does not fire for it, so
    # it takes no rollup lock and a log write of the same patient never waits on it.
    patient = PatientFactory.create()
    log = DailyLog.objects.create(patient=patient, date=TODAY - timedelta(days=1), pain=3)
    evaluated, may_commit = threading.Event(), threading.Event()

    def evaluation() -> None:
        with transaction.atomic():
            DailyLog.objects.filter(pk=log.pk).update(evaluated_at=NOW, evaluated_version=1)
            evaluated.set()
            assert may_commit.wait(20)

    worker, errors = _in_thread(evaluation)
    try:
        assert evaluated.wait(20)
        with transaction.atomic():
            DailyLog.objects.create(patient=patient, date=TODAY, pain=5)  # does not block
    finally:
        may_commit.set()
        worker.join(20)
    assert not errors
    row = stored_rollup(patient)
    assert row == expected_rollup(patient)
    assert row is not None
    assert Fraction(row[6][-1]) == 8


@pytest.mark.django_db
def test_a_log_post_keeps_the_rollup_in_its_one_statement(patient_client, patient):
    today = patient.local_today()
    DailyLog.objects.create(patient=patient, date=today - timedelta(days=1), pain=3)
    body = {"id": str(uuid.uuid4()), "date": today.isoformat(), "pain": 6}
    with CaptureQueriesContext(connection) as ctx:
        response = patient_client.post("/api/v1/logs/", body, format="json")
    assert response.status_code == 201, response.json()
    # No statement of its own: the trigger runs inside the POST's INSERT (after the token
    # and the earlier logs the request's evaluation reads).
    assert [q["sql"].split()[0] for q in ctx.captured_queries] == [
        "SELECT",
        "SELECT",
        "SAVEPOINT",
        "WITH",
        "RELEASE",
    ]
    row = stored_rollup(patient)
    assert row == expected_rollup(patient)
    assert row is not None
    assert (row[1], row[2]) == (today, 6)


@pytest.mark.django_db
@pytest.mark.parametrize("back", [1, 3, 5])
def test_it_adds_a_backfilled_log_to_the_row_in_place(patient, back):
    """A new log among the 7 kept ones (a phone's queue after days offline) is added to
    the row from the row itself (rehab/migrations/0015_rollup_backfill_in_place.py), not
    recomputed from the patient's logs: the running totals keep the base the appends
    gave them, where a recomputation would start them from 0 again."""
    days = [TODAY - timedelta(days=2 * d) for d in range(12, -1, -1)]  # every other day
    for day in days:  # one by one, each the newest: appended
        DailyLog.objects.create(patient=patient, date=day, pain=day.day % 11)
    base = PatientLogRollup.objects.get(patient=patient).recent_pain_sums[0]
    assert base > 0

    DailyLog.objects.create(patient=patient, date=TODAY - timedelta(days=back), pain=7)

    row = PatientLogRollup.objects.get(patient=patient)
    assert stored_rollup(patient) == expected_rollup(patient)
    # The oldest of the 7 kept logs left, its total became the base: still not 0.
    assert row.recent_pain_sums[0] == base + (days[-7].day % 11)
    assert TODAY - timedelta(days=back) in row.recent_dates


@pytest.mark.django_db
def test_a_backfill_into_a_row_that_holds_it_already_is_not_counted_twice(patient):
    """One statement inserting several logs: the first row's trigger recomputes (a log
    before the first), and sees the others; their triggers must not add them again."""
    DailyLog.objects.create(patient=patient, date=TODAY - timedelta(days=10), pain=1)
    DailyLog.objects.create(patient=patient, date=TODAY, pain=2)
    DailyLog.objects.bulk_create(
        [
            DailyLog(patient=patient, date=TODAY - timedelta(days=12), pain=3),
            DailyLog(patient=patient, date=TODAY - timedelta(days=4), pain=4),
            DailyLog(patient=patient, date=TODAY - timedelta(days=2), pain=5),
        ]
    )
    assert stored_rollup(patient) == expected_rollup(patient)


@pytest.mark.django_db
@pytest.mark.db_owner
def test_the_migrations_triggers_serve_a_partitioned_log_table(patient):
    """The daily log table may become a declaratively partitioned one (by month): the
    migration's CREATE TRIGGER statements, run on a partitioned copy, fire for rows
    written through the parent into its partitions, present and attached later."""
    migration = importlib.import_module("rehab.migrations.0013_patientlogrollup")
    triggers = [
        statement.replace(" ON rehab_dailylog\n", " ON partitioned_logs\n").replace(
            "TRIGGER rehab_dailylog_rollup_", "TRIGGER partitioned_logs_rollup_"
        )
        for statement in migration.REFRESH.split(";")
        if "CREATE TRIGGER" in statement
    ]
    assert len(triggers) == 2
    DailyLog.objects.create(patient=patient, date=TODAY - timedelta(days=40), pain=3)
    columns = (
        "id, patient_id, date, pain, notes, safety, version, created_at, updated_at,"
        " evaluation_attempts, evaluation_error"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE partitioned_logs (LIKE rehab_dailylog INCLUDING DEFAULTS)"
            " PARTITION BY RANGE (date)"
        )
        cursor.execute(
            "CREATE TABLE partitioned_logs_2026_10 PARTITION OF partitioned_logs"
            " FOR VALUES FROM ('2026-10-01') TO ('2026-11-01')"
        )
        for statement in triggers:
            cursor.execute(statement)
        cursor.execute(
            "CREATE TABLE partitioned_logs_2026_11 PARTITION OF partitioned_logs"
            " FOR VALUES FROM ('2026-11-01') TO ('2026-12-01')"
        )
        for day, pain in ((TODAY - timedelta(days=25), 5), (TODAY, 7)):  # Oct., then Nov.
            cursor.execute(
                f"INSERT INTO partitioned_logs ({columns})"
                " VALUES (%s, %s, %s, %s, '', '{}', 1, now(), now(), 0, '')",
                [uuid.uuid4(), patient.pk, day, pain],
            )
            row = stored_rollup(patient)
            assert row is not None
            assert (row[1], row[2]) == (day, pain)  # the newest log, added by the trigger
