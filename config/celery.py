from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

from celery import Celery, Task
from celery.signals import task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


class DjangoCelerySettings(Mapping[str, Any]):
    """Django's CELERY_* settings, as a plain mapping read once, when Celery loads them.

    Celery looks its settings up on every publish (seven lookups for each log POST's
    evaluation task), trying several spellings in turn; against Django's settings object
    every miss is an AttributeError with its message, ~50 µs per publish in all. A dict
    misses cheaply. The values are the same: settings do not change after start-up, and
    override_settings never reached Celery anyway (it kept the settings object it read).
    """

    def __init__(self) -> None:
        self._settings: dict[str, Any] | None = None

    def _read(self) -> dict[str, Any]:
        if self._settings is None:
            from django.conf import settings

            self._settings = {
                name: getattr(settings, name)
                for name in dir(settings)
                if name.startswith("CELERY_")
            }
        return self._settings

    def __getitem__(self, key: str) -> Any:
        return self._read()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._read())

    def __len__(self) -> int:
        return len(self._read())


app = Celery("config")
app.config_from_object(DjangoCelerySettings(), namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
def check_database_connections(sender: Task[Any, Any] | None = None, **kwargs: Any) -> None:
    """Before each task, what Django does before each request: close a connection that
    is broken or past CONN_MAX_AGE, and have the next query check the rest first
    (CONN_HEALTH_CHECKS).

    The worker keeps its database connection between tasks (CELERY_DB_REUSE_MAX), so a
    connection the server dropped while the worker was idle (a restart, a failover,
    pg_terminate_backend) would otherwise fail the next task, a safety evaluation maybe.
    Not for a task run eagerly, inside the caller's transaction (tests).
    """
    request = getattr(sender, "request", None)
    if getattr(request, "is_eager", False):
        return
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()
