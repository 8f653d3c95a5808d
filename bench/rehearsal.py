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
load has been sent, web1 and safety1 are SIGKILLed (whole process groups, mid-request);
the survivors carry the load until both are started again `restart_after` seconds later,
as an orchestrator replaces a lost container. Then, once every log is evaluated:

- every log answered 2xx is stored exactly once, and no other log appeared;
- every red-flag log has exactly one alert per rule it fires (one alert row and one
  occurrence of it), and the rules the red flag fires (those most red-flag logs got:
  they are the same answers) are there for every one of them.

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
    },
}

SAFE: dict[str, Any] = SAFE_ANSWERS
RED: dict[str, Any] = {**SAFE, "saddle_numbness": "new_or_worse"}


def log(message: str) -> None:
    print(f"[rehearsal] {message}", file=sys.stderr, flush=True)


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
    )
    return result


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
            env,
        )  # fmt: skip
    workers = {"safety1": "safety", "safety2": "safety", "default1": "default"}
    for name, queue in workers.items():
        nodes.start(
            name,
            [str(BIN / "celery"), "-A", "config", "worker", "-Q", queue,
             "--hostname", f"{name}@%h", "--loglevel", "INFO",
             "--concurrency", str(cfg.worker_concurrency), "--pool", "prefork"],
            env,
        )  # fmt: skip
    ready = list(workers)
    if cfg.beat:
        nodes.start(
            "beat",
            [str(BIN / "celery"), "-A", "config", "beat", "--loglevel", "INFO",
             "--pidfile", str(cfg.results / "beat.pid")],
            env,
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
    load_started = time.monotonic()

    def kill() -> None:
        if cfg.pause_before_kill > 0:
            # Stopped first, the worker holds the messages it had taken (its children's
            # tasks mid-run, what its last fetch brought): the kill then surely loses
            # some, which only beat's sweep of the database can find again.
            nodes.pause("safety1")
            time.sleep(cfg.pause_before_kill)
        for name in ("web1", "safety1"):
            nodes.kill(name)
            kills[name] = round(time.monotonic() - load_started, 2)
        if cfg.restart_after > 0:
            time.sleep(cfg.restart_after)
            for name in ("web1", "safety1"):
                nodes.restart(name)
                restarts[name] = round(time.monotonic() - load_started, 2)

    since = datetime.now(UTC)
    cpu_before = psutil.cpu_times()
    out, elapsed = run_load(cfg, proxy, work, kill)
    cpu_after = psutil.cpu_times()
    log(f"load done in {elapsed:.1f} s: {len(out.acked)} logs answered, {len(out.gave_up)} gave up")
    settle = wait_evaluated(urls["owner_url"], list(out.acked), cfg.settle_seconds)
    with psycopg.connect(urls["owner_url"], autocommit=True) as conn, conn.cursor() as cursor:
        verdict = verify(cursor, list(out.acked), sorted(out.red & set(out.acked)), since)
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
    verdict["ok"] = verdict["ok"] and not out.gave_up and out.red <= set(out.acked)
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
        "survivors_alive": {n: nodes.alive(n) for n in ("web2", "safety2", "default1")},
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
