"""Indexes on the write-hot tables: every one costs each insert (and each non-HOT update)
an entry, so none may duplicate another's leading column (issue 8)."""

from __future__ import annotations

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


def indexes(table: str) -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", [table])
        return dict(cursor.fetchall())


@pytest.mark.parametrize(
    ("table", "composite"),
    [
        ("rehab_dailylog", "(patient_id, date)"),
        ("patients_auditevent", "(patient_id, at)"),
    ],
)
def test_look_ups_by_patient_use_the_composite_index_alone(table, composite):
    found = indexes(table)
    assert any(definition.endswith(composite) for definition in found.values()), found
    single = [name for name, definition in found.items() if definition.endswith("(patient_id)")]
    assert single == [], f"{table}: {single} duplicates the {composite} index"
