from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.careplan import CarePlan
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.flag import Flag
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient as FhirPatient
from fhir.resources.R4B.procedure import Procedure
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from rights.fhir import PAIN_NRS_LOINC

pytestmark = pytest.mark.django_db

R4B_MODELS: dict[str, Any] = {
    "Patient": FhirPatient,
    "Observation": Observation,
    "Questionnaire": Questionnaire,
    "QuestionnaireResponse": QuestionnaireResponse,
    "Procedure": Procedure,
    "Condition": Condition,
    "DiagnosticReport": DiagnosticReport,
    "Flag": Flag,
    "CarePlan": CarePlan,
}


def _bundle(client, url: str) -> dict[str, Any]:
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/fhir+json"
    data: dict[str, Any] = json.loads(response.content)
    return data


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                yield value
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def test_it_builds_a_bundle_whose_every_resource_validates_as_r4b(patient_client, record):
    data = _bundle(patient_client, "/api/v1/me/export/fhir/")
    Bundle.model_validate(data)  # the Bundle as a whole
    kinds = set()
    for entry in data["entry"]:
        resource = entry["resource"]
        kinds.add(resource["resourceType"])
        # ... and each resource on its own, with the R4B (not the default R5) model.
        R4B_MODELS[resource["resourceType"]].model_validate(resource)
    assert kinds == set(R4B_MODELS)
    assert data["type"] == "collection"


def test_every_reference_resolves_inside_the_bundle(clinician_client, record):
    data = _bundle(clinician_client, f"/api/v1/clinician/patients/{record.pk}/export/fhir/")
    full_urls = {entry["fullUrl"] for entry in data["entry"]}
    assert len(full_urls) == len(data["entry"])  # no two entries share an address
    references = list(_references(data))
    assert references  # every clinical resource points at the Patient
    assert set(references) <= full_urls
    # Questionnaire responses name their Questionnaire by canonical URL: it is in the Bundle.
    canonicals = {
        f"{e['resource']['url']}|{e['resource']['version']}"
        for e in data["entry"]
        if e["resource"]["resourceType"] == "Questionnaire"
    }
    answered = {
        e["resource"]["questionnaire"]
        for e in data["entry"]
        if e["resource"]["resourceType"] == "QuestionnaireResponse"
    }
    assert answered
    assert answered <= canonicals


def test_the_pain_series_round_trips_through_the_bundle(patient_client, record):
    data = _bundle(patient_client, "/api/v1/me/export/fhir/")
    from_bundle = sorted(
        (entry["resource"]["effectiveDateTime"], entry["resource"]["valueInteger"])
        for entry in data["entry"]
        if entry["resource"]["resourceType"] == "Observation"
        and any(
            c["system"] == "http://loinc.org" and c["code"] == PAIN_NRS_LOINC
            for c in entry["resource"]["code"]["coding"]
        )
    )
    progress = patient_client.get("/api/v1/me/progress/").json()
    from_api = sorted((point["date"], point["pain"]) for point in progress["series"])
    assert len(from_api) == 10
    assert from_bundle == from_api


def test_other_daily_answers_use_our_code_system(patient_client, record, settings):
    data = _bundle(patient_client, "/api/v1/me/export/fhir/")
    systems = {
        coding["system"]
        for entry in data["entry"]
        if entry["resource"]["resourceType"] == "Observation"
        for coding in entry["resource"]["code"]["coding"]
    }
    assert systems >= {
        "http://loinc.org",
        f"{settings.PUBLIC_BASE_URL}/fhir/CodeSystem/daily-log",
    }


def test_a_resolved_diagnosis_and_an_ended_program_say_so(clinician_client, record):
    data = _bundle(clinician_client, f"/api/v1/clinician/patients/{record.pk}/export/fhir/")
    conditions = [
        e["resource"] for e in data["entry"] if e["resource"]["resourceType"] == "Condition"
    ]
    statuses = {c["code"]["text"]: c["clinicalStatus"]["coding"][0]["code"] for c in conditions}
    assert statuses["Old strain"] == "resolved"
    assert statuses["Deep gluteal syndrome"] == "active"


def test_a_patient_with_no_data_exports_a_valid_bundle(api_client_for, clinic):
    from tests.factories import PatientFactory, UserFactory

    patient = PatientFactory.create(clinic=clinic, user=UserFactory.create())
    data = _bundle(api_client_for(patient.user), "/api/v1/me/export/fhir/")
    Bundle.model_validate(data)
    assert [e["resource"]["resourceType"] for e in data["entry"]] == ["Patient"]


def test_a_log_with_only_pain_and_one_with_every_answer_both_validate(patient_client, patient):
    from rehab.models import DailyLog

    today = patient.local_today()
    DailyLog.objects.create(patient=patient, date=today, pain=0)
    DailyLog.objects.create(
        patient=patient,
        date=today.replace(day=1) if today.day != 1 else today.replace(day=2),
        pain=10,
        leg_pain=10,
        back_pain=0,
        worst_pain=10,
        function=0,
        leg_pain_side="both",
        sleep="constant_any_position",
        notes="   ",
        safety={"fever": True, "saddle_numbness": "new", "nested": {"a": [1]}},
    )
    data = _bundle(patient_client, "/api/v1/me/export/fhir/")
    Bundle.model_validate(data)
    observations = [
        e["resource"] for e in data["entry"] if e["resource"]["resourceType"] == "Observation"
    ]
    assert len(observations) == 1 + 3  # pain alone; pain, answers panel, safety check
