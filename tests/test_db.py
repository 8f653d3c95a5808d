"""config.db.insert_together: several new rows in one statement, all or none."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from config.db import insert_together
from patients.models import AuditEvent
from rehab.models import DailyLog
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


def _log(patient, day: date = date(2026, 11, 30), **fields) -> DailyLog:
    return DailyLog(
        id=uuid.uuid4(), patient=patient, date=day, pain=4, safety={"fever": False}, **fields
    )


def _event(patient, object_id: str) -> AuditEvent:
    return AuditEvent(
        patient_id=patient.pk,
        action=AuditEvent.Action.CREATE,
        object_type="daily_log",
        object_id=object_id,
        changes={"note": "ünïcode"},
        ip="10.0.0.9",
    )


def test_it_inserts_every_row_in_one_statement_as_save_would():
    patient = PatientFactory.create()
    log, event = _log(patient), _event(patient, "x")
    with CaptureQueriesContext(connection) as ctx:
        insert_together(log, event)
    assert len([q for q in ctx.captured_queries if q["sql"].startswith("WITH")]) == 1
    stored = DailyLog.objects.get(pk=log.pk)
    # Defaults and auto_now applied, JSON stored as JSON.
    assert (stored.version, stored.evaluation_attempts, stored.safety) == (1, 0, {"fever": False})
    assert stored.created_at is not None
    assert stored.updated_at == log.updated_at
    assert not log._state.adding
    row = AuditEvent.objects.get(object_id="x")
    assert (row.changes, row.ip, row.patient_id) == ({"note": "ünïcode"}, "10.0.0.9", patient.pk)
    assert event.pk is None  # an auto-increment key is not read back


def test_a_failing_row_stores_none_and_leaves_the_callers_transaction_usable():
    patient = PatientFactory.create()
    insert_together(_log(patient))
    first = _event(patient, "first")
    taken = _log(patient)  # the same date: dailylog_one_per_day
    with transaction.atomic():
        with pytest.raises(IntegrityError):
            insert_together(first, taken)
        # The savepoint rolled back the whole statement, and the transaction goes on.
        assert not AuditEvent.objects.filter(object_id="first").exists()
        insert_together(_event(patient, "after"))
    assert AuditEvent.objects.filter(object_id="after").exists()
    assert DailyLog.objects.filter(patient=patient).count() == 1


def test_one_row_needs_no_cte():
    patient = PatientFactory.create()
    with CaptureQueriesContext(connection) as ctx:
        insert_together(_event(patient, "alone"))
    assert [q["sql"].split()[0] for q in ctx.captured_queries] == ["SAVEPOINT", "INSERT", "RELEASE"]


def test_sql_names_give_the_models_quoted_table_and_columns():
    from config.db import sql_names
    from rehab.models import DailyLog

    names = sql_names(DailyLog)

    assert names.table == f'"{DailyLog._meta.db_table}"'
    assert names.pain == '"pain"'
    assert names.patient == names.patient_id == '"patient_id"'
    with pytest.raises(Exception, match="no_such_field"):
        _ = names.no_such_field


def test_no_raw_sql_of_the_product_hard_codes_a_table_name():
    # Hand-written SQL names tables through config.db (sql_names, table, column), so that
    # it follows the models; migrations are history and keep their names.
    import re

    from django.apps import apps

    from tests.processes import BASE_DIR

    tables = {model._meta.db_table for model in apps.get_models()}
    ours = {t for t in tables if t.split("_")[0] in {"patients", "programs", "rehab", "rights"}}
    pattern = re.compile(r"\b(" + "|".join(sorted(ours, key=len, reverse=True)) + r")\b")
    offenders = [
        f"{path.relative_to(BASE_DIR)}: {match}"
        for path in BASE_DIR.glob("*/**/*.py")
        if not {".venv", "tests", "bench", "migrations"} & set(path.parts)
        for match in pattern.findall(path.read_text())
    ]
    assert ours
    assert offenders == []
