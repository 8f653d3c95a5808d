"""The multi-node rehearsal (bench/rehearsal.py) at a tiny scale: two gunicorn nodes
behind HAProxy, PgBouncer in transaction mode, a streaming replica, two safety workers
and a default worker; a load of daily logs and red flags sent as the phone sends them
(retried with the same id until answered); one web node and one safety worker SIGKILLed
mid-run and started again. It must end with every answered log stored once and every
red-flag log's alerts there once. The check itself is held to its definitions below on
hand-made rows: it reports a lost log, a stray log, a lost and a doubled alert."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.db import connection, connections
from django.utils import timezone

from bench.pgbouncer import PGBOUNCER
from bench.pgreplica import pg_bin
from bench.rehearsal import HAPROXY, verify
from rehab.models import Alert, AlertOccurrence, DailyLog
from tests.factories import PatientFactory
from tests.rehab.worker_support import BASE_DIR, RedisServer


@pytest.mark.worker
@pytest.mark.skipif(
    PGBOUNCER is None or HAPROXY is None or pg_bin() is None,
    reason="needs Debian's pgbouncer and haproxy (`make test` installs them) and pg_basebackup",
)
def test_the_rehearsal_loses_and_doubles_nothing_when_a_web_node_and_a_worker_die(
    tmp_path: Path, redis_broker: RedisServer, django_db_setup: Any, django_db_blocker: Any
) -> None:
    db_name = f"rehab_rehearsal_test_{os.getpid()}"
    # A copy of the migrated test database: migrating a fresh one would take most of
    # the test's time. Nobody may be connected to a template while it is copied.
    template = connections["default"].settings_dict["NAME"]
    connections.close_all()
    results = tmp_path / "results"
    run = subprocess.run(
        [sys.executable, "-m", "bench.rehearsal", "--scale", "tiny"],
        cwd=BASE_DIR,
        env={
            **os.environ,
            "REHEARSAL_DB": db_name,
            "REHEARSAL_REDIS_URL": redis_broker.url,
            "REHEARSAL_RESULTS": str(results),
            "REHEARSAL_TEMPLATE": template,
        },
        capture_output=True,
        text=True,
        timeout=240,
    )
    written = results / "latest-tiny.json"
    assert written.exists(), run.stderr[-4000:]
    report: dict[str, Any] = json.loads(written.read_text())
    verdict, load = report["verdict"], report["load"]
    assert run.returncode == 0, (verdict, load, run.stderr[-3000:])
    assert verdict["ok"] is True
    # Everything the load sent was answered, and stored once.
    assert verdict["acked_logs"] == report["sizes"]["requests"] + report["sizes"]["red_flags"]
    assert verdict["stored_logs"] == verdict["acked_logs"]
    assert verdict["lost_logs"] == verdict["unexpected_logs"] == verdict["doubled_days"] == 0
    assert verdict["unevaluated_logs"] == verdict["failed_evaluations"] == 0
    # Every red flag raised its alerts, once each.
    assert verdict["red_flag_logs"] == report["sizes"]["red_flags"]
    assert verdict["rules_per_red_flag"]
    assert verdict["lost_alerts"] == verdict["doubled_alerts"] == 0
    # The kills happened during the load, the nodes came back, the proxy kept answering.
    assert set(load["killed_at_seconds"]) == {"web1", "safety1"}
    assert set(load["restarted_at_seconds"]) == {"web1", "safety1"}
    assert all(load["survivors_alive"].values())
    assert load["pgbouncer_transactions"] > verdict["acked_logs"]
    assert set(load["reads"]) <= {"200", "502", "503", "0"}
    assert load["reads"].get("200", 0) > 0
    # Its database is dropped at the end.
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        names = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
    assert db_name not in names


# --------------------------------------------------------------------------- the check


def _log(patient: Any, day: date, **kwargs: Any) -> DailyLog:
    now = timezone.now()
    return DailyLog.objects.create(
        patient=patient, date=day, pain=5, evaluated_at=now, evaluated_version=1, **kwargs
    )


def _alert(log: DailyLog, rule: str, **kwargs: Any) -> Alert:
    now = timezone.now()
    alert = Alert.objects.create(
        patient=log.patient,
        rule=rule,
        rule_version=1,
        severity="emergency",
        log=log,
        last_fired_at=now,
        opened_at=now,
        **kwargs,
    )
    AlertOccurrence.objects.create(alert=alert, log=log, fired_on=log.date, rule_version=1)
    return alert


@pytest.mark.django_db
def test_the_check_passes_when_each_log_and_alert_is_there_once() -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    day = date.today() - timedelta(days=1)
    logs = [_log(PatientFactory(), day) for _ in range(3)]
    for log in logs[1:]:
        _alert(log, "RF-A")
        _alert(log, "RF-B")

    with connection.cursor() as cursor:
        result = verify(
            cursor, [str(log.pk) for log in logs], [str(log.pk) for log in logs[1:]], since
        )

    assert result["ok"] is True, result
    assert result["rules_per_red_flag"] == ["RF-A", "RF-B"]


@pytest.mark.django_db
def test_the_check_finds_a_lost_log_a_stray_log_and_lost_and_doubled_alerts() -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    day = date.today() - timedelta(days=1)
    red = [_log(PatientFactory(), day) for _ in range(3)]
    for log in red:
        _alert(log, "RF-A")
    _alert(red[0], "RF-B")  # RF-B for two of the three: the third's is lost...
    _alert(red[1], "RF-B")
    # ... and a second alert for one rule of one log (an earlier one resolved, so the
    # one-unresolved-per-rule index lets it in): doubled.
    _alert(red[2], "RF-A", status="resolved")
    stray = _log(PatientFactory(), day)  # written, never answered
    answered = [str(log.pk) for log in red]
    never_stored = str(uuid.uuid4())

    with connection.cursor() as cursor:
        result = verify(cursor, [*answered, never_stored], answered, since)

    assert result["ok"] is False
    assert result["lost_logs"] == 1
    assert result["unexpected_logs"] == 1
    assert result["examples"]["unexpected_logs"] == [str(stray.pk)]
    assert result["rules_per_red_flag"] == ["RF-A", "RF-B"]
    assert result["lost_alerts"] == 2  # red[2] lacks RF-B: no alert, no occurrence
    assert result["doubled_alerts"] == 2  # red[2]'s RF-A: two alerts, two occurrences
