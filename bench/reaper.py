"""A bench run's servers stop when the run ends, however it ends (BENCHMARKS.md § How to run).

Each server a run starts (gunicorn, the Celery workers, the peer, PgBouncer and the pooled
gunicorn), and the reminders burst with its forked senders, leads a process group of its
own (`start_new_session`), so that stopping the group stops its workers too. The run stops
them in its `finally`: on a normal exit, on an error, on Ctrl-C and on SIGTERM
(`terminate_on_signals` turns SIGTERM, SIGINT and SIGHUP into `SystemExit`, so the
`finally` runs). A run killed with SIGKILL (a test's timeout, `kill -9`) runs no code of
its own: for it, a small watcher started first (`python -m bench.reaper <run pid> <groups
file>`, in a session of its own so that a Ctrl-C in the terminal leaves it to do its job)
waits for the run to be gone, then stops every group the run recorded (`track`) that is
still there: SIGCONT (a paused worker must hear the rest), SIGTERM, and SIGKILL to what is
left after a grace period.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import FrameType

import psutil

GRACE_SECONDS = 15.0
POLL_SECONDS = 0.5

_groups_file: Path | None = None


def start(results: Path) -> subprocess.Popen[bytes]:
    """Start the watcher of this process; `track` records groups for it from now on."""
    global _groups_file
    _groups_file = results / f"groups-{os.getpid()}.txt"
    _groups_file.write_text("")
    return subprocess.Popen(  # noqa: S603 - our own fixed command line
        [sys.executable, "-m", "bench.reaper", str(os.getpid()), str(_groups_file)],
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def track(pid: int) -> None:
    """Record the process group led by `pid` (a server just started in a new session),
    with the leader's start time: a group id is never reused while the group lives, and
    a leader of that id started at another time is another process."""
    if _groups_file is None:
        return
    with contextlib.suppress(psutil.Error), _groups_file.open("a") as out:
        out.write(f"{pid} {psutil.Process(pid).create_time()}\n")


def _terminate(signum: int, frame: FrameType | None) -> None:
    # Once: a second Ctrl-C must not cut the clean-up short (the watcher is there for a
    # run that cannot finish it).
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    raise SystemExit(128 + signum)


def terminate_on_signals() -> None:
    """SIGTERM, SIGINT and SIGHUP end the run through its `finally` blocks."""
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _terminate)


def _members(pgid: int) -> list[psutil.Process]:
    """The live processes of group `pgid` (zombies waiting for their reaper are not)."""
    found = []
    for process in psutil.process_iter(["status"]):
        with contextlib.suppress(psutil.Error, ProcessLookupError, OSError):
            if os.getpgid(process.pid) == pgid and process.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(process)
    return found


def _ours(pgid: int, started: float) -> bool:
    try:
        leader = psutil.Process(pgid)
    except psutil.NoSuchProcess:
        return True  # the leader is gone; its group's id is not reused while it lives
    return abs(leader.create_time() - started) < 0.01


def stop_groups(groups: Iterable[tuple[int, float]], grace: float = GRACE_SECONDS) -> None:
    """Stop each group still there: SIGCONT and SIGTERM, SIGKILL after `grace`."""
    alive = [pgid for pgid, started in groups if _ours(pgid, started) and _members(pgid)]
    for pgid in alive:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGCONT)
            os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [pgid for pgid in alive if _members(pgid)]
    for pgid in alive:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


def read_groups(path: Path) -> list[tuple[int, float]]:
    groups = []
    with contextlib.suppress(FileNotFoundError):
        for line in path.read_text().splitlines():
            pid, started = line.split()
            groups.append((int(pid), float(started)))
    return groups


def main(argv: Sequence[str]) -> int:
    run_pid, path = int(argv[0]), Path(argv[1])
    # Reparented once the run is gone, whichever way it went.
    while os.getppid() == run_pid:
        time.sleep(POLL_SECONDS)
    stop_groups(read_groups(path))
    path.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
