"""The reminder burst: N patients whose daily-log reminder falls due in the same minute
(BENCHMARKS.md, "Reminders").

    python -m bench.reminders --patients 5000            # bench settings, a migrated DB
    BENCH_SCALE=small python bin/embedded.py -- sh -c \\
        'python manage.py migrate -v0 && python -m bench.reminders --patients 5000'

Creates N patients in a clinic of its own (time zone UTC, reminder at the current minute,
email only), plans their reminders with the product's planner (set-based, as beat's task
does: timed), then starts `--senders` processes each running the product's sweep
(`reminders_send_due`: batches claimed with SKIP LOCKED, composed, handed to the channel,
recorded) and times from their start (every reminder already due) to the last hand-over.
The channel is an in-memory one that accepts every message (the console
channel's contract without the printing): what is measured is ours, not an SMTP server.
The rows are deleted at the end. bench/run.py runs it while it posts red flags, to time
the safety path during the burst (the safety queue has its own workers).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import IO, Any

import django

from bench import reaper
from notifications.channels.base import Outcome, OutgoingMessage, SendResult

CHANNEL = "bench_memory"


class MemoryChannel:
    """Accepts every message, keeping nothing: the hand-over is the measured part."""

    name = CHANNEL

    def send(self, message: OutgoingMessage) -> SendResult:
        return SendResult(Outcome.SENT, provider_id=str(message.delivery_id))


def _configure() -> None:
    from django.conf import settings

    settings.NOTIFICATION_CHANNELS = {
        **settings.NOTIFICATION_CHANNELS,
        CHANNEL: "bench.reminders.MemoryChannel",
    }
    settings.NOTIFICATION_EMAIL_CHANNEL = CHANNEL


def _create(n: int, due: datetime) -> uuid.UUID:
    from notifications.models import ReminderSettings
    from patients.models import Clinic, Patient, User

    clinic = Clinic.objects.create(name=f"Reminder bench {uuid.uuid4().hex[:8]}")
    tag = clinic.pk.hex[:8]
    batch = 5000
    for start in range(0, n, batch):
        count = min(batch, n - start)
        users = User.objects.bulk_create(
            User(email=f"rb-{tag}-{start + i}@bench.example", password="!")  # noqa: S106
            for i in range(count)
        )
        patients = Patient.objects.bulk_create(
            Patient(
                user=user,
                clinic=clinic,
                email=user.email,
                first_name="Bench",
                last_name=str(start + i),
                date_of_birth=datetime(1970, 1, 1).date(),
                timezone="UTC",
            )
            for i, user in enumerate(users)
        )
        ReminderSettings.objects.bulk_create(
            ReminderSettings(
                patient=patient,
                remind_at=due.time(),
                channels="email",
                questionnaire_due=False,
                exercise_days=False,
            )
            for patient in patients
        )
    return clinic.pk


def _delete(clinic_id: uuid.UUID) -> None:
    """The bench's rows, a few thousand patients per statement (one delete of 100,000
    would bind 100,000 ids per related table, minutes of the client's time)."""
    from notifications.models import Delivery, Reminder
    from patients.models import Clinic, Patient, User

    ids = list(Patient.objects.filter(clinic_id=clinic_id).values_list("pk", "user_id"))
    chunk = 5000
    for start in range(0, len(ids), chunk):
        patient_ids = [pk for pk, _ in ids[start : start + chunk]]
        user_ids = [user_id for _, user_id in ids[start : start + chunk]]
        Delivery.objects.filter(patient_id__in=patient_ids).delete()
        Reminder.objects.filter(patient_id__in=patient_ids).delete()
        Patient.objects.filter(pk__in=patient_ids).delete()
        User.objects.filter(pk__in=user_ids).delete()
    Clinic.objects.filter(pk=clinic_id).delete()


