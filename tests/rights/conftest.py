"""Data-rights fixtures: a patient with something in every section, and another patient
(of another clinic) whose rows carry a marker that must never appear in an export."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from patients.models import Clinician, Patient
from programs import services as program_services
from rehab.models import Alert, DailyLog
from tests.programs.factories import make_template
from tests.rehab.factories_record import (
    DiagnosisFactory,
    ImagingFindingFactory,
    InterventionFactory,
    ProvocativeTestFactory,
    QuestionnaireResponseFactory,
)

OTHER_MARKER = "olly-private-marker"


@pytest.fixture(autouse=True)
def export_dir(settings: Any, tmp_path: Path) -> Path:
    # Each test writes its export files into its own directory (STORAGES is re-read when
    # the setting changes).
    location = tmp_path / "exports"
    settings.STORAGES = {
        **settings.STORAGES,
        "exports": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(location)},
        },
    }
    return location


def fill_record(patient: Patient, clinician: Clinician | None, *, marker: str = "") -> None:
    """A little of everything for `patient`: 10 days of logs, the clinical record, three
    questionnaires, an alert and a program."""
    today = patient.local_today()
    for i in range(10):
        DailyLog.objects.create(
            patient=patient,
            date=today - dt.timedelta(days=9 - i),
            pain=(i % 10),
            leg_pain=(i + 1) % 10,
            back_pain=2,
            function=7,
            sleep=DailyLog.Sleep.DISTURBED,
            leg_pain_side=DailyLog.LegPainSide.LEFT,
            notes=f"{marker} day {i}" if marker else ("=HYPERLINK(1)" if i == 3 else ""),
            safety={"saddle_numbness": "no", "fever": False, "weight_loss_kg": 0},
        )
    InterventionFactory.create(patient=patient, description=marker or "Prolotherapy, right")
    ProvocativeTestFactory.create(patient=patient, notes=marker)
    ImagingFindingFactory.create(patient=patient, finding=marker or "Calcified ligament.")
    DiagnosisFactory.create(patient=patient, notes=marker)
    DiagnosisFactory.create(
        patient=patient,
        name="Old strain",
        date_from=today - dt.timedelta(days=400),
        date_to=today - dt.timedelta(days=300),
    )
    QuestionnaireResponseFactory.create(patient=patient, instrument="rmdq", score=Decimal(3))
    QuestionnaireResponseFactory.create(
        patient=patient,
        instrument="sbi",
        score=Decimal(12),
        answers={"leg_pain": 4, "numbness_tingling": 3, "weakness": None, "sitting_pain": 2},
    )
    QuestionnaireResponseFactory.create(
        patient=patient,
        instrument="psfs",
        score=Decimal("4.33"),
        answers={
            "activities": [
                {"activity": marker or "Sitting 30 min", "score": 4},
                {"activity": "Walking", "score": 5},
                {"activity": "Lifting", "score": 4},
                {"activity": "Running", "score": None},
            ]
        },
    )
    now = timezone.now()
    Alert.objects.create(
        patient=patient,
        rule="RF-CES-01",
        rule_version=1,
        severity="emergency",
        title=marker or "Possible cauda equina",
        last_fired_at=now,
        opened_at=now,
    )
    if clinician is not None:
        template = make_template(clinic=patient.clinic, phases=[(2, [7, 3]), (1, [7])])
        program_services.assignment_create(patient=patient, template=template, by=clinician)


@pytest.fixture
def record(patient: Patient, clinician: Clinician) -> Patient:
    fill_record(patient, clinician)
    return patient


@pytest.fixture
def other_record(other_patient: Patient, other_clinic_clinician: Clinician) -> Patient:
    fill_record(other_patient, other_clinic_clinician, marker=OTHER_MARKER)
    return other_patient
