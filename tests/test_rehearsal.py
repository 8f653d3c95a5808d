"""The multi-node rehearsal (bench/rehearsal.py) at a tiny scale: two gunicorn nodes
behind HAProxy, PgBouncer in transaction mode, a streaming replica, two safety workers
and a default worker; a load of daily logs and red flags sent as the phone sends them
(retried with the same id until answered); one web node SIGKILLed mid-run, and one safety
worker SIGKILLed while it holds a red flag's evaluation (received, running, not
acknowledged: some red-flag patients are row-locked so that it cannot finish, and Celery's
remote control shows which it holds), both started again. It must end with every answered
log stored once, every red-flag log's alerts there once, the held red flag's alert raised
within HELD_ALERT_WITHIN of the restart, and nothing the alerts set off doubled. The check
itself is held to its definitions below on hand-made rows: it reports a lost log, a stray
log, a lost and a doubled alert, a doubled email or message, and a late alert."""

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
from bench.rehearsal import HAPROXY, SCALES, Config, held_outcome, held_red_flags, verify
from notifications.models import Delivery
from rehab.models import Alert, AlertEvent, AlertOccurrence, DailyLog, Notification
from tests.factories import ClinicianFactory, PatientFactory
from tests.rehab.worker_support import BASE_DIR, RedisServer

# The held red flag's alert, at the latest this long after the killed worker's restart:
# its message comes back once the tiny run's visibility timeout (4 s) has passed, when the
# restarted worker starts (or the other restores it); the bound leaves room for a loaded
# 2-core machine. Beat's sweep (30 s grace, every 30 s) is the backstop behind it.
HELD_ALERT_WITHIN = 45.0


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
            "REHEARSAL_HELD_ALERT_WITHIN": str(HELD_ALERT_WITHIN),
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
    killed = {"web1", verdict["kill"]["node"]}
    assert verdict["kill"]["node"] in {"safety1", "safety2"}
    assert set(load["killed_at_seconds"]) == set(load["restarted_at_seconds"]) == killed
    assert set(load["survivors_alive"]) == {"web2", "safety1", "safety2", "default1"} - killed
    assert all(load["survivors_alive"].values())
    assert load["pgbouncer_transactions"] > verdict["acked_logs"]
    assert set(load["reads"]) <= {"200", "502", "503", "0"}
    assert load["reads"].get("200", 0) > 0
    # The worker was killed while it held a red flag's evaluation: Celery said it was
    # running it, and it was still owed right after the kill (its attempt counted, the
    # evaluation not done), so the kill landed mid-task.
    kill = verdict["kill"]
    assert kill["landed_while_a_red_flag_was_held"] is True, kill
    assert kill["red_flags_held"], kill
    assert set(kill["red_flags_held"]) <= set(kill["active_log_evaluations"])
    assert kill["unevaluated_after_kill"] == kill["red_flags_held"]
    assert {entry["log"] for entry in kill["logs"]} == set(kill["red_flags_held"])
    # Each held red flag became its alert once, within the bound after the restart, and
    # its care-team email went out once; nothing it set off is doubled.
    rules = len(verdict["rules_per_red_flag"])
    for entry in kill["logs"]:
        assert entry["evaluation_attempts"] >= 2, entry  # the killed attempt, then another
        assert entry["alerts"] == entry["created_events"] == rules, entry
        assert entry["alert_seconds_after_restart"] <= HELD_ALERT_WITHIN, entry
        assert entry["alerts_to_email"] == entry["alerts_emailed"] == rules, entry
        assert entry["notified_events"] == rules, entry
    assert kill["alerted_in_time"] is True
    assert verdict["doubled_alert_events"] == verdict["doubled_notifications"] == 0
    assert verdict["doubled_deliveries"] == 0
    print(f"time to alert of the held red flags: {kill['max_seconds_to_alert']} s", kill["logs"])
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


