"""The daily logs' monthly partitions (docs/clinical-record.md § Where the daily logs are
stored): one id one log across partitions, partitions made ahead by the application role
through the owner's functions, and the hot reads pruned to the partitions they need."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, connections
from django.db.models import QuerySet

from dashboard import selectors as dashboard_selectors
from patients.models import Patient
from rehab.models import Alert, DailyLog, DailyLogId, DailyLogRevision
from rehab.selectors import logs as logs_selectors
from rehab.selectors.logs import log_list
from rehab.services import partitions
from rehab.services.sweeps import unevaluated_logs_sweep
from rehab.tasks import dailylog_partitions_ensure_task

LOGS = "/api/v1/logs/"


def _month(day: date, shift: int = 0) -> date:
    index = day.year * 12 + day.month - 1 + shift
    return date(index // 12, index % 12 + 1, 1)


def _partition(day: date) -> str:
    return f"rehab_dailylog_p{day:%Y_%m}"


def _partitions() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'rehab_dailylog'::regclass ORDER BY c.relname"
        )
        return [row[0] for row in cursor.fetchall()]


def _log(patient: Patient, day: date, **fields: Any) -> DailyLog:
    return DailyLog.objects.create(patient=patient, date=day, pain=fields.pop("pain", 4), **fields)


def _plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


def _scanned(queryset: QuerySet[Any], *, analyze: bool = False) -> dict[str, int]:
    """The log partitions the query's plan reads, each with how many times its scan ran
    (EXPLAIN ANALYZE; 1 without ANALYZE): a partition pruned at run time shows 0."""
    sql, params = queryset.query.sql_with_params()
    options = "ANALYZE, FORMAT JSON" if analyze else "FORMAT JSON"
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN ({options}) {sql}", params)
        raw = cursor.fetchone()[0]
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    found: dict[str, int] = {}
    for node in _plan_nodes(plan):
        name = node.get("Relation Name", "")
        if name.startswith("rehab_dailylog_"):
            loops = int(node.get("Actual Loops", 1)) if analyze else 1
            found[name] = found.get(name, 0) + loops
    return found


# --- Partitions ahead -----------------------------------------------------------------


@pytest.mark.django_db
def test_the_migration_made_this_months_partition_the_months_ahead_and_a_default():
    names = _partitions()
    today = date.today()
    for shift in range(-1, 4):
        assert _partition(_month(today, shift)) in names
    assert "rehab_dailylog_default" in names


@pytest.mark.django_db
def test_the_beat_task_creates_partitions_ahead_as_the_application_role_and_once():
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, has_schema_privilege('public', 'CREATE')")
        role, may_create = cursor.fetchone()
    assert not may_create  # the application role itself has no DDL
    # The first month without a partition (a transactional test may have made some).
    ahead = next(
        shift
        for shift in range(4, 25)
        if _partition(_month(date.today(), shift)) not in _partitions()
    )
    far = _month(date.today(), ahead)

    created = partitions.partitions_ensure(months_ahead=ahead)
    assert created == 1
    assert _partition(far) in _partitions()
    assert dailylog_partitions_ensure_task() == 0  # a second beat makes nothing twice
    assert partitions.partitions_ensure(months_ahead=ahead) == 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_userbyid(relowner) <> %s, has_table_privilege(%s, oid, 'INSERT')"
            " FROM pg_class WHERE relname = %s",
            [role, role, _partition(far)],
        )
        owned_by_other, may_insert = cursor.fetchone()
    assert owned_by_other  # the owner's,
    assert may_insert  # with the usual grants
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_partition_tree('rehab_dailylog') t"
            " JOIN pg_class c ON c.oid = t.relid WHERE t.isleaf"
            " AND NOT 'vacuum_truncate=false' = ANY(coalesce(c.reloptions, '{}'))"
        )
        # No vacuum takes an ACCESS EXCLUSIVE lock a replica's readers would wait on.
        assert cursor.fetchall() == []


@pytest.mark.django_db
def test_it_refuses_a_partition_far_from_today():
    from django.db import DatabaseError

    with pytest.raises(DatabaseError):
        partitions.partition_create(month=date(1999, 12, 1))


@pytest.mark.django_db(transaction=True)
def test_two_beats_at_once_create_each_partition_once():
    results: list[int] = []
    errors: list[BaseException] = []

    def beat() -> None:
        try:
            results.append(partitions.partitions_ensure(months_ahead=10))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=beat) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(results) == 2
    ahead = [_partition(_month(date.today(), shift)) for shift in range(-1, 11)]
    assert set(ahead) <= set(_partitions())
    assert partitions.partitions_ensure(months_ahead=10) == 0


@pytest.mark.django_db
def test_logs_of_a_month_without_partition_wait_in_the_default_then_move_in(patient):
    month = _month(date.today(), 14)
    log = _log(patient, month + timedelta(days=3))
    alert = Alert.objects.create(
        patient=patient,
        rule="RF-TEST",
        rule_version=1,
        severity="urgent",
        log=log,
        last_fired_at=datetime.now(UTC),
        opened_at=datetime.now(UTC),
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM rehab_dailylog WHERE id = %s", [log.pk]
        )
        assert cursor.fetchone()[0] == "rehab_dailylog_default"

    assert partitions.partition_create(month=month)

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM rehab_dailylog WHERE id = %s", [log.pk]
        )
        assert cursor.fetchone()[0] == _partition(month)
        # The alert's key onto the log's id still holds (checked now, not at commit).
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    assert DailyLogId.objects.filter(pk=log.pk).exists()
    assert Alert.objects.get(pk=alert.pk).log == log


# --- One id, one log ------------------------------------------------------------------


def _server_log() -> Path:
    settings = connection.settings_dict
    host = settings.get("HOST") or (settings.get("OPTIONS") or {}).get("host") or ""
    log = Path(host) / "log" if host.startswith("/") else None
    if log is None or not log.is_file():
        pytest.skip("the database server's log is not readable here (not the embedded server)")
    return log


@pytest.mark.django_db(transaction=True)
def test_the_same_id_under_a_date_of_another_month_is_a_409_and_no_database_error(
    patient, patient_client, time_machine
):
    # The 3rd: the backfill window reaches into the previous month's partition.
    time_machine.move_to(datetime(2026, 12, 3, 12, tzinfo=UTC), tick=False)
    server_log = _server_log()
    start = server_log.stat().st_size
    canary = f"canary-{uuid.uuid4().hex}"
    today = patient.local_today()
    earlier = today - timedelta(days=10)
    assert _month(earlier) != _month(today)
    body = {"id": str(uuid.uuid4()), "date": today.isoformat(), "pain": 6, "notes": canary}

    assert patient_client.post(LOGS, body).status_code == 201
    moved = {**body, "date": earlier.isoformat(), "notes": f"{canary} moved"}
    response = patient_client.post(LOGS, moved)
    assert response.status_code == 409, response.json()
    assert response.json()["existing_id"] == body["id"]
    assert DailyLog.objects.filter(pk=body["id"]).count() == 1
    assert not DailyLog.objects.filter(patient=patient, date=earlier).exists()
    # Its retry is still answered as one (200, the stored log).
    assert patient_client.post(LOGS, body).status_code == 200

    # Another id for the stored date: 409, and the id it tried stays free.
    other = {**body, "id": str(uuid.uuid4()), "notes": f"{canary} other"}
    assert patient_client.post(LOGS, other).status_code == 409
    assert not DailyLogId.objects.filter(pk=other["id"]).exists()
    free = {**other, "date": earlier.isoformat()}
    assert patient_client.post(LOGS, free).status_code == 201

    written = server_log.read_bytes()[start:].decode(errors="replace")
    for value in (canary, str(patient.pk), body["id"], other["id"]):
        assert value not in written


@pytest.mark.django_db
def test_an_id_claimed_by_no_log_does_not_block_the_post(patient, patient_client):
    log_id = uuid.uuid4()
    # As a clash's claim left behind by a crash.
    DailyLogId.objects.create(id=log_id, date=patient.local_today())
    body = {"id": str(log_id), "date": patient.local_today().isoformat(), "pain": 3}
    assert patient_client.post(LOGS, body).status_code == 201
    assert DailyLog.objects.get(pk=log_id).pain == 3


@pytest.mark.django_db
def test_any_insert_of_a_taken_id_inserts_nothing(patient, other_patient):
    log = _log(patient, date.today())
    # An ORM insert too (another writer than the log POST): the trigger makes it a no-op.
    DailyLog.objects.create(id=log.pk, patient=other_patient, date=date(2026, 1, 5), pain=9)
    assert list(DailyLog.objects.filter(pk=log.pk).values_list("patient", "pain")) == [
        (patient.pk, 4)
    ]


@pytest.mark.django_db
def test_an_edit_moving_a_log_to_another_month_keeps_it_and_its_id(patient, patient_client):
    today = date.today()
    log = _log(patient, today)
    revision = DailyLogRevision.objects.create(log=log, version=1, data={}, changed_fields=[])
    earlier = _month(today, -1) + timedelta(days=20)
    DailyLog.objects.filter(pk=log.pk).update(date=earlier)
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(
            "SELECT tableoid::regclass::text FROM rehab_dailylog WHERE id = %s", [log.pk]
        )
        assert cursor.fetchone()[0] == _partition(earlier)
    assert DailyLogId.objects.filter(pk=log.pk).count() == 1
    assert DailyLogRevision.objects.get(pk=revision.pk).log_id == log.pk


# --- Deletion -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_deleting_a_patient_removes_their_logs_ids_and_what_hangs_on_them(patient, other_patient):
    log = _log(patient, date.today())
    kept = _log(other_patient, date.today())
    DailyLogRevision.objects.create(log=log, version=1, data={}, changed_fields=[])
    now = datetime.now(UTC)
    alert = Alert.objects.create(
        patient=other_patient,
        rule="RF-TEST",
        rule_version=1,
        severity="urgent",
        log=log,  # another patient's alert naming the log: set to null, as before
        last_fired_at=now,
        opened_at=now,
    )
    patient.delete()  # commits: the deferred keys are checked
    assert not DailyLog.objects.filter(pk=log.pk).exists()
    assert not DailyLogId.objects.filter(pk=log.pk).exists()
    assert not DailyLogRevision.objects.filter(log_id=log.pk).exists()
    assert Alert.objects.get(pk=alert.pk).log_id is None
    assert DailyLogId.objects.filter(pk=kept.pk).exists()


@pytest.mark.django_db
def test_the_database_refuses_to_delete_a_log_something_still_points_at(patient):
    from django.db import IntegrityError, transaction

    log = _log(patient, date.today())
    DailyLogRevision.objects.create(log=log, version=1, data={}, changed_fields=[])

    def delete_checked_now() -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("DELETE FROM rehab_dailylog WHERE id = %s", [log.pk])

    with pytest.raises(IntegrityError):
        delete_checked_now()
    assert DailyLog.objects.filter(pk=log.pk).exists()


# --- Pruning on the hot paths ---------------------------------------------------------


@pytest.fixture
def year_of_logs(patient: Patient) -> Patient:
    """A log every 9 days over the last year, so that every partition holds some."""
    today = patient.local_today()
    for month in range(-12, 0):
        partitions.partition_create(month=_month(today, month))
    DailyLog.objects.bulk_create(
        DailyLog(patient=patient, date=today - timedelta(days=days), pain=days % 10)
        for days in range(0, 365, 9)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE rehab_dailylog")
    return patient


@pytest.mark.django_db
def test_a_patients_logs_by_date_range_read_only_those_months(year_of_logs, patient, clinician):
    today = patient.local_today()
    start = _month(today, -2) + timedelta(days=10)
    logs = log_list(user=patient.user, patient=patient, date_from=start, date_to=today)
    assert set(_scanned(logs)) == {_partition(_month(today, shift)) for shift in range(-2, 1)}


@pytest.mark.django_db
def test_the_log_posts_conflict_look_up_reads_one_partition(year_of_logs, patient):
    log = DailyLog.objects.filter(patient=patient).first()
    assert log is not None
    lookup = DailyLog.objects.filter(pk=log.pk, date=log.date)
    assert set(_scanned(lookup)) == {_partition(log.date)}
    day = DailyLog.objects.filter(patient=patient, date=log.date)
    assert set(_scanned(day)) == {_partition(log.date)}


@pytest.mark.django_db
def test_the_dashboards_recent_days_count_runs_on_no_log_partition(
    year_of_logs, patient, clinician
):
    # The caseload's logs-in-the-last-7-days figure comes from the per-patient rollup (the
    # seven latest dates it keeps): no partition of the log table is scanned for it.
    patients = logs_selectors.with_log_figures(Patient.objects.filter(pk=patient.pk)).annotate(
        recent=dashboard_selectors._logs_in_last_days(7)
    )
    scanned = _scanned(patients.values("recent"), analyze=True)
    assert {name for name, loops in scanned.items() if loops} == set()
    assert (
        patients.get().recent
        == DailyLog.objects.filter(
            patient=patient, date__gt=patient.local_today() - timedelta(days=7)
        ).count()
    )


@pytest.mark.django_db
def test_the_sweepers_owed_logs_query_reads_each_partitions_partial_index(year_of_logs, patient):
    # Owed is a state, not a date (an edit of an old log is owed again): no pruning, but
    # each partition answers from its partial index, empty once its logs are evaluated.
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
    owed = DailyLog.objects.filter(evaluated_at__isnull=True, evaluation_failed_at__isnull=True)
    sql, params = owed.order_by("updated_at").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        raw = cursor.fetchone()[0]
        cursor.execute("RESET enable_seqscan")
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    scans = [
        n for n in _plan_nodes(plan) if n.get("Relation Name", "").startswith("rehab_dailylog_")
    ]
    assert scans
    assert all(n["Node Type"] == "Index Scan" for n in scans), scans
    assert all("updated_at" in n["Index Name"] for n in scans), scans
    assert unevaluated_logs_sweep(batch=10, budget=1.0) >= 0


# --- The migration moves the existing logs --------------------------------------------


@pytest.mark.db_owner
@pytest.mark.django_db(transaction=True)
def test_the_migration_moves_existing_logs_into_their_months(patient, other_patient):
    from django.conf import settings
    from django.db.migrations.executor import MigrationExecutor

    from patients.dbroles import app_role_grant

    before = [("rehab", "0011_alertevent_follow_up")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    old_log = old.get_model("rehab", "DailyLog")
    old_revision = old.get_model("rehab", "DailyLogRevision")
    days = [date(2024, 5, 31), date(2024, 6, 1), date.today()]
    logs = [old_log.objects.create(patient_id=patient.pk, date=d, pain=5) for d in days]
    old_log.objects.create(patient_id=other_patient.pk, date=days[0], pain=2)
    old_revision.objects.create(log_id=logs[0].pk, version=1, data={}, changed_fields=[])

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    app = getattr(settings, "DATABASE_APP", None)
    if app is not None:
        app_role_grant(role=app["USER"])

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, tableoid::regclass::text FROM rehab_dailylog WHERE patient_id = %s",
            [patient.pk],
        )
        where = dict(cursor.fetchall())
        cursor.execute(
            "SELECT confrelid::regclass::text FROM pg_constraint"
            " WHERE conrelid = 'rehab_dailylogrevision'::regclass AND contype = 'f'"
            " AND conkey = ARRAY[(SELECT attnum FROM pg_attribute WHERE attname = 'log_id'"
            " AND attrelid = 'rehab_dailylogrevision'::regclass)]"
        )
        referenced = [row[0] for row in cursor.fetchall()]
    assert where == {log.pk: _partition(log.date) for log in logs}
    assert DailyLog.objects.count() == 4
    assert DailyLogId.objects.count() == 4
    assert referenced == ["rehab_dailylogid"]
    assert DailyLogRevision.objects.get().log_id == logs[0].pk
    # And the moved table behaves: a taken id inserts nothing, a new one goes in.
    DailyLog.objects.create(id=logs[1].pk, patient=other_patient, date=days[1], pain=1)
    assert DailyLog.objects.count() == 4
    DailyLog.objects.create(patient=other_patient, date=days[1], pain=1)
    assert DailyLog.objects.count() == 5


# --- The claimed ids keep each log's date (migration 0014) ----------------------------


def _claims_match_logs() -> dict[uuid.UUID, date]:
    """Every log's claim holds the log's date; the claims of logs, by id."""
    logs = dict(DailyLog.objects.values_list("pk", "date"))
    claims = dict(DailyLogId.objects.filter(pk__in=list(logs)).values_list("pk", "date"))
    assert claims == logs
    return claims


@pytest.mark.django_db
def test_the_claim_keeps_the_logs_date_through_insert_edits_and_delete(patient):
    today = date.today()
    log = _log(patient, today)
    assert DailyLogId.objects.get(pk=log.pk).date == today
    # Re-dated within its month: an UPDATE in place.
    same_month = today.replace(day=2 if today.day != 2 else 3)
    DailyLog.objects.filter(pk=log.pk).update(date=same_month)
    assert DailyLogId.objects.get(pk=log.pk).date == same_month
    # Re-dated into another month: PostgreSQL's delete and insert, the release and claim.
    earlier = _month(today, -1) + timedelta(days=20)
    log.refresh_from_db()
    log.date = earlier
    log.save()
    assert DailyLogId.objects.get(pk=log.pk).date == earlier
    # An update that leaves the date alone (the worker's) leaves the claim alone.
    DailyLog.objects.filter(pk=log.pk).update(evaluated_at=datetime.now(UTC))
    assert _claims_match_logs() == {log.pk: earlier}
    log.delete()
    assert not DailyLogId.objects.filter(pk=log.pk).exists()


@pytest.mark.django_db
def test_an_edit_through_the_api_moves_the_claims_date_with_the_log(
    patient, patient_client, time_machine
):
    time_machine.move_to(datetime(2026, 12, 3, 12, tzinfo=UTC), tick=False)
    today = patient.local_today()
    created = patient_client.post(LOGS, {"date": today.isoformat(), "pain": 5}).json()
    for day in (today - timedelta(days=1), today - timedelta(days=5)):  # same, then last month
        response = patient_client.patch(
            f"{LOGS}{created['id']}/", {"date": day.isoformat()}, format="json"
        )
        assert response.status_code == 200, response.json()
        assert DailyLogId.objects.get(pk=created["id"]).date == day
    assert patient_client.get(f"{LOGS}{created['id']}/").json()["date"] == day.isoformat()
    _claims_match_logs()


@pytest.mark.django_db
def test_a_refused_post_leaves_no_claim_and_the_default_partitions_move_keeps_dates(
    patient, patient_client
):
    today = patient.local_today()
    first = patient_client.post(LOGS, {"date": today.isoformat(), "pain": 5}).json()
    clash = {"id": str(uuid.uuid4()), "date": today.isoformat(), "pain": 6}
    assert patient_client.post(LOGS, clash).status_code == 409
    assert not DailyLogId.objects.filter(pk=clash["id"]).exists()
    far = _month(today, 15) + timedelta(days=4)
    waiting = _log(patient, far)
    assert partitions.partition_create(month=far)
    assert _claims_match_logs() == {uuid.UUID(first["id"]): today, waiting.pk: far}


@pytest.mark.django_db
def test_erasure_keeps_every_claims_date(patient):
    from rights.erasure import patient_pseudonymise

    for days in (0, 3, 40):
        _log(patient, date.today() - timedelta(days=days), notes="something personal")
    assert patient_pseudonymise(patient_id=patient.pk, reason="request")
    assert not DailyLog.objects.exclude(notes="").exists()
    assert len(_claims_match_logs()) == 3


def _lock_waiters() -> int:
    """Sessions of this database waiting for a lock (pg_locks: the application role does
    not see other sessions' wait events; this database only: other test workers run beside
    this one, docs/testing.md)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND pid IN"
            " (SELECT pid FROM pg_stat_activity WHERE datname = current_database())"
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0


