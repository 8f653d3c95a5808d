from __future__ import annotations

import pytest
from django.core.management import call_command

from patients.models import Patient
from rehab.demo import DEMO_PASSWORD, PHYSIO_EMAIL
from rehab.models import Alert, DailyLog

pytestmark = pytest.mark.django_db


def test_it_seeds_a_demo_clinic_idempotently_with_stories_and_alerts(capsys, client):
    call_command("seed_demo")
    out = capsys.readouterr().out
    assert PHYSIO_EMAIL in out
    assert DEMO_PASSWORD in out
    assert Patient.objects.count() >= 7
    assert DailyLog.objects.count() > 200
    assert not DailyLog.objects.filter(evaluated_at__isnull=True).exists()
    assert Alert.objects.filter(rule="RF-CES-01", status="resolved").exists()
    assert Alert.objects.filter(rule="RF-NEU-01", status="open").exists()
    assert Alert.objects.filter(rule__startswith="NR-").exists()  # review rules ran
    # A Spanish-speaking patient, whose stored advice is in Spanish (English beside it).
    lucia = Patient.objects.get(email="lucia@patient.demo")
    assert lucia.language == "es"
    assert "lucia@patient.demo   (reads the app in es)" in out
    advised = [
        log.safety_advice for log in DailyLog.objects.filter(patient=lucia) if log.safety_advice
    ]
    assert advised
    assert all(a["language"] == "es" and "message_en" in a for a in advised)

    from programs.models import ExerciseLog, ProgramAssignment, ProgressionProposal

    assert ProgramAssignment.objects.count() >= 5
    assert ExerciseLog.objects.exists()
    assert ProgressionProposal.objects.filter(status="pending").exists()
    counts = (Patient.objects.count(), DailyLog.objects.count(), Alert.objects.count())
    call_command("seed_demo")
    assert (Patient.objects.count(), DailyLog.objects.count(), Alert.objects.count()) == counts

    response = client.post(
        "/api/v1/auth/login/",
        {"email": PHYSIO_EMAIL, "password": DEMO_PASSWORD},
        content_type="application/json",
    )
    assert response.status_code == 200
    assert response.json()["role"] == "clinician"


def test_it_dates_no_demo_alert_in_the_future():
    from django.utils import timezone

    from rehab.demo import seed_demo

    seed_demo()
    assert Alert.objects.exists()
    assert not Alert.objects.filter(opened_at__gt=timezone.now()).exists()
