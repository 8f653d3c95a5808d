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
from typing import Any
from uuid import UUID

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from config.enqueue import SWEEP_TIME_BUDGET
from notifications import reminders, services
from notifications.channels.base import Outcome
from notifications.models import Delivery

logger = logging.getLogger(__name__)

Status = Delivery.Status
# Rows claimed per statement: the claim, the composing and the record cost a few
# statements per batch, whatever its size; a batch's leases are held while it is sent
# (well within `services.LEASE` for an in-memory or a pooled channel).
BATCH = 1000
# Beat runs the sweep every 30 s; a sweep works up to this long (under the task's soft time
# limit), so a minute's burst of reminders is handed over within the minute.
SWEEP_BUDGET = 45.0

_TABLE = Delivery._meta.db_table


def _claim_sql() -> str:
    """One statement: lock up to `limit` due reminder deliveries (SKIP LOCKED: another
    sweep's rows are left to it), give up those a worker lost mid-send once too often,
    lease the others to this worker, and read what sending each needs (`ReminderFacts`:
    the reminder, the patient, their settings, whether the day is logged)."""
    facts, _ = reminders.facts_sql("claimed")
    return f"""
    WITH locked AS (
        -- The claimable index's order (next_attempt_at alone: the rows of a burst share one
        -- instant, and a tie-break on id would sort all of them for every batch); a row
        -- leased to a worker that died still has its due instant behind it.
        SELECT id, status, attempts FROM {_TABLE}
        WHERE kind = %(kind)s
          AND status IN (%(queued)s, %(retrying)s, %(sending)s)
          AND next_attempt_at <= %(now)s
          AND (status <> %(sending)s OR sending_until <= %(now)s)
        ORDER BY next_attempt_at
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED
    ), lost AS (
        UPDATE {_TABLE} AS d
        SET status = %(given_up)s, sending_until = NULL, next_attempt_at = %(backoff)s,
            last_outcome = %(retry)s, last_error = 'worker lost mid-send', updated_at = %(now)s
        FROM locked
        WHERE d.id = locked.id AND locked.status = %(sending)s AND locked.attempts >= %(max)s
    ), claimed AS (
        UPDATE {_TABLE} AS d
        SET status = %(sending)s, attempts = d.attempts + 1, sending_until = %(lease)s,
            updated_at = %(now)s
        FROM locked
        WHERE d.id = locked.id AND NOT (locked.status = %(sending)s AND locked.attempts >= %(max)s)
        RETURNING d.id, d.channel, d.address, d.idempotency_key, d.attempts, d.object_id
    )
    {facts}
    """  # noqa: S608 - our table, values as parameters


def _claim_batch(*, limit: int) -> list[reminders.ReminderFacts]:
    """Lease up to `limit` due reminder deliveries to this worker, with what sending
    them needs: one statement (atomic on its own)."""
    now = timezone.now()
    _, facts_params = reminders.facts_sql("claimed")
    params: dict[str, Any] = {
        **facts_params,
        "kind": Delivery.Kind.REMINDER.value,
        "queued": Status.QUEUED.value,
        "retrying": Status.RETRYING.value,
        "sending": Status.SENDING.value,
        "given_up": Status.GIVEN_UP.value,
        "retry": Outcome.RETRY.value,
        "now": now,
        "lease": now + services.LEASE,
        # A lost row has had its last attempt: its back-off is the longest one.
        "backoff": services.backoff_until(services.MAX_ATTEMPTS, now),
        "max": services.MAX_ATTEMPTS,
        "limit": limit,
    }
    with connection.cursor() as cursor:
        cursor.execute(_claim_sql(), params)
        return [reminders.ReminderFacts(*row) for row in cursor.fetchall()]


def _record(
    *, sent: list[tuple[UUID, str]], cancelled: list[UUID], handed_back: list[UUID]
) -> None:
    """What a batch did, in one transaction: the sends in one statement (each row's
    provider id from arrays: a `bulk_update` would be a CASE over every id per column),
    the cancelled rows (and, in the same statement, their reminders' feed items when
    owed on no other channel: `reminders.reminder_deliveries_cancel`) and the handed-back
    rows in one each when there are any. (The batch's feed items are not written here
    but before its first hand-over: `_send_batch`.)"""
    now = timezone.now()
    with transaction.atomic():
        if sent:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {_TABLE} AS d SET status = %s, sent_at = %s, sending_until = NULL, "  # noqa: S608 - our table, values as parameters
                    "provider_id = v.provider_id, last_outcome = '', last_error = '', "
                    "updated_at = %s "
                    "FROM unnest(%s::uuid[], %s::text[]) AS v(id, provider_id) "
                    # By the primary key, not by a hash of the whole table.
                    "WHERE d.id = v.id AND d.id = ANY(%s::uuid[])",
                    [
                        Status.SENT.value,
                        now,
                        now,
                        [pk for pk, _ in sent],
                        [provider_id for _, provider_id in sent],
                        [pk for pk, _ in sent],
                    ],
                )
        if cancelled:
            # Its item may be in the feed from an earlier hand-over that was handed back.
            reminders.reminder_deliveries_cancel(cancelled)
        if handed_back:
            Delivery.objects.filter(pk__in=handed_back, status=Status.SENDING).update(
                status=Status.QUEUED,
                attempts=F("attempts") - 1,
                sending_until=None,
                updated_at=now,
            )


def _send_batch(batch: list[reminders.ReminderFacts], *, deadline: float) -> int:
    """Send a claimed batch; what is sent is recorded even when the task's time limit
    interrupts it, and the rows not reached by `deadline` are handed back (queued again,
    the attempt not counted), so a slow channel never leaves sent messages unrecorded
    (they would be sent again when their lease ran out)."""
    sent: list[tuple[UUID, str]] = []
    cancelled: list[UUID] = []
    handed_back: list[UUID] = []
    signer = reminders.UnsubscribeSigner()
    try:
        texts = [reminders.reminder_compose_facts(facts, signer=signer) for facts in batch]
        # Each reminder still owed goes in its patient's feed in one statement for the
        # batch, before any hand-over, not in `_record` after the sends: a push names its
        # feed item (`feed_item`), and the patient may open it before the batch is
        # recorded, or the worker may die between the two; an email that fails, or a
        # feed-only delivery (`reminders.FEED_CHANNEL`), has its item all the same. A row
        # then handed back at the deadline keeps its item (the reminder is still owed;
        # the item's key makes the next sender's insert a no-op); if it is cancelled when
        # its turn comes again, `_record` removes the item with the cancellation.
        reminders.reminders_feed(
            sorted(
                {
                    facts.reminder_id
                    for facts, composed in zip(batch, texts, strict=True)
                    if composed is not None and facts.reminder_id is not None
                }
            )
        )
        for facts, composed in zip(batch, texts, strict=True):
            if time.monotonic() > deadline:
                handed_back.append(facts.delivery_id)
                continue
            if composed is None:
                cancelled.append(facts.delivery_id)
                continue
            text, data = composed
            result = services.channel_send(
                channel=facts.channel,
                delivery_id=facts.delivery_id,
                address=facts.address,
                urgent=False,
                text=text,
                data=data,
            )
            if result.outcome == Outcome.SENT:
                sent.append((facts.delivery_id, result.provider_id[:200]))
            else:
                failed = Delivery(
                    id=facts.delivery_id,
                    kind=Delivery.Kind.REMINDER,
                    channel=facts.channel,
                    address=facts.address,
                    attempts=facts.attempts,
                )
                services._failed(failed, result, now=timezone.now())
    finally:
        _record(sent=sent, cancelled=cancelled, handed_back=handed_back)
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