@pytest.mark.django_db(transaction=True)
def test_two_inserts_of_one_id_racing_leave_the_winners_date(patient, other_patient):
    from django.db import transaction

    log_id = uuid.uuid4()
    today = date.today()
    other_day = _month(today, -1) + timedelta(days=10)
    inserted, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        try:
            with transaction.atomic():
                DailyLog.objects.create(id=log_id, patient=patient, date=today, pain=3)
                inserted.set()
                release.wait(timeout=30)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    def second() -> None:
        try:
            # Waits on the first's uncommitted claim, then inserts nothing.
            DailyLog.objects.create(id=log_id, patient=other_patient, date=other_day, pain=8)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    a, b = threading.Thread(target=first), threading.Thread(target=second)
    a.start()
    assert inserted.wait(timeout=30)
    b.start()
    # Polled, not given a fixed time: under a loaded parallel run the second insert may
    # take seconds to get to the first's claim (docs/testing.md § Deadlines).
    deadline = time.monotonic() + 30
    while not _lock_waiters() and b.is_alive():
        assert time.monotonic() < deadline, "the second insert neither ended nor waited"
        time.sleep(0.02)
    assert b.is_alive(), "the second insert did not wait for the first's claim"
    release.set()
    a.join(timeout=30)
    b.join(timeout=30)
    assert not errors
    assert list(DailyLog.objects.filter(pk=log_id).values_list("patient", "date")) == [
        (patient.pk, today)
    ]
    assert _claims_match_logs() == {log_id: today}


