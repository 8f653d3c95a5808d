"""What a read of a daily log by id costs, planned over every partition (`WHERE id = X`,
as before migration `rehab 0014`) against through the claimed ids (`by_id`: the date
from `rehab_dailylogid`'s primary key, then `WHERE id = X AND date = D`, one partition
planned). BENCHMARKS.md § Partitioned daily logs: reads by id.

    bin/embedded.py -- sh -c '.venv/bin/python manage.py migrate -v0 &&
        DATABASE_URL=$DATABASE_MIGRATE_URL .venv/bin/python -m bench.id_reads'

Same database, same run, turn about: `--history` patients with ~13 months of logs (the
partitions of those months, the months ahead and the default: 17 or more). Per read:
the backend's CPU time from /proc, the wall-clock time, and PostgreSQL's own Planning
and Execution Time from EXPLAIN (ANALYZE); then the ORM's whole read in this process
(`DailyLog.objects.get(pk=...)` against `DailyLog.objects.get_by_id(...)`), as the
CPU of this process and of its backend together.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
import uuid
from datetime import date, timedelta
from typing import Any

COLUMNS = "id, patient_id, date, pain, notes, safety, version, created_at, updated_at," + (
    " evaluation_attempts, evaluation_error"
)
# The columns the log's API read selects (all of them).
READ = "SELECT * FROM rehab_dailylog WHERE id = %s"
PROBE = "SELECT date FROM rehab_dailylogid WHERE id = %s"
PRUNED = "SELECT * FROM rehab_dailylog WHERE id = %s AND date = %s"


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _explain(conn: Any, sql: str, params: list[Any]) -> tuple[float, float, int]:
    """Planning and execution time (ms) and how many log partitions the plan names."""
    raw = conn.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params).fetchone()[0]
    top = (json.loads(raw) if isinstance(raw, str) else raw)[0]
    names: set[str] = set()
    stack = [top["Plan"]]
    while stack:
        node = stack.pop()
        if node.get("Relation Name", "").startswith("rehab_dailylog_"):
            names.add(node["Relation Name"])
        stack.extend(node.get("Plans", []))
    return top["Planning Time"], top["Execution Time"], len(names)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--history", type=int, default=300, help="patients with a year of logs")
    parser.add_argument("--reads", type=int, default=3000, help="reads by id of each kind")
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    import psycopg
    from django.db import connection

    from bench.datagen import _log_partitions, _make_patients
    from patients.models import Clinic
    from rehab.models import DailyLog

    rng = random.Random(7)
    clinic = Clinic.objects.create(name=f"Id reads bench {uuid.uuid4().hex[:6]}")
    history = _make_patients(clinic, args.history, f"ir{clinic.pk}-", rng)
    today = date.today()
    _log_partitions(today - timedelta(days=400), today)
    ids = [str(p.pk) for p in history]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO rehab_dailylog ({COLUMNS})"  # noqa: S608 - a fixed name
            " SELECT gen_random_uuid(), p::uuid, %s::date - d, 5, '', '{}', 1, now(), now(),"
            " 0, '' FROM unnest(%s::text[]) AS p, generate_series(0, 380) AS d",
            [today, ids],
        )
        cursor.execute("VACUUM ANALYZE rehab_dailylog")
        cursor.execute("VACUUM ANALYZE rehab_dailylogid")
        cursor.execute("SELECT count(*) FROM pg_partition_tree('rehab_dailylog') WHERE isleaf")
        (partitions,) = cursor.fetchone()
        cursor.execute(
            "SELECT id::text FROM rehab_dailylog WHERE patient_id = ANY(%s::uuid[])",
            [ids],
        )
        log_ids = [row[0] for row in cursor.fetchall()]
    sample = rng.sample(log_ids, min(args.reads, len(log_ids)))

    settings = connection.settings_dict
    conninfo: dict[str, Any] = {
        "dbname": settings["NAME"],
        "user": settings["USER"],
        "host": settings["HOST"] or (settings.get("OPTIONS") or {}).get("host"),
        "port": settings["PORT"] or None,
        "password": settings["PASSWORD"] or None,
        "autocommit": True,
    }
    conninfo = {k: v for k, v in conninfo.items() if v is not None}
    kinds = ("every_partition", "by_id")
    conns = {k: psycopg.connect(cursor_factory=psycopg.ClientCursor, **conninfo) for k in kinds}
    pids = {k: conns[k].info.backend_pid for k in kinds}

    def read(kind: str, log_id: str) -> None:
        conn = conns[kind]
        if kind == "every_partition":
            conn.execute(READ, [log_id]).fetchall()
        else:
            day = conn.execute(PROBE, [log_id]).fetchall()[0][0]
            conn.execute(PRUNED, [log_id, day]).fetchall()

    result: dict[str, dict[str, float]] = {k: {} for k in kinds}
    for kind in kinds:  # warm each backend's caches
        for log_id in sample[:200]:
            read(kind, log_id)
    cpu = {k: _cpu_seconds(pids[k]) for k in kinds}
    wall = dict.fromkeys(kinds, 0.0)
    for i, log_id in enumerate(sample):
        for kind in kinds if i % 2 == 0 else kinds[::-1]:
            started = time.perf_counter()
            read(kind, log_id)
            wall[kind] += time.perf_counter() - started
    for kind in kinds:
        result[kind]["backend_cpu_us"] = (_cpu_seconds(pids[kind]) - cpu[kind]) / len(sample) * 1e6
        result[kind]["wall_us"] = wall[kind] / len(sample) * 1e6

    # PostgreSQL's own account, EXPLAIN (ANALYZE): planning and execution, medians.
    explained: dict[str, list[tuple[float, float, int]]] = {k: [] for k in kinds}
    for log_id in sample[:300]:
        conn = conns["by_id"]
        explained["every_partition"].append(_explain(conn, READ, [log_id]))
        probe = _explain(conn, PROBE, [log_id])
        day = conn.execute(PROBE, [log_id]).fetchall()[0][0]
        pruned = _explain(conn, PRUNED, [log_id, day])
        explained["by_id"].append((probe[0] + pruned[0], probe[1] + pruned[1], pruned[2]))
    for kind in kinds:
        result[kind]["planning_ms"] = statistics.median(e[0] for e in explained[kind])
        result[kind]["execution_ms"] = statistics.median(e[1] for e in explained[kind])
        result[kind]["partitions_planned"] = max(e[2] for e in explained[kind])

    # The ORM's whole read, through Django's connection: this process's CPU (building the
    # queries, reading the rows) plus its backend's, in alternating blocks.
    orm = {
        "every_partition": lambda log_id: DailyLog.objects.get(pk=log_id),
        "by_id": lambda log_id: DailyLog.objects.get_by_id(log_id),
    }
    connection.ensure_connection()
    django_pid = connection.connection.info.backend_pid
    spent = dict.fromkeys(kinds, 0.0)
    block = max(1, len(sample) // 6)
    for start in range(0, len(sample), block):
        for kind in kinds if (start // block) % 2 == 0 else kinds[::-1]:
            before = time.process_time() + _cpu_seconds(django_pid)
            for log_id in sample[start : start + block]:
                orm[kind](log_id)
            spent[kind] += time.process_time() + _cpu_seconds(django_pid) - before
    for kind in kinds:
        result[kind]["orm_read_cpu_us"] = spent[kind] / len(sample) * 1e6

    print(
        f"{len(sample)} reads of each kind; {len(log_ids)} logs in {partitions} partitions",
        file=sys.stderr,
    )
    for kind in kinds:
        figures = ", ".join(
            f"{k} {v:.3f}" if v < 10 else f"{k} {v:.0f}" for k, v in result[kind].items()
        )
        print(f"{kind}: {figures}")


if __name__ == "__main__":
    main()
