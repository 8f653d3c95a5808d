"""One error shape (config/exceptions.py, docs/errors.md), and the schema documenting it."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import pytest
import yaml
from django.test import override_settings

from rehab.models import DailyLog

pytestmark = pytest.mark.django_db

LOGS = "/api/v1/logs/"


def _log_body(**overrides: Any) -> dict[str, Any]:
    return {"date": date.today().isoformat(), "pain": 5, **overrides}


def _shape(body: dict[str, Any]) -> None:
    assert isinstance(body["code"], str)
    assert body["code"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert isinstance(body["errors"], list)


def test_it_names_every_field_error_with_a_code(patient_client):
    response = patient_client.post(LOGS, _log_body(pain=11, sleep="bad"))
    assert response.status_code == 400
    body = response.json()
    _shape(body)
    assert body["code"] == "invalid"
    codes = {error["field"]: error["code"] for error in body["errors"]}
    assert codes == {"pain": "max_value", "sleep": "invalid_choice"}
    # DRF's shape of the contract is still there.
    assert body["pain"]
    assert body["sleep"]


def test_it_reports_an_unknown_field_together_with_the_other_errors(patient_client):
    response = patient_client.post(LOGS, _log_body(pain=11, colour="red"))
    assert response.status_code == 400
    codes = {error["field"]: error["code"] for error in response.json()["errors"]}
    assert codes == {"pain": "max_value", "colour": "unknown_field"}
    assert not DailyLog.objects.exists()


def test_it_reports_an_unknown_field_alone_when_the_rest_is_valid(patient_client):
    response = patient_client.post(LOGS, _log_body(colour="red"))
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "colour", "code": "unknown_field", "message": "Unknown field."}
    ]
    assert not DailyLog.objects.exists()


def test_it_names_nested_fields_by_their_path(patient_client):
    response = patient_client.post(LOGS, _log_body(safety={"fever": "no", "typo": True}))
    assert response.status_code == 400
    codes = {error["field"]: error["code"] for error in response.json()["errors"]}
    assert codes == {"safety.fever": "invalid", "safety.typo": "unknown_field"}


def test_it_answers_401_404_and_409_in_the_same_shape(anon_client, patient_client):
    unauthenticated = anon_client.get(LOGS)
    assert unauthenticated.status_code == 401
    _shape(unauthenticated.json())
    assert unauthenticated.json()["code"] == "not_authenticated"

    missing = patient_client.get(f"{LOGS}{uuid.uuid4()}/")
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"

    first = patient_client.post(LOGS, _log_body()).json()
    conflict = patient_client.post(LOGS, _log_body(id=str(uuid.uuid4())))
    assert conflict.status_code == 409
    body = conflict.json()
    _shape(body)
    assert body["code"] == "conflict"
    assert body["existing_id"] == first["id"]


def test_it_answers_403_to_the_wrong_role_with_a_code(patient_client):
    response = patient_client.get("/api/v1/clinician/patients/")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


@override_settings(DEBUG=True)
def test_it_answers_unknown_api_urls_with_json_404_under_debug(client):
    response = client.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["code"] == "not_found"


# --------------------------------------------------------------------------- schema


def _schema(client: Any) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(client.get("/api/schema/").content)
    return document


def test_it_documents_the_error_answers_of_every_operation(client):
    document = _schema(client)
    error_ref = "#/components/schemas/Error"
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "500" in responses, (method, path)
            for code, response in responses.items():
                if code[0] in "45":
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref.startswith("#/components/schemas/"), (method, path, code)
            if "requestBody" in operation:
                assert responses["400"]["content"]["application/json"]["schema"]["$ref"] in {
                    error_ref
                }, (method, path)
            if operation.get("security", [{}]) not in ([{}], []):
                assert "401" in responses, (method, path)
            if "{" in path:
                assert "404" in responses, (method, path)
    error = document["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"code", "detail", "errors"}


def test_it_types_the_409_of_a_log_with_existing_id(client):
    document = _schema(client)
    conflict = document["paths"]["/api/v1/logs/"]["post"]["responses"]["409"]
    ref = conflict["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    properties = document["components"]["schemas"][ref]["properties"]
    assert properties["existing_id"]["format"] == "uuid"
    assert {"code", "detail", "errors", "safety_advice"} <= set(properties)


def test_it_documents_the_safety_rule_catalogue(client):
    document = _schema(client)
    ok = document["paths"]["/api/v1/safety/rules/"]["get"]["responses"]["200"]
    ref = ok["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    properties = document["components"]["schemas"][ref]["properties"]
    assert {"version", "rules", "messages", "reminder", "vocabulary"} <= set(properties)


def test_it_keeps_internal_docstrings_out_of_the_schema(client):
    schemas = _schema(client)["components"]["schemas"]
    for name in ("LogInputRequest", "LogOutput", "PatchedLogPatchRequest"):
        description = schemas[name].get("description", "")
        assert "once per class" not in description, name
        assert "Rejects fields" not in description, name


def test_it_reports_a_field_named_code_in_errors_only(anon_client):
    response = anon_client.post(
        "/api/v1/auth/register/", {"email": "new@example.com", "password": "x" * 12}
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"  # the error's code, not the field's messages
    assert {"field": "code", "code": "required", "message": "This field is required."} in (
        body["errors"]
    )


def test_it_answers_429_with_its_code_and_retry_after(patient_client, settings):
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "logs": "1/min"}
    assert patient_client.post(LOGS, _log_body()).status_code == 201
    refused = patient_client.post(LOGS, _log_body())
    assert refused.status_code == 429
    assert refused.json()["code"] == "throttled"
    assert int(refused["Retry-After"]) > 0
