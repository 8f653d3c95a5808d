"""The suite in parallel (pytest-xdist): what each worker process gets of its own, and how
the tests are shared out between them (docs/testing.md).

`make test` runs pytest with `-n` worker processes (xdist's default `load` distribution).
pytest-django gives each worker a test database of its own (`test_rehab_gw0`, ...); the
rest is here:

- `redis_url()`: each worker its own Redis database, read by `config/settings_test.py`
  before the settings are built, and passed on (as `REDIS_URL`) to the processes the tests
  start. The tests flush their Redis database before each test (the throttle counters,
  tests/conftest.py) and count messages on the broker's queues: in a shared one, a
  worker would flush or count another's.
- `pytest_collection_modifyitems`: the slowest work is handed out first, so that no
  worker is left running a minute-long test alone at the end; `alone` tests last.
- `pytest_runtest_protocol`: a test marked `alone` (it bounds a wall-clock time) runs
  while no other worker runs a test.

Everything else a test starts (Redis servers, Celery workers, gunicorn, PgBouncer, HAProxy,
replicas, live servers) already takes a free port and a directory of its own.

Serially (`-n 0`, or plain `pytest`), none of this changes anything.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Generator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

# The Redis databases a server has by default (`databases 16`): 0-15.
REDIS_DATABASES = 16
# Set once the URL was made the worker's own, so that a process a test starts, which
# inherits the environment (and PYTEST_XDIST_WORKER), does not move it a second time.
_DONE = "REHAB_TEST_REDIS_WORKER"

# The modules with the slowest tests (`--durations`: each has a test of 15 s or more
# alone), handed out first, in this order; then every other test in the order collected,
# then the `alone` ones.
SLOWEST_FIRST = (
    "tests.test_bench_run",
    "tests.test_rehearsal",
    "tests.test_schema",
    "tests.rehab.test_worker_reliability",
    "tests.rehab.test_backtest",
    "tests.test_generated_client",
    "tests.rehab.test_safety_record_needs",
    "tests.test_replica",
    "tests.test_config",
    "tests.dashboard.test_caseload",
)


def worker_index() -> int | None:
    """This xdist worker's number (gw0 -> 0), or None when the suite runs in one process."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(worker.removeprefix("gw")) if worker.startswith("gw") else None


def redis_url(url: str) -> str:
    """`url` for this worker: its Redis database number plus the worker's number (gw0 the
    database of `url` itself, gw1 the next one, ...). Sets REDIS_URL for the processes the
    tests start."""
    index = worker_index()
    if index is None or os.environ.get(_DONE) == str(index):
        return url
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    database = base + index
    if database >= REDIS_DATABASES:
        raise RuntimeError(
            f"REDIS_URL {url}: worker gw{index} would need Redis database {database}, "
            f"past the last one ({REDIS_DATABASES - 1}). Point REDIS_URL at a lower database "
            "or run fewer workers (`-n`), or serially (`-n 0`): docs/testing.md."
        )
    url = urlunsplit(parts._replace(path=f"/{database}"))
    os.environ["REDIS_URL"] = url
    os.environ[_DONE] = str(index)
    return url


def _alone(item: pytest.Item) -> bool:
    return item.get_closest_marker("alone") is not None


def _module(item: pytest.Item) -> str:
    return str(getattr(getattr(item, "module", None), "__name__", ""))


def _parallel(config: pytest.Config) -> bool:
    return bool(getattr(config.option, "numprocesses", None)) or worker_index() is not None


# After pytest-django's, which sorts the tests by the kind of database access.
@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not _parallel(config):
        return

    def rank(item: pytest.Item) -> tuple[int, int]:
        module = _module(item)
        if _alone(item):
            # Last: it waits for the tests running beside it to end, short ones by then.
            return (2, 0)
        if module in SLOWEST_FIRST:
            return (0, SLOWEST_FIRST.index(module))
        return (1, 0)

    # Stable: within a rank, the order collected.
    items.sort(key=rank)


# --------------------------------------------------------------------------- `alone`

_LOCKS: dict[str, int] = {}


def _lock_path(name: str) -> Path | None:
    """A lock file shared by the workers of this run (pytest-xdist names the run)."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if worker_index() is None or not run:
        return None
    return Path(tempfile.gettempdir()) / f"rehab-tests-{run}.{name}.lock"


def _lock(name: str) -> int | None:
    """The lock file, opened once per worker and kept open."""
    path = _lock_path(name)
    if path is None:
        return None
    if name not in _LOCKS:
        _LOCKS[name] = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    return _LOCKS[name]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None]:
    """A test marked `alone` (one that bounds a wall-clock time) runs while no other worker
    runs a test: every test holds the run's lock shared, an `alone` one exclusively. A
    turnstile in front makes the others wait once an `alone` test is waiting, or they
    would keep the shared lock taken, one test after another, for ever."""
    turnstile, shared = _lock("turnstile"), _lock("tests")
    if turnstile is None or shared is None:
        return (yield)
    alone = _alone(item)
    fcntl.flock(turnstile, fcntl.LOCK_EX)
    try:
        fcntl.flock(shared, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
    finally:
        if not alone:
            fcntl.flock(turnstile, fcntl.LOCK_UN)
    try:
        return (yield)
    finally:
        fcntl.flock(shared, fcntl.LOCK_UN)
        if alone:
            fcntl.flock(turnstile, fcntl.LOCK_UN)


def pytest_sessionfinish(session: pytest.Session) -> None:
    for name, fd in list(_LOCKS.items()):
        os.close(fd)
        del _LOCKS[name]
        # The other workers opened theirs at their first test and keep them open:
        # removing the name changes nothing for them.
        path = _lock_path(name)
        if path is not None:
            with contextlib.suppress(OSError):
                path.unlink()
