"""The JSON and CSV renderings of a patient's data (the FHIR one is `rights.fhir`)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from rights.selectors import PatientData

# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV
# injection"): such a cell is written with a leading apostrophe, which spreadsheets show
# as text and do not evaluate. Applied to every cell, whatever its column.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        text = json.dumps(value, sort_keys=True, cls=DjangoJSONEncoder)
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = str(value)
    if text.startswith(_FORMULA_STARTS):
        return "'" + text
    return text


class _Echo:
    """A file-like object whose write returns what it was given (for streaming CSV)."""

    def write(self, value: str) -> str:
        return value


def csv_rows(rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """Each row as one CSV line, every cell neutralised; nothing is held in memory."""
    writer = csv.writer(_Echo())
    for row in rows:
        yield writer.writerow([csv_safe(cell) for cell in row])


CSV_HEADER = ("section", "record_id", "field", "value")


def _long_rows(data: PatientData) -> Iterator[tuple[Any, ...]]:
    yield CSV_HEADER
    for section, rows in data.sections.items():
        for row in rows:
            record_id = row.get("id", "")
            for name, value in row.items():
                if name == "id":
                    continue
                yield (section, record_id, name, value)


def csv_text(data: PatientData) -> str:
    """Every value held, one line per (section, record, field): a shape any spreadsheet
    opens whatever the section, and that a new column never breaks."""
    out = io.StringIO()
    for line in csv_rows(_long_rows(data)):
        out.write(line)
    return out.getvalue()


def json_text(data: PatientData) -> str:
    return json.dumps(
        {
            "exported_at": data.exported_at,
            "patient_id": data.patient.pk,
            **data.sections,
        },
        cls=DjangoJSONEncoder,
        indent=1,
    )
