"""`make test` installs Debian's Chromium when it is missing, so that the browser tests pass
on a fresh machine as the README promises (before, only `.ci/run` installed it).

The Makefile's own `chromium` recipe is run, with apt-get stood in for by a script that
records its arguments, and the browser's name pointed at one that does or does not exist.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.processes import BASE_DIR


def _make(*args: str) -> subprocess.CompletedProcess[str]:
    # Under `make test` this is a sub-make: without the parent's flags.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _apt_get_stand_in(tmp_path: Path) -> tuple[Path, Path]:
    calls = tmp_path / "apt-get.calls"
    script = tmp_path / "apt-get"
    script.write_text(f'#!/bin/sh\necho "$DEBIAN_FRONTEND $*" >> {calls}\n')
    script.chmod(0o755)
    return script, calls


def test_it_makes_test_depend_on_the_chromium_check():
    printed = _make("-n", "test", "VENV=.venv").stdout
    check = printed.index("command -v chromium")
    assert check < printed.index("-m pytest"), printed


def test_it_installs_chromium_with_apt_get_when_it_is_missing(tmp_path):
    apt_get, calls = _apt_get_stand_in(tmp_path)

    result = _make("chromium", "CHROMIUM=no-such-browser-here", f"APT_GET={apt_get}", "SUDO=")

    assert result.returncode == 0, result.stderr
    assert calls.read_text().splitlines() == [
        "noninteractive update -qq",
        "noninteractive install -y -qq chromium",
    ]


def test_it_installs_nothing_when_chromium_is_there(tmp_path):
    apt_get, calls = _apt_get_stand_in(tmp_path)

    result = _make("chromium", "CHROMIUM=sh", f"APT_GET={apt_get}", "SUDO=")

    assert result.returncode == 0, result.stderr
    assert not calls.exists()


def test_it_fails_make_test_when_the_install_fails(tmp_path):
    # A machine that cannot install it must not go on to run (and fail) the browser tests.
    result = _make("chromium", "CHROMIUM=no-such-browser-here", "APT_GET=false", "SUDO=")

    assert result.returncode != 0


def test_it_is_what_ci_runs():
    ci = (BASE_DIR / ".ci" / "run").read_text()
    assert "make chromium" in ci
    assert "apt-get" not in ci


# Debian's PgBouncer for tests/test_pgbouncer.py, installed the same way.


def test_it_makes_test_depend_on_the_pgbouncer_check():
    printed = _make("-n", "test", "VENV=.venv").stdout
    check = printed.index("command -v pgbouncer")
    assert check < printed.index("-m pytest"), printed


def test_it_installs_pgbouncer_with_apt_get_when_it_is_missing(tmp_path):
    apt_get, calls = _apt_get_stand_in(tmp_path)

    result = _make("pgbouncer", "PGBOUNCER=no-such-pooler-here", f"APT_GET={apt_get}", "SUDO=")

    assert result.returncode == 0, result.stderr
    assert calls.read_text().splitlines() == [
        "noninteractive update -qq",
        "noninteractive install -y -qq pgbouncer",
    ]


def test_it_installs_nothing_when_pgbouncer_is_there(tmp_path):
    apt_get, calls = _apt_get_stand_in(tmp_path)

    result = _make("pgbouncer", "PGBOUNCER=sh", f"APT_GET={apt_get}", "SUDO=")

    assert result.returncode == 0, result.stderr
    assert not calls.exists()


def test_it_installs_pgbouncer_in_ci_too():
    assert "make pgbouncer" in (BASE_DIR / ".ci" / "run").read_text()


# Debian's HAProxy for tests/test_rehearsal.py, installed the same way.


def test_it_makes_test_depend_on_the_haproxy_check():
    printed = _make("-n", "test", "VENV=.venv").stdout
    check = printed.index("command -v haproxy")
    assert check < printed.index("-m pytest"), printed


def test_it_installs_haproxy_with_apt_get_when_it_is_missing(tmp_path):
    apt_get, calls = _apt_get_stand_in(tmp_path)

    result = _make("haproxy", "HAPROXY=no-such-proxy-here", f"APT_GET={apt_get}", "SUDO=")

    assert result.returncode == 0, result.stderr
    assert calls.read_text().splitlines() == [
        "noninteractive update -qq",
        "noninteractive install -y -qq haproxy",
    ]


def test_it_installs_haproxy_in_ci_too():
    assert "make haproxy" in (BASE_DIR / ".ci" / "run").read_text()
