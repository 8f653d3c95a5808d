"""The reminders' beat task: plan what falls due soon, then hand every due reminder to
its channel in batches (docs/architecture.md, "Patient reminders").

A batch is claimed in one transaction with `SELECT ... FOR UPDATE SKIP LOCKED` and
leased as any delivery is (notifications/services.py), then sent one by one outside any
transaction, and the sends recorded in one statement per batch. Two sweeps at once take
different rows; a worker killed mid-batch leaves its leases to run out, and the rows it
had not recorded are claimed again (the delivery id is each provider's idempotency key,
and an email's Message-ID, so a message re-sent after a crash is recognisable)."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from config.enqueue import SWEEP_TIME_BUDGET
from notifications import reminders, services
from notifications.channels.base import Outcome, SendResult
from notifications.models import Delivery

logger = logging.getLogger(__name__)

Status = Delivery.Status
BATCH = 500
# Beat runs the sweep every 30 s; a sweep works up to this long (under the task's soft time
# limit), so a minute's burst of reminders is handed over within the minute.
SWEEP_BUDGET = 45.0


def _claim_batch(*, limit: int) -> list[Delivery]:
    now = timezone.now()
    with transaction.atomic():
        rows = list(
            Delivery.objects.filter(services._claimable(now), kind=Delivery.Kind.REMINDER)
            .select_for_update(skip_locked=True)
            .order_by("next_attempt_at", "pk")[:limit]
        )
        claimed = []
        for row in rows:
            if row.status == Status.SENDING and row.attempts >= services.MAX_ATTEMPTS:
                services._failed(
                    row, SendResult(Outcome.RETRY, detail="worker lost mid-send"), now=now
                )
                continue
            claimed.append(row)
        Delivery.objects.filter(pk__in=[row.pk for row in claimed]).update(
            status=Status.SENDING,
            attempts=F("attempts") + 1,
            sending_until=now + services.LEASE,
            updated_at=now,
        )
        for row in claimed:
            row.attempts += 1
    return claimed


def _record_sent(sent: list[Delivery], *, now: datetime) -> None:
    """One statement for the batch: each row's provider id from a VALUES list (a
    `bulk_update` would be a CASE over every id per column)."""
    if not sent:
        return
    values = ", ".join(["(%s::uuid, %s)"] * len(sent))
    params: list[Any] = [now, now]
    for delivery in sent:
        params += [delivery.pk, delivery.provider_id]
    table = Delivery._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS d SET status = 'sent', sent_at = %s, sending_until = NULL, "  # noqa: S608 - our table, values as parameters
            "provider_id = v.provider_id, last_outcome = '', last_error = '', updated_at = %s "
            f"FROM (VALUES {values}) AS v(id, provider_id) WHERE d.id = v.id",
            params,
        )


def _send_batch(batch: list[Delivery], *, deadline: float) -> int:
    """Send a claimed batch; what is sent is recorded even when the task's time limit
    interrupts it, and the rows not reached by `deadline` are handed back (queued again,
    the attempt not counted), so a slow channel never leaves sent messages unrecorded
    (they would be sent again when their lease ran out)."""
    sent: list[Delivery] = []
    cancelled: list[UUID] = []
    handed_back: list[UUID] = []
    texts = reminders.reminders_compose(batch)
    # Before any hand-over, so the item a push names is there when it is opened; one
    # statement for the batch (docs/architecture.md, "Patient reminders").
    reminders.reminders_feed(reminders.reminders_owed(batch, texts))
    try:
        for delivery in batch:
            if time.monotonic() > deadline:
                handed_back.append(delivery.pk)
                continue
            composed = texts[delivery.pk]
            if composed is None:
                cancelled.append(delivery.pk)
                continue
            text, data = composed
            result = services.channel_hand_over(delivery, text=text, data=data)
            if result.outcome == Outcome.SENT:
                delivery.provider_id = result.provider_id[:200]
                sent.append(delivery)
            else:
                services._failed(delivery, result, now=timezone.now())
    finally:
        now = timezone.now()
        with transaction.atomic():
            _record_sent(sent, now=now)
            Delivery.objects.filter(pk__in=cancelled).update(
                status=Status.CANCELLED, sending_until=None, updated_at=now
            )
            Delivery.objects.filter(pk__in=handed_back, status=Status.SENDING).update(
                status=Status.QUEUED,
                attempts=F("attempts") - 1,
                sending_until=None,
                updated_at=now,
            )
    return len(sent)


def reminders_send_due(*, batch: int = BATCH, budget: float = SWEEP_TIME_BUDGET) -> int:
    """Send every due reminder delivery, a batch at a time, until none is left or
    `budget` seconds are spent; returns how many were sent."""
    deadline = time.monotonic() + budget
    sent = 0
    while claimed := _claim_batch(limit=batch):
        sent += _send_batch(claimed, deadline=deadline)
        if time.monotonic() > deadline:
            break
    return sent


def reminders_sweep(*, budget: float = SWEEP_TIME_BUDGET) -> int:
    """Beat's reminder task: plan, then send what is due. Returns how many were sent."""
    reminders.reminders_plan()
    return reminders_send_due(budget=budget)
