"""Task messages that may be lost, and the sweeps that find what they left behind.

Whatever background work the product owes is a row with a column saying so (a log's
`evaluated_at`, an alert's `notified_at`...), never only a message: a message is the fast
way to the row, and a beat sweep re-sends what a lost one left owed. So publishing never
fails a request (`task_publish`), and one helper walks the owed rows (`sweep_enqueue`).
See docs/architecture.md.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from uuid import UUID

from celery import current_app
from django.db import transaction
from django.db.models import Q

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


def task_publish(task: Any, *args: str) -> bool:
    """Send one task message, or give up at once; what is owed stays in its column.

    `task` is a task, or a task's name: a lower app hands work to a higher one by name
    (rehab's alerts to `notifications.tasks...`), so that it imports nothing of it
    (docs/architecture.md § Layers)."""
    name = task if isinstance(task, str) else task.name
    if publishing_paused():
        logger.info("broker recently failed; %s%s left to the sweeper", name, args)
        return False
    try:
        if isinstance(task, str):
            current_app.send_task(task, args=list(args))
        else:
            task.delay(*args)
    except Exception:  # noqa: BLE001 - broker outage; the sweeper has it
        pause_publishing()
        logger.warning("could not enqueue %s%s; the sweeper will", name, args)
        return False
    return True


def publish_on_commit(task: Any, *args: str) -> None:
    """`task_publish` once the caller's transaction commits (at once outside one): a
    write that rolls back never triggers work, and a broker outage never fails the write."""
    transaction.on_commit(partial(task_publish, task, *args))


def sweep_enqueue(owed: Any, *, task: Any, by: str, batch: int, budget: float) -> int:
    """Enqueue `task(id)` for every row of `owed`, oldest first by `by` (then id), in
    batches until none is left or `budget` seconds are spent; returns how many.

    The batches walk the rows by (`by`, id) rather than re-reading the first batch: the
    rows just enqueued stay owed until a worker has run them.
    """
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
            task.delay(str(object_id))
        sent += len(rows)
        if len(rows) < batch or time.monotonic() - started > budget:
            return sent
        after = rows[-1]
