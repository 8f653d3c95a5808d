"""The admin changelists stay constant-query, and every endpoint is in the schema."""

from __future__ import annotations

import random
from datetime import date

import pytest
from django.contrib import admin
from django.urls import reverse

from programs.demo import seed_programs_demo
from programs.models import (
    AssignedExercise,
    AssignedPhase,
    DosageVersion,
    Exercise,
    ExerciseLog,
    PrescribedExercise,
    ProgramAssignment,
    ProgramTemplate,
    ProgressionProposal,
    TemplatePhase,
)
from tests.factories import PatientFactory, UserFactory
from tests.programs.factories import make_template

pytestmark = pytest.mark.django_db

MODELS = [
    Exercise,
    ProgramTemplate,
    TemplatePhase,
    PrescribedExercise,
    ProgramAssignment,
    AssignedPhase,
    AssignedExercise,
    DosageVersion,
    ExerciseLog,
    ProgressionProposal,
]


def test_it_registers_every_programs_model_in_the_admin():
    assert all(model in admin.site._registry for model in MODELS)


@pytest.fixture
def admin_client(client):
    user = UserFactory.create(email="ops@example.com", is_staff=True, is_superuser=True)
    client.force_login(user)
    return client


def _count_queries(client, url) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_it_lists_a_changelist_in_constant_queries(
    admin_client, clinic, clinician, seeded_templates, model
):
    url = reverse(f"admin:programs_{model._meta.model_name}_changelist")
    patients = [PatientFactory.create(clinic=clinic, care_team=[clinician]) for _ in range(2)]
    seed_programs_demo(patients=patients[:1], today=date(2026, 4, 20), rng=random.Random(1))
    make_template(clinic=clinic, phases=[(1, [7])]).__class__.objects.update(created_by=clinician)
    few = _count_queries(admin_client, url)
    more = [PatientFactory.create(clinic=clinic, care_team=[clinician]) for _ in range(3)]
    seed_programs_demo(patients=more, today=date(2026, 4, 20), rng=random.Random(2))
    assert model.objects.count() > 1
    assert _count_queries(admin_client, url) == few


def test_it_documents_every_programs_endpoint_in_the_schema(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    expected = {
        "/api/v1/me/plan/": {"get"},
        "/api/v1/me/adherence/": {"get"},
        "/api/v1/exercise-logs/": {"get", "post"},
        "/api/v1/exercise-logs/{log_id}/": {"get"},
        "/api/v1/clinician/exercises/": {"get"},
        "/api/v1/clinician/program-templates/": {"get", "post"},
        "/api/v1/clinician/program-templates/{template_id}/": {"get"},
        "/api/v1/clinician/patients/{patient_id}/assignments/": {"post"},
        "/api/v1/clinician/patients/{patient_id}/program/": {"get"},
        "/api/v1/clinician/patients/{patient_id}/exercise-logs/": {"get"},
        "/api/v1/clinician/patients/{patient_id}/adherence/": {"get"},
        "/api/v1/clinician/assignments/{assignment_id}/": {"get", "patch"},
        "/api/v1/clinician/assignments/{assignment_id}/end/": {"post"},
        "/api/v1/clinician/assigned-exercises/{assigned_exercise_id}/dosage/": {"post"},
        "/api/v1/clinician/progression-proposals/": {"get"},
        "/api/v1/clinician/progression-proposals/{proposal_id}/": {"get"},
        "/api/v1/clinician/progression-proposals/{proposal_id}/accept/": {"post"},
        "/api/v1/clinician/progression-proposals/{proposal_id}/decline/": {"post"},
    }
    for path, methods in expected.items():
        assert path in paths, path
        assert set(paths[path]) >= methods, path
        for method in methods:
            operation = paths[path][method]
            assert operation["tags"][0] in {"patient: programs", "clinician: programs"}
            assert "200" in operation["responses"] or "201" in operation["responses"]


PROGRAMS_LISTS = {
    "/api/v1/clinician/exercises/": "PaginatedExerciseOutputList",
    "/api/v1/clinician/program-templates/": "PaginatedTemplateListOutputList",
    "/api/v1/exercise-logs/": "PaginatedExerciseLogOutputList",
    "/api/v1/clinician/patients/{patient_id}/exercise-logs/": "PaginatedExerciseLogOutputList",
    "/api/v1/clinician/progression-proposals/": "PaginatedProposalOutputList",
}


@pytest.mark.parametrize("path", PROGRAMS_LISTS)
def test_it_documents_each_programs_list_as_a_page(client, path):
    document = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = document["paths"][path]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": f"#/components/schemas/{PROGRAMS_LISTS[path]}"}
    page = document["components"]["schemas"][PROGRAMS_LISTS[path]]
    assert {"count", "next", "previous", "results"} <= set(page["properties"])
    assert page["properties"]["results"]["type"] == "array"
    query = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
    assert {"page", "page_size"} <= query


def test_it_answers_a_programs_list_in_the_documented_page_shape(
    clinician_client, seeded_templates
):
    response = clinician_client.get("/api/v1/clinician/program-templates/", {"page_size": 1})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 2
    assert len(body["results"]) == 1
    assert body["next"]


def test_it_documents_every_condition_of_the_progression_rule(client):
    document = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    text = document["paths"]["/api/v1/clinician/progression-proposals/"]["get"]["description"]
    for condition in (
        "run its planned length",
        "every session prescribed in the 7 days",
        "pain_ceiling",
        "stopped for pain",
        "not above the patient's 7-day mean",
    ):
        assert condition in text, condition
