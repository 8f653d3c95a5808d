"""Task messages that may be lost, and the sweeps that find what they left behind.

Whatever background work the product owes is a row with a column saying so (a log's
`evaluated_at`, an alert's `notified_at`...), never only a message: a message is the fast
way to the row, and a beat sweep re-sends what a lost one left owed. So publishing never
fails a request (`task_publish`, `publish_on_commit` after the caller's commit), and one
helper walks the owed rows (`sweep_enqueue`). These three are the only way the product
sends a task message.

Services name their tasks ("rehab.tasks.log_evaluate_task") instead of importing them:
tasks import services (fetch by id, call one service), so an import the other way would
close a cycle (docs/architecture.md § Layers). The name is resolved when the message is
sent, to the task object itself, so a misspelt name fails loudly (ImportError or
AttributeError, never taken for a broker outage) and tests that stand in for a task's
`delay` see the message.
"""

from __future__ import annotations

import importlib
import logging
import time
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from uuid import UUID

from celery import Task
from django.db import transaction
from django.db.models import Q, QuerySet

logger = logging.getLogger(__name__)

# How long a direct message gets before a sweep sends another: long enough not to double
# the work of a healthy queue, short enough to meet "within 2 minutes".
SWEEP_GRACE = timedelta(seconds=30)
# A sweep stops taking new work after this long; the next beat carries on. Well under
# the email tasks' soft time limit, so a slow SMTP server ends a sweep, not the worker.
SWEEP_TIME_BUDGET = 20.0

# After a failed publish, this process leaves delivery to the sweepers for a while: a
# broker that hangs rather than refuses would otherwise cost every request its timeouts.
PUBLISH_PAUSE_SECONDS = 10.0
_publish_paused_until = 0.0


def publishing_paused() -> bool:
    return time.monotonic() < _publish_paused_until


def pause_publishing() -> None:
    """The broker just failed this process: leave the owed work to the sweepers."""
    global _publish_paused_until
    _publish_paused_until = time.monotonic() + PUBLISH_PAUSE_SECONDS


def task_named(name: str) -> Task[Any, Any]:
    """The task registered as `name` (its module's dotted path and attribute)."""
    module, _, attribute = name.rpartition(".")
    task = getattr(importlib.import_module(module), attribute)
    if not isinstance(task, Task) or task.name != name:
        raise LookupError(f"{name} is not a task of that name")
    return task


def task_publish(name: str, *args: str) -> bool:
    """Send one message for the task `name`, or give up at once; what is owed stays in its
    column, for the sweeper."""
    task = task_named(name)
    if publishing_paused():
        logger.info("broker recently failed; %s%s left to the sweeper", name, args)
        return False
    try:
        task.delay(*args)
    except Exception:  # noqa: BLE001 - broker outage; the sweeper has it
        pause_publishing()
        logger.warning("could not enqueue %s%s; the sweeper will", name, args)
        return False
    return True


def publish_on_commit(name: str, *args: str) -> None:
    """`task_publish` once the caller's transaction commits (at once outside one): a
    write that rolls back never triggers work, and a broker outage never fails the write.
    The only after-commit enqueue of the product."""
    task_named(name)  # a misspelt name fails the write, not a callback after it
    transaction.on_commit(partial(task_publish, name, *args))


def sweep_enqueue(owed: QuerySet[Any], *, task: str, by: str, batch: int, budget: float) -> int:
    """Enqueue the task named `task` with the id of every row of `owed`, oldest first by
    `by` (then id), in batches until none is left or `budget` seconds are spent; returns
    how many. The only sweep helper of the product.

    The batches walk the rows by (`by`, id) rather than re-reading the first batch: the
    rows just enqueued stay owed until a worker has run them.
    """
    sender = task_named(task)
    started = time.monotonic()
    owed = owed.order_by(by, "pk")
    sent = 0
    after: tuple[datetime, UUID] | None = None
    while True:
        page = owed
        if after is not None:
            page = page.filter(
                Q(**{f"{by}__gt": after[0]}) | Q(**{by: after[0], "pk__gt": after[1]})
            )
        rows = list(page.values_list(by, "pk")[:batch])
        for _, object_id in rows:
            sender.delay(str(object_id))
        sent += len(rows)
        if len(rows) < batch or time.monotonic() - started > budget:
            return sent
        after = rows[-1]
