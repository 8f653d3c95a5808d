"""Time the caseload in-process against a bench database (bench/datagen.py's data).

    DJANGO_SETTINGS_MODULE=bench.settings python -m bench.caseload_time \
        --manifest bench/results/manifest.json --runs 30

For each of the 9,500-patient clinic (big@bench.local), the 500-patient one
(physio@bench.local) and the 5-patient one: the API's first caseload page and the
dashboard's, through Django's test client (authentication, the view, the serializer,
the audit rows), with wall-clock p50/p95 of the request and the PostgreSQL backend's own
CPU time per request (from /proc, so less at the mercy of the machine's other load than
wall-clock). Prints JSON. Needs the database server on this machine (for /proc).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any


def _backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args(argv)
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    m = json.loads(args.manifest.read_text())
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    results: dict[str, Any] = {}
    cases = {
        "api_9500": ("/api/v1/clinician/patients/", m["big_clinician_token"], None),
        "api_500": ("/api/v1/clinician/patients/", m["clinician_token"], None),
        "api_5": ("/api/v1/clinician/patients/", m["tiny_clinician_token"], None),
        "dashboard_500": ("/dashboard/", None, m["clinician_session"]),
    }
    for name, (path, token, session) in cases.items():
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        client = Client(HTTP_HOST="127.0.0.1", headers=headers)
        if session:
            from django.conf import settings

            client.cookies[settings.SESSION_COOKIE_NAME] = session
        for _ in range(3):  # warm caches
            assert client.get(path).status_code == 200
        walls, cpus = [], []
        for _ in range(args.runs):
            cpu0, t0 = _backend_cpu(pid), time.perf_counter()
            response = client.get(path)
            walls.append((time.perf_counter() - t0) * 1000)
            cpus.append((_backend_cpu(pid) - cpu0) * 1000)
            assert response.status_code == 200
        with CaptureQueriesContext(connection) as queries:
            client.get(path)
        results[name] = {
            "p50_ms": round(_percentile(walls, 0.5), 1),
            "p95_ms": round(_percentile(walls, 0.95), 1),
            "pg_cpu_mean_ms": round(sum(cpus) / len(cpus), 1),
            "queries": len(queries.captured_queries),
        }
    results["load_avg"] = os.getloadavg()
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