def _analyze() -> None:
    """Fresh statistics for the tables the burst just filled, as autovacuum gives a
    deployment whose reminders are planned up to ten minutes ahead: here the burst starts
    the moment they are planned, and a planner that still believes the tables nearly
    empty scans them whole per batch. ANALYZE needs the tables' owner: the migrating
    role when there is one (the embedded servers), else this connection's."""
    import psycopg
    from django.db import connection

    from notifications.models import Delivery, Reminder

    sql = f"ANALYZE {Delivery._meta.db_table}, {Reminder._meta.db_table}"
    owner_url = os.environ.get("DATABASE_MIGRATE_URL")
    if owner_url:
        with psycopg.connect(owner_url, autocommit=True) as owner:
            owner.execute(sql)
        return
    with connection.cursor() as cursor:
        cursor.execute(sql)


def _backend_cpu(pid: int) -> float | None:
    """CPU seconds of a database backend on this machine (the embedded server), else None."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _sender(budget: float, results: Any) -> None:
    """One sender process: the product's sweep, with its own CPU and its database
    backend's (what a reminder costs whatever else the machine runs)."""
    from django.db import connection, connections

    from notifications import reminders_sweep

    _configure()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (backend,) = cursor.fetchone() or (0,)
    db_before = _backend_cpu(backend)
    before = os.times()
    sent = reminders_sweep.reminders_send_due(budget=budget)
    after = os.times()
    db_after = _backend_cpu(backend)
    own = (after.user - before.user) + (after.system - before.system)
    db = db_after - db_before if db_after is not None and db_before is not None else None
    results.put((sent, own, db))
    connections.close_all()


def run(
    patients: int, senders: int, budget: float = 55.0, *, keep_rows: bool = False
) -> dict[str, Any]:
    from django.db import connections
    from django.db.models import Max
    from django.utils import timezone

    from notifications import reminders
    from notifications.models import Delivery, Reminder

    _configure()
    now = timezone.now()
    # The current minute: the reminders are already due when planned (the planner catches
    # up on ones missed by less than an hour, as after a beat restart), so a run waits for
    # no clock (up to a minute and a half before: a minute of `make test` per run). The
    # hand-over is timed from when the senders start.
    due = now.replace(second=0, microsecond=0)
    created = time.perf_counter()
    clinic_id = _create(patients, due)
    create_seconds = time.perf_counter() - created
    try:
        started = time.perf_counter()
        reminders.reminders_plan()
        plan_seconds = time.perf_counter() - started
        # Beat's next plan (every 30 s while the reminders are within reach, their minute
        # included): all already planned, nothing to insert.
        started = time.perf_counter()
        reminders.reminders_plan()
        replan_seconds = time.perf_counter() - started
        _analyze()
        ours = Reminder.objects.filter(patient__clinic_id=clinic_id)
        planned = ours.count()
        # A default-queue worker has its URL patterns loaded after its first task (the
        # unsubscribe links reverse a URL): load them once here, before the senders fork,
        # rather than time each sender importing every view (seconds on a loaded core).
        reminders.unsubscribe_url(patient_id=uuid.uuid4(), what="daily_log")
        connections.close_all()  # the senders are forked: each opens its own
        wait = due.timestamp() - time.time()
        if wait > 0:
            time.sleep(wait)
        context = multiprocessing.get_context("fork")
        results = context.Queue()
        procs = [context.Process(target=_sender, args=(budget, results)) for _ in range(senders)]
        print("BURST", flush=True)  # bench/run.py starts its red flags now
        sending_from = max(due, timezone.now())
        for proc in procs:
            proc.start()
        finished = [results.get(timeout=budget + 60) for _ in procs]
        for proc in procs:
            proc.join()
        print("HANDED", flush=True)  # bench/run.py stops its red flags now
        deliveries = Delivery.objects.filter(patient__clinic_id=clinic_id)
        sent = deliveries.filter(status=Delivery.Status.SENT)
        last = sent.aggregate(last=Max("sent_at"))["last"]
        handed = sent.count()
        handover = (last - sending_from).total_seconds() if last else None
        result = {
            "patients": patients,
            "senders": senders,
            "create_seconds": round(create_seconds, 1),
            "plan_seconds": round(plan_seconds, 2),
            "replan_seconds": round(replan_seconds, 2),
            "planned": planned,
            "deliveries": deliveries.count(),
            "handed_over": handed,
            "handover_seconds": round(handover, 2) if handover is not None else None,
            "per_second": round(handed / handover) if handover else None,
            "sender_counts": [count for count, _, _ in finished],
            # CPU per reminder handed over, of the senders (Python) and of their database
            # backends (None when the server is not on this machine).
            "sender_cpu_us": round(sum(cpu for _, cpu, _ in finished) / max(handed, 1) * 1e6),
            "db_cpu_us": (
                round(sum(db for _, _, db in finished) / max(handed, 1) * 1e6)
                if all(db is not None for _, _, db in finished)
                else None
            ),
            "within_the_minute": handed == patients and handover is not None and handover < 60,
            "load_average": os.getloadavg(),
        }
        # Out before the clean-up (bench/run.py reads the last line), which takes a while.
        print(json.dumps(result), flush=True)
        return result
    finally:
        if not keep_rows:
            _delete(clinic_id)


