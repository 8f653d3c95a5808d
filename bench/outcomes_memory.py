"""Does the clinic outcomes CSV stream in constant memory?

    EMBEDDED_DATA_DIR=.data/bench-outcomes \\
        .venv/bin/python bin/embedded.py -- .venv/bin/python -m bench.outcomes_memory

Builds a clinic of 1,000 and then 10,000 patients with 30 days of logs each (in the test
database, `test_<name>`, inside a transaction rolled back at the end), reads the whole
streamed response of `GET /api/v1/clinician/outcomes/csv/` through the test client, and
reports the peak of Python's allocations (tracemalloc) while streaming. Constant memory
means the peak does not grow tenfold with the clinic. BENCHMARKS.md keeps the history.
"""

from __future__ import annotations

import os
import time
import tracemalloc

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")

import django

django.setup()

from django.db import connection, transaction  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

DAYS = 30
SIZES = (1_000, 10_000)


def _grow_clinic(clinic: object, start: int, stop: int) -> None:
    import datetime as dt

    from patients.models import Patient
    from rehab.models import DailyLog

    today = dt.date.today()
    patients = Patient.objects.bulk_create(
        Patient(
            clinic=clinic,  # type: ignore[misc]
            email=f"bench{i}@example.com",
            first_name="Bench",
            last_name=str(i),
            date_of_birth=dt.date(1940 + i % 60, 1, 1),
            timezone="Europe/London",
            condition=("Sciatica", "Deep gluteal syndrome", "Piriformis syndrome")[i % 3],
        )
        for i in range(start, stop)
    )
    logs = (
        DailyLog(
            patient=p,
            date=today - dt.timedelta(days=d),
            pain=(8 - (DAYS - d) // 6 + n % 3) % 11,
        )
        for n, p in enumerate(patients)
        for d in range(DAYS)
    )
    batch: list[DailyLog] = []
    for log in logs:
        batch.append(log)
        if len(batch) == 20_000:
            DailyLog.objects.bulk_create(batch)
            batch = []
    DailyLog.objects.bulk_create(batch)


def _measure(client: object) -> tuple[float, int, float]:
    tracemalloc.start()
    started = time.perf_counter()
    response = client.get("/api/v1/clinician/outcomes/csv/")  # type: ignore[attr-defined]
    lines = 0
    for chunk in response.streaming_content:
        lines += chunk.count(b"\n")
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 1e6, lines - 1, elapsed


def measure(*, sizes: tuple[int, ...] = SIZES) -> dict[str, object]:
    """Streams the outcomes CSV of a clinic grown to each size in turn, in a transaction
    rolled back at the end (whatever database the connection names)."""
    from rest_framework.test import APIClient

    from patients.models import AuthToken, Clinic, Clinician, User

    rows_out: list[dict[str, float | int]] = []
    with transaction.atomic():
        clinic = Clinic.objects.create(name="Bench outcomes clinic")
        admin = Clinician.objects.create(
            clinic=clinic,
            role=Clinician.Role.CLINIC_ADMIN,
            user=User.objects.create_user("bench-admin@example.com", "x"),
        )
        _, token = AuthToken.objects.create(user=admin.user)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        _measure(client)  # warm-up: the first request imports and builds what every one reuses
        grown = 0
        for size in sizes:
            _grow_clinic(clinic, grown, size)
            grown = size
            peak, rows, elapsed = _measure(client)
            rows_out.append(
                {"patients": size, "rows": rows, "seconds": round(elapsed, 2), "peak_mb": peak}
            )
        transaction.set_rollback(True)
    ratio = float(rows_out[-1]["peak_mb"]) / max(float(rows_out[0]["peak_mb"]), 1e-6)
    growth = sizes[-1] // sizes[0]
    return {
        "days": DAYS,
        "sizes": rows_out,
        "patients_ratio": growth,
        "peak_ratio": round(ratio, 2),
        # Constant memory: ten times the clinic may not take twice the peak.
        "met": ratio < 2,
    }


def main() -> int:
    setup_test_environment()
    connection.creation.create_test_db(verbosity=0, keepdb=True)
    report = measure()
    for row in report["sizes"]:  # type: ignore[attr-defined]
        print(
            f"{row['patients']:>6} patients x {DAYS} days: {row['rows']} rows in "
            f"{row['seconds']:.2f} s, peak Python memory while streaming {row['peak_mb']:.1f} MB"
        )
    print(f"peak ratio {report['patients_ratio']}x patients: {report['peak_ratio']:.2f}x memory")
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    return 0 if report["met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
