"""`make bench` end to end, at a tiny scale: the data build, the in-process probes, gunicorn
and a Celery worker started as in production, every load phase, the red-flag run, the
reads, the sweep and, when py-spy can attach, the profiles. Not a performance test: the
figures are not judged here (BENCHMARKS.md), only that every part runs and answers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest

from bench import profiling
from tests.rehab.worker_support import BASE_DIR, RedisServer

pytestmark = pytest.mark.worker

TINY = {
    "BENCH_PATIENTS": "520",  # the 500-patient caseload clinic and 20 others
    "BENCH_DAYS": "15",
    "BENCH_EXERCISE_PATIENTS": "10",
    "BENCH_POSTERS": "100",
    "BENCH_REQUESTS": "80",
    "BENCH_ROUNDS": "2",
    "BENCH_RED_FLAGS": "5",
    "BENCH_GETS": "5",
    "BENCH_OUTCOMES_PATIENTS": "20",  # the outcomes CSV's clinic: 20, then 200 patients
    "BENCH_BURST": "200",
    "BENCH_REMINDERS": "500",
}


def _admin_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        pytest.fail("DATABASE_URL is not set: `make test` sets it")
    return url


def _databases(admin_url: str) -> set[str]:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        return {row[0] for row in conn.execute("SELECT datname FROM pg_database")}


def test_make_bench_runs_every_phase_and_cleans_up(
    tmp_path: Path, redis_broker: RedisServer
) -> None:
    db_name = f"rehab_bench_test_{os.getpid()}"
    results = tmp_path / "results"
    env = {
        **os.environ,
        **TINY,
        "BENCH_DB": db_name,
        "BENCH_REDIS_URL": redis_broker.url,
        "BENCH_RESULTS": str(results),
    }
    profile = profiling.py_spy() is not None
    args = [sys.executable, "-m", "bench.run", "--scale", "small"]
    run = subprocess.run(
        [*args, "--py-spy"] if profile else args,
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        # ~20 s on a quiet machine; minutes on a loaded shared one, where 300 s was hit.
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-4000:]

    report: dict[str, Any] = json.loads((results / "latest.json").read_text())
    assert report["data"]["patients"] == 520
    assert report["data"]["caseload_size"] == 500
    post = report["log_post"]
    for kind, status in (
        ("product", "201"),
        ("peer", "201"),
        ("drf", "201"),
        ("bare", "201"),
        ("product_worker_paused", "201"),
    ):
        assert post[kind]["statuses"] == {status: 80}, (kind, post[kind])
        assert post[kind]["cpu_ms_per_request_total"] > 0
    assert len(post["round_ratios_to_drf"]) == 2  # BENCH_ROUNDS
    assert len(post["round_ratios_to_peer"]) == 2
    # The peer's CPU is its own gunicorn's and its own database backends'.
    assert post["peer"]["cpu_ms_per_request"]["peer"] > 0
    assert (
        post["peer"]["cpu_ms_per_request"].get("gunicorn", 0)
        < post["peer"]["cpu_ms_per_request"]["peer"]
    )
    assert report["red_flag"]["logs"] == 5
    assert report["red_flag"]["timeouts"] == 0
    burst = report["burst"]
    assert burst["tasks"] == 200
    # The default workers were paused meanwhile: all of it waited but what their pending
    # fetches (one per process) took off the list as it arrived.
    assert burst["default_waiting_at_start"] >= 190
    assert burst["timeouts"] == 0
    for read in ("caseload", "caseload_big_clinic", "dashboard", "progress"):
        assert set(report[read]["statuses"]) == {"200"}, (read, report[read])
    queries = {name: q["queries"] for name, q in report["queries"].items()}
    # Deterministic, unlike the timings: the counts that must not grow with the data.
    assert queries["caseload_500"] == queries["caseload_tiny"]
    assert queries["dashboard_500"] == queries["dashboard_tiny"]
    assert queries["progress_year"] == queries["progress_tiny"]
    # The pooled phase (bench/pooling.py): the same POSTs and reads through PgBouncer in
    # transaction mode, every one answered, and PgBouncer passed their transactions on.
    pooled = report["pooling"]
    assert pooled["pool_mode"] == "transaction"
    for kind in ("direct", "pooled"):
        assert pooled["log_post"][kind]["statuses"] == {"201": 40}, (kind, pooled)
        assert pooled["caseload"][kind]["statuses"] == {"200": 5}, (kind, pooled)
    assert pooled["transactions_through_pgbouncer"] >= 40
    assert "log POST through PgBouncer (txn mode) p99 < 50 ms" in [n for n, *_ in report["targets"]]
    assert report["sweep"]["seconds"] > 0
    reminders = report["reminders"]
    assert (reminders["planned"], reminders["handed_over"]) == (500, 500)
    assert reminders["red_flags"]["timeouts"] == 0
    assert {"gunicorn_child", "celery_main", "celery_child", "peer_child"} <= set(
        report["memory_mb"]
    )
    rights = report["data_rights"]
    assert set(rights["export_year"]["formats"]) == {"json", "csv", "fhir"}
    assert [row["patients"] for row in rights["outcomes_csv"]["sizes"]] == [20, 200]
    # The outcomes file has a row per patient of the clinic, whatever the scale.
    assert [row["rows"] for row in rights["outcomes_csv"]["sizes"]] == [20, 200]
    names = [name for name, *_ in report["targets"]]
    assert "a year of one patient exports < 2 s (worst format)" in names
    assert "outcomes CSV constant memory (200 patients)" in names
    assert "500 reminders due in one minute all handed over within it" in names
    assert "red-flag p99 < 250 ms during that reminder burst" in names
    assert [name for name, *_ in report["targets"]][:2] == [
        "log POST >= the plain DRF peer (aim 1.5x)",
        "log POST p99 < 50 ms",
    ]
    if profile:
        for name in ("post_gunicorn", "post_celery", "reads_gunicorn"):
            recorder_log = (results / f"profile-{name.replace('_', '-')}.log").read_text()
            assert "Sampling process" in recorder_log, (name, recorder_log)
        # At this scale the worker's 40 evaluations are a few milliseconds of CPU, a
        # sample or none; the web server's requests are enough to be sure of some.
        assert report["profiles"]["post_gunicorn"]["samples"] > 0
        assert report["profiles"]["reads_gunicorn"]["samples"] > 0
    assert "PASS" in run.stdout or "MISS" in run.stdout
    # Its own databases, dropped at the end; nothing left running.
    assert not {db_name, f"{db_name}_peer"} & _databases(_admin_url())
    assert not list(results.glob("*.pid"))


# --------------------------------------------------------------------------- a run stopped


def _wait_for(what: str, check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_a_run_stopped_midway_leaves_no_server_running(
    tmp_path: Path, redis_broker: RedisServer, sig: signal.Signals
) -> None:
    """Stopped once its servers are up: SIGTERM (a test's or a shell's `kill`) through the
    run's own clean-up, which drops its databases too; SIGKILL (a test's timeout) through
    the watcher (bench/reaper.py). Either way no process the run started survives it."""
    db_name = f"rehab_bench_stop_{os.getpid()}_{sig.name.lower()}"
    results = tmp_path / "results"
    env = {
        **os.environ,
        **TINY,
        "BENCH_DB": db_name,
        "BENCH_REDIS_URL": redis_broker.url,
        "BENCH_RESULTS": str(results),
    }
    run = subprocess.Popen(
        [sys.executable, "-m", "bench.run", "--scale", "small"],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        servers = ("gunicorn", "peer", "celery", "celery_default")
        _wait_for(
            "the servers to start",
            lambda: (
                run.poll() is not None
                or all((results / f"{name}.pid").exists() for name in servers)
            ),
            timeout=480,
        )
        assert run.poll() is None, "bench.run ended before its servers started"
        leaders = [int((results / f"{name}.pid").read_text()) for name in servers]
        # Every server's own workers forked (gunicorn's and the pools' children).
        _wait_for(
            "the servers' workers",
            lambda: all(psutil.Process(pid).children() for pid in leaders),
            timeout=120,
        )
        started = psutil.Process(run.pid).children(recursive=True)
        assert len(started) > len(servers)  # the watcher, the servers and their workers

        run.send_signal(sig)
        run.wait(timeout=120)
        if sig == signal.SIGTERM:
            assert run.returncode == 128 + signal.SIGTERM
        _wait_for(
            "every process the run started to stop",
            lambda: not [p for p in started if _alive(p)],
            timeout=60,
        )
        assert not list(results.glob("groups-*.txt"))
        if sig == signal.SIGTERM:
            # Its own clean-up ran: the databases are gone, the pid files too.
            assert not {db_name, f"{db_name}_peer"} & _databases(_admin_url())
            assert not list(results.glob("*.pid"))
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        # The run's databases are its owner role's (`make test` sets both URLs).
        owner = os.environ.get("DATABASE_MIGRATE_URL") or _admin_url()
        with psycopg.connect(owner, autocommit=True) as conn:
            for name in (db_name, f"{db_name}_peer"):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --------------------------------------------------------------------------- the peer

PEER_PROBE = """
import json
import django
from django.conf import settings
from django.test.utils import setup_test_environment

