"""The demo tells the two stories of issue 5, and can be seeded twice."""

from __future__ import annotations

import datetime as dt
import itertools
import random

import pytest

from patients.models import Patient
from rehab.demo_record import seed_record_demo
from rehab.models import DailyLog, Diagnosis, Intervention, ProvocativeTest, QuestionnaireDue

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 11, 20)
PASSWORD = "demo-password-for-tests"


@pytest.fixture
def demo(clinic, clinician):
    return seed_record_demo(
        clinic=clinic, clinician=clinician, today=TODAY, rng=random.Random(5), password=PASSWORD
    )


def test_it_creates_two_patients_who_can_sign_in(demo, anon_client):
    dgs, post_op = demo
    assert dgs.age_on(TODAY) == 51
    for patient in demo:
        response = anon_client.post(
            "/api/v1/auth/login/", {"email": patient.email, "password": PASSWORD}
        )
        assert response.status_code == 200
        assert response.json()["role"] == "patient"
    assert post_op.history_previous_spine_surgery


def test_it_is_idempotent(demo, clinic, clinician):
    counts = (Patient.objects.count(), DailyLog.objects.count(), Intervention.objects.count())
    again = seed_record_demo(
        clinic=clinic, clinician=clinician, today=TODAY, rng=random.Random(6), password="x"
    )
    assert [p.pk for p in again] == [p.pk for p in demo]
    assert (
        Patient.objects.count(),
        DailyLog.objects.count(),
        Intervention.objects.count(),
    ) == counts


def test_it_tells_the_deep_gluteal_syndrome_story(demo):
    dgs = demo[0]
    logs = list(DailyLog.objects.filter(patient=dgs).order_by("date"))
    first = logs[0]
    assert first.pain == 10
    # 10 -> 1 within a month, and it stays there.
    month_later = [log.pain for log in logs if (log.date - first.date).days >= 30]
    assert month_later
    assert max(month_later) <= 1

    sessions = list(Intervention.objects.filter(patient=dgs).order_by("date"))
    assert [s.session_number for s in sessions] == [1, 2, 3]
    assert {s.course_id for s in sessions} == {sessions[0].pk}
    assert {(s.kind, s.guidance, s.agent) for s in sessions} == {
        ("prolotherapy", "ultrasound", "Dextrose 10% with lidocaine")
    }
    gaps = [(b.date - a.date).days for a, b in itertools.pairwise(sessions)]
    assert all(14 <= gap <= 28 for gap in gaps)

    exams = sorted({t.performed_at for t in ProvocativeTest.objects.filter(patient=dgs)})
    first_exam = ProvocativeTest.objects.filter(patient=dgs, performed_at=exams[0], side="right")
    assert {t.test for t in first_exam if t.result == "positive"} >= {
        "fair",
        "pace",
        "seated_piriformis_stretch",
    }
    last_exam = ProvocativeTest.objects.filter(patient=dgs, performed_at=exams[-1])
    assert {t.result for t in last_exam} == {"negative"}
    assert set(dgs.imaging_findings.values_list("modality", flat=True)) == {
        "radiograph",
        "ultrasound",
    }


def test_it_tells_the_fall_after_decompression_story(demo):
    post_op = demo[1]
    tests = ProvocativeTest.objects.filter(patient=post_op)
    assert {t.test for t in tests} == {"slr", "slump", "crossed_slr"}
    assert {t.result for t in tests} == {"negative"}
    mri = post_op.imaging_findings.get(modality="mri")
    assert "Morel-Lavallee" in mri.finding
    assert "No recurrent disc herniation" in mri.finding
    herniation = Diagnosis.objects.get(patient=post_op, name__icontains="herniation")
    assert herniation.date_to == mri.date
    assert Diagnosis.objects.filter(
        patient=post_op, name__startswith="Morel-Lavallee", date_to__isnull=True
    ).exists()
    assert post_op.interventions.get().kind == "surgery"


def test_it_shows_both_stories_to_the_clinician(demo, clinician_client):
    dgs = demo[0]
    for patient in demo:
        timeline = clinician_client.get(
            f"/api/v1/clinician/patients/{patient.pk}/timeline/?page_size=200"
        ).json()
        kinds = {e["kind"] for e in timeline["results"]}
        assert {"logs_week", "intervention", "provocative_tests", "imaging", "diagnosis"} <= kinds
        assert "questionnaire" in kinds
    scores = clinician_client.get(
        f"/api/v1/clinician/patients/{dgs.pk}/questionnaires/scores/"
    ).json()
    rmdq = next(i for i in scores["instruments"] if i["instrument"] == "rmdq")
    assert rmdq["series"][-1]["meaningful_change"] is True
    assert rmdq["series"][-1]["direction"] == "improved"


def test_it_leaves_the_deep_gluteal_patient_a_follow_up_to_answer(demo):
    # Six weeks after the first session: open on the demo's today; later ones upcoming.
    dgs = demo[0]
    noon = dt.datetime(TODAY.year, TODAY.month, TODAY.day, 12, tzinfo=dt.UTC)
    states = {d.state(noon) for d in QuestionnaireDue.objects.filter(patient=dgs)}
    assert states == {"open", "upcoming"}


def test_the_fall_story_shows_the_fall_rules_and_the_reminder(demo):
    from rehab.models import Alert
    from rehab.safety import FALL_REMINDER

    _, post_op = demo
    alerts = {a.rule: a for a in Alert.objects.filter(patient=post_op)}
    assert {"RF-FX-03", "RF-FX-04"} <= set(alerts)
    assert (alerts["RF-FX-04"].severity, alerts["RF-FX-03"].severity) == ("urgent", "emergency")
    assert all(a.status == "resolved" for a in alerts.values())
    minor_fall = DailyLog.objects.get(pk=alerts["RF-FX-04"].log_id)
    assert minor_fall.safety_reminder == FALL_REMINDER
    assert minor_fall.safety_advice is not None
    assert minor_fall.safety_advice["message_key"] == "fall_after_spine_surgery"
