"""Clinical safety rules: pure domain logic, no Django (tested without a database).

`evaluate()` runs the red-flag rules (docs/safety-rules.md) on one daily log;
`catalogue()` publishes the inline-evaluable ones for the app; `review` holds the
reference implementations of the §3 review rules.
"""

from __future__ import annotations

from rehab.safety.engine import (
    EARLIER_LOG_FIELDS,
    FALL_REMINDER_KEY,
    MESSAGE_LANGUAGE,
    REMINDER_KEY,
    REMINDERS,
    Advice,
    EarlierLog,
    Evaluation,
    Firing,
    History,
    InterventionFact,
    LogFacts,
    MarkFact,
    PatientContext,
    PreviousLog,
    RecordNeeds,
    SafetyAnswers,
    Suppression,
    canonical_json,
    catalogue,
    evaluate,
    record_needs,
)
from rehab.safety.rules import (
    ESCALATION,
    FALL_REMINDER,
    MESSAGES,
    PREVIOUS_LOGS,
    RULES,
    SUPPRESSED_REMINDER,
    EscalationRule,
    Rule,
)

__all__ = [
    "EARLIER_LOG_FIELDS",
    "ESCALATION",
    "FALL_REMINDER",
    "FALL_REMINDER_KEY",
    "MESSAGES",
    "MESSAGE_LANGUAGE",
    "PREVIOUS_LOGS",
    "REMINDERS",
    "REMINDER_KEY",
    "RULES",
    "SUPPRESSED_REMINDER",
    "Advice",
    "EarlierLog",
    "EscalationRule",
    "Evaluation",
    "Firing",
    "History",
    "InterventionFact",
    "LogFacts",
    "MarkFact",
    "PatientContext",
    "PreviousLog",
    "RecordNeeds",
    "Rule",
    "SafetyAnswers",
    "Suppression",
    "canonical_json",
    "catalogue",
    "evaluate",
    "record_needs",
]
