"""In-process cost of one log POST, against a benchmark database (not run by bench/run.py).

    DJANGO_SETTINGS_MODULE=bench.settings THROTTLE_RATES=logs=1000000/hour \
        python -m bench.post_profile --what time -n 500

Each POST goes through Django's WSGI handler (request signals and middleware included,
as under gunicorn) for its own (patient, date): a date in the patient's last 13 days with
no log. What it creates is deleted afterwards (audit rows are append-only and stay).

- `queries`: the SQL statements of one POST, as Django runs them (the first 300
  characters of each; `BENCH_SQL_CHARS` for more).
- `time`: microseconds per POST, median and percentiles of `-n` POSTs.
- `profile`: cProfile over `-n` POSTs, the top functions by own and cumulative time.
- `worker`: POSTs `-n` quiet logs, then evaluates them in-process as the quiet-logs task
  does (`quiet_logs_evaluate`): microseconds of Python and of database CPU per log, and
  with `--dump`, its cProfile. No Celery worker may be running on the bench broker.

`--baseline` sends the same bodies to the plain DRF baseline (bench/baseline.py) instead.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from bench.probe import backend_cpu_seconds
from bench.run import SAFE_ANSWERS, _log_body


def _body(day: str, safety: dict[str, Any]) -> bytes:
    return json.dumps(_log_body(day, safety)).encode()


def _slots(n: int, *, baseline: bool = False) -> Iterator[tuple[str, str]]:
    """(token, free date) pairs, spread over many patients."""
    from knox.models import get_token_model
    from rest_framework.authtoken.models import Token

    from patients.models import Patient
    from rehab.models import DailyLog

    patients = list(Patient.objects.select_related("user").order_by("pk")[: max(50, n // 8)])
    if baseline:
        tokens = {p.pk: Token.objects.get_or_create(user=p.user)[0].key for p in patients}
    else:
        tokens = {
            p.pk: get_token_model().objects.create(user=p.user, expiry=timedelta(hours=2))[1]
            for p in patients
        }
    taken: dict[Any, set[Any]] = {}
    for pid, day in DailyLog.objects.filter(patient__in=patients).values_list("patient_id", "date"):
        taken.setdefault(pid, set()).add(day)
    free: list[tuple[str, str]] = []
    for back in range(1, 14):
        for p in patients:
            day = p.local_today() - timedelta(days=back)
            if day not in taken.get(p.pk, set()):
                free.append((tokens[p.pk], day.isoformat()))
    if len(free) < n:
        raise SystemExit(f"only {len(free)} free (patient, date) slots for {n} POSTs")
    yield from free[:n]


def _environ(token: str, body: bytes, *, baseline: bool) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/bench/drf/logs/" if baseline else "/api/v1/logs/",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_AUTHORIZATION": f"{'Token' if baseline else 'Bearer'} {token}",
        "HTTP_USER_AGENT": "post-profile",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }


class Poster:
    def __init__(self, safety: dict[str, Any], *, baseline: bool = False) -> None:
        from django.core.wsgi import get_wsgi_application

        self.app = get_wsgi_application()
        self.safety = safety
        self.baseline = baseline
        self.created: list[str] = []

    def post(self, token: str, day: str) -> bytes:
        status: list[str] = []

        def start_response(code: str, headers: Any, exc_info: Any = None) -> Any:
            status.append(code)

        body = _body(day, self.safety)
        chunks = self.app(_environ(token, body, baseline=self.baseline), start_response)
        out = b"".join(chunks)
        if hasattr(chunks, "close"):
            chunks.close()  # request_finished, as a WSGI server would send it
        if not status[0].startswith("201"):
            raise RuntimeError(f"POST answered {status[0]}: {out[:300]!r}")
        self.created.append(json.loads(out)["id"])
        return out

    def cleanup(self) -> None:
        from rehab.models import DailyLog

        DailyLog.objects.filter(pk__in=self.created).delete()


def _worker(
    poster: Poster, slots: Iterator[tuple[str, str]], n: int, *, dump: str | None
) -> dict[str, Any]:
    """Evaluate `n` freshly posted quiet logs in-process, as the quiet-logs task does."""
    from rehab.models import DailyLog
    from rehab.services.safety import quiet_logs_evaluate

    owed = DailyLog.objects.filter(evaluated_at__isnull=True, evaluation_failed_at__isnull=True)
    quiet_logs_evaluate()  # what earlier runs left, and a warm-up
    for _ in range(n):
        poster.post(*next(slots))
    profiler = cProfile.Profile() if dump else None
    cpu_started, backend_started = time.process_time(), backend_cpu_seconds()
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    evaluated = quiet_logs_evaluate()
    if profiler and dump:
        profiler.disable()
        profiler.dump_stats(dump)
    wall = time.perf_counter() - started
    cpu = (time.process_time() - cpu_started) / max(evaluated, 1) * 1e6
    backend = (backend_cpu_seconds() - backend_started) / max(evaluated, 1) * 1e6
    return {
        "posted": n,
        "evaluated": evaluated,
        "still_owed": owed.count(),
        "wall_s": round(wall, 2),
        "python_cpu_us_per_log": round(cpu),
        "db_backend_cpu_us_per_log": round(backend),
    }


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--what", choices=("queries", "time", "profile", "worker"), required=True)
    parser.add_argument("-n", type=int, default=500)
    parser.add_argument("--safety", default="{}", help="JSON merged into the all-'no' answers")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument(
        "--baseline", action="store_true", help="POST to the plain DRF baseline instead"
    )
    parser.add_argument("--dump", help="also write the raw cProfile stats to this file")
    args = parser.parse_args(argv)
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    warm = 20
    slots = _slots(args.n + warm + 1, baseline=args.baseline)
    poster = Poster({**SAFE_ANSWERS, **json.loads(args.safety)}, baseline=args.baseline)
    try:
        for _ in range(warm):
            poster.post(*next(slots))
        if args.what == "queries":
            with CaptureQueriesContext(connection) as ctx:
                poster.post(*next(slots))
            for q in ctx.captured_queries:
                print(q["sql"][: int(os.environ.get("BENCH_SQL_CHARS", "300"))])
            print(f"{len(ctx.captured_queries)} statements")
        elif args.what == "time":
            times = []
            cpu_started, backend_started = time.process_time(), backend_cpu_seconds()
            for _ in range(args.n):
                started = time.perf_counter()
                poster.post(*next(slots))
                times.append((time.perf_counter() - started) * 1e6)
            cpu = (time.process_time() - cpu_started) / args.n * 1e6
            backend = (backend_cpu_seconds() - backend_started) / args.n * 1e6
            times.sort()
            print(
                json.dumps(
                    {
                        "n": len(times),
                        "median_us": round(statistics.median(times)),
                        "p10_us": round(times[len(times) // 10]),
                        "p90_us": round(times[len(times) * 9 // 10]),
                        "min_us": round(times[0]),
                        # CPU, not wall: this process's, and its database backend's.
                        "python_cpu_us": round(cpu),
                        "db_backend_cpu_us": round(backend),
                    }
                )
            )
        elif args.what == "worker":
            print(json.dumps(_worker(poster, slots, args.n, dump=args.dump)))
        else:
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(args.n):
                poster.post(*next(slots))
            profiler.disable()
            if args.dump:
                profiler.dump_stats(args.dump)
            for key in ("tottime", "cumulative"):
                out = io.StringIO()
                pstats.Stats(profiler, stream=out).sort_stats(key).print_stats(args.top)
                print(out.getvalue())
    finally:
        poster.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
