"""Every use of Django's private (undocumented) APIs, in one place (docs/architecture.md
§ Django's private APIs).

Each function here leans on something Django does not promise to keep, for a reason its
docstring gives; the rest of the code calls these functions and never the private APIs
themselves. tests/test_django_private.py asserts the shape and behaviour of each, so that
a Django upgrade that changes one fails there, by name, rather than as a wrong answer or
a slow page somewhere else. Nothing outside this module imports from
`django.db.models.sql`, calls a query's compiler, or touches a model's `_state`.

(`Model._meta` is not here: it is Django's documented Model _meta API.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import connections
from django.db.models import Model, QuerySet
from django.db.models.constants import OnConflict

# The ORM's own select_related row-to-objects step (not in django-stubs either).
from django.db.models.query import get_related_populators  # type: ignore[attr-defined]
from django.db.models.sql import InsertQuery


def relation_cached(instance: Model, name: str, *, model: type[Model] | None = None) -> bool:
    """Whether the one-to-one relation `name` of `instance` is already loaded (by
    `select_related`, or an earlier access), so that reading it costs no query.

    Why: the audit context names the caller's role only when it is known for free; asking
    `user.role` on an operator's admin request cost two queries per page (no clinician
    row, no patient row). The descriptors' `is_cached` is not documented.
    """
    # `model` where `instance` may be a lazy proxy (`request.user`): its type is the proxy's.
    descriptor = getattr(model or type(instance), name)
    return bool(descriptor.is_cached(instance))


def insert_sql(
    obj: Model, using: str, *, on_conflict: OnConflict | None = None
) -> tuple[str, tuple[Any, ...]]:
    """The INSERT the ORM's `save()` would run for a new `obj` (its values prepared by
    the fields, `auto_now` and defaults applied), without RETURNING.

    Why: `config.db` writes a row and its audit event in one statement (data-modifying
    CTEs), and `ON CONFLICT DO NOTHING` without raising (a unique violation would put the
    statement, patient values included, in PostgreSQL's log). Django builds both only
    through its private `InsertQuery` and SQL compiler; writing the INSERTs by hand would
    copy every field's conversion (JSON, dates, defaults) and drift from the models.
    """
    meta = obj._meta
    fields = list(meta.local_concrete_fields)
    if getattr(obj, meta.pk.attname) is None:
        fields = [field for field in fields if field is not meta.auto_field]
    # The statement's text depends on the model, its fields and the conflict clause, not
    # on the values, so it is compiled once per process (compiling it cost more than the
    # values: ~100 us of a log POST's two inserts). The values are prepared as the
    # compiler prepares them, by the fields' documented `pre_save` and
    # `get_db_prep_save`. A value that is an expression, or a field with a placeholder of
    # its own, changes the text: those are compiled every time.
    key = (type(obj), using, on_conflict, tuple(field.attname for field in fields))
    sql = _insert_texts.get(key)
    if sql is not None:
        connection = connections[using]
        params = []
        for field in fields:
            value = field.pre_save(obj, True)
            if hasattr(value, "resolve_expression"):
                break
            params.append(field.get_db_prep_save(value, connection=connection))
        else:
            return sql, tuple(params)
    query = InsertQuery(type(obj), on_conflict=on_conflict)
    query.insert_values(fields, [obj])
    ((sql, compiled_params),) = query.get_compiler(using=using).as_sql()
    if not any(hasattr(field, "get_placeholder") for field in fields) and not any(
        hasattr(getattr(obj, field.attname), "resolve_expression") for field in fields
    ):
        _insert_texts[key] = sql
    return sql, tuple(compiled_params)


# (model, database, conflict clause, field attnames) -> the INSERT's text.
_insert_texts: dict[tuple[Any, ...], str] = {}


def mark_saved(obj: Model, using: str) -> None:
    """Mark an instance inserted by hand as the ORM marks one after `save()`: no longer
    `adding` (a later `save()` updates, unique validation excludes itself) and bound to
    its database. Why: `Model._state` is not documented API."""
    obj._state.adding = False
    obj._state.db = using


@dataclass(frozen=True)
class CompiledSelect:
    """A queryset compiled once to SQL, and the means to turn its rows into the objects
    the queryset would give (`select_related` relations included)."""

    sql: str
    params: tuple[Any, ...]
    # The (first, last) positions of the main model's columns in each row.
    model_columns: slice
    # The main model's field attnames, in row order (`Model.from_db`'s field_names).
    init_list: tuple[str, ...]
    # The ORM's populators of the select_related relations.
    populators: tuple[Any, ...]
    # Whether some column needs a converter (then rows cannot be used as they come).
    needs_converters: bool
    # Each column of a row: the table it is read from, and its name there.
    columns: tuple[tuple[str, str], ...] = ()

    def instances(self, model: type[Model], rows: list[Any], using: str) -> list[Model]:
        found = []
        for row in rows:
            obj = model.from_db(using, list(self.init_list), row[self.model_columns])
            for populator in self.populators:
                populator.populate(row, obj)
            found.append(obj)
        return found


def compile_select(queryset: QuerySet[Any], using: str) -> CompiledSelect:
    """The SQL of `queryset` and how to build its objects from raw rows.

    Why: the token look-up runs on every API request. Compiling its four-table,
    forty-column query cost more than running it (0.45 of the ORM's ~0.8 ms), so
    patients.authentication compiles it once per process and runs the SQL through
    Django's cursor. Only the SQL compiler's `select`/`klass_info` and the
    `get_related_populators` step give the same objects as the queryset.
    """
    compiler = queryset.query.get_compiler(using)
    sql, params = compiler.as_sql()
    select, klass_info = compiler.select, compiler.klass_info
    first, last = klass_info["select_fields"][0], klass_info["select_fields"][-1]
    return CompiledSelect(
        sql=sql,
        params=tuple(params),
        model_columns=slice(first, last + 1),
        init_list=tuple(col.target.attname for col, *_ in select[first : last + 1]),
        populators=tuple(get_related_populators(klass_info, select, using)),
        needs_converters=bool(compiler.get_converters([col for col, *_ in select])),
        columns=tuple(
            (compiler.query.alias_map[col.alias].table_name, col.target.column)
            for col, *_ in select
        ),
    )
