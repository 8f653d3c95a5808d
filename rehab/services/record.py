"""Clinical record: interventions, provocative tests, imaging, diagnoses, questionnaires, marks."""

from __future__ import annotations
