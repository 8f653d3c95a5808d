"""What partitioning the daily logs costs the log POST's insert, and the reads by patient
without dates (BENCHMARKS.md).

    bin/embedded.py -- sh -c '.venv/bin/python manage.py migrate -v0 &&
        DATABASE_URL=$DATABASE_MIGRATE_URL .venv/bin/python -m bench.partition_insert'

Same database, same run: `rehab_dailylog` (partitioned by month, the id-claim trigger)
against `bench_dailylog_plain`, an unpartitioned copy with the pre-0012 keys and indexes
(primary key id, unique (patient, date), the sweeper's partial index, the patient's
foreign key). Both hold the same year of logs for `--history` patients first. Then two
connections insert the same shape of row, one each, turn about: the log POST's
`INSERT ... ON CONFLICT DO NOTHING RETURNING id`, a new id and a free (patient, date)
each time; then each sends every row again (the retry path: a conflict). Each backend's
CPU time is read from /proc (same machine), which the machine's load disturbs less than
wall-clock time; wall-clock per statement is given too.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import uuid
from datetime import date, timedelta
from typing import Any

COLUMNS = "id, patient_id, date, pain, notes, safety, version, created_at, updated_at," + (
    " evaluation_attempts, evaluation_error"
)
INSERT = (
    "INSERT INTO {table} ("  # noqa: S608 - two fixed table names
    + COLUMNS
    + ") VALUES (%s, %s, %s, %s, '', '{{}}', 1, now(), now(), 0, '')"
    " ON CONFLICT DO NOTHING RETURNING id"
)


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--history", type=int, default=300, help="patients with a year of logs")
    parser.add_argument("--posters", type=int, default=1000, help="patients who post")
    parser.add_argument("--days", type=int, default=10, help="dates each poster posts")
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    import psycopg
    from django.db import connection

    from bench.datagen import _log_partitions, _make_patients
    from patients.models import Clinic

    rng = random.Random(7)
    clinic = Clinic.objects.create(name=f"Partition bench {uuid.uuid4().hex[:6]}")
    history = _make_patients(clinic, args.history, f"ph{clinic.pk}-", rng)
    posters = _make_patients(clinic, args.posters, f"pp{clinic.pk}-", rng)
    today = date.today()
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_dailylog_plain")
        cursor.execute(
            "CREATE TABLE bench_dailylog_plain"
            " (LIKE rehab_dailylog INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        )
        cursor.execute("ALTER TABLE bench_dailylog_plain ADD PRIMARY KEY (id)")
        cursor.execute("ALTER TABLE bench_dailylog_plain ADD UNIQUE (patient_id, date)")
        cursor.execute(
            "CREATE INDEX ON bench_dailylog_plain (updated_at)"
            " WHERE evaluated_at IS NULL AND evaluation_failed_at IS NULL"
        )
        cursor.execute(
            "ALTER TABLE bench_dailylog_plain ADD FOREIGN KEY (patient_id)"
            " REFERENCES patients_patient (id) DEFERRABLE INITIALLY DEFERRED"
        )
    _log_partitions(today - timedelta(days=400), today)
    ids = [str(p.pk) for p in history]
    with connection.cursor() as cursor:
        for table in ("rehab_dailylog", "bench_dailylog_plain"):
            cursor.execute(
                f"INSERT INTO {table} ({COLUMNS})"  # noqa: S608 - two fixed names
                " SELECT gen_random_uuid(), p::uuid, %s::date - d, 5, '', '{}', 1, now(), now(),"
                " 0, '' FROM unnest(%s::text[]) AS p, generate_series(15, 380) AS d",
                [today, ids],
            )
        cursor.execute("VACUUM ANALYZE bench_dailylog_plain")
        cursor.execute("VACUUM ANALYZE rehab_dailylog")
        cursor.execute(
            "SELECT (SELECT count(*) FROM rehab_dailylog),"
            " (SELECT count(*) FROM bench_dailylog_plain)"
        )
        rows = cursor.fetchone()

    settings = connection.settings_dict
    conninfo: dict[str, Any] = {
        "dbname": settings["NAME"],
        "user": settings["USER"],
        # The embedded server's socket comes as `?host=` in the URL, i.e. in OPTIONS.
        "host": settings["HOST"] or (settings.get("OPTIONS") or {}).get("host"),
        "port": settings["PORT"] or None,
        "password": settings["PASSWORD"] or None,
        "autocommit": True,
    }
    conninfo = {k: v for k, v in conninfo.items() if v is not None}
    tables = ("rehab_dailylog", "bench_dailylog_plain")
    conns = {t: psycopg.connect(cursor_factory=psycopg.ClientCursor, **conninfo) for t in tables}
    pids = {t: conns[t].info.backend_pid for t in tables}
    slots = [(str(p.pk), today - timedelta(days=d)) for d in range(args.days) for p in posters]
    sent: dict[str, list[tuple[str, str, date]]] = {t: [] for t in tables}
    result: dict[str, dict[str, float]] = {t: {} for t in tables}
    for phase in ("new", "retry"):
        cpu = {t: _cpu_seconds(pids[t]) for t in tables}
        wall = dict.fromkeys(tables, 0.0)
        for i, (patient, day) in enumerate(slots):
            turn = tables if i % 2 == 0 else tables[::-1]
            for table in turn:
                if phase == "new":
                    row = (str(uuid.uuid4()), patient, day)
                    sent[table].append(row)
                else:
                    row = sent[table][i]
                started = time.perf_counter()
                conns[table].execute(INSERT.format(table=table), [*row, 4]).fetchall()
                wall[table] += time.perf_counter() - started
        for table in tables:
            result[table][f"{phase}_cpu_us"] = (
                (_cpu_seconds(pids[table]) - cpu[table]) / len(slots) * 1e6
            )
            result[table][f"{phase}_wall_us"] = wall[table] / len(slots) * 1e6
    # The caseload's per-patient look-ups without dates (first and last log): one index
    # probe on the plain table, one per partition on the partitioned one.
    for lookup, order in (("last_log", "DESC"), ("first_log", "ASC")):
        cpu = {t: _cpu_seconds(pids[t]) for t in tables}
        for _ in range(10):
            for patient in ids:
                for table in tables:
                    conns[table].execute(
                        f"SELECT date FROM {table} WHERE patient_id = %s"  # noqa: S608
                        f" ORDER BY date {order} LIMIT 1",
                        [patient],
                    ).fetchall()
        for table in tables:
            result[table][f"{lookup}_cpu_us"] = (
                (_cpu_seconds(pids[table]) - cpu[table]) / (10 * len(ids)) * 1e6
            )
    # The same as the caseload runs it: one query, planned once, a correlated subquery
    # per patient (first and last log dates), per patient.
    cpu = {t: _cpu_seconds(pids[t]) for t in tables}
    for _ in range(10):
        for table in tables:
            conns[table].execute(
                f"SELECT (SELECT date FROM {table} WHERE patient_id = p::uuid"  # noqa: S608
                " ORDER BY date DESC LIMIT 1),"
                f" (SELECT date FROM {table} WHERE patient_id = p::uuid ORDER BY date LIMIT 1)"
                " FROM unnest(%s::text[]) AS p",
                [ids],
            ).fetchall()
    for table in tables:
        result[table]["caseload_like_per_patient_cpu_us"] = (
            (_cpu_seconds(pids[table]) - cpu[table]) / (10 * len(ids)) * 1e6
        )
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_dailylog_plain")
    print(
        f"{len(slots)} inserts each; logs before: {rows[0]} partitioned, {rows[1]} plain",
        file=sys.stderr,
    )
    for table in tables:
        figures = ", ".join(f"{k} {v:.0f}" for k, v in result[table].items())
        print(f"{table}: {figures}")


if __name__ == "__main__":
    main()
