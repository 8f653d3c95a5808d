"""Dashboard clients for the fixed cast (tests/conftest.py), signed in with a session."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from patients.models import Clinician, Patient
from rehab.models import Alert


@pytest.fixture
def web(clinician: Clinician) -> Client:
    client = Client()
    client.force_login(clinician.user)
    return client


@pytest.fixture
def other_web(other_clinic_clinician: Clinician) -> Client:
    client = Client()
    client.force_login(other_clinic_clinician.user)
    return client


def make_alert(
    patient: Patient,
    *,
    severity: str = "urgent",
    rule: str = "RF-NEU-01",
    waited: timedelta = timedelta(hours=1),
    status: str = Alert.Status.OPEN,
) -> Alert:
    opened = timezone.now() - waited
    return Alert.objects.create(
        patient=patient,
        rule=rule,
        rule_version=1,
        severity=severity,
        title="New or worsening leg weakness",
        basis={"safety.weakness": "foot_drop"},
        status=status,
        last_fired_at=opened,
        opened_at=opened,
    )


@pytest.fixture
def alert(patient: Patient) -> Alert:
    return make_alert(patient)


@pytest.fixture
def other_alert(other_patient: Patient) -> Alert:
    return make_alert(other_patient, severity="emergency", rule="RF-CES-01")
