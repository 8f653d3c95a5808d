"""GET /api/v1/me/plan/: the phase and exercises due on a day, across phase boundaries,
dosage changes and time zones."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from patients.models import AuditEvent
from programs import services
from programs.models import ExerciseLog, ProgressionProposal
from tests.programs.conftest import START, exercises_of

pytestmark = pytest.mark.django_db

PLAN = "/api/v1/me/plan/"


def _plan(client, day: date | None = None):
    response = client.get(PLAN, {"date": day.isoformat()} if day else {})
    assert response.status_code == 200, response.content
    return response.json()


def _names(body) -> list[str]:
    return [item["name"] for item in body["exercises"]]


def _move_to_phase_2(assignment, clinician, on: date) -> None:
    p1, p2 = assignment.phases.order_by("position")[:2]
    proposal = ProgressionProposal.objects.create(
        assignment=assignment, from_phase=p1, to_phase=p2, evaluated_on=on, basis={}
    )
    services.proposal_accept(proposal=proposal, by=clinician, on=on, today=on)


def test_it_shows_the_first_phase_and_the_exercises_due(patient_client, assignment):
    body = _plan(patient_client, START)
    assert body["date"] == "2026-03-02"
    assert body["assignment"]["id"] == str(assignment.pk)
    assert body["phase"]["index"] == 1
    assert body["week"] == 1
    assert body["planned_phase_end"] == "2026-03-15"
    # Day 0: both A (daily) and B (3x/week) are due.
    assert _names(body) == ["P1 exercise 1", "P1 exercise 2"]
    first = body["exercises"][0]
    assert first["dosage"] == {
        "sets": 3,
        "reps": 10,
        "hold_seconds": None,
        "duration_minutes": None,
        "sessions_per_week": 7,
        "notes": "",
        "effective_from": "2026-03-02",
    }
    assert first["due"] is True
    assert first["done"] is False


def test_it_lists_only_the_daily_exercise_on_a_rest_day_for_the_other(patient_client, assignment):
    body = _plan(patient_client, START + timedelta(days=1))  # B is due on days 0, 2, 4
    assert _names(body) == ["P1 exercise 1"]


def test_it_marks_an_exercise_done_from_the_exercise_logs(patient_client, patient, assignment):
    a, b = exercises_of(assignment, 1)
    log = ExerciseLog.objects.create(
        patient=patient, assigned_exercise=a, date=START, sets_done=3, pain_during=1, difficulty=3
    )
    # B logged on a day it was not due: listed, marked as not due.
    ExerciseLog.objects.create(
        patient=patient,
        assigned_exercise=b,
        date=START + timedelta(days=1),
        sets_done=3,
        pain_during=1,
        difficulty=3,
    )
    body = _plan(patient_client, START)
    assert [(e["name"], e["done"]) for e in body["exercises"]] == [
        ("P1 exercise 1", True),
        ("P1 exercise 2", False),
    ]
    assert body["exercises"][0]["log_ids"] == [str(log.pk)]
    body = _plan(patient_client, START + timedelta(days=1))
    assert [(e["name"], e["due"], e["done"]) for e in body["exercises"]] == [
        ("P1 exercise 1", True, False),
        ("P1 exercise 2", False, True),
    ]


def test_it_stays_in_a_phase_past_its_planned_length_until_a_clinician_moves_it(
    patient_client, assignment
):
    body = _plan(patient_client, START + timedelta(days=20))
    assert body["phase"]["index"] == 1
    assert body["week"] == 3


def test_it_switches_phase_on_the_day_an_accepted_progression_starts(
    patient_client, assignment, clinician
):
    boundary = START + timedelta(days=16)  # Wednesday 18 March
    _move_to_phase_2(assignment, clinician, boundary)

    before = _plan(patient_client, boundary - timedelta(days=1))
    after = _plan(patient_client, boundary)
    assert before["phase"]["index"] == 1
    assert before["week"] == 3
    assert after["phase"]["index"] == 2
    assert after["week"] == 1
    assert _names(after) == ["P2 exercise 1"]
    # Earlier days keep their history.
    assert _plan(patient_client, START)["phase"]["index"] == 1


def test_it_shows_the_dosage_in_force_on_each_day(patient_client, assignment, clinician):
    a, _ = exercises_of(assignment, 1)
    services.dosage_change(
        assigned_exercise=a,
        by=clinician,
        effective_from=START + timedelta(days=7),
        changes={"sets": 4, "reps": 12},
        today=START,
    )
    day6 = _plan(patient_client, START + timedelta(days=6))["exercises"][0]["dosage"]
    day7 = _plan(patient_client, START + timedelta(days=7))["exercises"][0]["dosage"]
    assert (day6["sets"], day6["reps"], day6["effective_from"]) == (3, 10, "2026-03-02")
    assert (day7["sets"], day7["reps"], day7["effective_from"]) == (4, 12, "2026-03-09")


def test_it_has_no_plan_before_the_program_starts(patient_client, assignment):
    body = _plan(patient_client, START - timedelta(days=1))
    assert body["assignment"] is None
    assert body["phase"] is None
    assert body["exercises"] == []


def test_it_has_no_plan_without_a_program(patient_client):
    body = _plan(patient_client, START)
    assert body == {
        "date": "2026-03-02",
        "assignment": None,
        "phase": None,
        "week": None,
        "planned_phase_end": None,
        "exercises": [],
    }


@pytest.mark.parametrize(
    ("zone", "local_date", "phase"),
    [
        # 2026-03-17 10:30 UTC is already the 18th in Kiritimati (UTC+14), still the 16th
        # in Pago Pago (UTC-11) and the 17th in London.
        ("Pacific/Kiritimati", "2026-03-18", 2),
        ("Europe/London", "2026-03-17", 1),
        ("Pacific/Pago_Pago", "2026-03-16", 1),
    ],
)
def test_it_defaults_to_the_patients_local_today_across_time_zones(
    api_client_for, patient, assignment, clinician, freeze, zone, local_date, phase
):
    patient.timezone = zone
    patient.save()
    _move_to_phase_2(assignment, clinician, date(2026, 3, 18))
    freeze(datetime(2026, 3, 17, 10, 30, tzinfo=UTC))
    body = _plan(api_client_for(patient.user))
    assert body["date"] == local_date
    assert body["phase"]["index"] == phase


def test_it_rejects_a_malformed_date(patient_client, assignment):
    response = patient_client.get(PLAN, {"date": "17/03/2026"})
    assert response.status_code == 400
    assert "date" in response.json()


@pytest.mark.parametrize("day", ["0001-01-01", "1999-12-31", "2027-03-04", "9999-12-31"])
def test_it_rejects_a_date_outside_sane_bounds(patient_client, assignment, frozen_at_start, day):
    response = patient_client.get(PLAN, {"date": day})
    assert response.status_code == 400
    assert "date" in response.json()


def test_it_answers_for_a_date_up_to_a_year_ahead(patient_client, assignment, frozen_at_start):
    assert patient_client.get(PLAN, {"date": "2027-03-03"}).status_code == 200
    assert patient_client.get(PLAN, {"date": "2000-01-01"}).status_code == 200


def test_it_audits_reading_the_plan(patient_client, patient, assignment):
    _plan(patient_client, START)
    event = AuditEvent.objects.get(object_type="program_plan")
    assert event.patient_id == patient.pk
    assert event.action == AuditEvent.Action.READ
    assert event.actor == patient.user


def test_it_refuses_clinicians_and_anonymous_callers(clinician_client, anon_client):
    assert clinician_client.get(PLAN).status_code == 403
    assert anon_client.get(PLAN).status_code == 401


def test_it_shows_a_patient_only_their_own_plan(
    patient_client,
    other_patient_client,
    other_patient,
    other_clinic_clinician,
    other_clinic,
    assignment,
):
    from tests.programs.factories import make_template

    theirs = services.assignment_create(
        patient=other_patient,
        template=make_template(clinic=other_clinic, name="Theirs", phases=[(2, [7, 7, 7])]),
        by=other_clinic_clinician,
        start_date=START,
        today=START,
    )
    other = _plan(other_patient_client, START)
    mine = _plan(patient_client, START)
    assert other["assignment"]["id"] == str(theirs.pk)
    assert mine["assignment"]["id"] == str(assignment.pk)
    their_ids = {str(e.pk) for e in exercises_of(theirs, 1)}
    assert {item["id"] for item in other["exercises"]} == their_ids
    assert not their_ids & {item["id"] for item in mine["exercises"]}


def test_it_answers_304_to_a_plan_poll_when_nothing_changed(patient_client, assignment):
    first = patient_client.get(PLAN, {"date": START.isoformat()})
    etag = first["ETag"]
    again = patient_client.get(PLAN, {"date": START.isoformat()}, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304
    # Another day is another answer, so another ETag.
    other_day = (START + timedelta(days=1)).isoformat()
    assert patient_client.get(PLAN, {"date": other_day}, HTTP_IF_NONE_MATCH=etag).status_code == 200