@pytest.mark.django_db
def test_the_check_finds_a_doubled_email_in_app_notification_and_message() -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    day = date.today() - timedelta(days=1)
    logs = [_log(PatientFactory(), day) for _ in range(2)]
    alerts = [_alert(log, "RF-A") for log in logs]
    for alert in alerts:
        AlertEvent.objects.create(alert=alert, kind="created")
        AlertEvent.objects.create(alert=alert, kind="notified")
    clinician = ClinicianFactory.create()
    due = timezone.now()

    def deliver(alert: Alert) -> None:
        Delivery.objects.create(
            kind="alert", channel="email", address="on-call@example.com", alert=alert,
            idempotency_key=str(uuid.uuid4()), due_at=due, next_attempt_at=due,
        )  # fmt: skip

    def notify(alert: Alert) -> None:
        Notification.objects.create(clinician=clinician, alert=alert, kind="alert", message="x")

    deliver(alerts[0])
    notify(alerts[0])
    ids = [str(log.pk) for log in logs]
    with connection.cursor() as cursor:
        once = verify(cursor, ids, ids, since)
    # The second alert's email recorded twice, its in-app notification and its message
    # planned twice (under another key each time).
    AlertEvent.objects.create(alert=alerts[1], kind="notified")
    for _ in range(2):
        deliver(alerts[1])
        notify(alerts[1])
    with connection.cursor() as cursor:
        doubled = verify(cursor, ids, ids, since)

    assert once["ok"] is True, once
    assert once["doubled_alert_events"] == once["doubled_deliveries"] == 0
    assert doubled["ok"] is False
    assert doubled["doubled_alert_events"] == 1
    assert doubled["doubled_notifications"] == 1
    assert doubled["doubled_deliveries"] == 1


@pytest.mark.django_db
def test_the_held_check_times_the_alerts_from_the_restart_and_finds_a_late_one() -> None:
    day = date.today() - timedelta(days=1)
    on_time, late, never = (_log(PatientFactory(), day) for _ in range(3))
    restarted = timezone.now() - timedelta(seconds=10)
    _alert(on_time, "RF-A", notify_due=True, notified_at=timezone.now())
    late_alert = _alert(late, "RF-A")
    # Raised 50 s after the restart: past a 45 s bound.
    Alert.objects.filter(pk=late_alert.pk).update(created_at=restarted + timedelta(seconds=50))

    with connection.cursor() as cursor:
        alone = held_outcome(cursor, [str(on_time.pk)], restarted, 45.0)
        with_late = held_outcome(cursor, [str(on_time.pk), str(late.pk)], restarted, 45.0)
        with_none = held_outcome(cursor, [str(on_time.pk), str(never.pk)], restarted, 45.0)

    assert alone["alerted_in_time"] is True, alone
    (entry,) = alone["logs"]
    assert (entry["alerts"], entry["alerts_to_email"], entry["alerts_emailed"]) == (1, 1, 1)
    assert 9 <= entry["alert_seconds_after_restart"] <= 11
    assert with_late["alerted_in_time"] is False
    by_log = {e["log"]: e for e in with_late["logs"]}
    assert by_log[str(late.pk)]["alert_seconds_after_restart"] == 50.0
    assert with_none["alerted_in_time"] is False
    assert {e["log"]: e["alerts"] for e in with_none["logs"]}[str(never.pk)] == 0


def test_it_holds_the_red_flags_sent_from_hold_from_of_patients_with_no_other_log() -> None:
    cfg = Config("tiny", {**SCALES["tiny"], "hold_from": 0.5, "hold_red_flags": 2}, "x", 0,
                 Path("."), False, "")  # fmt: skip
    work: list[tuple[str, str, dict[str, Any]]] = [
        ("red", "a", {"id": "early"}),  # before `hold_from`
        ("log", "b", {"id": "quiet-b"}),
        ("read", "clinician", {}),
        ("log", "c", {"id": "quiet-c"}),
        ("red", "b", {"id": "also-quiet"}),  # b sends a quiet log too
        ("red", "d", {"id": "first"}),
        ("red", "e", {"id": "second"}),
        ("red", "f", {"id": "third"}),
    ]

    assert [body["id"] for body in held_red_flags(cfg, work)] == ["first", "second"]
