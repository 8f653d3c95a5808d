from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from fnmatch import fnmatchcase
from typing import Any

from celery import Celery, Task
from celery.signals import task_prerun
from kombu import Queue

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


# Two queues, each with its own workers (docs/deployment.md § Queues): `safety` carries
# what stands between a red flag and a clinician (evaluations, alert delivery and
# escalation, fever re-checks, and the sweeps that find their lost messages); `default`
# carries everything else (reminders, exports, reports, review rules, questionnaires,
# housekeeping). A burst of default work then never waits in front of an alert.
SAFETY = "safety"
DEFAULT = "default"

# Task name patterns (fnmatch, case-sensitive) -> queue; the first pattern that matches
# wins, so the precise ones come first. A new task needs a line here (or a pattern that
# already covers it): tests/test_celery_queues.py fails for a task no pattern names.
TASK_QUEUE_PATTERNS: tuple[tuple[str, str], ...] = (
    ("rehab.tasks.log_evaluate_task", SAFETY),
    ("rehab.tasks.quiet_logs_evaluate_task", SAFETY),
    ("rehab.tasks.unevaluated_logs_sweep_task", SAFETY),
    ("rehab.tasks.submission_evaluate_task", SAFETY),
    ("rehab.tasks.intervention_fever_recheck_task", SAFETY),
    ("rehab.tasks.fever_rechecks_sweep_task", SAFETY),
    # Delivery of clinicians' alerts and escalations from the notifications app; and the
    # retries and lease recoveries of every delivery, alert emails among them (few: only
    # failed or abandoned sends), so that a retried alert email never waits behind a burst.
    ("notifications.tasks.*alert*", SAFETY),
    ("notifications.tasks.*escalation*", SAFETY),
    ("notifications.tasks.delivery_send_task", SAFETY),
    ("notifications.tasks.deliveries_sweep_task", SAFETY),
    ("rehab.tasks.review_rules_task", DEFAULT),
    ("rehab.tasks.missed_log_reminders_task", DEFAULT),
    ("rehab.tasks.progression_proposals_task", DEFAULT),
    ("rehab.tasks.dailylog_partitions_*", DEFAULT),
    ("rehab.tasks.questionnaires_*", DEFAULT),
    ("notifications.tasks.*", DEFAULT),
    ("patients.tasks.*", DEFAULT),
    ("rights.tasks.*", DEFAULT),
)


def queue_for(task_name: str) -> str | None:
    """The queue `TASK_QUEUE_PATTERNS` gives a task, None when no pattern names it."""
    for pattern, queue in TASK_QUEUE_PATTERNS:
        if fnmatchcase(task_name, pattern):
            return queue
    return None


def route_task(
    name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **kw: Any
) -> dict[str, str]:
    """Celery's router: every task by its name; one no pattern names goes to `default`
    (never dropped), and the test above makes sure there is none."""
    return {"queue": queue_for(name) or DEFAULT}


app = Celery("config")
app.config_from_object(DjangoCelerySettings(), namespace="CELERY")
app.conf.update(
    task_routes=(route_task,),
    task_default_queue=DEFAULT,
    # Both declared: a worker started without -Q (tests, a one-box install) consumes both;
    # production runs one worker pool per queue (`-Q safety`, `-Q default`).
    task_queues=(Queue(SAFETY), Queue(DEFAULT)),
)
app.autodiscover_tasks()


@task_prerun.connect
def check_database_connections(sender: Task[Any, Any] | None = None, **kwargs: Any) -> None:
    """Before each task, what is done before each request: close a connection that is
    broken or past CONN_MAX_AGE, or that the server has dropped (config.db, asking the
    socket, no round trip).

    The worker keeps its database connection between tasks (CELERY_DB_REUSE_MAX), so a
    connection the server dropped while the worker was idle (a restart, a failover,
    pg_terminate_backend) would otherwise fail the next task, a safety evaluation maybe.
    Not for a task run eagerly, inside the caller's transaction (tests).
    """
    request = getattr(sender, "request", None)
    if getattr(request, "is_eager", False):
        return
    from django.db import connections

    from config.db import close_dropped_connections

    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()
    close_dropped_connections()
