"""`make run` stops as a whole: a SIGTERM to it (a supervisor, `timeout`, a closed
terminal) must reach the processes it started, not only the embedded servers.

The recipe's own shell script is run, with the slow steps stood in for: the migrations
and the demo data by `true`, honcho by a `sleep` that records its pid. Before the fix the
script's `sh` died on SIGTERM and left honcho (and the web, worker and beat under it)
running against servers `bin/embedded.py` had just stopped.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.processes import BASE_DIR


def _run_script() -> str:
    """The `sh -c` script of the `run` recipe, as make would run it."""
    # Under `make test` this is a sub-make: without the parent's flags, and without the
    # "Entering directory" lines a sub-make prints around its recipes.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    printed = subprocess.run(
        ["make", "--no-print-directory", "-n", "run", "VENV=.venv"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (line,) = [
        line for line in printed.replace("\\\n", " ").splitlines() if "bin/embedded.py" in line
    ]
    command = shlex.split(line)
    return command[command.index("-c") + 1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purpose: it runs nothing.
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().split()[2] != "Z"


def test_it_stops_what_make_run_started_on_sigterm(tmp_path):
    script = _run_script()
    # migrate, demo data, the demo's reminders, then the processes
    assert script.count("&&") == 3, script
    pidfile = tmp_path / "honcho.pid"
    stand_in = (
        script.replace("python manage.py migrate --noinput", "true")
        .replace("python manage.py seed_demo_reminders", "true")
        .replace("python manage.py seed_demo", "true")
        .replace("honcho -f Procfile.dev start", f"sh -c 'echo $$ > {pidfile}; exec sleep 60'")
    )
    # Servers of our own (the suite's), so that no embedded one is started.
    env = {
        **os.environ,
        "DATABASE_URL": os.environ.get("DATABASE_URL", "postgres://unused@127.0.0.1/unused"),
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
    }
    runner = subprocess.Popen(
        [sys.executable, "bin/embedded.py", "--", "sh", "-c", stand_in], cwd=BASE_DIR, env=env
    )
    try:
        # Generous deadlines: under a loaded parallel run a Python start takes seconds.
        deadline = time.monotonic() + 60
        while not pidfile.exists() or not pidfile.read_text().strip():
            if time.monotonic() > deadline:
                pytest.fail("the stand-in for honcho did not start")
            time.sleep(0.05)
        honcho = int(pidfile.read_text())
        runner.send_signal(signal.SIGTERM)
        runner.wait(30)
        deadline = time.monotonic() + 30
        while _alive(honcho) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(honcho), "honcho outlived make run"
    finally:
        if runner.poll() is None:
            runner.kill()
        if pidfile.exists() and pidfile.read_text().strip():
            with_pid = int(pidfile.read_text())
            if _alive(with_pid):
                os.kill(with_pid, signal.SIGKILL)