# --- Reads by id: one partition planned -----------------------------------------------


def _log_statements(queries: list[dict[str, str]]) -> list[str]:
    """The statements among `queries` that read or write the log table itself."""
    return [
        q["sql"]
        for q in queries
        if '"rehab_dailylog"' in q["sql"] and not q["sql"].lstrip().upper().startswith("INSERT")
    ]


def _planned(sql: str) -> set[str]:
    """The log partitions PostgreSQL plans `sql` over (EXPLAIN without ANALYZE: nothing
    runs; a partition pruned at plan time is not in the plan at all)."""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
        raw = cursor.fetchone()[0]
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    return {
        node["Relation Name"]
        for node in _plan_nodes(plan)
        if node.get("Relation Name", "").startswith("rehab_dailylog_")
    }


@pytest.mark.django_db
def test_a_log_by_id_is_planned_over_its_months_partition_alone(year_of_logs, patient):
    log = DailyLog.objects.filter(patient=patient).order_by("date")[3]
    assert len(_scanned(DailyLog.objects.filter(pk=log.pk))) > 12  # what it was
    assert _scanned(DailyLog.objects.by_id(log.pk)) == {_partition(log.date): 1}
    assert DailyLog.objects.get_by_id(log.pk) == log
    assert DailyLog.objects.by_id(uuid.uuid4()).count() == 0  # no claim: no second query
    with pytest.raises(DailyLog.DoesNotExist):
        DailyLog.objects.visible_to(patient.user).exclude(pk=log.pk).get_by_id(log.pk)


