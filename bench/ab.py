"""HTTP A/B of the log POST: code trees side by side against a bench database you own.

    python -m bench.ab --db-url postgres://.../rehab_bench_x --redis-url redis://.../6 \\
        /path/to/old/tree /path/to/new/tree

One gunicorn (2 sync workers, as `make bench`) per tree, no Celery worker (the
evaluations queue up in Redis and are flushed at the end); the product POST and the plain
DRF baseline of each tree, interleaved in rounds. Besides req/s and latency it reports
the server CPU per request (the gunicorn workers' and their PostgreSQL backends'), which
bounds throughput on a saturated 2-core box and moves much less than req/s with the
neighbours' load. Every POST is for its own (patient, date): a date in the patient's last
13 days with no log. The logs the run created are deleted at the end (audit rows are
append-only and stay), so use a database of your own, never a shared one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import psutil
import psycopg

from bench import run


def _env(db_url: str, redis_url: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if k != "DATABASE_MIGRATE_URL"},
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DJANGO_SECRET_KEY": "bench-ab-" + "x" * 50,
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_TRUSTED_PROXY_COUNT": "0",
        "DJANGO_DEBUG": "false",
        "DJANGO_ALLOWED_HOSTS": run.HOST,
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
        "THROTTLE_RATES": "logs=1000000/hour,login=1000000/hour,register=1000000/hour",
        "CACHE_KEY_PREFIX": "bench",
        "LOG_LEVEL": "WARNING",
        # Required in production settings; nothing of the benchmark sends mail.
        "EMAIL_URL": "consolemail://",
    }


def _manifest(patients: int) -> dict[str, Any]:
    """Tokens of both kinds for random patients, and their free (patient, date) slots."""
    from knox.models import get_token_model
    from rest_framework.authtoken.models import Token

    from patients.models import Patient
    from rehab.models import DailyLog

    chosen = list(Patient.objects.select_related("user").order_by("?")[:patients])
    knox = get_token_model()
    taken: dict[str, set[Any]] = {}
    for pid, day in DailyLog.objects.filter(patient__in=chosen).values_list("patient_id", "date"):
        taken.setdefault(str(pid), set()).add(day)
    slots = [
        {"patient": str(p.pk), "date": day.isoformat()}
        for back in range(1, 14)
        for p in chosen
        if (day := p.local_today() - timedelta(days=back)) not in taken.get(str(p.pk), set())
    ]
    return {
        "knox_tokens": {
            str(p.pk): knox.objects.create(user=p.user, expiry=timedelta(hours=3))[1]
            for p in chosen
        },
        "drf_tokens": {str(p.pk): Token.objects.get_or_create(user=p.user)[0].key for p in chosen},
        "slots": slots,
    }


def _server_cpu(gunicorn: subprocess.Popen[bytes], db_url: str) -> float:
    """CPU seconds so far of this gunicorn's workers and of the database's client backends
    (every backend of the bench database: only this run should be using it)."""
    total = 0.0
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(gunicorn.pid).children():
            times = child.cpu_times()
            total += times.user + times.system
    with psycopg.connect(db_url, autocommit=True) as conn:
        pids = [
            row[0]
            for row in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            )
        ]
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("trees", nargs="+", type=Path, help="code trees to serve, A then B...")
    parser.add_argument("--db-url", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--per-phase", type=int, default=1500, help="POSTs per kind per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--patients", type=int, default=4000)
    args = parser.parse_args(argv)

    env = _env(args.db_url, args.redis_url)
    os.environ.update(env)
    import django

    django.setup()
    from django.db import connections
    from django.utils import timezone

    from rehab.models import DailyLog

    started_at = timezone.now()
    m = _manifest(args.patients)
    slots = iter(m["slots"])
    connections.close_all()
    procs: list[subprocess.Popen[bytes]] = []
    ports: list[int] = []
    try:
        for tree in args.trees:
            ports.append(run._free_port())
            procs.append(
                subprocess.Popen(  # noqa: S603 - our own fixed command line
                    [
                        str(run.BIN / "gunicorn"),
                        "config.wsgi",
                        "--workers",
                        "2",
                        "--worker-class",
                        "sync",
                        "--bind",
                        f"{run.HOST}:{ports[-1]}",
                        "--log-level",
                        "warning",
                    ],
                    cwd=tree,
                    env=env,
                    start_new_session=True,
                )
            )
        for port in ports:
            run.wait_http(port)
            for kind in ("product", "drf"):
                run.load(port, run.post_calls(kind, slots, 150, m), clients=args.clients,
                         max_seconds=30)  # fmt: skip
        phases = [(i, kind) for i in range(len(args.trees)) for kind in ("product", "drf")]
        samples: dict[tuple[int, str], run.Sample] = {}
        cpu: dict[tuple[int, str], float] = {}
        for round_no in range(args.rounds):
            for i, kind in phases if round_no % 2 == 0 else phases[::-1]:
                before = _server_cpu(procs[i], args.db_url)
                calls = run.post_calls(kind, slots, args.per_phase, m)
                sample = run.load(ports[i], calls, clients=args.clients, max_seconds=90)
                cpu[i, kind] = cpu.get((i, kind), 0.0) + _server_cpu(procs[i], args.db_url) - before
                samples.setdefault((i, kind), run.Sample()).add(sample)
                run.log(f"{args.trees[i]} {kind}: {run.summary(sample)['throughput_rps']} req/s")
        out: dict[str, Any] = {}
        for i, tree in enumerate(args.trees):
            figures = {}
            for kind in ("product", "drf"):
                s = samples[i, kind]
                figures[kind] = {
                    **run.summary(s),
                    "server_cpu_us_per_request": round(cpu[i, kind] / len(s.latencies) * 1e6),
                }
            product, drf = figures["product"], figures["drf"]
            figures["ratio_to_drf"] = round(product["throughput_rps"] / drf["throughput_rps"], 2)
            figures["cpu_ratio_to_drf"] = round(
                drf["server_cpu_us_per_request"] / product["server_cpu_us_per_request"], 2
            )
            out[str(tree)] = figures
        print(json.dumps(out, indent=1))
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            proc.wait(15)
        deleted, _ = DailyLog.objects.filter(created_at__gte=started_at).delete()
        run.log(f"deleted the {deleted} rows this run created")
        import redis

        redis.Redis.from_url(args.redis_url).flushdb()
    return 0


if __name__ == "__main__":
    sys.exit(main())
