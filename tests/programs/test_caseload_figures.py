"""The program figures of the caseload rows (`adherence_7d`, `current_phase`) through the
API, against hand-counted weeks, and their query count as the caseload grows."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework import serializers

from patients.models import Clinician, Patient
from programs import services
from programs.models import AssignedPhase, ExerciseLog, ProgramAssignment
from programs.selectors import caseload_program_figures
from rehab.models import Alert, DailyLog
from rehab.selectors.caseload import caseload_list
from rehab.views.caseload import ROW_FIELDS, CaseloadRowSerializer
from tests.factories import PatientFactory
from tests.programs.conftest import START, exercises_of

pytestmark = pytest.mark.django_db

CASELOAD = "/api/v1/clinician/patients/"
# A Thursday, 10 days into the program: adherence_7d covers 2026-03-05 .. 2026-03-11.
TODAY = date(2026, 3, 12)


@pytest.fixture(autouse=True)
def _today(freeze) -> None:
    freeze(datetime(2026, 3, 12, 12, 0, tzinfo=UTC))


def _log(patient: Patient, exercise, day: date) -> None:
    ExerciseLog.objects.create(
        patient=patient,
        assigned_exercise=exercise,
        date=day,
        sets_done=3,
        reps_done=10,
        pain_during=1,
        difficulty=3,
    )


def _on_program(clinician: Clinician, template, patient: Patient | None = None):
    patient = patient or PatientFactory.create(clinic=clinician.clinic, care_team=[clinician])
    assignment = services.assignment_create(
        patient=patient, template=template, by=clinician, start_date=START, today=START
    )
    return patient, assignment


def _rows(client) -> dict[str, dict[str, Any]]:
    response = client.get(CASELOAD, {"page_size": 200})
    assert response.status_code == 200
    return {row["id"]: row for row in response.json()["results"]}


def test_it_shows_hand_counted_adherence_and_the_phase_in_the_caseload(
    clinician_client, clinician, patient, template
):
    # Phase 1 from 2026-03-02: A daily, B 3x/week (due on days 0, 2, 4 of each 7 from the
    # start). In 2026-03-05 .. 03-11, A is due 7 times; B on 03-06, 03-09, 03-11: 3 times.
    _, assignment = _on_program(clinician, template, patient)
    a, b = exercises_of(assignment, 1)
    _log(patient, a, date(2026, 3, 5))
    _log(patient, a, date(2026, 3, 6))
    _log(patient, a, date(2026, 3, 6))  # twice in a day is one session
    _log(patient, a, date(2026, 3, 8))
    _log(patient, a, date(2026, 3, 12))  # today: not over yet, not counted
    _log(patient, b, date(2026, 3, 4))  # before the window
    _log(patient, b, date(2026, 3, 6))
    _log(patient, b, date(2026, 3, 7))  # not a due day: still counts
    _log(patient, b, date(2026, 3, 10))
    _log(patient, b, date(2026, 3, 11))  # a 4th session of B: capped at the 3 prescribed
    # Done: A 3 of 7, B 3 of 3 -> 6 / 10.

    # Moved to phase 2 on 03-09: A 4 times (03-05..08), B once (03-06), then C daily 3 times.
    # Done: A once, C twice -> 3 / 8.
    moved, moved_assignment = _on_program(clinician, template)
    AssignedPhase.objects.filter(assignment=moved_assignment, position=2).update(
        started_on=date(2026, 3, 9)
    )
    (c,) = exercises_of(moved_assignment, 2)
    _log(moved, exercises_of(moved_assignment, 1)[0], date(2026, 3, 5))
    _log(moved, c, date(2026, 3, 9))
    _log(moved, c, date(2026, 3, 10))

    # Ended before the window: nothing prescribed, no phase.
    ended, ended_assignment = _on_program(clinician, template)
    ProgramAssignment.objects.filter(pk=ended_assignment.pk).update(ended_on=date(2026, 3, 4))
    never = PatientFactory.create(clinic=clinician.clinic, care_team=[clinician])

    rows = _rows(clinician_client)
    assert (rows[str(patient.pk)]["adherence_7d"], rows[str(patient.pk)]["current_phase"]) == (
        0.6,
        "Phase 1",
    )
    assert (rows[str(moved.pk)]["adherence_7d"], rows[str(moved.pk)]["current_phase"]) == (
        0.375,
        "Phase 2",
    )
    for nobody in (ended, never):
        assert (rows[str(nobody.pk)]["adherence_7d"], rows[str(nobody.pk)]["current_phase"]) == (
            None,
            None,
        )


def test_it_keeps_the_caseload_query_count_flat_with_patients_on_programs(
    clinician_client, clinician, template, django_assert_num_queries
):
    def grow(n: int) -> None:
        for _ in range(n):
            patient, assignment = _on_program(clinician, template)
            a, b = exercises_of(assignment, 1)
            for offset in range(3, 10):
                _log(patient, a, START + timedelta(days=offset))
            _log(patient, b, START + timedelta(days=4))

    grow(2)
    with CaptureQueriesContext(connection) as small:
        assert len(_rows(clinician_client)) == 2
    grow(8)
    with django_assert_num_queries(len(small.captured_queries)):
        rows = _rows(clinician_client)
    assert len(rows) == 10
    assert {row["adherence_7d"] for row in rows.values()} == {0.8}  # 7 + 1 of 7 + 3
    assert {row["current_phase"] for row in rows.values()} == {"Phase 1"}


def test_the_caseload_rows_are_drfs_own_field_by_field_answer(
    clinician_client, clinician, patient, template
):
    """`CaseloadRowSerializer.to_representation` writes the row out by hand; DRF's walk of
    the declared fields (which also give the schema) must give the same rows, key order
    included, for rows with and without logs, alerts, a program and an account."""
    _, assignment = _on_program(clinician, template, patient)
    a, b = exercises_of(assignment, 1)
    for offset in (3, 4, 6, 9):
        _log(patient, a, START + timedelta(days=offset))
    _log(patient, b, START + timedelta(days=4))
    # Baseline and current windows of daily logs: the pain figures and MCID are not None.
    days = [START - timedelta(days=20 - i) for i in range(3)] + [
        TODAY - timedelta(days=i) for i in range(3)
    ]
    DailyLog.objects.bulk_create(
        DailyLog(patient=patient, date=day, pain=pain)
        for day, pain in zip(days, [8, 7, 8, 3, 2, 3], strict=True)
    )
    Alert.objects.create(
        patient=patient,
        rule="RF-TH-01",
        rule_version=1,
        severity="urgent",
        last_fired_at=datetime(2026, 3, 12, 9, 0, tzinfo=UTC),
        opened_at=datetime(2026, 3, 12, 9, 0, tzinfo=UTC),
    )
    _, ended_assignment = _on_program(clinician, template)
    ProgramAssignment.objects.filter(pk=ended_assignment.pk).update(ended_on=date(2026, 3, 4))
    invited = PatientFactory.create(
        clinic=clinician.clinic, care_team=[clinician], affected_side="left"
    )
    Patient.objects.filter(pk=invited.pk).update(user=None)  # not signed up yet

    response = clinician_client.get(CASELOAD, {"page_size": 200})
    assert response.status_code == 200
    rows = response.json()["results"]

    page = list(caseload_list(user=clinician.user).values(*ROW_FIELDS))
    programs = caseload_program_figures(
        [row["id"] for row in page], today_by_patient={row["id"]: row["local_date"] for row in page}
    )
    serializer = CaseloadRowSerializer(
        context={"adherence": programs.adherence_7d, "phases": programs.phases}
    )
    expected = [
        json.loads(json.dumps(serializers.Serializer.to_representation(serializer, row)))
        for row in page
    ]
    assert rows == expected
    assert [list(row) for row in rows] == [list(row) for row in expected]
    by_id = {row["id"]: row for row in rows}
    assert by_id[str(patient.pk)]["open_alerts"]["urgent"] == 1
    assert by_id[str(patient.pk)]["pain_change_pct"] is not None
    assert by_id[str(patient.pk)]["adherence_7d"] is not None
    assert {row["registered"] for row in rows} == {True, False}