def section(
    cfg: Any,
    m: dict[str, Any],
    db_url: str,
    env: dict[str, str],
    slots: Iterator[dict[str, str]],
    *,
    patients: int,
    red_flag_run: Callable[..., dict[str, Any]],
) -> dict[str, Any]:
    """bench/run.py's section: the burst in a child process, and red flags posted one
    after another while its senders run, each timed to its alert (the safety queue's
    workers are not the reminders' default ones)."""
    flagged = {slot["patient"] for slot in m["red_flag_slots"]}
    fresh: list[dict[str, str]] = []
    seen: set[str] = set()
    for slot in slots:
        if slot["patient"] not in flagged and slot["patient"] not in seen:
            seen.add(slot["patient"])
            fresh.append(slot)
        if len(fresh) == cfg.red_flags:
            break
    # A process group of its own (it and its forked senders), recorded for the watcher as
    # bench/run.py's servers are: a run killed by SIGKILL mid-burst leaves no sender behind.
    proc = subprocess.Popen(  # noqa: S603 - our own fixed command line
        [sys.executable, "-m", "bench.reminders", "--patients", str(patients), "--keep-rows"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    reaper.track(proc.pid)
    assert proc.stdout is not None
    lines: list[str] = []
    burst_started = threading.Event()
    handed = threading.Event()

    def read(stdout: IO[str]) -> None:
        for line in stdout:
            lines.append(line.strip())
            if line.strip() == "BURST":
                burst_started.set()
            if line.strip() == "HANDED":
                handed.set()
        burst_started.set()
        handed.set()

    reader = threading.Thread(target=read, args=(proc.stdout,), daemon=True)
    reader.start()
    try:
        burst_started.wait()
        # Red flags while the senders run, not during the clean-up after them.
        flags = red_flag_run(cfg, m, db_url, fresh, while_true=lambda: not handed.is_set())
        proc.wait(timeout=900)
    finally:
        # A run stopped meanwhile (bench/reaper.py) stops its senders too: the whole group,
        # since the senders do not stop with their parent.
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
    reader.join(timeout=10)
    burst = json.loads(next(line for line in reversed(lines) if line.startswith("{")))
    p99_ok = flags["logs"] > 0 and flags["p99_ms"] < 250 and not flags["timeouts"]
    return {
        **burst,
        "red_flags": flags,
        "targets": [
            (
                f"{patients:,} reminders due in one minute all handed over within it",
                f"{burst['handed_over']} in {burst['handover_seconds']} s "
                f"(planned in {burst['plan_seconds']} s)",
                bool(burst["within_the_minute"]),
            ),
            (
                "red-flag p99 < 250 ms during that reminder burst",
                f"{flags['p99_ms']} ms over {flags['logs']} logs",
                p99_ok,
            ),
        ],
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, required=True)
    parser.add_argument("--senders", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--keep-rows",
        action="store_true",
        help="leave the bench's patients in place (a throwaway database: bench/run.py)",
    )
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    django.setup()
    run(args.patients, args.senders, keep_rows=args.keep_rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
