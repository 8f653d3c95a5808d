"""Adherence and current phase: the endpoints and the set-based caseload selectors."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from patients.models import AuditEvent
from programs import selectors, services
from programs.models import ExerciseLog
from tests.factories import PatientFactory
from tests.programs.conftest import START, exercises_of

pytestmark = pytest.mark.django_db

ME = "/api/v1/me/adherence/"


def _log(patient, exercise, day: date) -> None:
    ExerciseLog.objects.create(
        patient=patient,
        assigned_exercise=exercise,
        date=day,
        sets_done=3,
        pain_during=1,
        difficulty=3,
    )


@pytest.fixture
def two_weeks_logged(patient, assignment):
    """Week 1 (2-8 March): A daily, B never -> 7/10. Week 2 (9-15): A on 5 days, B on 4
    days (capped at 3) -> 8/10."""
    a, b = exercises_of(assignment, 1)
    for n in range(7):
        _log(patient, a, START + timedelta(days=n))
    for n in range(7, 12):
        _log(patient, a, START + timedelta(days=n))
    for n in range(7, 11):
        _log(patient, b, START + timedelta(days=n))
    return assignment


def test_it_answers_the_patients_weekly_adherence(
    patient_client, freeze, two_weeks_logged, patient
):
    freeze(datetime(2026, 3, 16, 12, tzinfo=UTC))
    response = patient_client.get(ME, {"weeks": 3})
    assert response.status_code == 200
    data = response.json()
    assert data["today"] == "2026-03-16"
    assert data["adherence_7d"] == 0.8
    assert data["weeks"] == [
        {"start": "2026-03-09", "end": "2026-03-15", "prescribed": 10, "done": 8, "adherence": 0.8},
        {"start": "2026-03-02", "end": "2026-03-08", "prescribed": 10, "done": 7, "adherence": 0.7},
        {"start": "2026-02-23", "end": "2026-03-01", "prescribed": 0, "done": 0, "adherence": None},
    ]
    event = AuditEvent.objects.get(object_type="adherence")
    assert event.patient_id == patient.pk


def test_it_counts_the_new_dosage_from_its_day(patient, assignment, clinician):
    b = exercises_of(assignment, 1)[1]
    # B goes from 3 to 7 sessions a week from Thursday 12 March (day 10 of the phase).
    services.dosage_change(
        assigned_exercise=b,
        by=clinician,
        effective_from=date(2026, 3, 12),
        changes={"sessions_per_week": 7},
        today=START,
    )
    # 9-15 March: A 7; B due 9 and 11 (old pattern), then daily 12-15 (4) = 6.
    result = selectors.adherence_weeks_for_patients([patient.pk], weeks=1, on=date(2026, 3, 16))
    assert result[patient.pk][0].prescribed == 13


@pytest.mark.parametrize("weeks", ["0", "27", "two"])
def test_it_rejects_a_bad_number_of_weeks(patient_client, weeks):
    response = patient_client.get(ME, {"weeks": weeks})
    assert response.status_code == 400
    assert "weeks" in response.json()


def test_it_answers_the_clinicians_twin_for_their_patient(
    clinician_client, patient, freeze, two_weeks_logged
):
    freeze(datetime(2026, 3, 16, 12, tzinfo=UTC))
    response = clinician_client.get(
        f"/api/v1/clinician/patients/{patient.pk}/adherence/", {"weeks": 1}
    )
    assert response.status_code == 200
    assert response.json()["adherence_7d"] == 0.8


def test_it_gives_adherence_7d_for_a_caseload(patient, two_weeks_logged, clinic):
    nobody = PatientFactory.create(clinic=clinic)
    result = selectors.adherence_7d_for_patients([patient.pk, nobody.pk], on=date(2026, 3, 16))
    assert result == {patient.pk: 0.8, nobody.pk: None}


def test_it_uses_each_patients_own_today(patient, two_weeks_logged):
    result = selectors.adherence_7d_for_patients(
        [patient.pk], today_by_patient={patient.pk: date(2026, 3, 9)}
    )
    assert result[patient.pk] == 0.7


def test_it_defaults_to_each_patients_local_today(patient, two_weeks_logged, freeze):
    # 16 March 10:30 UTC: the 16th in London, still the 15th in Pago Pago.
    freeze(datetime(2026, 3, 16, 10, 30, tzinfo=UTC))
    assert selectors.adherence_7d_for_patients([patient.pk])[patient.pk] == 0.8
    patient.timezone = "Pacific/Pago_Pago"
    patient.save()
    # Window 8-14 March: A done on 8-13 = 6 of 7; B due 9, 11, 13 and done 9-12 = 3 of 3.
    assert selectors.adherence_7d_for_patients([patient.pk])[patient.pk] == 0.9


def _caseload(clinic, clinician, template, n: int) -> list[Any]:
    patients = []
    for _ in range(n):
        p = PatientFactory.create(clinic=clinic)
        assignment = services.assignment_create(
            patient=p, template=template, by=clinician, start_date=START, today=START
        )
        for exercise in exercises_of(assignment, 1):
            _log(p, exercise, START + timedelta(days=8))
        patients.append(p)
    return patients


def test_it_computes_a_caseloads_adherence_in_constant_queries(
    clinic, clinician, template, django_assert_num_queries
):
    small = [p.pk for p in _caseload(clinic, clinician, template, 1)]
    large = [p.pk for p in _caseload(clinic, clinician, template, 12)]
    # 1 time zones, 1 assignments with their phases, exercises and dosages, 1 logs.
    with django_assert_num_queries(3):
        assert selectors.adherence_7d_for_patients(small)
    with django_assert_num_queries(3):
        result = selectors.adherence_7d_for_patients(large)
    assert len(result) == 12
    with django_assert_num_queries(2):  # the day given: no time zones to read
        selectors.adherence_7d_for_patients(large, on=date(2026, 3, 16))


def test_it_gives_the_current_phase_for_a_caseload_in_constant_queries(
    clinic, clinician, template, patient, django_assert_num_queries
):
    patients = [p.pk for p in _caseload(clinic, clinician, template, 10)] + [patient.pk]
    with django_assert_num_queries(1):  # the programs, in one statement
        result = selectors.current_phase_for_patients(patients, on=date(2026, 3, 11))
    assert result[patient.pk] is None
    phase = result[patients[0]]
    assert phase is not None
    assert (phase["phase_index"], phase["phase_name"], phase["week"]) == (1, "Phase 1", 2)
    assert "assignment_id" in phase
    with django_assert_num_queries(2):  # plus one for the time zones
        selectors.current_phase_for_patients(patients)


def test_it_gives_a_caseload_pages_program_figures_from_one_fetch(
    clinic, clinician, template, patient, two_weeks_logged, django_assert_num_queries
):
    patients = [p.pk for p in _caseload(clinic, clinician, template, 6)] + [patient.pk]
    nobody = PatientFactory.create(clinic=clinic)
    ids = [*patients, nobody.pk]
    for on in (START, START + timedelta(days=8), date(2026, 3, 16), date(2026, 6, 1)):
        days = dict.fromkeys(ids, on)
        # 1 programs (assignments to dosages), 1 logs: no time zones, the plans fetched once.
        with django_assert_num_queries(2):
            figures = selectors.caseload_program_figures(ids, today_by_patient=days)
        assert figures.adherence_7d == selectors.adherence_7d_for_patients(ids, on=on)
        assert figures.phases == selectors.current_phase_for_patients(ids, on=on)
    assert figures.adherence_7d[nobody.pk] is None
    assert figures.phases[nobody.pk] is None
