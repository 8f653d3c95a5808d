"""Build the benchmark database's data: a clinic at scale, in bulk.

    DJANGO_SETTINGS_MODULE=bench.settings python -m bench.datagen --patients 10000 --days 365

Shape (all patients in Europe/London):
- "Bench Caseload Clinic": `--caseload` patients (default 500), all on the care team of
  physio@bench.local. Visibility is clinic-wide (patients/querysets.py), so a clinician's
  caseload *is* their clinic: a 500-patient caseload is a 500-patient clinic.
- "Bench Clinic": the other patients, with big@bench.local (sees them all).
- "Bench Tiny Clinic": 5 patients with 20 days of logs, tiny@bench.local: the small data
  set that the query counts are compared against ("do not grow with data").
- With `--clinics N` above 3 (the rehearsal: 100 clinics), "Bench Clinic" shares its
  patients out with N - 3 more clinics ("Bench Clinic 2", ...), in equal parts.
- A year (`--days`) of daily logs per patient, ~88% of days logged, dated up to 15 days ago
  so that the last 13 local dates stay free for the load's POSTs (no 409s). Written with
  COPY; every historical log is marked evaluated, as in a clinic that has been running.
  COPY runs with triggers off, so the caseload's log rollup is rebuilt after it.
- Programs for `--exercise-patients` caseload patients (default 500) with 60 days of
  exercise logs (COPY), and a few open alerts in both clinics.

It writes a manifest (tokens, posting slots, ids) to `--manifest` for bench/run.py.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import random
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

TZ = "Europe/London"
# Dates a posting patient may still log (days before local today): 1 is kept for the
# red-flag run, 2..13 for the throughput runs; 0 and 14 sit on the contract's edges.
RED_FLAG_OFFSET = 1
POST_OFFSETS = tuple(range(2, 14))
HISTORY_GAP_DAYS = 15


def log(message: str) -> None:
    print(f"[datagen] {message}", file=sys.stderr, flush=True)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _local_today() -> date:
    return datetime.now(ZoneInfo(TZ)).date()


def _make_patients(clinic: Any, count: int, prefix: str, rng: random.Random) -> list[Any]:
    from patients.models import Patient, User

    users = [
        # "!" is Django's unusable password: these patients never sign in with one.
        User(email=f"{prefix}{i}@bench.local", password="!", last_name=str(i))  # noqa: S106
        for i in range(count)
    ]
    User.objects.bulk_create(users, batch_size=2000)
    conditions = ("Sciatica, L5 radiculopathy", "Deep gluteal syndrome (piriformis)", "Sciatica")
    patients = [
        Patient(
            user=user,
            clinic=clinic,
            email=user.email,
            first_name=rng.choice(("Ann", "Ben", "Cara", "Dev", "Eli", "Fay", "Gus", "Hana")),
            last_name=f"{prefix.title()}{i:05d}",
            date_of_birth=date(1950, 1, 1) + timedelta(days=rng.randint(0, 18000)),
            timezone=TZ,
            condition=rng.choice(conditions),
            affected_side=rng.choice(("left", "right", "both")),
        )
        for i, user in enumerate(users)
    ]
    Patient.objects.bulk_create(patients, batch_size=2000)
    return patients


def _log_lines(
    patient_ids: Sequence[uuid.UUID], *, days: int, today: date, rng: random.Random
) -> Iterator[str]:
    """Tab-separated rows for COPY into rehab_dailylog, one patient's year at a time.

    Tight on purpose (~3.6 M rows at full scale): dates and the constant tail are
    formatted once. Ids are increasing (a counter, then random bits; PostgreSQL reads 32
    hex digits as a uuid): random uuid4 keys would make every row a random B-tree insert
    into a primary key much larger than shared_buffers, which triples the load time. The
    POSTs during the run still use the app's random uuid4 ids.
    """
    from rehab.safety import SafetyAnswers

    safety = json.dumps(SafetyAnswers.from_mapping(None).as_dict())
    sides = ("none", "left", "right", "both", r"\N")
    sleeps = ("undisturbed", "disturbed", r"\N")
    last = today - timedelta(days=HISTORY_GAP_DAYS)
    first = last - timedelta(days=days - 1)
    day_text = [(first + timedelta(days=i)).isoformat() for i in range(days)]
    random_, bits = rng.random, rng.getrandbits
    counter = itertools.count(bits(40) << 20)
    for pid in patient_ids:
        start = rng.uniform(5, 8.5)
        slope = (rng.uniform(1, 7) - start) / days
        adherence = rng.choice((0.95, 0.9, 0.85, 0.8, 0.6))
        head = f"\t{pid}\t"
        for i, day in enumerate(day_text):
            if random_() > adherence:
                continue
            pain = min(10, max(0, round(start + slope * i + random_() * 2 - 1)))
            leg = min(10, pain + int(random_() * 3))
            back = max(0, pain - int(random_() * 4))
            stamp = f"{day} 19:30:00+00"
            yield (
                f"{next(counter):016x}{bits(64):016x}{head}{day}\t{pain}\t{leg}\t{back}\t"
                f"{min(10, leg + 1)}\t"
                f"{sides[i % 5]}\t{10 - pain}\t{sleeps[i % 3]}\t\t{safety}\t\\N\t1\t"
                f"{stamp}\t{stamp}\t{stamp}\t1\t0\t\\N\t\n"
            )


LOG_COLUMNS = (
    "id, patient_id, date, pain, leg_pain, back_pain, worst_pain, leg_pain_side, function, "
    "sleep, notes, safety, safety_advice, version, created_at, updated_at, evaluated_at, "
    "evaluated_version, evaluation_attempts, evaluation_failed_at, evaluation_error"
)


def _copy(table: str, columns: str, lines: Iterator[str], *, batch_bytes: int = 4 << 20) -> int:
    from django.db import connection

    rows = 0
    with connection.cursor() as cursor:
        # The rows reference patients written just before; skipping the per-row foreign
        # key triggers (superuser only, a local bench database) halves the load time.
        cursor.execute("SET session_replication_role = replica")
        raw = cursor.cursor  # psycopg 3 cursor: COPY ... FROM STDIN
        with raw.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            buffer = io.StringIO()
            for line in lines:
                buffer.write(line)
                rows += 1
                if buffer.tell() > batch_bytes:
                    copy.write(buffer.getvalue())
                    buffer = io.StringIO()
            copy.write(buffer.getvalue())
        cursor.execute("SET session_replication_role = DEFAULT")
    return rows


def _log_partitions(first: date, last: date) -> None:
    """The daily log table's monthly partitions for the generated dates (the migration
    made only the months around today; docs/clinical-record.md)."""
    from rehab.services.partitions import partition_create

    month = first.replace(day=1)
    while month <= last:
        partition_create(month=month)
        month = (month + timedelta(days=32)).replace(day=1)


def _log_ids_claim() -> None:
    """COPY under `session_replication_role = replica` skips the triggers, the one that
    claims each log's id too: claim them in one statement."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO rehab_dailylogid (id, date) SELECT id, date FROM rehab_dailylog"
            " ON CONFLICT DO NOTHING"
        )


