"""A multi-node rehearsal on one machine: the production layout, a load, two nodes killed
mid-run, and a check that no log and no alert was lost or doubled (BENCHMARKS.md §
Multi-node rehearsal; docs/deployment.md maps it to managed services).

    python -m bench.rehearsal                  # full: 100 clinics, 50,000 patients, a year
    python -m bench.rehearsal --scale tiny     # the seconds-long version tests run
    REHEARSAL_PATIENTS=5000 python -m bench.rehearsal   # any size knob, by environment

`make rehearsal` runs it under bin/embedded.py (embedded PostgreSQL and Redis when
DATABASE_URL / REDIS_URL are unset). The layout, all on 127.0.0.1:

    load generator (phones) -> HAProxy -> web1, web2 (gunicorn, config.wsgi)
    web, workers, beat -> PgBouncer (transaction mode) -> primary PostgreSQL
    dashboards, progress, exports -> streaming replica (pg_basebackup of the primary)
    safety1, safety2 (-Q safety), default1 (-Q default), beat -> Redis

The rehearsal gets its own database (`REHEARSAL_DB`, dropped and created fresh, and
dropped at the end unless --keep-db) and its own Redis database (`REHEARSAL_REDIS_DB`,
default 12, or `REHEARSAL_REDIS_URL`). The tables are migrated as the owner role and the
services run as the application role when DATABASE_MIGRATE_URL names an owner (as
`make rehearsal` does), as in production (docs/security.md § Database roles).

The load: patients POST their daily logs (some with a red flag) as the phone does: a POST
that fails (no answer, a 5xx, the proxy's 502/503) is sent again, with the same log id,
until it is answered 2xx. Clinicians read their caseload meanwhile. When a share of the
load has been sent, web1 is SIGKILLed (its whole process group, mid-request); then the
first safety worker seen holding a red flag's evaluation (received, running, not yet
acknowledged) is SIGKILLed too. To make that moment certain, some red-flag patients are
row-locked from `hold_from` on, so that their evaluations wait inside `log_evaluate`
until the kill, and Celery's remote control (`inspect active`) says which worker holds
one. The survivors carry the load until the killed nodes are started again
`restart_after` seconds after their kill, as an orchestrator replaces a lost container.
Then, once every log is evaluated:

- every log answered 2xx is stored exactly once, and no other log appeared;
- every red-flag log has exactly one alert per rule it fires (one alert row and one
  occurrence of it), and the rules the red flag fires (those most red-flag logs got:
  they are the same answers) are there for every one of them;
- nothing those alerts set off is doubled (their created/emailed/escalated events,
  in-app notifications, outgoing messages);
- the kill landed while the worker held a red flag (still unevaluated right after it),
  and that red flag's alert was raised, and its email sent, within `held_alert_within`
  seconds of the worker's restart (`verdict.kill`: the time to alert of each).

The verdict is in the JSON report (`verdict.ok`) and the exit status (1 when it fails).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import psutil
import psycopg
from celery import Celery

from bench.pgbouncer import free_port, pgbouncer
from bench.pgreplica import streaming_replica
from bench.run import SAFE_ANSWERS

BASE_DIR = Path(__file__).resolve().parent.parent
PY = sys.executable
BIN = Path(PY).parent
HOST = "127.0.0.1"
HAPROXY = shutil.which("haproxy") or (
    "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
)

SCALES: dict[str, dict[str, Any]] = {
    # The version `make test` runs (tests/test_rehearsal.py): every part, in seconds.
    "tiny": {
        "clinics": 5,
        "patients": 100,
        "caseload": 20,
        "days": 20,
        "posters": 60,
        "red_flags": 12,
        "requests": 160,
        "clients": 4,
        "web_workers": 1,
        "worker_concurrency": 1,
        "kill_at": 0.3,
        "pause_before_kill": 0.0,
        "restart_after": 5.0,
        # Beat too: a worker SIGKILLed between taking a message off Redis and recording
        # it as held loses it for good; only the sweep finds its log again (rare: then
        # the run takes 30-60 s longer).
        "beat": 1,
        # The tiny run cannot wait for beat's sweep (30 s grace, every 30 s): the killed
        # worker's messages come back when it restarts (a worker starting takes back the
        # messages held longer than this), so it restarts later than this.
        "visibility_timeout": 4,
        "settle_seconds": 90,
        # Red-flag patients held (row-locked), so that the kill lands while a safety
        # worker holds one's evaluation: the first ones sent from `hold_from` (a share of
        # the load) on. More than one, so that a worker busy elsewhere (a quiet-logs task
        # runs up to 5 s) does not keep the kill waiting; here from the start, so that
        # by the kill point a worker usually holds one already.
        "hold_red_flags": 2,
        "hold_from": 0.0,
        "hold_wait_seconds": 60.0,
        # The held red flags' alerts: within this long after the killed worker's
        # restart. The message comes back once its visibility timeout has passed, when a
        # consumer restores it (the restarted worker as it starts, the other one every
        # few seconds); the sweep on beat (30 s grace, every 30 s) is the backstop.
        "held_alert_within": 45.0,
    },
    "full": {
        "clinics": 100,
        "patients": 50_000,
        "caseload": 500,
        "days": 365,
        "posters": 3000,
        "red_flags": 300,
        "requests": 6000,
        "clients": 8,
        "web_workers": 2,
        "worker_concurrency": 2,
        "kill_at": 0.35,
        "pause_before_kill": 1.0,
        "restart_after": 15.0,
        "beat": 1,
        # The product's default: the sweep on beat finds the killed worker's logs first.
        "visibility_timeout": 300,
        "settle_seconds": 420,
        # From the kill point: held longer, the held evaluations would outlive the
        # sweep's grace and its duplicates would block the last free pool process.
        "hold_red_flags": 3,
        "hold_from": 0.35,
        "hold_wait_seconds": 120.0,
        # The visibility timeout (300 s) is longer than this: the sweep on beat brings the
        # held evaluations back (30 s grace, every 30 s, behind the killed worker's pause
        # and restart).
        "held_alert_within": 90.0,
    },
}

SAFE: dict[str, Any] = SAFE_ANSWERS
ON_CALL = "on-call@rehearsal.local"
SAFETY_NODES = ("safety1", "safety2")
RED: dict[str, Any] = {**SAFE, "saddle_numbness": "new_or_worse"}


STARTED = time.monotonic()


def log(message: str) -> None:
    print(f"[rehearsal {time.monotonic() - STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


def _with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


@dataclass(frozen=True)
class Config:
    scale: str
    sizes: dict[str, Any]
    db_name: str
    redis_db: int
    results: Path
    keep_db: bool
    template: str
    reuse_db: bool = False

    def __getattr__(self, name: str) -> Any:
        try:
            return self.sizes[name]
        except KeyError:
            raise AttributeError(name) from None


def parse_config(argv: Sequence[str] | None) -> Config:
    parser = argparse.ArgumentParser(description="The multi-node rehearsal (BENCHMARKS.md).")
    parser.add_argument(
        "--scale", default=os.environ.get("REHEARSAL_SCALE", "full"), choices=SCALES
    )
    parser.add_argument("--db", default=os.environ.get("REHEARSAL_DB", "rehab_rehearsal"))
    parser.add_argument(
        "--redis-db", type=int, default=int(os.environ.get("REHEARSAL_REDIS_DB", 12))
    )
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument(
        "--reuse-db",
        action="store_true",
        help="load the database an earlier --keep-db run built (and its manifest) again",
    )
    parser.add_argument(
        "--template",
        default=os.environ.get("REHEARSAL_TEMPLATE", ""),
        help="copy this migrated database (CREATE DATABASE ... TEMPLATE) instead of migrating",
    )
    args = parser.parse_args(argv)
    sizes = dict(SCALES[args.scale])
    for key, value in sizes.items():  # REHEARSAL_PATIENTS=..., REHEARSAL_KILL_AT=...
        raw = os.environ.get(f"REHEARSAL_{key.upper()}")
        if raw:
            sizes[key] = type(value)(raw)
    results = Path(
        os.environ.get("REHEARSAL_RESULTS") or BASE_DIR / "bench" / "results" / "rehearsal"
    )
    return Config(
        args.scale,
        sizes,
        args.db,
        args.redis_db,
        results,
        args.keep_db or args.reuse_db,
        args.template,
        args.reuse_db,
    )


# --------------------------------------------------------------------------- the nodes


@dataclass
class Nodes:
    """The processes of the layout, each in its own process group (a node): SIGKILL of
    a node kills all of it, as losing a machine or a container would."""

    results: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    outs: list[Any] = field(default_factory=list)
    specs: dict[str, tuple[list[str], dict[str, str]]] = field(default_factory=dict)

    def start(self, name: str, command: list[str], env: dict[str, str]) -> None:
        self.specs[name] = (command, env)
        out = (self.results / f"{name}.log").open("ab")
        self.outs.append(out)
        self.procs[name] = subprocess.Popen(  # noqa: S603 - our own fixed command lines
            command, cwd=BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        log(f"started {name} (pid {self.procs[name].pid})")

    def kill(self, name: str) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.procs[name].pid, signal.SIGKILL)
        self.procs[name].wait(10)
        log(f"SIGKILLed {name}")

    def pause(self, name: str) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.procs[name].pid, signal.SIGSTOP)

    def restart(self, name: str) -> None:
        """Start a killed node again, as an orchestrator replaces a lost container."""
        self.start(name, *self.specs[name])

    def alive(self, name: str) -> bool:
        return self.procs[name].poll() is None

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for name, proc in self.procs.items():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
            log(f"stopped {name}")
        for out in self.outs:
            out.close()


def haproxy_config(listen: int, backends: dict[str, int], results: Path) -> Path:
    """Round robin over the web nodes; a node that stops accepting connections is taken
    out after two failed checks 0.5 s apart. A request whose connection could not be
    made is sent to the other node (redispatch); one sent and unanswered is not (a POST
    is not replayed by the proxy): the client sees a 502 and retries it itself."""
    servers = "\n".join(
        f"    server {name} {HOST}:{port} check inter 500 fall 2 rise 2"
        for name, port in backends.items()
    )
    path = results / "haproxy.cfg"
    path.write_text(
        f"""global
    maxconn 1024
    pidfile {results}/haproxy.pid

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    retries 2
    option redispatch
    option forwardfor

