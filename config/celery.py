from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Celery's Django fixup closes the DB connection after every task unless this is set;
# reusing connections is ~4x the task throughput (docs/architecture.md § Facts measured),
# which the safety path needs.
os.environ.setdefault("CELERY_DB_REUSE_MAX", "1000")


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
