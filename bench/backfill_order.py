"""What a log insert costs PostgreSQL when logs arrive in `make bench`'s order.

    python -m bench.backfill_order --db postgres://owner@/bench_db?host=... -n 600

`make bench` hands its POST slots out newest date first (bench/datagen.py, POST_OFFSETS):
every posting patient's day-2 log, then every patient's day-3 log, and so on. Only the
first is a patient's newest log; each later one is a backfill, which is what made the
rounds of a run slow down (BENCHMARKS.md, "Log POST against the peer, statement by
statement"). This inserts, for `-n` patients whose last log is older than the 14-day
window, one log per patient per day in that order, each its own single-statement
transaction as a log POST is (the product's log columns, no audit row), and prints per
day: the server backend's CPU (from /proc) and `pg_stat_statements`' execution time per
insert, of the INSERT and of the rollup trigger's statements (when the extension is in
`shared_preload_libraries` and created in the database).

Against a copy of a bench database (`CREATE DATABASE x TEMPLATE bench_db`): it leaves
its logs in. Needs the database server on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg

INSERT = """
INSERT INTO rehab_dailylog (id, patient_id, date, pain, leg_pain, back_pain, worst_pain,
    leg_pain_side, function, sleep, notes, safety, version, created_at, updated_at,
    evaluated_at, evaluated_version, evaluation_attempts, evaluation_error)
VALUES (%s, %s, %s, 5, 6, 3, 7, 'left', 5, 'disturbed', 'Walked to the shops.', %s, 1,
    now(), now(), now(), 1, 0, '')
"""
# The statements the triggers run, by how pg_stat_statements shows them.
STATEMENTS = {
    "insert": r"^INSERT INTO rehab_dailylog \(",
    "recomputation": r"^SELECT rehab_log_rollup_refresh\(p\)",
    "append": r"^UPDATE rehab_patientlogrollup SET last_log_date = NEW\.date",
    "in place": r"^UPDATE rehab_patientlogrollup SET baseline_sum",
}


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _statement_ms(conn: psycopg.Connection[tuple[Any, ...]]) -> dict[str, float]:
    out = {}
    for name, pattern in STATEMENTS.items():
        row = conn.execute(
            "SELECT coalesce(sum(total_exec_time), 0) FROM pg_stat_statements"
            " WHERE regexp_replace(query, '\\s+', ' ', 'g') ~ %s",
            [pattern],
        ).fetchone()
        out[name] = float(row[0]) if row else 0.0
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--db", required=True)
    parser.add_argument("-n", type=int, default=600)
    args = parser.parse_args(argv)
    with (
        psycopg.connect(args.db, autocommit=True) as stats,
        psycopg.connect(args.db, autocommit=True) as writer,
    ):
        row = stats.execute("SELECT (now() AT TIME ZONE 'Europe/London')::date").fetchone()
        assert row is not None
        today = row[0]
        patients = [
            r[0]
            for r in stats.execute(
                "SELECT patient_id FROM rehab_patientlogrollup WHERE last_log_date < %s"
                " ORDER BY patient_id LIMIT %s",
                [today - timedelta(days=14), args.n],
            )
        ]
        if not patients:
            raise SystemExit("no patient without a log in the last 14 days")
        try:
            _statement_ms(stats)
            tracked = True
        except psycopg.Error:
            tracked = False
        (pid,) = writer.execute("SELECT pg_backend_pid()").fetchone() or (0,)
        safety = json.dumps({"saddle_numbness": "no", "bladder_change": "no"})
        print(f"{len(patients)} patients; per insert, microseconds", file=sys.stderr)
        for offset in range(2, 14):
            day = today - timedelta(days=offset)
            before = _statement_ms(stats) if tracked else {}
            cpu, started = _cpu(pid), time.perf_counter()
            for patient in patients:
                writer.execute(INSERT, [uuid.uuid4(), patient, day, safety])
            wall, cpu = time.perf_counter() - started, _cpu(pid) - cpu
            after = _statement_ms(stats) if tracked else {}
            statements = ", ".join(
                f"{name} {(after[name] - before[name]) * 1000 / len(patients):.0f}"
                for name in STATEMENTS
                if after.get(name, 0) > before.get(name, 0)
            )
            print(
                f"day -{offset:<2} backend CPU {cpu * 1e6 / len(patients):4.0f}"
                f"  wall {wall * 1e6 / len(patients):5.0f}  {statements}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