frontend web
    bind {HOST}:{listen}
    default_backend nodes

backend nodes
    balance roundrobin
{servers}
"""
    )
    return path


def wait_http(port: int, path: str = "/health/", seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            status, _ = request(port, "GET", path, {"Host": HOST})
            if status < 500:
                return
        time.sleep(0.2)
    raise RuntimeError(f"nothing answered on port {port}")


def wait_ready(nodes: Nodes, names: Sequence[str], seconds: float = 90) -> None:
    """Until each Celery node has logged that it is ready to take tasks."""
    deadline = time.monotonic() + seconds
    waiting = set(names)
    while waiting and time.monotonic() < deadline:
        for name in list(waiting):
            if not nodes.alive(name):
                raise RuntimeError(f"{name} exited; see its log in {nodes.results}")
            text = (nodes.results / f"{name}.log").read_text(errors="replace")
            if " ready." in text or "beat: Starting" in text:
                waiting.discard(name)
        time.sleep(0.2)
    if waiting:
        raise RuntimeError(f"not ready: {sorted(waiting)}")


# --------------------------------------------------------------------------- the load


def request(
    port: int, method: str, path: str, headers: dict[str, str], body: bytes | None = None
) -> tuple[int, float]:
    started = time.perf_counter()
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
    finally:
        conn.close()
    return response.status, time.perf_counter() - started


@dataclass
class Outcome:
    """What the load generator saw: the ids answered 2xx (with the final status), the
    retries, what failed for good, and each request's latency."""

    acked: dict[str, int] = field(default_factory=dict)
    red: set[str] = field(default_factory=set)
    red_patients: set[str] = field(default_factory=set)
    attempts: Counter[str] = field(default_factory=Counter)
    gave_up: list[str] = field(default_factory=list)
    post_latencies: list[float] = field(default_factory=list)
    read_statuses: Counter[int] = field(default_factory=Counter)
    read_latencies: list[float] = field(default_factory=list)
    failed_attempts: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


