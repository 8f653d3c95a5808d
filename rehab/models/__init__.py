"""The rehab app's models, one module per area (daily logs, clinical record, alerts)."""

from __future__ import annotations

from rehab.models.alerts import (
    Alert,
    AlertEvent,
    AlertOccurrence,
    Notification,
    PatientAlertTriage,
    Severity,
)
from rehab.models.logs import (
    DailyLog,
    DailyLogId,
    DailyLogRevision,
    MissedLogReminder,
    PatientLogRollup,
    SafetySubmission,
)

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
from rehab.models.translations import TranslationReview

# --- end clinical record ---

__all__ = [
    "Alert",
    "AlertEvent",
    "AlertOccurrence",
    "DailyLog",
    "DailyLogId",
    "DailyLogRevision",
    "MissedLogReminder",
    "Notification",
    "PatientAlertTriage",
    "PatientLogRollup",
    "SafetySubmission",
    "Severity",
    "TranslationReview",
]

# --- clinical record ---
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
