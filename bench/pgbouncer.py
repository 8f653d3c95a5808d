"""Debian's PgBouncer in transaction mode in front of a PostgreSQL server, started and
stopped here: for the pooling test (tests/test_pgbouncer.py), the pooled phase of
`make bench` (bench/pooling.py) and the multi-node rehearsal (bench/rehearsal.py).
docs/deployment.md § Connection pooling says what the service needs behind it."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from bench import reaper

BASE_DIR = Path(__file__).resolve().parent.parent

PGBOUNCER = shutil.which("pgbouncer") or (
    "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Bouncer:
    port: int
    admin: str
    workdir: Path

    def transactions(self, database: str) -> int:
        """Transactions PgBouncer has passed to `database` so far (SHOW STATS)."""
        with psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            dbname="pgbouncer",
            user=self.admin,
            autocommit=True,
            prepare_threshold=None,
            cursor_factory=psycopg.ClientCursor,
        ) as conn:
            cursor = conn.execute("SHOW STATS")
            columns = [column.name for column in cursor.description or ()]
            for row in cursor.fetchall():
                stats = dict(zip(columns, row, strict=True))
                if stats["database"] == database:
                    return int(stats["total_xact_count"])
        return 0


@contextlib.contextmanager
def pgbouncer(
    *,
    host: str,
    port: int,
    users: Sequence[str],
    admin: str,
    pool_size: int = 2,
    max_clients: int = 50,
    round_robin: bool = False,
    name: str = "pgbouncer",
) -> Iterator[Bouncer]:
    """PgBouncer in transaction mode on a free 127.0.0.1 port, forwarding every database
    to the server at `host` (a unix socket directory or a host name) and `port`; `users`
    may connect (trust, as the embedded server's own authentication), `admin` may also
    read its SHOW commands. `round_robin` hands the server connections out in turn, so
    consecutive transactions of one client land on different ones."""
    if PGBOUNCER is None:
        raise RuntimeError("Debian's pgbouncer is not installed (`make pgbouncer` installs it)")
    # Under .data/, which the unprivileged user running it may enter (a tmp dir may not).
    workdir = BASE_DIR / ".data" / f"{name}-{os.getpid()}"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    listen = free_port()
    (workdir / "userlist.txt").write_text("".join(f'"{user}" ""\n' for user in {*users, admin}))
    (workdir / "pgbouncer.ini").write_text(
        f"""[databases]
* = host={host} port={port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen}
unix_socket_dir =
auth_type = trust
auth_file = {workdir}/userlist.txt
admin_users = {admin}
pool_mode = transaction
default_pool_size = {pool_size}
server_round_robin = {int(round_robin)}
min_pool_size = {pool_size if round_robin else 0}
max_client_conn = {max_clients}
server_reset_query =
logfile = {workdir}/pgbouncer.log
pidfile = {workdir}/pgbouncer.pid
"""
    )
    run_as: dict[str, Any] = {}
    if os.geteuid() == 0:  # pgbouncer refuses to run as root
        entry = pwd.getpwnam("pgserver")
        for path in (workdir, *workdir.iterdir()):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        run_as["user"] = "pgserver"
    proc = subprocess.Popen(  # noqa: S603 - our own fixed command line
        [PGBOUNCER, str(workdir / "pgbouncer.ini")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
        **run_as,
    )
    # Stopped below; by bench/reaper.py's watcher if a bench run is killed meanwhile.
    reaper.track(proc.pid)
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", listen), 0.2):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                _, stderr = proc.communicate()
                raise RuntimeError(f"pgbouncer did not start:\n{stderr.decode(errors='replace')}")
            time.sleep(0.05)
        yield Bouncer(port=listen, admin=admin, workdir=workdir)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        shutil.rmtree(workdir, ignore_errors=True)