def post_as_phone(port: int, token: str, body: dict[str, Any], out: Outcome) -> None:
    """One log, sent until it is answered 2xx, with the same id each time (the app keeps
    the log and its id until then). A 4xx other than 429 is a bug: no retry."""
    data = json.dumps(body).encode()
    headers = {"Content-Type": "application/json", "Host": HOST, "Authorization": f"Bearer {token}"}
    delay = 0.1
    for _ in range(12):
        try:
            status, took = request(port, "POST", "/api/v1/logs/", headers, data)
        except OSError as error:
            status, took = 0, 0.0
            reason = type(error).__name__
        else:
            reason = str(status)
        with out.lock:
            out.attempts[body["id"]] += 1
            if 200 <= status < 300:
                out.acked[body["id"]] = status
                out.post_latencies.append(took)
                return
            out.failed_attempts[reason] += 1
        if 400 <= status < 500 and status != 429:
            break
        time.sleep(delay)
        delay = min(delay * 2, 2.0)
    with out.lock:
        out.gave_up.append(body["id"])


def read_caseload(port: int, token: str, out: Outcome) -> None:
    headers = {"Host": HOST, "Authorization": f"Bearer {token}"}
    try:
        status, took = request(port, "GET", "/api/v1/clinician/patients/", headers)
    except OSError:
        status, took = 0, 0.0
    with out.lock:
        out.read_statuses[status] += 1
        if status == 200:
            out.read_latencies.append(took)


def fresh_slots(
    db_url: str, m: dict[str, Any]
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The manifest's (patient, date) slots nobody has logged yet, and red-flag slots of
    patients who never had a red-flag alert (each red flag then raises a new alert): all
    of them in a fresh database, what an earlier run left in a reused one (--reuse-db)."""
    red_date = m["red_flag_slots"][0]["date"] if m["red_flag_slots"] else m["today"]
    with psycopg.connect(db_url, autocommit=True) as conn:
        used = {
            (str(patient), day.isoformat())
            for patient, day in conn.execute(
                "SELECT patient_id, date FROM rehab_dailylog WHERE date >= %s::date - 15",
                [m["today"]],
            ).fetchall()
        }
        flagged = {
            str(patient)
            for (patient,) in conn.execute(
                "SELECT DISTINCT patient_id FROM rehab_alert WHERE rule LIKE 'RF-%%'"
            ).fetchall()
        }
    slots = [s for s in m["slots"] if (s["patient"], s["date"]) not in used]
    posters = dict.fromkeys(s["patient"] for s in m["slots"])
    candidates = [*m["red_flag_slots"], *({"patient": p, "date": red_date} for p in posters)]
    red: list[dict[str, str]] = []
    for slot in candidates:
        if slot["patient"] not in flagged and (slot["patient"], slot["date"]) not in used:
            flagged.add(slot["patient"])
            red.append(slot)
    return slots, red


def build_work(
    cfg: Config, m: dict[str, Any], db_url: str
) -> list[tuple[str, str, dict[str, Any]]]:
    """(kind, token, body) in the order the clients take them: the day's logs, the red
    flags spread evenly among them, a caseload read every tenth."""
    slots, red_slots = fresh_slots(db_url, m)
    logs = [
        ("log", m["knox_tokens"][slot["patient"]], _body(slot["date"], SAFE))
        for slot in slots[: cfg.requests]
    ]
    reds = [
        (
            "red",
            m["knox_tokens"][slot["patient"]],
            {**_body(slot["date"], RED), "_p": slot["patient"]},
        )
        for slot in red_slots[: cfg.red_flags]
    ]
    work: list[tuple[str, str, dict[str, Any]]] = []
    step = max(len(logs) // max(len(reds), 1), 1)
    for index, item in enumerate(logs):
        work.append(item)
        if index % step == 0 and reds:
            work.append(reds.pop())
        if index % 10 == 0:
            work.append(("read", m["clinician_token"], {}))
    work.extend(reds)
    return work


def _body(day: str, safety: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "date": day,
        "pain": random.randint(2, 8),
        "leg_pain": 5,
        "back_pain": 3,
        "function": 6,
        "notes": "Rehearsal log.",
        "safety": safety,
    }


def run_load(
    cfg: Config, port: int, work: list[tuple[str, str, dict[str, Any]]], kill: Any
) -> tuple[Outcome, float]:
    out = Outcome()
    lock = threading.Lock()
    cursor = iter(range(len(work)))
    kill_index = int(len(work) * cfg.kill_at)
    killed = threading.Event()
    killers: list[threading.Thread] = []

    def client() -> None:
        while True:
            with lock:
                index = next(cursor, None)
            if index is None:
                return
            if index >= kill_index and not killed.is_set():
                with lock:
                    if not killed.is_set():
                        killed.set()
                        # The kill runs beside the load: the other clients keep sending.
                        killers.append(threading.Thread(target=kill, daemon=True))
                        killers[0].start()
            kind, token, body = work[index]
            if kind == "read":
                read_caseload(port, token, out)
                continue
            if kind == "red":
                body = dict(body)
                patient = body.pop("_p")
                with out.lock:
                    out.red.add(body["id"])
                    out.red_patients.add(patient)
            post_as_phone(port, token, body, out)

    threads = [threading.Thread(target=client) for _ in range(cfg.clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    for thread in killers:  # the restarts, when the load ended first
        thread.join()
    return out, elapsed


# --------------------------------------------------------------------------- the held red flags


def held_red_flags(
    cfg: Config, work: list[tuple[str, str, dict[str, Any]]]
) -> list[dict[str, Any]]:
    """The red flags the kill is to catch mid-evaluation: the first `hold_red_flags` sent
    from `hold_from` (a share of the load) on, of patients who send nothing else in the
    load (a quiet log of a held patient would block a safety worker on something other
    than a red flag)."""
    start = int(len(work) * cfg.hold_from)
    quiet_tokens = {token for kind, token, _ in work if kind == "log"}
    return [
        body for kind, token, body in work[start:] if kind == "red" and token not in quiet_tokens
    ][: cfg.hold_red_flags]


class RedFlagHold:
    """Row locks on some red-flag patients, taken on the primary before the load starts,
    as `log_evaluate` takes them: an evaluation of such a patient's red flag is received,
    counts its attempt, then waits for the lock inside its transaction, unacknowledged
    (acks_late) and unable to finish, until the hold is released. Nothing else waits on
    these rows: the log POST does not lock the patient. This is how the kill is made to
    land while a safety worker holds a red flag (tests/rehab/test_worker_reliability.py
    does the same in a single process)."""

    def __init__(self, db_url: str, patients: Sequence[str]) -> None:
        self.patients = list(patients)
        self.conn = psycopg.connect(db_url)  # a transaction, open until release()
        self.pid = self.conn.info.backend_pid
        locked = self.conn.execute(
            "SELECT id FROM patients_patient WHERE id = ANY(%s::uuid[]) FOR NO KEY UPDATE",
            [self.patients],
        ).fetchall()
        if len(locked) != len(self.patients):
            raise RuntimeError("the held red-flag patients are not all in the database")
        self.watch = psycopg.connect(db_url, autocommit=True)

    def waiters(self) -> dict[str, int]:
        """Sessions waiting for the hold's locks, by application_name (each node names
        its sessions: `<node>`; through PgBouncer, the pooled session of the moment)."""
        rows = self.watch.execute(
            "SELECT coalesce(nullif(application_name, ''), '?'), count(*) FROM pg_stat_activity"
            " WHERE %s = ANY(pg_blocking_pids(pid)) GROUP BY 1",
            [self.pid],
        ).fetchall()
        return {str(name): int(count) for name, count in rows}

    def unevaluated(self, log_ids: Sequence[str]) -> list[str]:
        rows = self.watch.execute(
            "SELECT id::text FROM rehab_dailylog WHERE id = ANY(%s::uuid[])"
            " AND evaluated_at IS NULL",
            [list(log_ids)],
        ).fetchall()
        return sorted(row[0] for row in rows)

    def release(self) -> None:
        if not self.conn.closed:
            self.conn.rollback()
            self.conn.close()
        self.watch.close()


def evaluations_held(inspector: Any, node: str) -> dict[str, list[str]]:
    """The log ids whose evaluation (`log_evaluate_task`) the Celery node `node` (its
    name, "safety1") has received and not acknowledged, asked through Celery's remote
    control: `active` (running in a pool process) and `reserved` (prefetched).
    `inspector` is `app.control.inspect(destination=["safety1@host"], ...)`."""
    held: dict[str, list[str]] = {}
    for state in ("active", "reserved"):
        replies = getattr(inspector, state)() or {}
        tasks: list[dict[str, Any]] = next(
            (t for host, t in replies.items() if host.split("@")[0] == node), []
        )
        held[state] = [
            str(task["args"][0])
            for task in tasks
            if task.get("name") == "rehab.tasks.log_evaluate_task" and task.get("args")
        ]
    return held


def wait_held(
    hold: RedFlagHold, inspectors: dict[str, Any], red_ids: set[str], seconds: float
) -> tuple[str | None, dict[str, list[str]], float]:
    """Until one of the safety nodes (`inspectors`: node name -> Celery's remote control
    for it) holds the evaluation of at least one of `red_ids` in a pool process (an
    active task: received, mid-run, unacknowledged): that node, what it held, and how long
    the wait took. No node, and nothing held, when none did within `seconds`.

    Remote control says which tasks a node holds; it is asked when one of the node's
    database sessions waits on the hold (cheap to watch: each node names its sessions),
    and every 2 s anyway, in case a pooler does not pass the sessions' names on."""
    started = time.monotonic()
    asked = started
    while red_ids and time.monotonic() - started < seconds:
        waiters = hold.waiters()
        waiting = [name for name in inspectors if waiters.get(name)]
        if not waiting and time.monotonic() - asked > 2.0:
            waiting = list(inspectors)
        for name in waiting:
            asked = time.monotonic()
            held = evaluations_held(inspectors[name], name)
            if set(held["active"]) & red_ids:
                return name, held, round(time.monotonic() - started, 2)
        time.sleep(0.1)
    return None, {"active": [], "reserved": []}, round(time.monotonic() - started, 2)


