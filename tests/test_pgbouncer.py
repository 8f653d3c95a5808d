"""The service behind PgBouncer in transaction mode (docs/deployment.md § Connection
pooling): Debian's `pgbouncer` in front of the test server, each transaction on whichever
server connection is free, and a log POST, a read and an evaluation through it."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.db import connections
from rest_framework.test import APIClient

from patients.models import Patient
from rehab.models import Alert, DailyLog
from rehab.services import safety
from tests.processes import BASE_DIR

PGBOUNCER = shutil.which("pgbouncer") or (
    "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
)

pytestmark = [
    pytest.mark.skipif(
        PGBOUNCER is None,
        reason="Debian's pgbouncer is not installed (`make pgbouncer` installs it)",
    ),
]

LOGS = "/api/v1/logs/"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def bouncer(django_db_setup: Any, django_db_blocker: Any) -> Iterator[dict[str, Any]]:
    from django.conf import settings

    with django_db_blocker.unblock():
        primary = connections["default"]
        primary.ensure_connection()
        info = primary.connection.info
        host, port = info.host, info.port
        primary.close()
    app_user = (settings.DATABASE_APP or {}).get("USER") or primary.settings_dict["USER"]
    admin = primary.settings_dict["USER"]
    # Under .data/, which the unprivileged user running it may enter (pytest's tmp may not).
    workdir = BASE_DIR / ".data" / f"pgbouncer-{os.getpid()}"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    listen = _free_port()
    (workdir / "userlist.txt").write_text(f'"{app_user}" ""\n"{admin}" ""\n')
    # Two server connections, both open, taken in turn: consecutive transactions of one
    # client land on different server connections, so any session state the service kept
    # (a WITH HOLD cursor, a prepared statement, SET ROLE) would be found missing.
    (workdir / "pgbouncer.ini").write_text(
        f"""[databases]
* = host={host} port={port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen}
unix_socket_dir =
auth_type = trust
auth_file = {workdir}/userlist.txt
admin_users = {admin}
pool_mode = transaction
default_pool_size = 2
server_round_robin = 1
min_pool_size = 2
max_client_conn = 50
server_reset_query =
logfile = {workdir}/pgbouncer.log
pidfile = {workdir}/pgbouncer.pid
"""
    )
    run_as: dict[str, Any] = {}
    if os.geteuid() == 0:  # pgbouncer refuses to run as root
        entry = pwd.getpwnam("pgserver")
        for path in (workdir, *workdir.iterdir()):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        run_as["user"] = "pgserver"
    assert PGBOUNCER is not None
    proc = subprocess.Popen(
        [PGBOUNCER, str(workdir / "pgbouncer.ini")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        **run_as,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", listen), 0.2):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                _, stderr = proc.communicate()
                raise RuntimeError(f"pgbouncer did not start:\n{stderr.decode(errors='replace')}")
            time.sleep(0.05)
        yield {"port": listen, "app_user": app_user, "admin": admin}
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def pooled(bouncer: dict[str, Any], transactional_db: Any) -> Iterator[dict[str, Any]]:
    """The default connection through PgBouncer, as the application role, with the
    settings DATABASE_POOLER=pgbouncer gives (config/settings.py)."""
    connection = connections["default"]
    original = {**connection.settings_dict, "OPTIONS": dict(connection.settings_dict["OPTIONS"])}
    connection.close()
    connection.settings_dict.update(
        HOST="127.0.0.1",
        PORT=str(bouncer["port"]),
        USER=bouncer["app_user"],
        DISABLE_SERVER_SIDE_CURSORS=True,
        OPTIONS={"prepare_threshold": None},
    )
    try:
        yield bouncer
    finally:
        # The flush after the test is the owner's, straight to the server.
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(original)


def _transactions_through(bouncer: dict[str, Any]) -> int:
    name = connections["default"].settings_dict["NAME"]
    with psycopg.connect(
        host="127.0.0.1",
        port=bouncer["port"],
        dbname="pgbouncer",
        user=bouncer["admin"],
        autocommit=True,
        prepare_threshold=None,
        cursor_factory=psycopg.ClientCursor,
    ) as admin:
        cursor = admin.execute("SHOW STATS")
        columns = [column.name for column in cursor.description or ()]
        for row in cursor.fetchall():
            stats = dict(zip(columns, row, strict=True))
            if stats["database"] == name:
                return int(stats["total_xact_count"])
    return 0


@pytest.mark.db_owner  # connects as the application role itself: no SET ROLE (session state)
def test_it_posts_reads_and_evaluates_through_pgbouncer_in_transaction_mode(
    pooled: dict[str, Any],
    patient_client: APIClient,
    clinician_client: APIClient,
    patient: Patient,
) -> None:
    before = _transactions_through(pooled)
    log_id = str(uuid.uuid4())
    response = patient_client.post(
        LOGS,
        {
            "id": log_id,
            "date": date.today().isoformat(),
            "pain": 6,
            "safety": {"saddle_numbness": "new_or_worse"},
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    assert connections["default"].connection.info.port == pooled["port"]

    progress = clinician_client.get(f"/api/v1/clinician/patients/{patient.pk}/progress/")
    assert progress.status_code == 200
    assert progress.json()["days_logged"] == 1
    # A chunked read (QuerySet.iterator) across several fetches: with server-side cursors
    # disabled it is one plain query, whichever server connection answers.
    assert [log.pk for log in DailyLog.objects.iterator(chunk_size=1)] == [uuid.UUID(log_id)]

    outcome = safety.log_evaluate(log_id=log_id)
    assert outcome.status == "evaluated"
    assert outcome.alerts
    assert Alert.objects.filter(pk__in=outcome.alerts, patient=patient).exists()
    assert _transactions_through(pooled) > before