django.setup()
setup_test_environment()
from django.test import Client
from logs.models import DailyLog

body = json.dumps({"date": "2026-12-01", "pain": 4, "notes": "ok", "safety": {"fever": False}})
client = Client()
unauthenticated = client.post("/api/logs/", body, content_type="application/json")
created = client.post(
    "/api/logs/", body, content_type="application/json", HTTP_AUTHORIZATION="Token " + TOKEN
)
print(json.dumps({
    "middleware": settings.MIDDLEWARE,
    "authentication": settings.REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"],
    "unauthenticated": unauthenticated.status_code,
    "created": created.status_code,
    "stored": list(DailyLog.objects.values_list("patient__username", "pain", "notes")),
}))
"""


def _startproject_middleware() -> list[str]:
    """MIDDLEWARE as `django-admin startproject` writes it, read from Django's template."""
    import re

    import django

    template = Path(django.__file__).parent / "conf/project_template/project_name/settings.py-tpl"
    block = re.search(r"^MIDDLEWARE = \[(.*?)^\]", template.read_text(), re.M | re.S)
    assert block is not None
    return re.findall(r"'([\w.]+)'", block.group(1))


def test_the_peer_is_a_plain_drf_project_that_answers_a_log_post() -> None:
    from bench.run import PEER_DIR, _with_path, peer_env, peer_setup

    base = os.environ.get("DATABASE_MIGRATE_URL") or _admin_url()
    name = f"peer_test_{os.getpid()}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = _with_path(base, f"/{name}")
        env = peer_env({**os.environ, "DJANGO_SECRET_KEY": "peer-test-key"}, url)
        tokens = peer_setup(url, env, ["patient-1"])
        probe = subprocess.run(
            [sys.executable, "-c", f"TOKEN = {tokens['patient-1']!r}\n{PEER_PROBE}"],
            cwd=PEER_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert probe.returncode == 0, probe.stderr[-3000:]
        answer = json.loads(probe.stdout)
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    # Built the plain way: startproject's middleware as it is, DRF's token authentication.
    assert answer["middleware"] == _startproject_middleware()
    assert answer["authentication"] == ["rest_framework.authentication.TokenAuthentication"]
    assert answer["unauthenticated"] == 401
    assert answer["created"] == 201
    assert answer["stored"] == [["patient-1", 4, "ok"]]