# --------------------------------------------------------------------------- the check


def verify(
    cursor: Any, acked: Sequence[str], red: Sequence[str], since: datetime
) -> dict[str, Any]:
    """Lost or doubled logs and alerts, from the primary. `cursor` is any DB-API cursor
    (psycopg's, Django's) on the rehearsal's database; `acked` the log ids answered 2xx,
    `red` those of them with a red flag; `since` the load's start."""
    acked = [str(i) for i in acked]
    red = [str(i) for i in red]
    cursor.execute("SELECT id::text FROM rehab_dailylog WHERE id = ANY(%s::uuid[])", [acked])
    stored = Counter(row[0] for row in cursor.fetchall())
    lost_logs = sorted(set(acked) - set(stored))
    # A log stored under another id (a retry taken for a new log) is a doubled log: every
    # log written since the load started must be one of the ids answered.
    cursor.execute(
        "SELECT id::text FROM rehab_dailylog WHERE created_at >= %s AND NOT (id = ANY(%s::uuid[]))",
        [since, acked],
    )
    unexpected_logs = sorted(row[0] for row in cursor.fetchall())
    cursor.execute(
        "SELECT patient_id, date, count(*) FROM rehab_dailylog WHERE id = ANY(%s::uuid[]) "
        "GROUP BY 1, 2 HAVING count(*) > 1",
        [acked],
    )
    doubled_days = len(cursor.fetchall())
    cursor.execute(
        "SELECT count(*) FILTER (WHERE evaluated_at IS NULL AND evaluation_failed_at IS NULL),"
        " count(*) FILTER (WHERE evaluation_failed_at IS NOT NULL)"
        " FROM rehab_dailylog WHERE id = ANY(%s::uuid[])",
        [acked],
    )
    unevaluated, failed = cursor.fetchone()

    # Each red-flag log: its alerts (the patients had none before, so each rule it fires
    # is a new alert whose `log` is this one) and their occurrences naming this log.
    cursor.execute(
        "SELECT log_id::text, rule, count(*) FROM rehab_alert WHERE log_id = ANY(%s::uuid[]) "
        "GROUP BY 1, 2",
        [red],
    )
    alerts: dict[str, Counter[str]] = {i: Counter() for i in red}
    for log_id, rule, count in cursor.fetchall():
        alerts[log_id][rule] += count
    cursor.execute(
        "SELECT o.log_id::text, a.rule, count(*) FROM rehab_alertoccurrence o "
        "JOIN rehab_alert a ON a.id = o.alert_id WHERE o.log_id = ANY(%s::uuid[]) GROUP BY 1, 2",
        [red],
    )
    occurrences: dict[str, Counter[str]] = {i: Counter() for i in red}
    for log_id, rule, count in cursor.fetchall():
        occurrences[log_id][rule] += count
    # The rules the red flag fires: those more than half of the red-flag logs got (the
    # same answers each). Another rule may fire for some of them (a trend over their own
    # history): reported, not judged; doubled, it counts as doubled below.
    fired = Counter(rule for rules in alerts.values() for rule in rules)
    expected = frozenset(rule for rule, n in fired.items() if n > len(red) / 2)
    lost_alerts = sum(
        len(expected - set(alerts[i])) + len(expected - set(occurrences[i])) for i in red
    )
    doubled_alerts = sum(
        sum(n - 1 for n in alerts[i].values() if n > 1)
        + sum(n - 1 for n in occurrences[i].values() if n > 1)
        for i in red
    )
    stray_rules = sum(len(set(alerts[i]) - expected) for i in red)
    # What the alerts set off, once each: their audit events that happen once (created,
    # emailed, escalated), the clinicians' in-app notifications, and the outgoing messages
    # (one per kind, channel and address; each row's idempotency key is unique, so a second
    # row would be a second message planned under another key).
    cursor.execute(
        "SELECT count(*) FROM (SELECT 1 FROM rehab_alertevent e JOIN rehab_alert a"
        " ON a.id = e.alert_id WHERE a.log_id = ANY(%s::uuid[])"
        " AND e.kind IN ('created', 'notified', 'escalated')"
        " GROUP BY e.alert_id, e.kind HAVING count(*) > 1) doubled",
        [red],
    )
    doubled_events = cursor.fetchone()[0]
    cursor.execute(
        "SELECT count(*) FROM (SELECT 1 FROM rehab_notification n JOIN rehab_alert a"
        " ON a.id = n.alert_id WHERE a.log_id = ANY(%s::uuid[])"
        " GROUP BY n.alert_id, n.clinician_id, n.kind HAVING count(*) > 1) doubled",
        [red],
    )
    doubled_notifications = cursor.fetchone()[0]
    cursor.execute(
        "SELECT count(*) FROM (SELECT 1 FROM notifications_delivery d JOIN rehab_alert a"
        " ON a.id = d.alert_id WHERE a.log_id = ANY(%s::uuid[])"
        " GROUP BY d.alert_id, d.kind, d.channel, d.address HAVING count(*) > 1) doubled",
        [red],
    )
    doubled_deliveries = cursor.fetchone()[0]
    result = {
        "acked_logs": len(acked),
        "stored_logs": len(stored),
        "lost_logs": len(lost_logs),
        "unexpected_logs": len(unexpected_logs),
        "doubled_days": doubled_days,
        "unevaluated_logs": unevaluated,
        "failed_evaluations": failed,
        "red_flag_logs": len(red),
        "rules_per_red_flag": sorted(expected),
        "lost_alerts": lost_alerts,
        "doubled_alerts": doubled_alerts,
        "stray_alert_rules": stray_rules,
        "doubled_alert_events": doubled_events,
        "doubled_notifications": doubled_notifications,
        "doubled_deliveries": doubled_deliveries,
        "examples": {"lost_logs": lost_logs[:5], "unexpected_logs": unexpected_logs[:5]},
    }
    result["ok"] = bool(
        not lost_logs
        and not unexpected_logs
        and not doubled_days
        and not unevaluated
        and not failed
        and (expected or not red)
        and not lost_alerts
        and not doubled_alerts
        and not doubled_events
        and not doubled_notifications
        and not doubled_deliveries
    )
    return result