def _exercise_lines(
    assignments: Sequence[tuple[uuid.UUID, list[uuid.UUID], date]],
    *,
    today: date,
    rng: random.Random,
) -> Iterator[str]:
    for patient_id, exercises, start in assignments:
        share = rng.choice((0.95, 0.85, 0.7, 0.5))
        day = start
        while day < today:
            for exercise_id in exercises:
                if rng.random() < share:
                    stamp = f"{day.isoformat()} 18:00:00+00"
                    yield (
                        f"{uuid.uuid4()}\t{patient_id}\t{exercise_id}\t{day.isoformat()}\t"
                        f"{rng.randint(2, 3)}\t{rng.randint(8, 12)}\t\\N\t\\N\t"
                        f"{rng.randint(0, 5)}\t{rng.randint(2, 7)}\tf\t\t{stamp}\n"
                    )
            day += timedelta(days=1)


EXERCISE_COLUMNS = (
    "id, patient_id, assigned_exercise_id, date, sets_done, reps_done, hold_seconds_done, "
    "duration_minutes_done, pain_during, difficulty, stopped_for_pain, notes, created_at"
)


def _programs(patients: Sequence[Any], clinician: Any, today: date, rng: random.Random) -> int:
    from programs.demo import _templates
    from programs.models import AssignedExercise
    from programs.services import assignment_create

    templates = list(_templates().values())
    plans: list[tuple[uuid.UUID, list[uuid.UUID], date]] = []
    for patient in patients:
        start = today - timedelta(days=rng.randint(30, 60))
        assignment = assignment_create(
            patient=patient,
            template=rng.choice(templates),
            by=clinician,
            start_date=start,
            today=start,
        )
        exercises = list(
            AssignedExercise.objects.filter(
                phase__assignment=assignment, phase__position=1
            ).values_list("pk", flat=True)
        )
        plans.append((patient.pk, exercises, start))
    return _copy(
        "programs_exerciselog", EXERCISE_COLUMNS, _exercise_lines(plans, today=today, rng=rng)
    )


