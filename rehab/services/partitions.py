"""The daily log table's monthly partitions, and the ids that keep a log's id unique
across them (docs/clinical-record.md § Where the daily logs are stored).

The application role has no DDL: partitions are created by SECURITY DEFINER functions
the migrations own (rehab/migrations/0012_dailylog_partitioned.py), which the beat task
below calls ahead of time, and which take no name from the caller, only a month.
"""

from __future__ import annotations

import uuid
from datetime import date

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

from config.db import table
from rehab.models import DailyLog, DailyLogId


def partitions_ensure(*, months_ahead: int | None = None, using: str = DEFAULT_DB_ALIAS) -> int:
    """Create the partitions of the previous, the current and the next `months_ahead`
    months that are missing; how many it created. Idempotent: two beats create each
    partition once (the function's CREATE and ATTACH serialise on the parent's lock)."""
    ahead = settings.DAILYLOG_PARTITIONS_AHEAD_MONTHS if months_ahead is None else months_ahead
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT rehab_dailylog_partitions_ensure(%s)", [ahead])
        (created,) = cursor.fetchone()
    return int(created)


def partition_create(*, month: date, using: str = DEFAULT_DB_ALIAS) -> bool:
    """The partition of `month` (any day of it), created if missing (bulk loads of past
    months: bench/datagen.py); True if created. Logs of that month the default partition
    took move into it."""
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT rehab_dailylog_partition_create(%s)", [month])
        (created,) = cursor.fetchone()
    return bool(created)


def log_id_release_unused(log_id: uuid.UUID, *, using: str = DEFAULT_DB_ALIAS) -> bool:
    """Release `log_id` if no log has it; True if it was claimed and is free now.

    The claim trigger runs before PostgreSQL checks the one-per-day constraint, so a log
    POST refused for its date (409, a normal path) leaves its id claimed by no log. The
    409's own path releases it, as here; an id is never claimed by a stored log's id
    twice, whatever this does (the claim is the primary key)."""
    ids, logs = table(DailyLogId), table(DailyLog)
    with connections[using].cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {ids} k WHERE k.id = %s"  # noqa: S608 - names from the models
            f" AND NOT EXISTS (SELECT FROM {logs} l WHERE l.id = k.id)",
            [log_id],
        )
        return bool(cursor.rowcount > 0)
