"""The audit trail cannot be wiped by the application, and tampering shows (issue 18,
item 2; docs/security.md § Database roles and audit trail).

The tests run as the application role (tests/conftest.py); the ones marked `db_owner`
play a database superuser or the owner, who can do anything and must be caught by the
hash chain instead.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from typing import Any

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, connections, transaction

from config.db import insert_together
from patients.dbroles import RoleError, app_role_grant, audit_chain_verify
from patients.models import AuditEvent
from patients.services import audit_event, audit_record
from tests.processes import BASE_DIR, production_env

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        getattr(settings, "DATABASE_APP", None) is None,
        reason="needs DATABASE_MIGRATE_URL (an owner role beside DATABASE_URL's), as make test",
    ),
]


def _app_role() -> str:
    assert settings.DATABASE_APP is not None
    return str(settings.DATABASE_APP["USER"])


def _owner_role() -> str:
    assert settings.DATABASE_OWNER is not None
    return str(settings.DATABASE_OWNER["USER"])


def _events(n: int, *, patient: Any = None) -> list[AuditEvent]:
    """`n` new audit events, as stored (the trigger's chain columns included)."""
    created = [
        audit_record(
            actor=None,
            action=AuditEvent.Action.READ,
            object_type="patient",
            object_id=i,
            patient=patient,
        )
        for i in range(n)
    ]
    return list(
        AuditEvent.objects.filter(pk__in=[e.pk for e in created]).order_by("chain_key", "chain_seq")
    )


def _current_user() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        return str(cursor.fetchone()[0])


def _sql(statement: str, params: list[Any] | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def _verify(*args: str) -> str:
    from io import StringIO

    out = StringIO()
    call_command("verify_audit", *args, stdout=out, stderr=out)
    return out.getvalue()


# --------------------------------------------------------------------------- roles


def test_it_runs_the_tests_as_the_application_role():
    assert _current_user() == _app_role()
    assert _app_role() != _owner_role()


@pytest.mark.parametrize(
    ("statement", "refusal"),
    [
        ("TRUNCATE patients_auditevent", "permission denied"),
        ("TRUNCATE patients_auditevent CASCADE", "permission denied"),
        ("UPDATE patients_auditevent SET actor_email = 'x'", "permission denied"),
        ("DELETE FROM patients_auditevent", "permission denied"),
        (
            "ALTER TABLE patients_auditevent DISABLE TRIGGER patients_auditevent_append_only",
            "must be owner",
        ),
        ("ALTER TABLE patients_auditevent DISABLE TRIGGER ALL", "must be owner"),
        ("DROP TRIGGER patients_auditevent_chain ON patients_auditevent", "must be owner"),
        ("DROP TABLE patients_auditevent", "must be owner"),
        ("CREATE TABLE scratch (id int)", "permission denied"),
        ("TRUNCATE rehab_dailylog", "permission denied"),
        ("ALTER TABLE rehab_dailylog ADD COLUMN x int", "must be owner"),
    ],
)
def test_it_refuses_the_application_role_what_would_rewrite_history(statement, refusal):
    _events(2)
    with pytest.raises(DatabaseError, match=refusal), transaction.atomic():
        _sql(statement)
    assert AuditEvent.objects.count() == 2


def test_it_lets_the_application_role_read_and_append_audit_events():
    _events(1)
    insert_together(audit_event(actor=None, action="read", object_type="patient"))
    assert AuditEvent.objects.count() == 2


@pytest.mark.db_owner
def test_it_refuses_updates_and_deletes_by_the_owner_too():
    _events(1)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.update(actor_email="someone-else@example.com")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.count() == 1


@pytest.mark.db_owner
def test_it_grants_the_application_role_a_table_created_later():
    app = connection.ops.quote_name(_app_role())
    # As the owner, as a later migration would; the grants are the default privileges.
    _sql("CREATE TABLE scratch_later (id int)")
    _sql(f"SET LOCAL ROLE {app}")
    _sql("INSERT INTO scratch_later VALUES (1)")
    _sql("UPDATE scratch_later SET id = 2")
    with pytest.raises(DatabaseError, match="permission denied"), transaction.atomic():
        _sql("TRUNCATE scratch_later")


@pytest.mark.db_owner
def test_it_refuses_to_grant_when_the_application_role_owns_a_table():
    app = _app_role()
    quoted = connection.ops.quote_name(app)
    # A mistake of the past (the test's rollback undoes it): the app role was the owner.
    _sql(f"GRANT CREATE ON SCHEMA public TO {quoted}")
    _sql("CREATE TABLE scratch_owned (id int)")
    _sql(f"ALTER TABLE scratch_owned OWNER TO {quoted}")
    with pytest.raises(RoleError, match="owns scratch_owned"):
        app_role_grant(role=app)


def test_it_migrates_as_the_owner_and_grants_the_application_role(transactional_db):
    # `manage.py migrate` in production: DATABASE_URL is the application role, the owner's
    # URL is DATABASE_MIGRATE_URL; the command connects as the owner and grants.
    from tests.rehab.worker_support import database_url

    app_url = database_url()
    owner = _owner_role()
    owner_url = app_url.replace(f"//{_app_role()}", f"//{owner}", 1)
    env = {**production_env(database_url=app_url), "DATABASE_MIGRATE_URL": owner_url}
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"Granted the application role {_app_role()}" in result.stdout


# --------------------------------------------------------------------------- hash chain


def test_it_chains_every_event_whatever_the_insert_says(patient):
    _events(2, patient=patient)
    forged = AuditEvent(actor=None, action="read", object_type="patient")
    forged.chain_seq, forged.chain_hash = 1000, "0" * 64
    insert_together(forged)
    rows = list(
        AuditEvent.objects.order_by("chain_seq").values_list("chain_key", "chain_seq", "chain_hash")
    )
    # One connection: one chain, numbered from its start.
    assert len({key for key, _, _ in rows}) == 1
    assert [seq for _, seq, _ in rows] == [1, 2, 3]
    rows = [(seq, h) for _, seq, h in rows]
    assert all(h and len(h) == 64 and h != "0" * 64 for _, h in rows)
    assert len({h for _, h in rows}) == 3
    report = audit_chain_verify()
    assert report.breaks == []
    assert "Audit trail intact: 3 events in 1 chains" in _verify()


@pytest.mark.db_owner
def test_it_detects_an_edited_event():
    events = _events(4)
    _sql("ALTER TABLE patients_auditevent DISABLE TRIGGER patients_auditevent_append_only")
    _sql("UPDATE patients_auditevent SET actor_email = 'nobody' WHERE id = %s", [events[1].pk])
    with pytest.raises(CommandError, match="tampered"):
        _verify()
    (broken,) = audit_chain_verify().breaks
    assert broken.id == events[1].pk
    assert "hash" in broken.problem


@pytest.mark.db_owner
@pytest.mark.parametrize(
    ("before", "after"), [("", "forged-id"), ("req-1", ""), ("req-1", "req-2")]
)
def test_it_detects_an_edited_request_id(before, after):
    # The request id joins the chained content only when there is one (migration 0009),
    # so adding, removing or changing it all break the event's link.
    events = _events(3)
    _sql("ALTER TABLE patients_auditevent DISABLE TRIGGER patients_auditevent_append_only")
    _sql("UPDATE patients_auditevent SET request_id = %s WHERE id = %s", [before, events[1].pk])
    _sql(
        "UPDATE patients_auditevent e SET chain_hash ="
        " patients_auditevent_chain_hash(p.chain_hash, e)"
        " FROM patients_auditevent p WHERE e.id = %s AND p.id = %s",
        [events[1].pk, events[0].pk],
    )
    _sql(
        "UPDATE patients_auditevent e SET chain_hash ="
        " patients_auditevent_chain_hash(p.chain_hash, e)"
        " FROM patients_auditevent p WHERE e.id = %s AND p.id = %s",
        [events[2].pk, events[1].pk],
    )
    assert audit_chain_verify().breaks == []
    _sql("UPDATE patients_auditevent SET request_id = %s WHERE id = %s", [after, events[1].pk])

    (broken,) = audit_chain_verify().breaks

    assert broken.id == events[1].pk


@pytest.mark.db_owner
def test_it_detects_an_edited_event_whose_hash_was_recomputed():
    events = _events(4)
    _sql("ALTER TABLE patients_auditevent DISABLE TRIGGER patients_auditevent_append_only")
    _sql("UPDATE patients_auditevent SET actor_email = 'nobody' WHERE id = %s", [events[2].pk])
    _sql(
        "UPDATE patients_auditevent e SET chain_hash ="
        " patients_auditevent_chain_hash(p.chain_hash, e)"
        " FROM patients_auditevent p WHERE e.id = %s AND p.id = %s",
        [events[2].pk, events[1].pk],
    )
    # The edited event's own link holds now; its successor's does not.
    (broken,) = audit_chain_verify().breaks
    assert broken.id == events[3].pk


@pytest.mark.db_owner
def test_it_detects_a_deleted_event():
    events = _events(4)
    _sql("ALTER TABLE patients_auditevent DISABLE TRIGGER patients_auditevent_append_only")
    _sql("DELETE FROM patients_auditevent WHERE id = %s", [events[1].pk])
    (broken,) = audit_chain_verify().breaks
    assert broken.id == events[2].pk
    assert "missing" in broken.problem
    with pytest.raises(CommandError, match="tampered"):
        _verify()


@pytest.mark.db_owner
def test_it_detects_the_first_events_deleted():
    events = _events(3)
    _sql("ALTER TABLE patients_auditevent DISABLE TRIGGER patients_auditevent_append_only")
    _sql("DELETE FROM patients_auditevent WHERE id = %s", [events[0].pk])
    (broken,) = audit_chain_verify().breaks
    assert broken.id == events[1].pk


@pytest.mark.db_owner
def test_it_detects_reordered_events():
    events = _events(4)
    a, b = events[1], events[2]
    _sql("ALTER TABLE patients_auditevent DISABLE TRIGGER patients_auditevent_append_only")
    # Swap two events' places in the chain (their numbers and hashes).
    _sql(
        "UPDATE patients_auditevent SET chain_seq = -chain_seq WHERE id IN (%s, %s)",
        [a.pk, b.pk],
    )
    _sql(
        "UPDATE patients_auditevent SET chain_seq = CASE WHEN id = %s THEN %s::bigint ELSE %s END"
        " WHERE id IN (%s, %s)",
        [a.pk, b.chain_seq, a.chain_seq, a.pk, b.pk],
    )
    assert {x.id for x in audit_chain_verify().breaks} >= {a.pk, b.pk}


@pytest.mark.db_owner
def test_it_detects_an_event_inserted_behind_the_chain():
    _events(2)
    _sql("ALTER TABLE patients_auditevent DISABLE TRIGGER patients_auditevent_chain")
    _sql(
        "INSERT INTO patients_auditevent (at, actor_email, action, object_type, object_id,"
        " changes, method, path, user_agent) VALUES"
        " (now(), 'x', 'read', 'patient', '', '{}', '', '', '')"
    )
    (broken,) = audit_chain_verify().breaks
    assert broken.problem == "not in the chain"


@pytest.mark.db_owner
def test_it_detects_a_removed_tail_against_an_anchor():
    events = _events(3)
    head = _verify().rsplit("head ", 1)[1].strip()
    assert head == f"{events[2].chain_key}:{events[2].chain_seq}:{events[2].chain_hash}"
    _events(2)
    _verify("--anchor", head)  # a chain that grew still holds its anchor
    _sql("ALTER TABLE patients_auditevent DISABLE TRIGGER patients_auditevent_append_only")
    _sql("DELETE FROM patients_auditevent WHERE chain_seq >= %s", [events[2].chain_seq])
    # Without an anchor the shorter chain is consistent: that is what anchors are for.
    _verify()
    with pytest.raises(CommandError, match="tampered"):
        _verify("--anchor", head)


def test_it_keeps_one_chain_under_concurrent_inserts(transactional_db, patient):
    errors: list[BaseException] = []

    def insert(n: int) -> None:
        try:
            for i in range(n):
                if i % 2:
                    insert_together(
                        audit_event(actor=None, action="read", object_type="log", patient=patient)
                    )
                else:
                    with transaction.atomic():
                        _events(2, patient=patient)
        except BaseException as exc:  # noqa: BLE001 (reported below, in the test's thread)
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=insert, args=(20,)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    chains: dict[int, list[int]] = {}
    for key, seq in AuditEvent.objects.values_list("chain_key", "chain_seq"):
        assert key is not None
        assert seq is not None
        chains.setdefault(key, []).append(seq)
    # Every chain numbered without a gap or a repeat, 180 events in all.
    assert all(sorted(seqs) == list(range(1, len(seqs) + 1)) for seqs in chains.values())
    assert sum(len(seqs) for seqs in chains.values()) == 6 * 30
    assert audit_chain_verify().breaks == []


def test_it_keeps_one_chain_when_connections_share_a_key(transactional_db):
    # Two connections whose backends fall in the same chain take turns on its lock.
    def key_of_a_new_connection() -> tuple[Any, int]:
        conn = connections.create_connection("default")  # as the app role (conftest)
        with conn.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid() %% %s", [AuditEvent.CHAINS])
            return conn, int(cursor.fetchone()[0])

    # 17 connections for 16 chains: two of them share one.
    opened = [key_of_a_new_connection() for _ in range(AuditEvent.CHAINS + 1)]
    try:
        by_key: dict[int, list[Any]] = {}
        for conn, key in opened:
            by_key.setdefault(key, []).append(conn)
        shared, pair = next((key, conns[:2]) for key, conns in by_key.items() if len(conns) > 1)
        errors: list[BaseException] = []

        def insert(conn: Any) -> None:
            try:
                for _ in range(30):
                    with conn.cursor() as cursor:
                        cursor.execute(
                            "INSERT INTO patients_auditevent (at, actor_email, action,"
                            " object_type, object_id, changes, method, path, user_agent)"
                            " VALUES (now(), '', 'read', 'patient', '', '{}', '', '', '')"
                        )
            except BaseException as exc:  # noqa: BLE001 (reported below)
                errors.append(exc)

        threads = [threading.Thread(target=insert, args=(conn,)) for conn in pair]
        for conn in pair:
            conn.inc_thread_sharing()  # each used by one thread of its own
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for conn in pair:
            conn.dec_thread_sharing()
        assert errors == []
        seqs = sorted(
            AuditEvent.objects.filter(chain_key=shared).values_list("chain_seq", flat=True)
        )
        assert seqs == list(range(1, 61))
        assert audit_chain_verify().breaks == []
    finally:
        for conn, _ in opened:
            conn.close()