def held_outcome(
    cursor: Any, held: Sequence[str], restarted_at: datetime | None, within: float
) -> dict[str, Any]:
    """The red flags the killed worker held: each one's alerts (how many, when
    raised, when the care team was emailed), its evaluation attempts (the killed one
    counts), and whether every alert came within `within` seconds of the restart.
    `cursor` as for verify()."""
    held = [str(i) for i in held]
    cursor.execute(
        "SELECT l.id::text, l.evaluation_attempts,"
        " extract(epoch FROM min(a.created_at) - l.created_at),"
        " extract(epoch FROM max(a.created_at) - %s::timestamptz),"
        " count(a.id), count(a.id) FILTER (WHERE a.notify_due),"
        " count(a.notified_at) FILTER (WHERE a.notify_due),"
        " extract(epoch FROM max(a.notified_at) - %s::timestamptz)"
        " FROM rehab_dailylog l LEFT JOIN rehab_alert a ON a.log_id = l.id"
        " WHERE l.id = ANY(%s::uuid[]) GROUP BY l.id, l.evaluation_attempts, l.created_at",
        [restarted_at, restarted_at, held],
    )
    logs = []
    for row in cursor.fetchall():
        log_id, attempts, to_alert, after_restart, alerts, due, notified, mailed = row
        logs.append(
            {
                "log": log_id,
                "evaluation_attempts": attempts,
                "alerts": alerts,
                "seconds_to_alert": None if to_alert is None else round(float(to_alert), 1),
                "alert_seconds_after_restart": (
                    None if after_restart is None else round(float(after_restart), 1)
                ),
                "alerts_to_email": due,
                "alerts_emailed": notified,
                "email_seconds_after_restart": None if mailed is None else round(float(mailed), 1),
            }
        )
    # What each held red flag's alerts set off, counted (verify() judges doubles for
    # every red flag; these show they exist at all): care-team emails recorded as sent
    # (`notified` events) and outgoing message rows.
    cursor.execute(
        "SELECT a.log_id::text, count(*) FILTER (WHERE e.kind = 'notified'),"
        " count(*) FILTER (WHERE e.kind = 'created')"
        " FROM rehab_alert a JOIN rehab_alertevent e ON e.alert_id = a.id"
        " WHERE a.log_id = ANY(%s::uuid[]) GROUP BY 1",
        [held],
    )
    events = {row[0]: (row[1], row[2]) for row in cursor.fetchall()}
    cursor.execute(
        "SELECT a.log_id::text, count(d.id) FROM rehab_alert a"
        " JOIN notifications_delivery d ON d.alert_id = a.id"
        " WHERE a.log_id = ANY(%s::uuid[]) GROUP BY 1",
        [held],
    )
    deliveries = dict(cursor.fetchall())
    for entry in logs:
        notified, created = events.get(entry["log"], (0, 0))
        entry["created_events"] = created
        entry["notified_events"] = notified
        entry["delivery_rows"] = deliveries.get(entry["log"], 0)
    in_time = bool(logs) and all(
        entry["alerts"]
        and entry["alert_seconds_after_restart"] is not None
        and entry["alert_seconds_after_restart"] <= within
        and entry["alerts_emailed"] == entry["alerts_to_email"]
        and (entry["email_seconds_after_restart"] or 0.0) <= within
        for entry in logs
    )
    return {
        "logs": logs,
        "within_seconds_after_restart": within,
        "alerted_in_time": in_time,
        "max_seconds_to_alert": max((e["seconds_to_alert"] or 0.0 for e in logs), default=None),
    }


