"""The rehab app's models, one module per area (daily logs, clinical record, alerts)."""

from __future__ import annotations

from rehab.models.logs import DailyLog, DailyLogRevision

# --- clinical record (rehab/models/record.py) ---
from rehab.models.record import (
    AssessedMark,
    Diagnosis,
    ImagingFinding,
    Instrument,
    Intervention,
    ProvocativeTest,
    QuestionnaireDue,
    QuestionnaireResponse,
)

__all__ = ["DailyLog", "DailyLogRevision"]
__all__ += [
    "AssessedMark",
    "Diagnosis",
    "ImagingFinding",
    "Instrument",
    "Intervention",
    "ProvocativeTest",
    "QuestionnaireDue",
    "QuestionnaireResponse",
]
# --- end clinical record ---
