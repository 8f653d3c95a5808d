"""What the caseload rollup's trigger adds to one log insert, in PostgreSQL CPU.

    python -m bench.rollup_cost --db postgres://owner@/bench_db?host=... -n 1000 --rounds 3

Against a bench database (bench/datagen.py's data, as its owner: it disables and enables
the trigger). Inserts `-n` logs, each its own single-statement transaction as a log POST
is, for patients with a year of logs, once with the rollup trigger and once without, in
alternating rounds; prints the server backend's CPU time (from /proc) and the wall-clock
time per insert of each; and, with the trigger, of inserts dated before the patient's
last log (a backfill: the trigger's longer path). Deletes what it inserted (the backfill
rounds replace logs of the loaded year; their content is not restored) and recomputes
those patients' rows.
Needs the database server on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg

INSERT = """
INSERT INTO rehab_dailylog (id, patient_id, date, pain, notes, safety, version, created_at,
    updated_at, evaluation_attempts, evaluation_error)
VALUES (%s, %s, %s, %s, '', '{}', 1, now(), now(), 0, '')
"""
TRIGGER = "rehab_dailylog_rollup_write"


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def trigger_times(db: str, patients: list[Any], today: date) -> dict[str, float]:
    """The trigger's own time per row, as EXPLAIN ANALYZE reports it for one multi-row
    INSERT (PostgreSQL times each trigger): less at the mercy of the machine's load
    than the CPU deltas above. In a transaction rolled back."""
    rows = "SELECT gen_random_uuid(), p, %s::date, 4, '', '{}', 1, now(), now(), 0, ''"
    insert = INSERT.split("VALUES")[0] + rows + " FROM unnest(%s::uuid[]) AS p"
    out = {}
    with psycopg.connect(db) as conn:
        for name, day, clear in (
            ("newest log", today - timedelta(days=2), False),
            ("a backfill", today - timedelta(days=30), True),
        ):
            if clear:
                conn.execute(
                    "DELETE FROM rehab_dailylog WHERE patient_id = ANY(%s) AND date = %s",
                    [patients, day],
                )
            (plan,) = conn.execute(
                "EXPLAIN (ANALYZE, FORMAT JSON) " + insert, [day, patients]
            ).fetchone() or (None,)
            (trigger,) = [t for t in plan[0]["Triggers"] if t["Trigger Name"] == TRIGGER]
            out[name] = round(trigger["Time"] * 1000 / trigger["Calls"], 1)
        conn.rollback()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", required=True)
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    with psycopg.connect(args.db, autocommit=True) as conn:
        (pid,) = conn.execute("SELECT pg_backend_pid()").fetchone() or (0,)
        patients = [
            row[0]
            for row in conn.execute(
                "SELECT patient_id FROM rehab_patientlogrollup WHERE baseline_n >= 3"
                " ORDER BY patient_id LIMIT %s",
                [args.n],
            )
        ]
        (today,) = conn.execute("SELECT current_date").fetchone() or (date.today(),)
        per: dict[str, list[tuple[float, float]]] = {
            "with trigger": [],
            "without": [],
            "with trigger, a backfill": [],
        }
        # bench/datagen.py leaves the last 15 days free of logs: each round logs a later
        # day than the last (the POST's usual case: today's log), the backfill rounds an
        # earlier one (the trigger's longer path: a recomputation from the logs).
        later = iter(range(2 + 2 * args.rounds, 1, -1))
        earlier = iter(range(20 + args.rounds, 20, -1))
        for _ in range(args.rounds):
            for kind in per:
                action = "DISABLE" if kind == "without" else "ENABLE"
                conn.execute(f"ALTER TABLE rehab_dailylog {action} TRIGGER {TRIGGER}")
                offset = next(earlier if "backfill" in kind else later)
                day = today - timedelta(days=offset)
                if "backfill" in kind:
                    conn.execute(
                        "DELETE FROM rehab_dailylog WHERE patient_id = ANY(%s) AND date = %s",
                        [patients, day],
                    )
                ids = [uuid.uuid4() for _ in patients]
                cpu0, t0 = _cpu(pid), time.perf_counter()
                for log_id, patient in zip(ids, patients, strict=True):
                    conn.execute(INSERT, [log_id, patient, day, 4])
                wall, cpu = time.perf_counter() - t0, _cpu(pid) - cpu0
                per[kind].append((cpu / len(ids) * 1e6, wall / len(ids) * 1e6))
        conn.execute(f"ALTER TABLE rehab_dailylog ENABLE TRIGGER {TRIGGER}")
        conn.execute(
            "DELETE FROM rehab_dailylog WHERE patient_id = ANY(%s) AND date >= %s",
            [patients, today - timedelta(days=13)],
        )
        # The rounds without the trigger left these patients' rows behind.
        conn.execute(
            "SELECT rehab_log_rollup_refresh(id) FROM unnest(%s::uuid[]) AS id", [patients]
        )
    result: dict[str, Any] = {
        kind: {
            "pg_cpu_us_per_insert": round(statistics.median(c for c, _ in rounds), 1),
            "wall_us_per_insert": round(statistics.median(w for _, w in rounds), 1),
            "rounds": [[round(c, 1), round(w, 1)] for c, w in rounds],
        }
        for kind, rounds in per.items()
    }
    result["trigger_us_per_row"] = trigger_times(args.db, patients, today)
    result["inserts_per_round"] = len(patients)
    result["load_avg"] = os.getloadavg()
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
