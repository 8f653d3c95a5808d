"""Clinician endpoints: library, templates, assigning, the patient's program, dosage."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from patients.models import AuditEvent
from programs.models import (
    AssignedExercise,
    DosageVersion,
    PrescribedExercise,
    ProgramAssignment,
    ProgramTemplate,
)
from tests.programs.conftest import START, exercises_of
from tests.programs.factories import ExerciseFactory, make_template

pytestmark = pytest.mark.django_db

EXERCISES = "/api/v1/clinician/exercises/"
TEMPLATES = "/api/v1/clinician/program-templates/"


def assign_url(patient) -> str:
    return f"/api/v1/clinician/patients/{patient.pk}/assignments/"


def program_url(patient) -> str:
    return f"/api/v1/clinician/patients/{patient.pk}/program/"


def dosage_url(exercise) -> str:
    return f"/api/v1/clinician/assigned-exercises/{exercise.pk}/dosage/"


# --------------------------------------------------------------------------- library


def test_it_lists_the_global_library_and_the_clinics_own(
    clinician_client, clinic, other_clinic, seeded_templates
):
    ExerciseFactory.create(clinic=clinic, name="Our own glide", category="nerve_glide")
    ExerciseFactory.create(clinic=other_clinic, name="Their secret glide", category="nerve_glide")
    response = clinician_client.get(EXERCISES, {"category": "nerve_glide", "page_size": 200})
    assert response.status_code == 200
    names = [row["name"] for row in response.json()["results"]]
    assert "Our own glide" in names
    assert "Sciatic nerve glide (slider)" in names
    assert "Their secret glide" not in names
    row = next(r for r in response.json()["results"] if r["slug"] == "sciatic-nerve-glide")
    assert row["default_dosage"]["reps"] == 10
    assert row["clinic_id"] is None


def test_it_rejects_an_unknown_category_filter(clinician_client):
    response = clinician_client.get(EXERCISES, {"category": "yoga"})
    assert response.status_code == 400
    assert "category" in response.json()


def test_it_lists_global_and_own_clinic_templates(
    clinician_client, clinic, other_clinic, seeded_templates
):
    make_template(clinic=clinic, name="Ours", phases=[(2, [7])])
    make_template(clinic=other_clinic, name="Theirs", phases=[(2, [7])])
    response = clinician_client.get(TEMPLATES)
    assert response.status_code == 200
    rows = {row["name"]: row for row in response.json()["results"]}
    assert set(rows) >= {"Ours", "Deep gluteal syndrome, 8-12 weeks", "Sciatica, 12 weeks"}
    assert "Theirs" not in rows
    assert rows["Sciatica, 12 weeks"]["phase_count"] == 3
    assert rows["Sciatica, 12 weeks"]["total_weeks"] == 12


def test_it_shows_a_template_with_its_phases_and_dosage(clinician_client, seeded_templates):
    template = seeded_templates["deep-gluteal-syndrome"]
    response = clinician_client.get(f"{TEMPLATES}{template.pk}/")
    assert response.status_code == 200
    phases = response.json()["phases"]
    assert [p["name"] for p in phases] == [
        "Calm and glide",
        "Recruit",
        "Load in weight-bearing",
        "Functional single-leg",
    ]
    first = phases[0]["exercises"][0]
    assert first["name"] == "Figure-4 stretch"
    assert first["dosage"]["hold_seconds"] == 30
    assert first["dosage"]["sessions_per_week"] == 7


def test_it_hides_another_clinics_template(other_clinic_clinician_client, clinic):
    template = make_template(clinic=clinic, name="Ours", phases=[(2, [7])])
    assert other_clinic_clinician_client.get(f"{TEMPLATES}{template.pk}/").status_code == 404


def _template_body(exercise_ids) -> dict[str, Any]:
    return {
        "name": "Post-prolotherapy hip",
        "condition": "Deep gluteal syndrome",
        "phases": [
            {
                "name": "Protect",
                "goals": "Settle after the injection.",
                "length_weeks": 2,
                "exercises": [
                    {
                        "exercise_id": str(exercise_ids[0]),
                        "sets": 3,
                        "hold_seconds": 30,
                        "sessions_per_week": 7,
                    },
                ],
            },
            {
                "name": "Load",
                "length_weeks": 4,
                "exercises": [
                    {
                        "exercise_id": str(exercise_ids[1]),
                        "sets": 3,
                        "reps": 12,
                        "sessions_per_week": 3,
                        "notes": "Slow.",
                    },
                    {
                        "exercise_id": str(exercise_ids[0]),
                        "sets": 2,
                        "hold_seconds": 45,
                        "sessions_per_week": 3,
                    },
                ],
            },
        ],
    }


def test_it_builds_a_clinic_template(clinician_client, clinician, clinic):
    a, b = ExerciseFactory.create(), ExerciseFactory.create(clinic=clinic)
    response = clinician_client.post(TEMPLATES, _template_body([a.pk, b.pk]))
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["clinic_id"] == str(clinic.pk)
    assert [p["name"] for p in data["phases"]] == ["Protect", "Load"]
    assert [e["exercise_id"] for e in data["phases"][1]["exercises"]] == [str(b.pk), str(a.pk)]
    template = ProgramTemplate.objects.get(pk=data["id"])
    assert template.created_by == clinician
    assert PrescribedExercise.objects.filter(phase__template=template).count() == 3


def test_it_audits_building_a_template(clinician_client, clinician):
    a, b = ExerciseFactory.create(), ExerciseFactory.create()
    response = clinician_client.post(TEMPLATES, _template_body([a.pk, b.pk]))
    assert response.status_code == 201
    event = AuditEvent.objects.get(object_type="program_template")
    assert event.action == AuditEvent.Action.CREATE
    assert event.object_id == response.json()["id"]
    assert event.patient_id is None
    assert event.actor == clinician.user
    assert event.changes == {"name": "Post-prolotherapy hip", "phases": 2, "exercises": 3}
    # A refused duplicate builds nothing, so it audits nothing either.
    assert clinician_client.post(TEMPLATES, _template_body([a.pk, b.pk])).status_code == 409
    assert AuditEvent.objects.filter(object_type="program_template").count() == 1


def test_it_answers_409_for_a_template_name_the_clinic_already_has(clinician_client):
    a, b = ExerciseFactory.create(), ExerciseFactory.create()
    first = clinician_client.post(TEMPLATES, _template_body([a.pk, b.pk]))
    again = clinician_client.post(TEMPLATES, _template_body([a.pk, b.pk]))
    assert again.status_code == 409
    assert again.json()["existing_id"] == first.json()["id"]


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda b: b.pop("name"), ["name"]),
        (lambda b: b.update(phases=[]), ["phases"]),
        (lambda b: b.update(colour="red"), ["colour"]),
        (lambda b: b["phases"][0].update(length_weeks=0), ["phases", 0, "length_weeks"]),
        (lambda b: b["phases"][0].update(length_weeks="2"), ["phases", 0, "length_weeks"]),
        (lambda b: b["phases"][0].update(exercises=[]), ["phases", 0, "exercises"]),
        (lambda b: b["phases"][1].update(extra=1), ["phases", 1, "extra"]),
        (
            lambda b: b["phases"][1]["exercises"][0].update(sets=0),
            ["phases", 1, "exercises", 0, "sets"],
        ),
        (
            lambda b: b["phases"][1]["exercises"][0].update(sessions_per_week=8),
            ["phases", 1, "exercises", 0, "sessions_per_week"],
        ),
        (
            lambda b: b["phases"][1]["exercises"][0].update(hold_seconds=30),
            ["phases", 1, "exercises", 0, "reps"],
        ),
        (
            lambda b: b["phases"][1]["exercises"][0].pop("reps"),
            ["phases", 1, "exercises", 0, "reps"],
        ),
        (
            lambda b: b["phases"][0]["exercises"][0].update(
                exercise_id="00000000-0000-0000-0000-000000000000"
            ),
            ["phases", 0, "exercises", 0, "exercise_id"],
        ),
    ],
)
def test_it_rejects_a_bad_template_naming_the_field(clinician_client, mutate, path):
    body = _template_body([ExerciseFactory.create().pk, ExerciseFactory.create().pk])
    mutate(body)
    response = clinician_client.post(TEMPLATES, body)
    assert response.status_code == 400, response.content
    errors = response.json()
    for key in path:
        errors = errors[str(key)]  # DRF keys list items' errors by index
    assert errors
    assert not ProgramTemplate.objects.filter(name="Post-prolotherapy hip").exists()


def test_it_rejects_another_clinics_exercise_in_a_template(clinician_client, other_clinic):
    theirs = ExerciseFactory.create(clinic=other_clinic)
    body = _template_body([theirs.pk, ExerciseFactory.create().pk])
    response = clinician_client.post(TEMPLATES, body)
    assert response.status_code == 400
    errors = response.json()["phases"]["0"]["exercises"]["0"]
    assert errors["exercise_id"] == ["Unknown exercise."]


# --------------------------------------------------------------------------- assigning


def test_it_assigns_a_copy_of_a_template(
    clinician_client, clinician, patient, seeded_templates, frozen_at_start
):
    template = seeded_templates["sciatica"]
    response = clinician_client.post(
        assign_url(patient), {"template_id": str(template.pk), "start_date": "2026-03-02"}
    )
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["patient_id"] == str(patient.pk)
    assert data["status"] == "active"
    assert data["pain_ceiling"] == 3
    assert data["current_phase"]["phase_index"] == 1
    assert data["current_phase"]["week"] == 1
    assert [p["name"] for p in data["phases"]] == [
        "Settle and move",
        "Load and mobilise",
        "Function and return",
    ]
    assert [p["started_on"] for p in data["phases"]] == ["2026-03-02", None, None]
    walking = data["phases"][0]["exercises"][0]
    assert walking["name"] == "Walking"
    assert walking["dosage"]["duration_minutes"] == 5
    assert walking["dosage_history"][0]["effective_from"] == "2026-03-02"
    assignment = ProgramAssignment.objects.get(pk=data["id"])
    assert assignment.assigned_by == clinician
    event = AuditEvent.objects.get(object_type="program_assignment", action="create")
    assert event.patient_id == patient.pk


def test_it_starts_today_by_default(clinician_client, patient, template, frozen_at_start):
    response = clinician_client.post(assign_url(patient), {"template_id": str(template.pk)})
    assert response.status_code == 201
    assert response.json()["start_date"] == "2026-03-02"


def test_it_keeps_the_patients_copy_when_the_template_changes_later(
    clinician_client, patient, template, assignment
):
    PrescribedExercise.objects.filter(phase__template=template).update(sets=9, reps=99)
    template.phases.filter(position=1).update(name="Renamed", length_weeks=6)
    ExerciseFactory._meta.model.objects.filter(
        pk__in=PrescribedExercise.objects.filter(phase__template=template).values("exercise")
    ).update(name="Reworded", instructions="Reworded")
    template.delete()

    assignment.refresh_from_db()
    phase = assignment.phases.get(position=1)
    assert (phase.name, phase.length_weeks) == ("Phase 1", 2)
    exercise = phase.exercises.get(position=1)
    assert exercise.name == "P1 exercise 1"
    version = exercise.dosage_versions.get()
    assert (version.sets, version.reps) == (3, 10)


def test_it_refuses_a_second_active_program(
    clinician_client, patient, template, assignment, frozen_at_start
):
    response = clinician_client.post(assign_url(patient), {"template_id": str(template.pk)})
    assert response.status_code == 409
    assert response.json()["existing_id"] == str(assignment.pk)


def test_it_assigns_again_once_the_program_ended(
    clinician_client, patient, template, assignment, frozen_at_start
):
    end = clinician_client.post(
        f"/api/v1/clinician/assignments/{assignment.pk}/end/", {"on": "2026-03-02"}
    )
    assert end.status_code == 200
    assert end.json()["status"] == "ended"
    response = clinician_client.post(
        assign_url(patient), {"template_id": str(template.pk), "start_date": "2026-03-02"}
    )
    assert response.status_code == 201
    assert ProgramAssignment.objects.filter(patient=patient).count() == 2


def test_it_enforces_one_active_program_in_the_database(patient, template, assignment):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        ProgramAssignment.objects.create(
            patient=patient, template=template, name="x", start_date=START
        )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"template_id": None}, "template_id"),
        ({"template_id": "nope"}, "template_id"),
        ({"template_id": "00000000-0000-0000-0000-000000000000"}, "template_id"),
        ({"start_date": "2026-02-01"}, "start_date"),  # more than 14 days ago
        ({"start_date": "2026-07-01"}, "start_date"),  # more than 90 days ahead
        ({"start_date": "soon"}, "start_date"),
        ({"pain_ceiling": 11}, "pain_ceiling"),
        ({"pain_ceiling": "3"}, "pain_ceiling"),
        ({"auto_progress": True}, "auto_progress"),
    ],
)
def test_it_rejects_a_bad_assignment(
    clinician_client, patient, template, frozen_at_start, body, field
):
    if "template_id" not in body:
        body = {"template_id": str(template.pk), **body}
    response = clinician_client.post(assign_url(patient), body)
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not ProgramAssignment.objects.exists()


def test_it_requires_a_template(clinician_client, patient):
    response = clinician_client.post(assign_url(patient), {})
    assert response.status_code == 400
    assert response.json()["template_id"] == ["This field is required."]


def test_it_refuses_another_clinics_template_for_assignment(
    clinician_client, patient, other_clinic, frozen_at_start
):
    theirs = make_template(clinic=other_clinic, phases=[(2, [7])])
    response = clinician_client.post(assign_url(patient), {"template_id": str(theirs.pk)})
    assert response.status_code == 400
    assert response.json()["template_id"] == ["Unknown template."]


# --------------------------------------------------------------------------- program view


def test_it_shows_the_patients_program_on_a_date(clinician_client, patient, assignment):
    response = clinician_client.get(program_url(patient), {"date": "2026-03-09"})
    assert response.status_code == 200
    data = response.json()
    assert data["date"] == "2026-03-09"
    program = data["program"]
    assert program["id"] == str(assignment.pk)
    assert program["current_phase"]["week"] == 2
    assert program["phases"][0]["planned_end"] == "2026-03-15"
    assert program["adherence_7d"] == 0.0
    assert AuditEvent.objects.filter(object_type="program_assignment", action="read").exists()


@pytest.mark.parametrize("day", ["0001-01-01", "1999-12-31", "9999-12-31"])
def test_it_rejects_a_program_date_outside_sane_bounds(
    clinician_client, patient, assignment, frozen_at_start, day
):
    # Near year 1 the adherence window (a week before the date) used to overflow: a 500.
    response = clinician_client.get(program_url(patient), {"date": day})
    assert response.status_code == 400
    assert "date" in response.json()


def test_it_shows_no_program_for_a_patient_without_one(clinician_client, patient):
    response = clinician_client.get(program_url(patient))
    assert response.status_code == 200
    assert response.json()["program"] is None


def test_it_sets_a_per_assignment_pain_ceiling(clinician_client, assignment):
    url = f"/api/v1/clinician/assignments/{assignment.pk}/"
    response = clinician_client.patch(url, {"pain_ceiling": 5})
    assert response.status_code == 200
    assert response.json()["pain_ceiling"] == 5
    assert clinician_client.patch(url, {"pain_ceiling": 12}).status_code == 400
    assert clinician_client.patch(url, {"ceiling": 4}).status_code == 400
    event = AuditEvent.objects.get(object_type="program_assignment", action="update")
    assert event.changes == {"pain_ceiling": {"from": 3, "to": 5}}


def test_it_audits_ending_a_program(clinician_client, clinician, assignment, frozen_at_start):
    url = f"/api/v1/clinician/assignments/{assignment.pk}/end/"
    assert clinician_client.post(url, {"on": "2026-03-09"}).status_code == 200
    event = AuditEvent.objects.get(object_type="program_assignment", action="update")
    assert event.object_id == str(assignment.pk)
    assert event.patient_id == assignment.patient_id
    assert event.actor == clinician.user
    assert event.changes == {"ended_on": "2026-03-09"}


def test_it_refuses_to_end_a_program_in_the_past(clinician_client, assignment, frozen_at_start):
    url = f"/api/v1/clinician/assignments/{assignment.pk}/end/"
    response = clinician_client.post(url, {"on": "2026-03-01"})
    assert response.status_code == 400
    assert "on" in response.json()
    response = clinician_client.post(url, {"on": "9999-12-31"})
    assert response.status_code == 400
    assert "on" in response.json()
    assignment.refresh_from_db()
    assert assignment.ended_on is None


# --------------------------------------------------------------------------- dosage


def test_it_changes_dosage_from_a_date_keeping_earlier_days(
    clinician_client, assignment, frozen_at_start
):
    exercise = exercises_of(assignment, 1)[0]
    response = clinician_client.post(
        dosage_url(exercise), {"effective_from": "2026-03-09", "sets": 4, "notes": "Harder."}
    )
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["dosage"]["sets"] == 4
    assert data["dosage"]["reps"] == 10  # not sent: kept
    assert [(v["effective_from"], v["sets"]) for v in data["dosage_history"]] == [
        ("2026-03-02", 3),
        ("2026-03-09", 4),
    ]
    program = clinician_client.get(
        program_url(exercise.phase.assignment.patient), {"date": "2026-03-08"}
    )
    assert program.json()["program"]["phases"][0]["exercises"][0]["dosage"]["sets"] == 3
    event = AuditEvent.objects.get(object_type="dosage")
    assert event.changes["sets"] == {"from": 3, "to": 4}


def test_it_replaces_a_second_change_for_the_same_day(
    clinician_client, assignment, frozen_at_start
):
    exercise = exercises_of(assignment, 1)[0]
    clinician_client.post(dosage_url(exercise), {"effective_from": "2026-03-09", "sets": 4})
    clinician_client.post(dosage_url(exercise), {"effective_from": "2026-03-09", "sets": 5})
    assert list(
        DosageVersion.objects.filter(assigned_exercise=exercise).values_list(
            "effective_from", "sets"
        )
    ) == [(date(2026, 3, 2), 3), (date(2026, 3, 9), 5)]


def test_it_switches_units_when_the_old_one_is_cleared(
    clinician_client, assignment, frozen_at_start
):
    exercise = exercises_of(assignment, 1)[0]
    response = clinician_client.post(
        dosage_url(exercise), {"effective_from": "2026-03-03", "reps": None, "hold_seconds": 20}
    )
    assert response.status_code == 200
    assert (response.json()["dosage"]["reps"], response.json()["dosage"]["hold_seconds"]) == (
        None,
        20,
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"sets": 4}, "effective_from"),
        ({"effective_from": "2026-03-01", "sets": 4}, "effective_from"),  # the past
        ({"effective_from": "9999-12-31", "sets": 4}, "effective_from"),  # absurdly late
        ({"effective_from": "2026-03-09"}, "non_field_errors"),
        ({"effective_from": "2026-03-09", "sets": 0}, "sets"),
        ({"effective_from": "2026-03-09", "sessions_per_week": 8}, "sessions_per_week"),
        ({"effective_from": "2026-03-09", "hold_seconds": 30}, "reps"),  # two units
        ({"effective_from": "2026-03-09", "reps": None}, "reps"),  # no unit
        ({"effective_from": "2026-03-09", "sets": 4, "weight_kg": 5}, "weight_kg"),
    ],
)
def test_it_rejects_a_bad_dosage_change(clinician_client, assignment, frozen_at_start, body, field):
    exercise = exercises_of(assignment, 1)[0]
    response = clinician_client.post(dosage_url(exercise), body)
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert DosageVersion.objects.filter(assigned_exercise=exercise).count() == 1


def test_it_queries_a_program_view_in_constant_queries(
    clinician_client, clinician, clinic, frozen_at_start
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from programs import services
    from programs.models import ExerciseLog
    from tests.factories import PatientFactory

    def on_program(phases: list[Any], *, logged_days: int):
        # Started a week ago, so the program covers the adherence window too.
        who = PatientFactory.create(clinic=clinic, care_team=[clinician])
        program = services.assignment_create(
            patient=who,
            template=make_template(clinic=clinic, phases=phases),
            by=clinician,
            start_date=START - timedelta(days=7),
        )
        for exercise in exercises_of(program, 1):
            services.dosage_change(
                assigned_exercise=exercise, by=clinician, effective_from=START, changes={"sets": 2}
            )
            for offset in range(1, logged_days + 1):
                ExerciseLog.objects.create(
                    patient=who,
                    assigned_exercise=exercise,
                    date=START - timedelta(days=offset),
                    sets_done=3,
                    reps_done=10,
                    pain_during=1,
                    difficulty=2,
                )
        return who, program

    def queries(who) -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert clinician_client.get(program_url(who)).status_code == 200
        return len(ctx.captured_queries)

    small, _ = on_program([(2, [7]), (1, [7])], logged_days=1)
    # Nine times the phases, 36 exercises, more dosage versions and a week of logs.
    big, big_program = on_program(
        [(2, [7, 7, 3, 5]), (2, [7, 7, 7]), (2, [3] * 5)] * 3, logged_days=7
    )
    assert AssignedExercise.objects.filter(phase__assignment=big_program).count() == 36
    assert queries(big) == queries(small)
