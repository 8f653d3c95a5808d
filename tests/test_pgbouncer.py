"""The service behind PgBouncer in transaction mode (docs/deployment.md § Connection
pooling): Debian's `pgbouncer` in front of the test server, each transaction on whichever
server connection is free, and a log POST, a read and an evaluation through it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from django.db import connections
from rest_framework.test import APIClient

from bench.pgbouncer import PGBOUNCER, pgbouncer
from patients.models import Patient
from rehab.models import Alert, DailyLog
from rehab.services import safety

pytestmark = [
    pytest.mark.skipif(
        PGBOUNCER is None,
        reason="Debian's pgbouncer is not installed (`make pgbouncer` installs it)",
    ),
]

LOGS = "/api/v1/logs/"


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
    # Two server connections, both open, taken in turn: consecutive transactions of one
    # client land on different server connections, so any session state the service kept
    # (a WITH HOLD cursor, a prepared statement, SET ROLE) would be found missing.
    with pgbouncer(
        host=host, port=port, users=[app_user], admin=admin, pool_size=2, round_robin=True
    ) as server:
        yield {"port": server.port, "app_user": app_user, "admin": admin, "server": server}


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
    return int(bouncer["server"].transactions(connections["default"].settings_dict["NAME"]))


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
