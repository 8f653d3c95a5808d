"""The data-rights section of `make bench`: the patient export and the outcomes CSV.

    python -m bench.data_rights [--scale small|full]   # these two alone, test database
    make bench                                          # also a section of the full run

- **Export**: a year of one patient's data (365 daily logs and a clinical record) in each
  format, JSON, CSV and the validated FHIR Bundle, within 2 s (`bench/export_year.py`).
- **Outcomes CSV**: a clinic grown tenfold (1,000 then 10,000 patients at full scale)
  streams its outcomes CSV with a peak of Python memory under twice the smaller one's
  (`bench/outcomes_memory.py`).

Both write their data inside a transaction they roll back, so they can run against the
benchmark's own database (`bench/run.py` calls `section()` once its other measurements
are done) or, standalone, against the test database as the two scripts do. Each runs in
a child process with the caller's environment: Django is set up there, never in
`bench/run.py`'s process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent

# Outcomes clinic sizes (the second is ten times the first) and export runs per format.
SIZES: dict[str, tuple[int, int]] = {"small": (200, 2_000), "full": (1_000, 10_000)}
RUNS: dict[str, int] = {"small": 2, "full": 5}


def _sizes(scale: str) -> tuple[int, int]:
    # BENCH_OUTCOMES_PATIENTS overrides the smaller clinic (the larger is ten times it).
    raw = os.environ.get("BENCH_OUTCOMES_PATIENTS")
    if raw:
        return int(raw), int(raw) * 10
    return SIZES[scale]


def measure(*, scale: str) -> dict[str, Any]:
    """Both measurements against the database the current Django settings name."""
    from django.test.utils import setup_test_environment

    # The outcomes CSV is read through Django's test client ("testserver").
    setup_test_environment()
    from bench import export_year, outcomes_memory

    return {
        "scale": scale,
        "export_year": export_year.measure(runs=RUNS[scale]),
        "outcomes_csv": outcomes_memory.measure(sizes=_sizes(scale)),
    }


def section(*, scale: str, env: dict[str, str]) -> dict[str, Any]:
    """`bench/run.py`'s call: the figures (JSON) of a child process run in `env`, and
    their targets, also printed as they come."""
    result = subprocess.run(  # noqa: S603 - our own fixed command line
        [sys.executable, "-m", "bench.data_rights", "--scale", scale, "--measure-json"],
        cwd=BASE_DIR,
        env=env,
        check=True,
        stdout=subprocess.PIPE,
    )
    report: dict[str, Any] = json.loads(result.stdout)
    report["targets"] = targets(report)
    print_report(report)
    return report


def targets(report: dict[str, Any]) -> list[tuple[str, str, bool]]:
    export, outcomes = report["export_year"], report["outcomes_csv"]
    small, large = outcomes["sizes"][0], outcomes["sizes"][-1]
    return [
        (
            "a year of one patient exports < 2 s (worst format)",
            f"{export['worst_median_s']} s",
            bool(export["met"]),
        ),
        (
            f"outcomes CSV constant memory ({large['patients']} patients)",
            f"{large['peak_mb']:.1f} MB vs {small['peak_mb']:.1f} MB "
            f"({outcomes['patients_ratio']}x patients)",
            bool(outcomes["met"]),
        ),
    ]


def print_report(report: dict[str, Any]) -> None:
    export, outcomes = report["export_year"], report["outcomes_csv"]
    print("\ndata rights: a year of one patient's data exported (median of runs):")
    for fmt, figures in export["formats"].items():
        print(
            f"  {fmt:5} wall {figures['wall_median_s']} s (max {figures['wall_max_s']}), "
            f"cpu {figures['cpu_median_s']} s, {figures['mb']} MB"
        )
    print(f"data rights: outcomes CSV, {outcomes['days']} days of logs per patient:")
    for row in outcomes["sizes"]:
        print(
            f"  {row['patients']:>6} patients: {row['rows']} rows in {row['seconds']} s, "
            f"peak Python memory {row['peak_mb']:.1f} MB"
        )
    for name, value, ok in report["targets"]:
        print(f"{'PASS' if ok else 'MISS'}  {name:<48} {value}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scale", default=os.environ.get("BENCH_SCALE", "full"), choices=tuple(SIZES)
    )
    # What `section()` runs in its child: the figures as JSON on stdout, nothing else.
    parser.add_argument("--measure-json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")
    import django

    django.setup()
    if args.measure_json:
        print(json.dumps(measure(scale=args.scale)))
        return 0
    # Standalone: the test database (`test_<name>`, created or reused as pytest-django
    # does), as the two scripts use on their own.
    from django.db import connection

    connection.creation.create_test_db(verbosity=0, keepdb=True)
    report = measure(scale=args.scale)
    report["targets"] = targets(report)
    print_report(report)
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    return 0 if all(ok for _, _, ok in report["targets"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
