"""In-process measurements against the benchmark database (run by bench/run.py).

    DJANGO_SETTINGS_MODULE=bench.settings python -m bench.probe --manifest M --what queries

- `queries`: query counts of the caseload and progress endpoints, through Django's test
  client with `CaptureQueriesContext` (not over HTTP), each for a large and a tiny data set,
  so "does not grow with data" is a comparison, not a belief.
- `sweep`: wall time of the periodic review-rule sweep (`review_rules_run`) over the whole
  database.
- `cpu`: CPU milliseconds per request of the caseload endpoint and page, this process's
  (Python) and its PostgreSQL backend's, sequential and in-process: less at the mercy
  of a noisy machine than latency over HTTP, and the figure to compare two trees by,
  run back to back against the same bench database (BENCHMARKS.md item 28):

      DJANGO_SETTINGS_MODULE=bench.settings python -m bench.probe \
          --manifest bench/results/manifest.json --what cpu
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any


def _count(path: str, token: str = "", session: str = "") -> dict[str, Any]:
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    if session:
        client = Client(HTTP_HOST="127.0.0.1")
        client.cookies[settings.SESSION_COOKIE_NAME] = session
    else:
        client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_HOST="127.0.0.1")
    client.get(path)  # warm: first-request imports and caches are not the endpoint's cost
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path)
    if response.status_code != 200:
        body = response.content[:300]
        raise RuntimeError(f"GET {path} answered {response.status_code}: {body!r}")
    return {"queries": len(ctx.captured_queries), "status": response.status_code}


def queries(manifest: dict[str, Any]) -> dict[str, Any]:
    caseload = "/api/v1/clinician/patients/"
    progress = "/api/v1/me/progress/"
    return {
        "caseload_500": _count(caseload, manifest["clinician_token"]),
        "caseload_tiny": _count(caseload, manifest["tiny_clinician_token"]),
        "caseload_big_clinic": _count(caseload, manifest["big_clinician_token"]),
        "dashboard_500": _count("/dashboard/", session=manifest["clinician_session"]),
        "dashboard_tiny": _count("/dashboard/", session=manifest["tiny_clinician_session"]),
        "progress_year": _count(progress, manifest["progress_token"]),
        "progress_tiny": _count(progress, manifest["tiny_patient_token"]),
    }


def backend_cpu_seconds() -> float:
    """CPU seconds used so far by this connection's PostgreSQL backend (same host)."""
    import psutil
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def _cpu_per_request(client: Any, path: str, n: int) -> dict[str, float]:
    for _ in range(5):  # warm: imports, caches, the connection
        response = client.get(path)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path} answered {response.status_code}")
    python, backend = time.process_time(), backend_cpu_seconds()
    for _ in range(n):
        client.get(path)
    python_ms = (time.process_time() - python) / n * 1000
    backend_ms = (backend_cpu_seconds() - backend) / n * 1000
    return {
        "python_ms": round(python_ms, 1),
        "db_backend_ms": round(backend_ms, 1),
        "total_ms": round(python_ms + backend_ms, 1),
    }


def cpu(manifest: dict[str, Any], n: int = 40) -> dict[str, Any]:
    from django.test import Client
    from knox.settings import CONSTANTS

    from patients.models import AuthToken

    token = manifest["clinician_token"]
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_HOST="127.0.0.1")
    page = Client(HTTP_HOST="127.0.0.1")
    # The manifest's session is signed with the run's secret key: sign in afresh.
    page.force_login(AuthToken.objects.get(token_key=token[: CONSTANTS.TOKEN_KEY_LENGTH]).user)
    return {
        "caseload": _cpu_per_request(api, "/api/v1/clinician/patients/", n),
        "dashboard": _cpu_per_request(page, "/dashboard/", n),
    }


def sweep() -> dict[str, Any]:
    from rehab.services.review import review_rules_run

    started = time.monotonic()
    stats = review_rules_run()
    return {
        "kind": "review_rules_run",
        "seconds": round(time.monotonic() - started, 2),
        "stats": {key: str(value) for key, value in stats.items()},
    }


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--what", choices=("queries", "sweep", "cpu"), required=True)
    args = parser.parse_args(argv)
    import django

    django.setup()
    manifest = json.loads(args.manifest.read_text())
    if args.what == "queries":
        result = queries(manifest)
    elif args.what == "cpu":
        result = cpu(manifest)
    else:
        result = sweep()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
