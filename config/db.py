"""Writing several new rows in one statement, naming tables and columns in raw SQL, and
dropping kept connections the server has closed."""

from __future__ import annotations

import re
import select
from contextlib import nullcontext
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Field, Model
from django.db.models.constants import OnConflict

from config.django_private import insert_sql as _insert_sql
from config.django_private import mark_saved


def table(model: type[Model]) -> str:
    """The model's table, quoted for raw SQL."""
    return connections[DEFAULT_DB_ALIAS].ops.quote_name(model._meta.db_table)


class SqlNames:
    """A model's table and columns for raw SQL, quoted: `names.table`, and `names.pain`
    (any field's column, a foreign key's by its field name or its `_id` attname)."""

    def __init__(self, model: type[Model]) -> None:
        self.model = model
        self.table = table(model)

    def __getattr__(self, name: str) -> str:
        if name.startswith("__"):
            raise AttributeError(name)
        field_name = name.removesuffix("_id") if name.endswith("_id") else name
        try:
            return column(self.model, field_name)
        except Exception:  # noqa: BLE001 - e.g. a field whose own name ends in _id
            return column(self.model, name)


def sql_names(model: type[Model]) -> SqlNames:
    """The one way raw SQL names a model's table and columns: statements written by hand
    follow the models (a renamed table or column changes them too), not copies of names."""
    return SqlNames(model)


def column(model: type[Model], name: str) -> str:
    """The column of the model's field `name` (a foreign key's `_id` one), quoted for raw
    SQL: statements written by hand follow the models, not copies of their names."""
    field = model._meta.get_field(name)
    assert isinstance(field, Field)
    assert field.column
    return connections[DEFAULT_DB_ALIAS].ops.quote_name(field.column)


def insert_together(*objs: Model, using: str = DEFAULT_DB_ALIAS) -> None:
    """Insert new model instances in one statement (data-modifying CTEs): all of them or,
    on any error (a unique constraint, a check), none, as one transaction would, but in
    one round trip and, outside a transaction, without BEGIN and COMMIT.

    Inside a transaction it runs in a savepoint, so that a failure (an IntegrityError the
    caller handles) leaves the caller's transaction usable. Auto-increment keys are not
    read back (such instances keep `pk` None); no signals are sent (none are used here).
    """
    assert objs
    parts = [_insert_sql(obj, using) for obj in objs]
    *ctes, (last, _) = parts
    with_ = ", ".join(f"new_{i} AS ({cte})" for i, (cte, _) in enumerate(ctes))
    sql = f"WITH {with_} {last}" if ctes else last
    params = [param for _, part_params in parts for param in part_params]
    connection = connections[using]
    savepoint = transaction.atomic(using=using) if connection.in_atomic_block else nullcontext()
    with savepoint, connection.cursor() as cursor:
        cursor.execute(sql, params)
    for obj in objs:
        mark_saved(obj, using)


_VALUES = re.compile(r" VALUES \((?P<values>.*)\)$", re.DOTALL)


def insert_unless_conflict(first: Model, *dependents: Model, using: str = DEFAULT_DB_ALIAS) -> bool:
    """Insert `first` unless it clashes with a unique constraint, and the `dependents`
    (its audit event, say) only if it went in, in one statement; True if it went in.

    `INSERT ... ON CONFLICT DO NOTHING` never raises for a duplicate: a retried or
    conflicting write is a normal path, and a unique violation would make PostgreSQL
    write the failed statement, patient values included, to its server log
    (docs/safety-path.md, "No patient data in the database server's log"). The caller
    finds out what was there instead and answers for it.
    """
    sql, params = _insert_sql(first, using, on_conflict=OnConflict.IGNORE)
    pk = connections[using].ops.quote_name(first._meta.pk.column)
    all_params = list(params)
    selects = []
    for i, obj in enumerate(dependents):
        dep_sql, dep_params = _insert_sql(obj, using)
        match = _VALUES.search(dep_sql)
        assert match, dep_sql
        # Each dependent is a SELECT over the row `first` inserted: no row, no insert.
        selects.append(
            f"dep_{i} AS ({dep_sql[: match.start()]} SELECT {match.group('values')} FROM new_0)"  # noqa: S608
        )
        all_params.extend(dep_params)
    # The key comes back, so that an auto-increment key is known as after save().
    ctes = ", ".join([f"new_0 AS ({sql} RETURNING {pk})", *selects])
    sql = f"WITH {ctes} SELECT {pk} FROM new_0"  # noqa: S608 - names from the model
    connection = connections[using]
    savepoint = transaction.atomic(using=using) if connection.in_atomic_block else nullcontext()
    with savepoint, connection.cursor() as cursor:
        cursor.execute(sql, all_params)
        row = cursor.fetchone()
    inserted = row is not None
    if inserted:
        assert row is not None
        setattr(first, first._meta.pk.attname, row[0])
        for obj in (first, *dependents):
            mark_saved(obj, using)
    return inserted


def close_dropped_connections(**kwargs: Any) -> None:
    """Close every kept database connection that the server has dropped since its last
    statement, so that the next query opens a new one: a `request_started` receiver
    (patients/apps.py), in place of Django's CONN_HEALTH_CHECKS for the web.

    Django's check runs `SELECT 1` before the first query of every request: a round trip,
    one of five of a new daily log. A server that ends a connection (a restart, a
    failover, `pg_terminate_backend`, an idle timeout) tells the client, a FATAL message
    and then the end of the stream, so an idle connection that has anything to read is
    one the server gave up on: this asks the socket, without a round trip (~2 us). Between
    statements nothing else arrives on a web connection (it never LISTENs); should a
    notice arrive, the price is one new connection. A server that vanishes without a word
    (a cut cable) is not seen by either check: the first query waits for TCP.
    """
    for connection in connections.all(initialized_only=True):
        raw = connection.connection
        if raw is None or connection.in_atomic_block:
            continue
        if raw.closed or raw.broken or _readable(raw.fileno()):
            connection.close()


def _readable(fd: int) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)
    return bool(poller.poll(0))
