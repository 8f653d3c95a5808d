"""Scope for every programs endpoint, with the fixed cast: anonymous 401, the wrong role
403, another clinic or another patient 404 (never 403, so ids do not leak)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from programs.models import ExerciseLog, ProgressionProposal
from tests.programs.conftest import START, exercises_of
from tests.programs.factories import make_template

pytestmark = pytest.mark.django_db


@pytest.fixture
def objects(patient, assignment, clinic):
    p1, p2 = assignment.phases.order_by("position")[:2]
    exercise = exercises_of(assignment, 1)[0]
    return {
        "patient": patient,
        "assignment": assignment,
        "exercise": exercise,
        "template": make_template(clinic=clinic, name="Clinic only", phases=[(1, [7])]),
        "proposal": ProgressionProposal.objects.create(
            assignment=assignment, from_phase=p1, to_phase=p2, evaluated_on=date(2026, 3, 16)
        ),
        "log": ExerciseLog.objects.create(
            patient=patient,
            assigned_exercise=exercise,
            date=START,
            sets_done=1,
            pain_during=1,
            difficulty=1,
        ),
    }


# (method, path, body) of every clinician endpoint that names an object of one clinic.
Endpoint = tuple[str, str, dict[str, Any] | None]
CLINICIAN_OBJECT_ENDPOINTS: list[Endpoint] = [
    ("get", "/api/v1/clinician/program-templates/{template.pk}/", None),
    ("post", "/api/v1/clinician/patients/{patient.pk}/assignments/", {}),
    ("get", "/api/v1/clinician/patients/{patient.pk}/program/", None),
    ("get", "/api/v1/clinician/patients/{patient.pk}/exercise-logs/", None),
    ("get", "/api/v1/clinician/patients/{patient.pk}/adherence/", None),
    ("get", "/api/v1/clinician/assignments/{assignment.pk}/", None),
    ("patch", "/api/v1/clinician/assignments/{assignment.pk}/", {"pain_ceiling": 4}),
    ("post", "/api/v1/clinician/assignments/{assignment.pk}/end/", {}),
    ("post", "/api/v1/clinician/assigned-exercises/{exercise.pk}/dosage/", {"sets": 4}),
    ("get", "/api/v1/clinician/progression-proposals/{proposal.pk}/", None),
    ("post", "/api/v1/clinician/progression-proposals/{proposal.pk}/accept/", {}),
    ("post", "/api/v1/clinician/progression-proposals/{proposal.pk}/decline/", {}),
]
CLINICIAN_LIST_ENDPOINTS: list[Endpoint] = [
    ("get", "/api/v1/clinician/exercises/", None),
    ("get", "/api/v1/clinician/program-templates/", None),
    ("post", "/api/v1/clinician/program-templates/", {}),
    ("get", "/api/v1/clinician/progression-proposals/", None),
]
PATIENT_ENDPOINTS: list[Endpoint] = [
    ("get", "/api/v1/me/plan/", None),
    ("get", "/api/v1/me/adherence/", None),
    ("get", "/api/v1/exercise-logs/", None),
    ("post", "/api/v1/exercise-logs/", {}),
    ("get", "/api/v1/exercise-logs/{log.pk}/", None),
]
ALL = CLINICIAN_OBJECT_ENDPOINTS + CLINICIAN_LIST_ENDPOINTS + PATIENT_ENDPOINTS


def _call(client, method, path, body, objects):
    url = path.format(**objects)
    return getattr(client, method)(url, body) if body is not None else getattr(client, method)(url)


@pytest.mark.parametrize(("method", "path", "body"), ALL)
def test_it_refuses_anonymous_callers_with_401(anon_client, objects, method, path, body):
    assert _call(anon_client, method, path, body, objects).status_code == 401


@pytest.mark.parametrize(
    ("method", "path", "body"), CLINICIAN_OBJECT_ENDPOINTS + CLINICIAN_LIST_ENDPOINTS
)
def test_it_refuses_patients_on_clinician_endpoints_with_403(
    patient_client, objects, method, path, body
):
    assert _call(patient_client, method, path, body, objects).status_code == 403


@pytest.mark.parametrize(("method", "path", "body"), PATIENT_ENDPOINTS)
def test_it_refuses_clinicians_on_patient_endpoints_with_403(
    clinician_client, objects, method, path, body
):
    assert _call(clinician_client, method, path, body, objects).status_code == 403


@pytest.mark.parametrize(("method", "path", "body"), CLINICIAN_OBJECT_ENDPOINTS)
def test_it_hides_another_clinics_objects_with_404(
    other_clinic_clinician_client, objects, method, path, body
):
    response = _call(other_clinic_clinician_client, method, path, body, objects)
    assert response.status_code == 404
    # And nothing changed on the way.
    objects["proposal"].refresh_from_db()
    assert objects["proposal"].status == "pending"
    objects["assignment"].refresh_from_db()
    assert objects["assignment"].ended_on is None
    assert objects["assignment"].pain_ceiling == 3


# What the patient's own clinician gets from each: a valid request, answered in full (a
# 400 or 409 would mean the scope let them in but the test did not prove they were served).
SERVED: dict[tuple[str, str], tuple[int, dict[str, Any] | None]] = {
    ("get", "/api/v1/clinician/program-templates/{template.pk}/"): (200, None),
    ("post", "/api/v1/clinician/patients/{patient.pk}/assignments/"): (
        201,
        {"template_id": "{template.pk}"},
    ),
    ("get", "/api/v1/clinician/patients/{patient.pk}/program/"): (200, None),
    ("get", "/api/v1/clinician/patients/{patient.pk}/exercise-logs/"): (200, None),
    ("get", "/api/v1/clinician/patients/{patient.pk}/adherence/"): (200, None),
    ("get", "/api/v1/clinician/assignments/{assignment.pk}/"): (200, None),
    ("patch", "/api/v1/clinician/assignments/{assignment.pk}/"): (200, {"pain_ceiling": 4}),
    ("post", "/api/v1/clinician/assignments/{assignment.pk}/end/"): (200, {}),
    ("post", "/api/v1/clinician/assigned-exercises/{exercise.pk}/dosage/"): (
        200,
        {"sets": 4, "effective_from": "2026-03-02"},
    ),
    ("get", "/api/v1/clinician/progression-proposals/{proposal.pk}/"): (200, None),
    ("post", "/api/v1/clinician/progression-proposals/{proposal.pk}/accept/"): (
        200,
        {"on": "2026-03-16"},
    ),
    ("post", "/api/v1/clinician/progression-proposals/{proposal.pk}/decline/"): (200, {}),
}


def test_it_knows_how_the_clinician_is_served_by_every_object_endpoint():
    assert set(SERVED) == {(method, path) for method, path, _ in CLINICIAN_OBJECT_ENDPOINTS}


@pytest.mark.parametrize(("method", "path", "body"), CLINICIAN_OBJECT_ENDPOINTS)
def test_it_lets_the_patients_clinician_in(
    clinician_client, clinician, objects, frozen_at_start, method, path, body
):
    from programs import services

    expected, valid = SERVED[(method, path)]
    if path.endswith("/assignments/"):
        # A new program needs the current one ended (cancelled: it starts today).
        services.assignment_end(assignment=objects["assignment"], by=clinician)
    if valid is not None:
        valid = {k: v.format(**objects) if isinstance(v, str) else v for k, v in valid.items()}
    response = _call(clinician_client, method, path, valid, objects)
    assert response.status_code == expected, response.content


def test_it_leaves_another_clinics_lists_empty(other_clinic_clinician_client, objects):
    proposals = other_clinic_clinician_client.get("/api/v1/clinician/progression-proposals/")
    assert proposals.json()["count"] == 0
    templates = other_clinic_clinician_client.get("/api/v1/clinician/program-templates/")
    assert "Clinic only" not in [t["name"] for t in templates.json()["results"]]


def test_it_hides_another_patients_log_with_404(other_patient_client, objects):
    assert (
        other_patient_client.get(f"/api/v1/exercise-logs/{objects['log'].pk}/").status_code == 404
    )
