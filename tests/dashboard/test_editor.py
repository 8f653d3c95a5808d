"""The template editor, one patient's plan and the previews (dashboard/views_editor.py):
edits never rewrite a patient's history, scope, audit and bad input."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from patients.models import AuditEvent
from programs import services
from programs.education import services as education_services
from programs.models import (
    AssignedExercise,
    DosageVersion,
    PrescribedExercise,
    ProgramAssignment,
    ProgramTemplate,
    TemplatePhase,
)
from tests.programs.factories import ExerciseFactory, make_template

pytestmark = pytest.mark.django_db

Row = dict[str, Any]


def editor_data(
    *,
    name: str,
    phases: list[tuple[str, int, list[Row]]],
    initial_phases: int = 0,
    initial_rows: list[int] | None = None,
    cards: dict[int, list[str]] | None = None,
    deleted_phases: tuple[int, ...] = (),
    pain_ceiling: int = 3,
) -> dict[str, Any]:
    """A POST of the editor page as a browser sends it: every phase given, then the blank
    phase and blank rows the page always has (left empty)."""
    data: dict[str, Any] = {
        "t-name": name,
        "t-condition": "Sciatica",
        "t-description": "",
        "t-pain_ceiling": str(pain_ceiling),
        "phases-TOTAL_FORMS": str(len(phases) + 1),
        "phases-INITIAL_FORMS": str(initial_phases),
        "phases-MIN_NUM_FORMS": "0",
        "phases-MAX_NUM_FORMS": "12",
    }
    for i, (phase_name, weeks, rows) in enumerate([*phases, ("", 0, [])]):
        if phase_name:
            data[f"phases-{i}-name"] = phase_name
            data[f"phases-{i}-length_weeks"] = str(weeks)
            data[f"phases-{i}-goals"] = ""
            if cards and i in cards:
                data[f"phases-{i}-cards"] = cards[i]
        if i in deleted_phases:
            data[f"phases-{i}-DELETE"] = "on"
        prefix = f"phase-{i}-exercises"
        initial = (initial_rows or [])[i] if i < len(initial_rows or []) else 0
        data[f"{prefix}-TOTAL_FORMS"] = str(len(rows) + 1)
        data[f"{prefix}-INITIAL_FORMS"] = str(initial)
        data[f"{prefix}-MIN_NUM_FORMS"] = "0"
        data[f"{prefix}-MAX_NUM_FORMS"] = "30"
        for j, row in enumerate(rows):
            for key, value in row.items():
                data[f"{prefix}-{j}-{key}"] = "" if value is None else str(value)
    return data


def row(exercise: Any, **dosage: Any) -> Row:
    return {
        "exercise": exercise.pk,
        "sets": 3,
        "reps": 10,
        "hold_seconds": None,
        "duration_minutes": None,
        "sessions_per_week": 7,
        "notes": "",
        **dosage,
    }


@pytest.fixture
def template(clinic) -> ProgramTemplate:
    return make_template(clinic=clinic, name="Clinic program", phases=[(2, [7, 3]), (1, [7])])


def _rows_of(template: ProgramTemplate) -> list[tuple[str, int, list[Row]]]:
    phases = []
    for phase in template.phases.order_by("position"):
        phases.append(
            (
                phase.name,
                phase.length_weeks,
                [
                    row(
                        item.exercise,
                        sets=item.sets,
                        reps=item.reps,
                        hold_seconds=item.hold_seconds,
                        duration_minutes=item.duration_minutes,
                        sessions_per_week=item.sessions_per_week,
                    )
                    for item in phase.exercises.order_by("position")
                ],
            )
        )
    return phases


# --------------------------------------------------------------------------- templates


def test_it_lists_our_and_the_seeded_templates_only(web, template, other_clinic) -> None:
    theirs = make_template(clinic=other_clinic, name="Hilltop secret", phases=[(1, [7])])
    page = web.get("/dashboard/templates/").content.decode()
    assert "Clinic program" in page
    assert theirs.name not in page


def test_it_creates_a_template_from_the_editor(web, clinician) -> None:
    assert web.get("/dashboard/templates/new/").status_code == 200
    walk = ExerciseFactory.create(name="Walking")
    data = editor_data(
        name="Walking back", phases=[("Start", 2, [row(walk, reps=None, duration_minutes=10)])]
    )
    response = web.post("/dashboard/templates/new/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    template = ProgramTemplate.objects.get(clinic=clinician.clinic, name="Walking back")
    (item,) = PrescribedExercise.objects.filter(phase__template=template)
    assert (item.exercise_id, item.duration_minutes, item.reps) == (walk.pk, 10, None)
    assert AuditEvent.objects.filter(
        object_type="program_template", action="create", object_id=str(template.pk)
    ).exists()


def test_it_edits_a_template_without_changing_a_patient_already_on_it(
    web, template, patient, clinician
) -> None:
    assignment = services.assignment_create(patient=patient, template=template, by=clinician)
    before = list(
        DosageVersion.objects.filter(assigned_exercise__phase__assignment=assignment)
        .order_by("assigned_exercise__phase__position", "assigned_exercise__position")
        .values_list("sets", "reps", "sessions_per_week")
    )
    phases = _rows_of(template)
    phases[0][2][0]["sets"] = 5  # a heavier first exercise
    card = education_services.card_create(
        clinician=clinician, language="en", title="Pacing", body="Go slowly."
    )
    data = editor_data(
        name="Clinic program v2",
        phases=phases,
        initial_phases=2,
        initial_rows=[2, 1],
        cards={0: [str(card.pk)]},
        deleted_phases=(1,),
        pain_ceiling=4,
    )
    response = web.post(f"/dashboard/templates/{template.pk}/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    template.refresh_from_db()
    assert (template.name, template.pain_ceiling) == ("Clinic program v2", 4)
    (phase,) = TemplatePhase.objects.filter(template=template)
    assert phase.exercises.order_by("position")[0].sets == 5
    assert list(phase.education_cards.all()) == [card]
    # The patient's program is their own copy: untouched.
    after = list(
        DosageVersion.objects.filter(assigned_exercise__phase__assignment=assignment)
        .order_by("assigned_exercise__phase__position", "assigned_exercise__position")
        .values_list("sets", "reps", "sessions_per_week")
    )
    assert after == before
    assert assignment.phases.count() == 2
    assignment.refresh_from_db()
    assert assignment.pain_ceiling == 3
    event = AuditEvent.objects.get(object_type="program_template", action="update")
    assert event.changes["pain_ceiling"] == {"from": 3, "to": 4}
    assert event.changes["phases"] == {"from": 2, "to": 1}
    # A patient given it from now on gets the new version, with its ceiling and cards.
    other = patient.__class__.objects.exclude(pk=patient.pk).first()
    assert other is None  # (only the cast's patient here)


@pytest.mark.parametrize(
    "change",
    [
        {"reps": 10, "hold_seconds": 30},  # two units
        {"sets": 0},
        {"sessions_per_week": 8},
        {"exercise": "00000000-0000-0000-0000-000000000000"},
    ],
)
def test_it_refuses_a_bad_exercise_row_and_changes_nothing(
    web, template, change: dict[str, Any]
) -> None:
    phases = _rows_of(template)
    phases[0][2][0].update(change)
    data = editor_data(name="Renamed", phases=phases, initial_phases=2, initial_rows=[2, 1])
    response = web.post(f"/dashboard/templates/{template.pk}/", data)
    assert response.status_code == 400
    template.refresh_from_db()
    assert template.name == "Clinic program"
    assert PrescribedExercise.objects.filter(phase__template=template).count() == 3


def test_it_refuses_a_new_phase_without_exercises(web, template) -> None:
    phases = [*_rows_of(template), ("Extra", 1, [])]
    data = editor_data(name="Clinic program", phases=phases, initial_phases=2, initial_rows=[2, 1])
    response = web.post(f"/dashboard/templates/{template.pk}/", data)
    assert response.status_code == 400
    assert "Phase 3 has no exercises." in response.content.decode()
    assert template.phases.count() == 2


def test_it_refuses_a_blank_name_and_a_taken_one(web, template, clinic) -> None:
    make_template(clinic=clinic, name="Taken", phases=[(1, [7])])
    for name in ("", "Taken"):
        data = editor_data(
            name=name, phases=_rows_of(template), initial_phases=2, initial_rows=[2, 1]
        )
        response = web.post(f"/dashboard/templates/{template.pk}/", data)
        assert response.status_code == 400
    template.refresh_from_db()
    assert template.name == "Clinic program"
    assert "already has a template with this name" in response.content.decode()


def test_another_clinics_template_is_a_404(other_web, template, other_clinic_clinician) -> None:
    data = editor_data(
        name="Mine", phases=_rows_of(template), initial_phases=2, initial_rows=[2, 1]
    )
    assert other_web.get(f"/dashboard/templates/{template.pk}/").status_code == 404
    assert other_web.post(f"/dashboard/templates/{template.pk}/", data).status_code == 404
    assert other_web.get(f"/dashboard/templates/{template.pk}/preview/").status_code == 404
    assert other_web.post(f"/dashboard/templates/{template.pk}/copy/").status_code == 404
    template.refresh_from_db()
    assert template.name == "Clinic program"
    assert not ProgramTemplate.objects.filter(clinic=other_clinic_clinician.clinic).exists()


def test_a_seeded_template_is_read_only_and_copied_to_edit(web, clinician) -> None:
    seeded = make_template(clinic=None, name="Seeded one", phases=[(2, [7])])
    page = web.get(f"/dashboard/templates/{seeded.pk}/")
    assert page.status_code == 200
    assert b"Copy to my clinic" in page.content
    data = editor_data(name="Hacked", phases=_rows_of(seeded), initial_phases=1, initial_rows=[1])
    assert web.post(f"/dashboard/templates/{seeded.pk}/", data).status_code == 403
    response = web.post(f"/dashboard/templates/{seeded.pk}/copy/")
    copy = ProgramTemplate.objects.get(clinic=clinician.clinic)
    assert response.status_code == 302
    assert response["Location"].endswith(f"/{copy.pk}/")
    assert copy.name == "Seeded one (our copy)"
    assert PrescribedExercise.objects.filter(phase__template=copy).count() == 1
    seeded.refresh_from_db()
    assert seeded.name == "Seeded one"


def test_it_previews_a_phase_with_its_cards_sanitised(web, template, clinician) -> None:
    card = education_services.card_create(
        clinician=clinician,
        language="en",
        title="Pacing",
        body="Go **slowly**. <script>alert(1)</script> [x](javascript:alert(1))",
    )
    template.phases.get(position=1).education_cards.add(card)
    page = web.get(f"/dashboard/templates/{template.pk}/preview/?phase=1").content.decode()
    assert "P1 exercise 1" in page
    assert "3 sets of 10 reps, every day" in page
    assert "<strong>slowly</strong>" in page
    assert "<script>alert" not in page
    assert 'href="javascript' not in page
    assert web.get(f"/dashboard/templates/{template.pk}/preview/?phase=9").status_code == 404


# --------------------------------------------------------------------------- one patient


@pytest.fixture
def on_program(patient, clinician, template) -> ProgramAssignment:
    # Started a week ago, so that a change from today leaves earlier days their dosage.
    return services.assignment_create(
        patient=patient,
        template=template,
        by=clinician,
        start_date=patient.local_today() - timedelta(days=7),
    )


def plan_data(assignment: ProgramAssignment, changes: dict[int, dict[str, Any]], ceiling: int = 3):
    exercises = list(
        AssignedExercise.objects.filter(phase__assignment=assignment).order_by(
            "phase__position", "position"
        )
    )
    data: dict[str, Any] = {
        "action": "save",
        "ceiling-pain_ceiling": str(ceiling),
        "dosage-TOTAL_FORMS": str(len(exercises)),
        "dosage-INITIAL_FORMS": str(len(exercises)),
        "dosage-MIN_NUM_FORMS": "0",
        "dosage-MAX_NUM_FORMS": "1000",
    }
    for i, exercise in enumerate(exercises):
        version = exercise.dosage_versions.order_by("-effective_from").first()
        values = {**version.dosage_dict(), **changes.get(i, {})}
        for key, value in values.items():
            data[f"dosage-{i}-{key}"] = "" if value is None else str(value)
    return data


def test_it_changes_a_patients_dosage_from_today_and_keeps_the_past(
    web, on_program, patient
) -> None:
    page = web.get(f"/dashboard/patients/{patient.pk}/plan/")
    assert page.status_code == 200
    assert AuditEvent.objects.filter(
        object_type="program_assignment", action="read", patient_id=patient.pk
    ).exists()
    response = web.post(
        f"/dashboard/patients/{patient.pk}/plan/", plan_data(on_program, {0: {"sets": 4}})
    )
    assert response.status_code == 302
    first = AssignedExercise.objects.get(
        phase__assignment=on_program, phase__position=1, position=1
    )
    versions = list(first.dosage_versions.order_by("effective_from"))
    assert [(v.effective_from, v.sets) for v in versions] == [
        (on_program.start_date, 3),
        (patient.local_today(), 4),
    ]
    # The other exercises were not touched.
    assert (
        DosageVersion.objects.filter(assigned_exercise__phase__assignment=on_program).count() == 4
    )
    event = AuditEvent.objects.get(object_type="dosage", action="update")
    assert event.changes["sets"] == {"from": 3, "to": 4}


def test_it_changes_the_pain_ceiling(web, on_program, patient) -> None:
    response = web.post(f"/dashboard/patients/{patient.pk}/plan/", plan_data(on_program, {}, 5))
    assert response.status_code == 302
    on_program.refresh_from_db()
    assert on_program.pain_ceiling == 5


@pytest.mark.parametrize(
    "change", [{"hold_seconds": 20}, {"sets": ""}, {"sets": 21}, {"sessions_per_week": 0}]
)
def test_it_refuses_a_bad_dosage_and_changes_nothing(web, on_program, patient, change) -> None:
    data = plan_data(on_program, {0: {"sets": 5}, 1: change})
    response = web.post(f"/dashboard/patients/{patient.pk}/plan/", data)
    assert response.status_code == 400
    assert (
        DosageVersion.objects.filter(assigned_exercise__phase__assignment=on_program).count() == 3
    )
    assert not AuditEvent.objects.filter(object_type="dosage").exists()


def test_it_gives_a_program_from_the_plan_page(web, patient, template) -> None:
    page = web.get(f"/dashboard/patients/{patient.pk}/plan/").content.decode()
    assert "has no exercise program" in page
    response = web.post(
        f"/dashboard/patients/{patient.pk}/plan/", {"action": "assign", "template": template.pk}
    )
    assert response.status_code == 302
    assignment = ProgramAssignment.objects.get(patient=patient)
    assert assignment.template_id == template.pk
    bad = web.post(f"/dashboard/patients/{patient.pk}/plan/", {"action": "assign", "template": ""})
    assert bad.status_code == 400


def test_it_previews_the_patients_day_with_their_cards(web, on_program, patient, clinician) -> None:
    card = education_services.card_create(
        clinician=clinician, language="en", title="Sleeping", body="A *pillow* helps."
    )
    education_services.card_version_create(
        card=card, clinician=clinician, language="es", title="Dormir", body="Una *almohada*."
    )
    education_services.card_assign(patient=patient, card=card, by=clinician)
    page = web.get(f"/dashboard/patients/{patient.pk}/plan/preview/").content.decode()
    assert "Phase 1 of 2: Phase 1" in page
    assert "P1 exercise 1" in page
    assert "<em>pillow</em>" in page
    spanish = web.get(f"/dashboard/patients/{patient.pk}/plan/preview/?language=es")
    assert "<em>almohada</em>" in spanish.content.decode()
    assert AuditEvent.objects.filter(
        object_type="program_assignment", object_id="preview", patient_id=patient.pk
    ).exists()


def test_another_clinics_patient_plan_is_a_404(other_web, on_program, patient) -> None:
    for url in (
        f"/dashboard/patients/{patient.pk}/plan/",
        f"/dashboard/patients/{patient.pk}/plan/preview/",
    ):
        assert other_web.get(url).status_code == 404
    response = other_web.post(
        f"/dashboard/patients/{patient.pk}/plan/", plan_data(on_program, {0: {"sets": 9}})
    )
    assert response.status_code == 404
    assert DosageVersion.objects.filter(sets=9).count() == 0


def test_a_patient_cannot_open_the_editor(patient) -> None:
    client = Client()
    client.force_login(patient.user)
    assert client.get("/dashboard/templates/").status_code == 403
