"""Clinical record: interventions, provocative tests, imaging, diagnoses, questionnaires, marks."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID


def safety_facts_for_log(*, patient_id: UUID, on: date) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    # TEMPORARY until the clinical record branch merges (it owns this module).
    return (), ()