def _alerts(patients: Sequence[Any], count: int, rng: random.Random) -> None:
    from django.utils import timezone

    from rehab.models import Alert

    now = timezone.now()
    rules = (("BENCH-E", "emergency"), ("BENCH-U", "urgent"), ("BENCH-R", "routine"))
    alerts = []
    for patient in rng.sample(list(patients), min(count, len(patients))):
        rule, severity = rng.choice(rules)
        opened = now - timedelta(hours=rng.randint(1, 400))
        alerts.append(
            Alert(
                patient=patient,
                rule=rule,
                rule_version=1,
                severity=severity,
                status=rng.choice(("open", "open", "acknowledged", "resolved")),
                title=f"Synthetic {severity} alert",
                last_fired_at=opened,
                opened_at=opened,
                # No deadline: the sweep timing must not send synthetic escalations.
                escalation_due_at=None,
            )
        )
    Alert.objects.bulk_create(alerts)


def build(args: argparse.Namespace) -> dict[str, Any]:
    import django

    django.setup()
    from django.db import DatabaseError, connection
    from knox.models import get_token_model
    from rest_framework.authtoken.models import Token

    from patients.models import Clinic, Clinician, User

    rng = random.Random(args.seed)
    today = _local_today()
    started = time.monotonic()

    caseload_size = min(args.caseload, args.patients)
    clinic_big = Clinic.objects.create(name="Bench Clinic")
    clinic_case = Clinic.objects.create(name="Bench Caseload Clinic")
    clinic_tiny = Clinic.objects.create(name="Bench Tiny Clinic")

    def clinician(email: str, clinic: Clinic) -> Clinician:
        user = User.objects.create_user(email=email, password=None, first_name="Bench")
        return Clinician.objects.create(user=user, clinic=clinic)

    physio = clinician("physio@bench.local", clinic_case)
    big = clinician("big@bench.local", clinic_big)
    tiny = clinician("tiny@bench.local", clinic_tiny)

    case_patients = _make_patients(clinic_case, caseload_size, "case", rng)
    # `--clinics` beyond the three above (the rehearsal's chain of clinics): the other
    # patients are shared out between "Bench Clinic" and that many more.
    others = args.patients - caseload_size
    extra = [Clinic(name=f"Bench Clinic {n}") for n in range(2, max(args.clinics - 1, 1))]
    Clinic.objects.bulk_create(extra)
    share = -(-others // (len(extra) + 1)) if others else 0
    big_patients = _make_patients(clinic_big, min(share, others), "big", rng)
    for n, clinic in enumerate(extra):
        count = min(share, others - len(big_patients))
        big_patients += _make_patients(clinic, count, f"c{n + 2}-", rng)
    tiny_patients = _make_patients(clinic_tiny, 5, "tiny", rng)
    through = Clinician.patients.through
    through.objects.bulk_create(
        [through(clinician_id=physio.pk, patient_id=p.pk) for p in case_patients]
        + [through(clinician_id=tiny.pk, patient_id=p.pk) for p in tiny_patients],
        batch_size=5000,
    )
    log(f"{args.patients} patients in {time.monotonic() - started:.1f}s")

    t = time.monotonic()
    _log_partitions(today - timedelta(days=args.days + HISTORY_GAP_DAYS), today)
    every = [p.pk for p in case_patients + big_patients]
    lines = _log_lines(every, days=args.days, today=today, rng=rng)
    rows = _copy("rehab_dailylog", LOG_COLUMNS, lines)
    rows += _copy(
        "rehab_dailylog",
        LOG_COLUMNS,
        _log_lines([p.pk for p in tiny_patients], days=20, today=today, rng=rng),
    )
    _log_ids_claim()
    log(f"{rows} daily logs (COPY) in {time.monotonic() - t:.1f}s")

    # COPY ran with triggers off: the caseload's rollup is built here, as an operator's
    # `manage.py rebuild_log_rollups` would after such a load.
    from rehab.services.rollup import log_rollups_rebuild

    t = time.monotonic()
    rebuilt = log_rollups_rebuild()
    log(f"log rollup of {rebuilt} patients in {time.monotonic() - t:.1f}s")

    t = time.monotonic()
    exercise_rows = _programs(case_patients[: args.exercise_patients], physio, today, rng)
    took = time.monotonic() - t
    log(f"{exercise_rows} exercise logs for {args.exercise_patients} patients in {took:.1f}s")
    # The tiny clinic is on programs too, so its caseload runs the same queries.
    exercise_rows += _programs(tiny_patients, tiny, today, rng)
    _alerts(case_patients, max(10, caseload_size // 12), rng)
    _alerts(big_patients, max(10, len(big_patients) // 50), rng)

    # Posting patients: the throughput runs take (patient, date) slots in order; the
    # red-flag run takes other patients on RED_FLAG_OFFSET (a new alert each, no refiring).
    everyone = case_patients + big_patients
    posters = everyone[: min(len(everyone), args.posters)]
    red_flaggers = everyone[::-1][: args.red_flags]
    knox_model = get_token_model()
    knox_tokens: dict[str, str] = {}
    for patient in {p.pk: p for p in posters + red_flaggers}.values():
        _, token = knox_model.objects.create(user=patient.user, expiry=timedelta(days=2))
        knox_tokens[str(patient.pk)] = token
    drf_tokens = [Token(key=Token.generate_key(), user_id=p.user_id) for p in posters]
    Token.objects.bulk_create(drf_tokens)
    drf_by_patient = {str(p.pk): tok.key for p, tok in zip(posters, drf_tokens, strict=True)}

    def token_for(user: User) -> str:
        return str(knox_model.objects.create(user=user, expiry=timedelta(days=2))[1])

    def session_for(user: User) -> str:
        # A signed-in dashboard session, as the login page would leave it.
        from django.conf import settings
        from django.test import Client

        client = Client()
        client.force_login(user)
        return str(client.cookies[settings.SESSION_COOKIE_NAME].value)

    slots = [
        {
            "patient": str(p.pk),
            "date": (today - timedelta(days=offset)).isoformat(),
        }
        for offset in POST_OFFSETS
        for p in posters
    ]
    red = [
        {"patient": str(p.pk), "date": (today - timedelta(days=RED_FLAG_OFFSET)).isoformat()}
        for p in red_flaggers
    ]
    with connection.cursor() as cursor:
        # A clinic's database has been vacuumed by autovacuum long since: without it the
        # visibility map is empty and every index-only scan (the caseload's latest-log
        # look-ups) visits the heap, which would measure a freshly loaded table instead.
        cursor.execute("VACUUM (ANALYZE) rehab_dailylog")
        cursor.execute("VACUUM (ANALYZE) programs_exerciselog")
        cursor.execute("VACUUM (ANALYZE) rehab_patientlogrollup")
        cursor.execute("ANALYZE")
        # And checkpointed long since: the load and its vacuum write ~1.5 GB of WAL, so
        # without this PostgreSQL starts a WAL-triggered checkpoint in the middle of the
        # measured phases, whichever kind's phase it lands in pays for it (the first
        # write to every page after a checkpoint start logs a full-page image), and one
        # round's ratio dropped to 0.81x for it. Superuser or pg_checkpoint only.
        try:
            cursor.execute("CHECKPOINT")  # autocommit, as the VACUUMs: an error aborts nothing
        except DatabaseError as exc:
            log(f"no CHECKPOINT after the load ({exc}); a checkpoint may land in a phase")
        # Partitioned: the parent holds nothing, its partitions hold the logs.
        cursor.execute(
            "SELECT pg_size_pretty(sum(pg_total_relation_size(relid)))"
            " FROM pg_partition_tree('rehab_dailylog')"
        )
        size = cursor.fetchone()[0]
    log(f"done in {time.monotonic() - started:.1f}s; rehab_dailylog {size}")
    return {
        "today": today.isoformat(),
        "patients": args.patients,
        "days": args.days,
        "daily_logs": rows,
        "exercise_logs": exercise_rows,
        "dailylog_size": size,
        "build_seconds": round(time.monotonic() - started, 1),
        "knox_tokens": knox_tokens,
        "drf_tokens": drf_by_patient,
        "slots": slots,
        "red_flag_slots": red,
        "clinician_token": token_for(physio.user),
        "big_clinician_token": token_for(big.user),
        "tiny_clinician_token": token_for(tiny.user),
        "clinician_session": session_for(physio.user),
        "tiny_clinician_session": session_for(tiny.user),
        "progress_patient": str(case_patients[0].pk),
        "progress_token": token_for(case_patients[0].user),
        "tiny_patient_token": token_for(tiny_patients[0].user),
        "caseload_size": caseload_size,
    }


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    parser = argparse.ArgumentParser(description="Build the benchmark data set.")
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--caseload", type=int, default=500)
    parser.add_argument(
        "--clinics", type=int, default=3, help="3: the shape above; more share out the rest"
    )
    parser.add_argument("--exercise-patients", type=int, default=500)
    parser.add_argument("--posters", type=int, default=2000)
    parser.add_argument("--red-flags", type=int, default=250)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--manifest", type=Path, required=True)
    args = parser.parse_args(argv)
    manifest = build(args)
    args.manifest.write_text(json.dumps(manifest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
