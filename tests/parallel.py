"""The suite in parallel (pytest-xdist): what each worker process gets of its own, and how
the tests are shared out between them (docs/testing.md).

`make test` runs pytest with `-n` worker processes and `--dist loadgroup`. pytest-django
gives each worker a test database of its own (`test_rehab_gw0`, `test_rehab_gw1`, ...);
the rest is here:

- `redis_url()`: each worker its own Redis database, read by `config/settings_test.py`
  before the settings are built, and passed on (as `REDIS_URL`) to the processes the tests
  start. The tests flush their Redis database before each test (the throttle counters,
  tests/conftest.py) and count messages on the broker's queues: in a shared one, a
  worker would flush or count another's.
- `pytest_collection_modifyitems`: a module whose tests share something costly to start
  (a browser, a Celery worker, a PgBouncer, a replica, a generated client) runs whole on
  one worker (`xdist_group`), so it is started once, not once per worker; and the slowest
  work is handed out first, so that no worker is left running a minute-long test alone
  at the end.

Everything else a test starts (Redis servers, Celery workers, gunicorn, PgBouncer, HAProxy,
replicas, live servers) already takes a free port and a directory of its own.

Serially (`-n 0`, or plain `pytest`), none of this changes anything.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

import pytest

# The Redis databases a server has by default (`databases 16`): 0-15.
REDIS_DATABASES = 16
# Set once the URL was made the worker's own, so that a process a test starts, which
# inherits the environment (and PYTEST_XDIST_WORKER), does not move it a second time.
_DONE = "REHAB_TEST_REDIS_WORKER"

# Modules that start something costly once for all their tests (a module-scoped fixture)
# besides those marked `browser` or `worker`.
SHARED_SETUP_MODULES = {
    "tests.test_generated_client",
    "tests.test_pgbouncer",
    "tests.test_replica",
    "tests.programs.test_media_s3",
}
# The modules with the slowest tests (`--durations`: each has a test of 15 s or more
# alone), handed out first, in this order; then the other groups, then every other test
# in the order collected.
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


def _module(item: pytest.Item) -> str:
    return str(getattr(getattr(item, "module", None), "__name__", ""))


def _group(item: pytest.Item) -> str | None:
    name = _module(item)
    marked = item.get_closest_marker("browser") or item.get_closest_marker("worker")
    return name if marked or name in SHARED_SETUP_MODULES else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.pluginmanager.hasplugin("xdist") or not (
        getattr(config.option, "numprocesses", None) or worker_index() is not None
    ):
        return
    groups: dict[str, int] = {}
    for item in items:
        group = _group(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
            groups.setdefault(group, len(groups))

    def rank(item: pytest.Item) -> tuple[int, int]:
        module, group = _module(item), _group(item)
        if module in SLOWEST_FIRST:
            return (0, SLOWEST_FIRST.index(module))
        if group is not None:
            return (1, groups[group])
        return (2, 0)

    # Stable: within a rank, the order collected.
    items.sort(key=rank)
