"""`make bench` end to end, at a tiny scale: the data build, the in-process probes, gunicorn
and a Celery worker started as in production, every load phase, the red-flag run, the
reads, the sweep and, when py-spy can attach, the profiles. Not a performance test: the
figures are not judged here (BENCHMARKS.md), only that every part runs and answers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
}


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _admin_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        pytest.fail("DATABASE_URL is not set: `make test` sets it")
    return url


def _databases(admin_url: str) -> set[str]:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        return {row[0] for row in conn.execute("SELECT datname FROM pg_database")}


def test_make_bench_runs_every_phase_and_cleans_up(tmp_path: Path, broker: RedisServer) -> None:
    db_name = f"rehab_bench_test_{os.getpid()}"
    results = tmp_path / "results"
    env = {
        **os.environ,
        **TINY,
        "BENCH_DB": db_name,
        "BENCH_REDIS_URL": broker.url,
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
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-4000:]

    report: dict[str, Any] = json.loads((results / "latest.json").read_text())
    assert report["data"]["patients"] == 520
    assert report["data"]["caseload_size"] == 500
    post = report["log_post"]
    for kind, status in (
        ("product", "201"),
        ("drf", "201"),
        ("bare", "201"),
        ("product_worker_paused", "201"),
    ):
        assert post[kind]["statuses"] == {status: 80}, (kind, post[kind])
        assert post[kind]["cpu_ms_per_request_total"] > 0
    assert len(post["round_ratios_to_drf"]) == 2  # BENCH_ROUNDS
    assert report["red_flag"]["logs"] == 5
    assert report["red_flag"]["timeouts"] == 0
    for read in ("caseload", "caseload_big_clinic", "dashboard", "progress"):
        assert set(report[read]["statuses"]) == {"200"}, (read, report[read])
    queries = {name: q["queries"] for name, q in report["queries"].items()}
    # Deterministic, unlike the timings: the counts that must not grow with the data.
    assert queries["caseload_500"] == queries["caseload_tiny"]
    assert queries["dashboard_500"] == queries["dashboard_tiny"]
    assert queries["progress_year"] == queries["progress_tiny"]
    assert report["sweep"]["seconds"] > 0
    assert {"gunicorn_child", "celery_main", "celery_child"} <= set(report["memory_mb"])
    rights = report["data_rights"]
    assert set(rights["export_year"]["formats"]) == {"json", "csv", "fhir"}
    assert [row["patients"] for row in rights["outcomes_csv"]["sizes"]] == [20, 200]
    # The outcomes file has a row per patient of the clinic, whatever the scale.
    assert [row["rows"] for row in rights["outcomes_csv"]["sizes"]] == [20, 200]
    names = [name for name, *_ in report["targets"]]
    assert "a year of one patient exports < 2 s (worst format)" in names
    assert "outcomes CSV constant memory (200 patients)" in names
    assert [name for name, *_ in report["targets"]][:2] == [
        "log POST >= plain DRF throughput (aim 1.5x)",
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
    # Its own database, dropped at the end; nothing left running.
    assert db_name not in _databases(_admin_url())
    assert not list(results.glob("*.pid"))