def wait_emailed(db_url: str, held: Sequence[str], until: float) -> None:
    """Until the held red flags' alerts that are owed an email have it, or `until`
    (time.monotonic()): the email is a task of its own, after the evaluation."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        while time.monotonic() < until:
            row = conn.execute(
                "SELECT count(*) FROM rehab_alert WHERE log_id = ANY(%s::uuid[])"
                " AND notify_due AND notified_at IS NULL",
                [list(held)],
            ).fetchone()
            if row is not None and row[0] == 0:
                return
            time.sleep(0.5)


def wait_evaluated(db_url: str, ids: Sequence[str], seconds: float) -> float:
    started = time.monotonic()
    with psycopg.connect(db_url, autocommit=True) as conn:
        while time.monotonic() - started < seconds:
            row = conn.execute(
                "SELECT count(*) FROM rehab_dailylog WHERE id = ANY(%s::uuid[])"
                " AND evaluated_at IS NULL AND evaluation_failed_at IS NULL",
                [list(ids)],
            ).fetchone()
            if row is not None and row[0] == 0:
                break
            time.sleep(0.5)
    return round(time.monotonic() - started, 1)


# --------------------------------------------------------------------------- the run


def _percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] * 1000, 1)


def _django(args: list[str], env: dict[str, str]) -> str:
    return subprocess.run(  # noqa: S603 - our own fixed command lines
        [PY, *args], cwd=BASE_DIR, env=env, check=True, stdout=subprocess.PIPE
    ).stdout.decode()


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_config(argv)
    if HAPROXY is None:
        raise SystemExit("Debian's haproxy is not installed (`make haproxy` installs it).")
    cfg.results.mkdir(parents=True, exist_ok=True)
    app_base = os.environ.get("DATABASE_URL")
    owner_base = os.environ.get("DATABASE_MIGRATE_URL") or app_base
    base_redis = os.environ.get("REDIS_URL")
    if not app_base or not owner_base or not base_redis:
        raise SystemExit("DATABASE_URL and REDIS_URL must be set (`make rehearsal` sets them).")
    owner_url = _with_path(owner_base, f"/{cfg.db_name}")
    app_url = _with_path(app_base, f"/{cfg.db_name}")
    admin_url = _with_path(owner_base, "/postgres")
    redis_url = os.environ.get("REHEARSAL_REDIS_URL") or _with_path(base_redis, f"/{cfg.redis_db}")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        primary_host, primary_port = conn.info.host, conn.info.port
        owner = conn.info.user
    # --reuse-db: the database and manifest of a --keep-db run are loaded again as they are.
    if not cfg.reuse_db:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{cfg.db_name}" WITH (FORCE)')
            template = f' TEMPLATE "{cfg.template}"' if cfg.template else ""
            conn.execute(f'CREATE DATABASE "{cfg.db_name}"{template}')
            conn.execute(f'ALTER DATABASE "{cfg.db_name}" SET random_page_cost = 1.1')
    app_user = urlsplit(app_url).username or owner
    report: dict[str, Any] = {
        "scale": cfg.scale,
        "sizes": cfg.sizes,
        "machine": {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "nproc": os.cpu_count(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        },
    }
    started = time.monotonic()
    base_env = {
        **{k: v for k, v in os.environ.items() if k != "DATABASE_MIGRATE_URL"},
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_ALLOWED_HOSTS": HOST,
        "DJANGO_TRUSTED_PROXY_COUNT": "0",  # the nodes behind HAProxy say 1
        "REDIS_URL": redis_url,
        "THROTTLE_RATES": "logs=1000000/hour,login=1000000/hour,register=1000000/hour",
        "CACHE_KEY_PREFIX": "rehearsal",
        "LOG_LEVEL": "WARNING",
        "EMAIL_URL": "consolemail://",
        "PYTHONUNBUFFERED": "1",
    }
    nodes = Nodes(cfg.results)
    try:
        # The replica first, of a server where the rehearsal's database is still empty:
        # the copy is quick, and the year of data then reaches it by streaming.
        with streaming_replica(
            primary_host=primary_host,
            primary_port=primary_port,
            database=cfg.db_name,
            timeout=600,
            name="pg-rehearsal-replica",
            slot=True,
        ) as replica:
            report["verdict"] = _run(cfg, report, nodes, replica, base_env, locals_(
                owner_url=owner_url, app_url=app_url, app_user=app_user, owner=owner,
                primary_host=primary_host, primary_port=primary_port, redis_url=redis_url,
            ))  # fmt: skip
    finally:
        nodes.stop_all()
        if not cfg.keep_db:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{cfg.db_name}" WITH (FORCE)')
    report["wall_seconds"] = round(time.monotonic() - started, 1)
    (cfg.results / f"latest-{cfg.scale}.json").write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps({k: report[k] for k in ("load", "verdict") if k in report}, indent=2))
    log(f"verdict: {'OK' if report['verdict']['ok'] else 'FAILED'}; {report['wall_seconds']} s")
    return 0 if report["verdict"]["ok"] else 1


def locals_(**values: Any) -> dict[str, Any]:
    return values


def _run(
    cfg: Config,
    report: dict[str, Any],
    nodes: Nodes,
    replica: Any,
    base_env: dict[str, str],
    urls: dict[str, Any],
) -> dict[str, Any]:
    t = time.monotonic()
    migrate_env = {
        **base_env,
        "DATABASE_URL": urls["app_url"],
        "DATABASE_MIGRATE_URL": urls["owner_url"],
    }
    if urls["app_url"] == urls["owner_url"]:
        migrate_env.pop("DATABASE_MIGRATE_URL")
    # A copy of a migrated database (--template) only takes what it lacks: the bench
    # settings' DRF token table, which the bench's data set fills.
    manifest = cfg.results / "manifest.json"
    if cfg.reuse_db:
        _reuse(cfg, report, replica, manifest, t)
        return _pooled(
            cfg, report, nodes, replica, base_env, urls, json.loads(manifest.read_text())
        )
    _django(["manage.py", "migrate", "--noinput", "-v0"], migrate_env)
    log(f"migrated in {time.monotonic() - t:.1f} s (template: {cfg.template or 'none'})")
    # The data as the owner (COPY, VACUUM, CHECKPOINT), as `make bench` loads it.
    _django(
        [
            "-m", "bench.datagen",
            "--clinics", str(cfg.clinics),
            "--patients", str(cfg.patients),
            "--caseload", str(min(cfg.caseload, cfg.patients)),
            "--days", str(cfg.days),
            "--exercise-patients", str(min(cfg.caseload, 50)),
            "--posters", str(cfg.posters),
            "--red-flags", str(cfg.red_flags),
            "--manifest", str(manifest),
        ],
        {**base_env, "DATABASE_URL": urls["owner_url"]},
    )  # fmt: skip
    m = json.loads(manifest.read_text())
    report["data"] = {
        k: m[k] for k in ("patients", "days", "daily_logs", "dailylog_size", "build_seconds")
    }
    report["data"]["clinics"] = cfg.clinics
    report["data"]["replica_catch_up_seconds"] = round(replica.catch_up(timeout=1800), 1)
    report["data"]["setup_seconds"] = round(time.monotonic() - t, 1)
    report["data"]["from_template"] = cfg.template or None
    log(f"data: {m['daily_logs']} logs, {m['dailylog_size']}; replica caught up")
    return _pooled(cfg, report, nodes, replica, base_env, urls, m)


def _reuse(cfg: Config, report: dict[str, Any], replica: Any, manifest: Path, t: float) -> None:
    m = json.loads(manifest.read_text())
    report["data"] = {
        k: m[k] for k in ("patients", "days", "daily_logs", "dailylog_size", "build_seconds")
    }
    report["data"]["clinics"] = cfg.clinics
    report["data"]["reused"] = True
    report["data"]["replica_catch_up_seconds"] = round(replica.catch_up(timeout=1800), 1)
    report["data"]["setup_seconds"] = round(time.monotonic() - t, 1)


def _pooled(
    cfg: Config,
    report: dict[str, Any],
    nodes: Nodes,
    replica: Any,
    base_env: dict[str, str],
    urls: dict[str, Any],
    m: dict[str, Any],
) -> dict[str, Any]:
    with psycopg.connect(urls["owner_url"], autocommit=True) as conn:
        # Every clinic answers for its alerts at an on-call address, as a clinic set up
        # in production does: the red flags' emails (to the console: EMAIL_URL) are then
        # part of what must not be lost or doubled. The data set's chain clinics have no
        # clinician, so without it their alerts would have nobody to email.
        conn.execute(
            "UPDATE patients_clinic SET escalation_email = %s WHERE escalation_email = ''",
            [ON_CALL],
        )
    subprocess.run(  # noqa: S603 - a fresh queue: nothing of an earlier run is replayed
        [PY, "-c", f"import redis; redis.Redis.from_url({urls['redis_url']!r}).flushdb()"],
        check=True,
    )
    pool = 4 * cfg.web_workers + 2 * cfg.worker_concurrency + 4
    with pgbouncer(
        host=urls["primary_host"],
        port=urls["primary_port"],
        users=[urls["app_user"]],
        admin=urls["owner"],
        pool_size=pool,
        max_clients=400,
        name="pgbouncer-rehearsal",
    ) as bouncer:
        replica_url = (
            f"postgres://{urls['app_user']}@/{cfg.db_name}"
            f"?host={quote(str(replica.data_dir), safe='')}&port={replica.port}"
        )
        env = {
            **base_env,
            "DATABASE_URL": f"postgres://{urls['app_user']}@{HOST}:{bouncer.port}/{cfg.db_name}",
            "DATABASE_POOLER": "pgbouncer",
            "DATABASE_REPLICA_URL": replica_url,
            "DJANGO_TRUSTED_PROXY_COUNT": "1",  # HAProxy's X-Forwarded-For
            "CELERY_VISIBILITY_TIMEOUT": str(cfg.visibility_timeout),
        }
        return _serve_and_load(cfg, report, nodes, env, m, urls, bouncer)


def named(env: dict[str, str], node: str) -> dict[str, str]:
    """The node's environment, its database sessions named after it (`application_name`,
    which PgBouncer passes on): pg_stat_activity then says which node waits on what."""
    url = env["DATABASE_URL"]
    separator = "&" if "?" in url else "?"
    return {**env, "DATABASE_URL": f"{url}{separator}application_name={node}"}


def _serve_and_load(
    cfg: Config,
    report: dict[str, Any],
    nodes: Nodes,
    env: dict[str, str],
    m: dict[str, Any],
    urls: dict[str, Any],
    bouncer: Any,
) -> dict[str, Any]:
    t = time.monotonic()
    web = {"web1": free_port(), "web2": free_port()}
    for name, port in web.items():
        nodes.start(
            name,
            [str(BIN / "gunicorn"), "config.wsgi", "--workers", str(cfg.web_workers),
             "--worker-class", "sync", "--bind", f"{HOST}:{port}", "--log-level", "warning"],
            named(env, name),
        )  # fmt: skip
    workers = {**dict.fromkeys(SAFETY_NODES, "safety"), "default1": "default"}
    for name, queue in workers.items():
        nodes.start(
            name,
            [str(BIN / "celery"), "-A", "config", "worker", "-Q", queue,
             "--hostname", f"{name}@%h", "--loglevel", "INFO",
             "--concurrency", str(cfg.worker_concurrency), "--pool", "prefork"],
            named(env, name),
        )  # fmt: skip
    ready = list(workers)
    if cfg.beat:
        nodes.start(
            "beat",
            [str(BIN / "celery"), "-A", "config", "beat", "--loglevel", "INFO",
             "--pidfile", str(cfg.results / "beat.pid")],
            named(env, "beat"),
        )  # fmt: skip
        ready.append("beat")
    proxy = free_port()
    nodes.start(
        "haproxy", [str(HAPROXY), "-db", "-f", str(haproxy_config(proxy, web, cfg.results))], env
    )
    for port in web.values():
        wait_http(port)
    wait_http(proxy)
    wait_ready(nodes, ready)
    report["nodes_up_seconds"] = round(time.monotonic() - t, 1)
    log(f"every node is up in {report['nodes_up_seconds']} s")

    work = build_work(cfg, m, urls["owner_url"])
    kills: dict[str, float] = {}
    restarts: dict[str, float] = {}
    restarted_at: dict[str, datetime] = {}
    # The kill must land while a safety worker holds a red flag's evaluation, or it
    # proves nothing: some red flags are held (their patients row-locked), and the kill
    # waits until Celery's remote control shows a safety worker running one of them; that
    # worker is the one killed (whichever took one first: the other may be busy with a
    # quiet-logs task for seconds).
    held_bodies = held_red_flags(cfg, work)
    held_ids = {body["id"] for body in held_bodies}
    hold = RedFlagHold(urls["owner_url"], [body["_p"] for body in held_bodies])
    control = Celery("rehearsal-control", broker=urls["redis_url"])
    inspectors = {
        name: control.control.inspect(
            destination=[f"{name}@{socket.gethostname()}"], timeout=1.0, limit=1
        )
        for name in SAFETY_NODES
    }
    at_kill: dict[str, Any] = {"held_red_flags": len(held_ids)}
    load_started = time.monotonic()

    def kill() -> None:
        # web1 at once, mid-load (whatever requests it had in hand), as before.
        nodes.kill("web1")
        kills["web1"] = round(time.monotonic() - load_started, 2)
        node, held, waited = wait_held(hold, inspectors, held_ids, cfg.hold_wait_seconds)
        victim = node or SAFETY_NODES[0]
        at_kill["node"] = victim
        at_kill["waited_seconds"] = waited
        at_kill["active_log_evaluations"] = held["active"]
        at_kill["reserved_log_evaluations"] = held["reserved"]
        at_kill["red_flags_held"] = sorted(set(held["active"]) & held_ids)
        at_kill["sessions_waiting_on_the_hold"] = hold.waiters()
        if not at_kill["red_flags_held"]:
            log(f"no safety worker took a held red flag in {waited} s: the kill proves less")
        if cfg.pause_before_kill > 0:
            # Stopped first, the worker holds the messages it had taken (its children's
            # tasks mid-run, what its last fetch brought): the kill then surely loses
            # some, which only beat's sweep of the database can find again.
            nodes.pause(victim)
            time.sleep(cfg.pause_before_kill)
        nodes.kill(victim)
        kills[victim] = round(time.monotonic() - load_started, 2)
        # Still owed after the kill: it landed before the evaluation could finish.
        at_kill["unevaluated_after_kill"] = hold.unevaluated(at_kill["red_flags_held"])
        hold.release()
        log(f"{victim} killed holding red flag(s) {at_kill['red_flags_held']}; hold released")
        if cfg.restart_after > 0:
            # Each node comes back `restart_after` after its own kill.
            for name in ("web1", victim):
                due = load_started + kills[name] + cfg.restart_after
                time.sleep(max(0.0, due - time.monotonic()))
                nodes.restart(name)
                restarts[name] = round(time.monotonic() - load_started, 2)
                restarted_at[name] = datetime.now(UTC)

    since = datetime.now(UTC)
    cpu_before = psutil.cpu_times()
    try:
        out, elapsed = run_load(cfg, proxy, work, kill)
    finally:
        hold.release()
        control.close()
    cpu_after = psutil.cpu_times()
    log(f"load done in {elapsed:.1f} s: {len(out.acked)} logs answered, {len(out.gave_up)} gave up")
    settle = wait_evaluated(urls["owner_url"], list(out.acked), cfg.settle_seconds)
    held = at_kill.get("red_flags_held", [])
    restart = restarted_at.get(at_kill.get("node", ""))
    if held and restart is not None:
        deadline = time.monotonic() - (datetime.now(UTC) - restart).total_seconds()
        wait_emailed(urls["owner_url"], held, deadline + cfg.held_alert_within)
    with psycopg.connect(urls["owner_url"], autocommit=True) as conn, conn.cursor() as cursor:
        verdict = verify(cursor, list(out.acked), sorted(out.red & set(out.acked)), since)
        at_kill.update(held_outcome(cursor, held, restart, cfg.held_alert_within))
        # How long the evaluations took: those the killed worker held (or the killed web
        # node had enqueued when it died) come late, by a restart or beat's sweep.
        row = cursor.execute(
            "SELECT count(*) FILTER (WHERE evaluated_at - created_at > interval '3 seconds'),"
            " extract(epoch FROM max(evaluated_at - created_at))"
            " FROM rehab_dailylog WHERE id = ANY(%s::uuid[])",
            [list(out.acked)],
        ).fetchone()
    late, slowest = row if row else (0, None)
    verdict["gave_up"] = len(out.gave_up)
    # The kill proves the path only if it landed while the worker held a red flag's
    # evaluation that it had not finished (still owed right after the kill).
    at_kill["landed_while_a_red_flag_was_held"] = bool(held) and at_kill.get(
        "unevaluated_after_kill"
    ) == sorted(held)
    verdict["kill"] = at_kill
    verdict["ok"] = bool(
        verdict["ok"]
        and not out.gave_up
        and out.red <= set(out.acked)
        and at_kill["landed_while_a_red_flag_was_held"]
        and at_kill["alerted_in_time"]
    )
    busy = sum(
        getattr(cpu_after, k) - getattr(cpu_before, k)
        for k in ("user", "nice", "system", "irq", "softirq", "steal")
    )
    total = busy + (cpu_after.idle - cpu_before.idle) + (cpu_after.iowait - cpu_before.iowait)
    retried = sum(1 for n in out.attempts.values() if n > 1)
    report["load"] = {
        "seconds": round(elapsed, 1),
        "posts_answered": len(out.acked),
        "posts_per_second": round(len(out.acked) / elapsed, 1) if elapsed else 0.0,
        "post_p50_ms": _percentile(out.post_latencies, 50),
        "post_p99_ms": _percentile(out.post_latencies, 99),
        "created_201": sum(1 for s in out.acked.values() if s == 201),
        "replayed_200": sum(1 for s in out.acked.values() if s == 200),
        "logs_retried": retried,
        "failed_attempts": dict(out.failed_attempts),
        "red_flags": len(out.red),
        "reads": dict(out.read_statuses),
        "read_p99_ms": _percentile(out.read_latencies, 99),
        "killed_at_seconds": kills,
        "restarted_at_seconds": restarts,
        "survivors_alive": {
            n: nodes.alive(n) for n in ("web2", *SAFETY_NODES, "default1") if n not in kills
        },
        "evaluated_within_seconds_after_load": settle,
        "evaluations_later_than_3_s": late,
        "slowest_evaluation_seconds": round(float(slowest), 1) if slowest is not None else None,
        "machine_cpu_busy_share": round(busy / total, 2) if total else None,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "pgbouncer_transactions": bouncer.transactions(cfg.db_name),
    }
    return verdict


if __name__ == "__main__":
    sys.exit(main())