@pytest.mark.django_db
def test_every_statement_of_a_get_and_a_patch_by_id_plans_one_partition(
    year_of_logs, patient, patient_client
):
    from django.test.utils import CaptureQueriesContext

    log = DailyLog.objects.filter(patient=patient).order_by("date")[2]
    url = f"{LOGS}{log.pk}/"
    with CaptureQueriesContext(connection) as read:
        response = patient_client.get(url)
    assert response.status_code == 200
    with CaptureQueriesContext(connection) as edit:
        response = patient_client.patch(
            url, {"pain": 9}, format="json", HTTP_IF_MATCH=response["ETag"]
        )
    assert response.status_code == 200, response.json()
    statements = _log_statements(read.captured_queries) + _log_statements(edit.captured_queries)
    assert len(statements) >= 3  # the GET's read, the PATCH's reads, lock and update
    for sql in statements:
        assert _planned(sql) == {_partition(log.date)}, sql


@pytest.mark.django_db
def test_the_admins_page_of_a_log_reads_it_from_one_partition(year_of_logs, patient):
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from tests.factories import UserFactory

    operator = UserFactory.create(email="ops@example.com", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(operator)
    log = DailyLog.objects.filter(patient=patient).order_by("date")[4]
    with CaptureQueriesContext(connection) as page:
        response = client.get(f"/admin/rehab/dailylog/{log.pk}/change/")
    assert response.status_code == 200
    statements = [sql for sql in _log_statements(page.captured_queries) if log.pk.hex in sql]
    assert statements
    for sql in statements:
        assert _planned(sql) == {_partition(log.date)}, sql
    assert client.get(f"/admin/rehab/dailylog/{uuid.uuid4()}/change/").status_code == 302


@pytest.mark.django_db
def test_every_statement_of_the_workers_evaluation_by_id_plans_one_partition(year_of_logs, patient):
    from django.test.utils import CaptureQueriesContext

    from rehab.services.safety import log_evaluate

    log = DailyLog.objects.filter(patient=patient).order_by("date")[2]
    # A log whose answers fired something in the request is evaluated alone, by id.
    DailyLog.objects.filter(pk=log.pk).update(safety_advice={"level": "urgent"})
    with CaptureQueriesContext(connection) as evaluation:
        assert log_evaluate(log_id=log.pk).status == "evaluated"
    # The statements naming the log by id (the rules' reads of the patient's earlier logs
    # go by patient and date, LATERAL, pruned as they run).
    by_id = [
        sql
        for sql in _log_statements(evaluation.captured_queries)
        if log.pk.hex in sql and "LATERAL" not in sql
    ]
    assert len(by_id) >= 4  # the claim, the read, the batch's read, the mark
    for sql in by_id:
        assert _planned(sql) == {_partition(log.date)}, sql
    # Its message again: "already", from the same partition.
    with CaptureQueriesContext(connection) as again:
        assert log_evaluate(log_id=log.pk).status == "already"
    statements = _log_statements(again.captured_queries)
    assert len(statements) == 2
    for sql in statements:
        assert _planned(sql) == {_partition(log.date)}, sql


@pytest.mark.django_db
def test_a_read_by_id_finds_a_log_moved_to_another_month_after_its_date_was_read(
    year_of_logs, patient
):
    log = DailyLog.objects.filter(patient=patient).order_by("date")[2]
    stale = DailyLog.objects.by_id(log.pk)  # the probe ran: the read is of the old month
    moved_to = patient.local_today() - timedelta(days=1)
    DailyLog.objects.filter(patient=patient, date=moved_to).delete()
    DailyLog.objects.filter(pk=log.pk).update(date=moved_to)
    assert not stale.exists()  # what `get_by_id` reads again for
    assert DailyLog.objects.get_by_id(log.pk).date == moved_to


@pytest.mark.db_owner
@pytest.mark.django_db(transaction=True)
def test_the_migration_gives_existing_claims_their_logs_dates(patient, other_patient):
    from django.conf import settings
    from django.db.migrations.executor import MigrationExecutor

    from patients.dbroles import app_role_grant

    before = [("rehab", "0013_patientlogrollup")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    days = [date(2024, 5, 31), date(2024, 6, 1), date.today(), _month(date.today(), 20)]
    ids = [uuid.uuid4() for _ in days]
    stale = uuid.uuid4()
    with connection.cursor() as cursor:
        for log_id, day in zip(ids, days, strict=True):
            cursor.execute(
                "INSERT INTO rehab_dailylog (id, patient_id, date, pain, notes, safety, version,"
                " created_at, updated_at, evaluation_attempts, evaluation_error)"
                " VALUES (%s, %s, %s, 4, '', '{}', 1, now(), now(), 0, '')",
                [log_id, patient.pk if day != days[0] else other_patient.pk, day],
            )
        # A claim a refused POST left behind (a crash before its release).
        cursor.execute("INSERT INTO rehab_dailylogid (id) VALUES (%s)", [stale])
        cursor.execute("SELECT count(*) FROM rehab_dailylogid")
        assert cursor.fetchone()[0] == 5

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    app = getattr(settings, "DATABASE_APP", None)
    if app is not None:
        app_role_grant(role=app["USER"])

    assert dict(DailyLogId.objects.values_list("pk", "date")) == dict(zip(ids, days, strict=True))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attnotnull FROM pg_attribute WHERE attname = 'date'"
            " AND attrelid = 'rehab_dailylogid'::regclass"
        )
        assert cursor.fetchone()[0]
    # The triggers write the date from now on, the default partition's logs included.
    assert partitions.partition_create(month=days[3])
    new = _log(other_patient, date.today())
    assert _claims_match_logs()[new.pk] == date.today()
    assert DailyLog.objects.get_by_id(ids[3]).date == days[3]
