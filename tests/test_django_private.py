"""The Django private APIs the project leans on (config/django_private.py): each one's
shape and behaviour, so that a Django upgrade that changes them fails here, by name."""

from __future__ import annotations

import inspect
import uuid
from datetime import date

import pytest
import time_machine
from django.db import DEFAULT_DB_ALIAS, connection
from django.db.models.constants import OnConflict
from django.db.models.sql import InsertQuery

from config import django_private
from patients.models import AuditEvent, Clinic, Patient, User
from rehab.models import DailyLog

pytestmark = pytest.mark.django_db


def test_insert_query_still_takes_a_conflict_policy_and_values():
    assert "on_conflict" in inspect.signature(InsertQuery).parameters
    assert callable(InsertQuery.insert_values)
    assert {member.name for member in OnConflict} >= {"IGNORE"}


def test_it_compiles_the_insert_save_would_run():
    clinic = Clinic(name="Northside")

    sql, params = django_private.insert_sql(clinic, DEFAULT_DB_ALIAS)
    ignoring, _ = django_private.insert_sql(clinic, DEFAULT_DB_ALIAS, on_conflict=OnConflict.IGNORE)

    assert sql.startswith(f'INSERT INTO "{Clinic._meta.db_table}" (')
    assert "RETURNING" not in sql
    assert "Northside" in params
    assert ignoring.endswith("ON CONFLICT DO NOTHING")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
    assert Clinic.objects.filter(name="Northside").count() == 1


@time_machine.travel("2026-12-07 08:30:00+00:00", tick=False)
def test_an_insert_compiled_once_gives_what_the_compiler_gives_every_time(patient):
    """The INSERT's text is kept per model after its first compilation; the values are
    then prepared as the compiler prepares them. Whatever the values (JSON, NULLs, a key
    given or generated), the result is what a fresh compilation gives."""
    logs = [
        DailyLog(patient=patient, date=date(2026, 12, 1), pain=4, safety={"fever": True}),
        DailyLog(
            id=uuid.uuid4(),
            patient=patient,
            date=date(2026, 11, 30),
            pain=0,
            leg_pain=None,
            notes="",
            safety={},
            safety_advice={"severity": "urgent", "rules": ["RF-CES-01"], "message": "Go"},
        ),
    ]
    events = [
        AuditEvent(action="create", object_type="daily_log", object_id="x", changes={}),
        AuditEvent(action="read", object_type="daily_log", changes={"retry": True}, ip=None),
    ]
    for obj, conflict in [
        *((log, OnConflict.IGNORE) for log in logs),
        *((e, None) for e in events),
    ]:
        kept = django_private.insert_sql(obj, DEFAULT_DB_ALIAS, on_conflict=conflict)
        again = django_private.insert_sql(obj, DEFAULT_DB_ALIAS, on_conflict=conflict)
        django_private._insert_texts.clear()
        fresh = django_private.insert_sql(obj, DEFAULT_DB_ALIAS, on_conflict=conflict)
        assert _comparable(kept) == _comparable(again) == _comparable(fresh)
    # And the kept text is used: the second call of a model compiles nothing.
    django_private.insert_sql(logs[0], DEFAULT_DB_ALIAS, on_conflict=OnConflict.IGNORE)
    assert any(key[0] is DailyLog for key in django_private._insert_texts)


def _comparable(compiled: tuple[str, tuple[object, ...]]) -> tuple[str, list[object]]:
    # psycopg's JSON wrapper has no equality of its own: compare what it wraps.
    sql, params = compiled
    return sql, [(type(p).__name__, getattr(p, "obj", p)) for p in params]


def test_it_marks_an_instance_inserted_by_hand_as_saved():
    clinic = Clinic(name="Eastside")
    assert clinic._state.adding is True

    django_private.mark_saved(clinic, DEFAULT_DB_ALIAS)

    assert (clinic._state.adding, clinic._state.db) == (False, DEFAULT_DB_ALIAS)


def test_it_tells_a_loaded_relation_from_one_that_would_cost_a_query(
    patient, django_assert_num_queries
):
    plain = User.objects.get(pk=patient.user.pk)
    loaded = User.objects.select_related("patient", "clinician").get(pk=patient.user.pk)

    with django_assert_num_queries(0):
        assert django_private.relation_cached(plain, "patient") is False
        assert django_private.relation_cached(loaded, "patient") is True
        # A missing row loaded by select_related is cached as absent.
        assert django_private.relation_cached(loaded, "clinician") is True
        assert not hasattr(loaded, "clinician")


def test_a_compiled_select_gives_the_objects_the_queryset_gives(patient, django_assert_num_queries):
    queryset = Patient.objects.select_related("user", "clinic").filter(pk=patient.pk)

    compiled = django_private.compile_select(queryset, DEFAULT_DB_ALIAS)
    with connection.cursor() as cursor:
        cursor.execute(compiled.sql, compiled.params)
        rows = cursor.fetchall()
    (built,) = compiled.instances(Patient, rows, DEFAULT_DB_ALIAS)

    (expected,) = list(queryset)
    assert isinstance(built, Patient)
    assert built.pk == expected.pk
    assert built._state.adding is False
    with django_assert_num_queries(0):
        assert built.user is not None
        assert expected.user is not None
        assert built.user.email == expected.user.email
        assert built.clinic.name == expected.clinic.name
    assert compiled.model_columns.start == 0
    assert "id" in compiled.init_list


def test_no_module_but_the_private_one_uses_these_apis():
    from tests.processes import BASE_DIR

    private = ("django.db.models.sql", "get_related_populators", "._state.", "get_compiler(")
    offenders = [
        f"{path.relative_to(BASE_DIR)}: {needle}"
        for path in BASE_DIR.glob("*/**/*.py")
        if not {".venv", "tests", "bench", "migrations"} & set(path.parts)
        and path.relative_to(BASE_DIR).as_posix() != "config/django_private.py"
        for needle in private
        if needle in path.read_text()
    ]
    assert offenders == []
