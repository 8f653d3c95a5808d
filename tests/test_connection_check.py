"""Kept database connections the server dropped are replaced before a request uses them,
without Django's per-request `SELECT 1` (config.db.close_dropped_connections)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from config.db import close_dropped_connections
from rehab.models import DailyLog

pytestmark = pytest.mark.django_db(transaction=True)

LOGS = "/api/v1/logs/"


def _terminate_own_backend() -> int:
    """End this process's database session from another session, as a server restart or
    `pg_terminate_backend` by an operator would, and wait until it is gone."""
    import psycopg

    pid = connection.connection.info.backend_pid
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
        deadline = time.monotonic() + 30  # generous: a loaded machine is only slower
        while other.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
            assert time.monotonic() < deadline, "the session did not end"
            time.sleep(0.01)
    return int(pid)


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def test_the_web_does_not_run_djangos_per_request_health_check():
    assert settings.DATABASES["default"]["CONN_HEALTH_CHECKS"] is False


def test_a_log_post_after_the_server_dropped_the_connection_answers_201(patient, patient_client):
    first = patient.local_today()
    assert patient_client.post(LOGS, {"date": first.isoformat(), "pain": 3}).status_code == 201
    dropped = _terminate_own_backend()

    response = patient_client.post(
        LOGS, {"date": (first - timedelta(days=1)).isoformat(), "pain": 4}
    )

    assert response.status_code == 201, response.content
    assert DailyLog.objects.filter(patient=patient).count() == 2
    assert _backend_pid() != dropped


def test_a_kept_healthy_connection_is_reused_without_a_round_trip(patient, patient_client):
    day = patient.local_today()
    assert patient_client.post(LOGS, {"date": day.isoformat(), "pain": 3}).status_code == 201
    kept = _backend_pid()

    with CaptureQueriesContext(connection) as queries:
        response = patient_client.get(LOGS)

    assert response.status_code == 200
    assert _backend_pid() == kept
    assert not [q for q in queries.captured_queries if q["sql"].strip().upper() == "SELECT 1"]


def test_it_closes_a_dropped_connection_and_keeps_a_live_one():
    kept = _backend_pid()
    close_dropped_connections()
    assert connection.connection is not None
    assert _backend_pid() == kept

    _terminate_own_backend()
    close_dropped_connections()
    assert connection.connection is None
    assert _backend_pid() != kept


def test_it_leaves_a_connection_inside_a_transaction_alone():
    from django.db import transaction

    with transaction.atomic():
        _backend_pid()
        close_dropped_connections()
        assert connection.connection is not None
