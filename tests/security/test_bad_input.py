"""Hostile input answers a clear 4xx, changes nothing and never reaches the logs
(issue 18 item 9, docs/security.md)."""

from __future__ import annotations

import json
import logging
from datetime import date, timedelta
from typing import Any

import pytest
from rest_framework.test import APIClient

from rehab.models import DailyLog

pytestmark = pytest.mark.django_db

LOGS = "/api/v1/logs/"
CANARY = "canary-7f3e9b1c"


def _body(**overrides: Any) -> dict[str, Any]:
    return {
        "date": (date.today() - timedelta(days=1)).isoformat(),
        "pain": 6,
        "leg_pain": 7,
        "back_pain": 3,
        "worst_pain": 8,
        "leg_pain_side": "left",
        "function": 4,
        "sleep": "disturbed",
        "notes": "Walked to the shop.",
        **overrides,
    }


def _post_raw(client: APIClient, raw: str | bytes, path: str = LOGS) -> Any:
    # Bytes, so that a lone surrogate goes out as is (Django takes bytes; the stubs say str).
    data: Any = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    return client.generic("POST", path, data, content_type="application/json")


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def _assert_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        text = record.getMessage() + (str(record.exc_info[1]) if record.exc_info else "")
        assert CANARY not in text, record.getMessage()
        assert "\x00" not in text


def test_it_answers_a_3_mb_body_with_413_in_the_json_error_shape(patient_client, logged):
    response = _post_raw(patient_client, json.dumps(_body(notes=CANARY * 200_000)))
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert set(response.json()) == {"detail"}
    assert not DailyLog.objects.exists()
    _assert_never_logged(logged)


def test_it_answers_a_3_mb_body_with_413_before_authentication(anon_client, db):
    response = _post_raw(anon_client, b"{" + b" " * 3_000_000 + b"}", path="/api/v1/auth/login/")
    assert response.status_code == 413
    assert set(response.json()) == {"detail"}


def test_it_still_reads_a_body_just_under_the_limit(patient_client):
    # 2.5 MB is Django's DATA_UPLOAD_MAX_MEMORY_SIZE; the notes' own limit answers.
    response = _post_raw(patient_client, json.dumps(_body(notes="x" * 2_000_000)))
    assert response.status_code == 400
    assert "notes" in response.json()


@pytest.mark.parametrize("depth", [5_000, 100_000])
def test_it_answers_json_nested_thousands_deep_with_400(patient_client, logged, depth):
    nested = "[" * depth + f'"{CANARY}"' + "]" * depth
    response = _post_raw(patient_client, '{"notes": ' + nested + "}")
    assert response.status_code == 400
    assert set(response.json()) == {"code", "detail", "errors"}  # docs/errors.md
    assert not DailyLog.objects.exists()
    _assert_never_logged(logged)


def test_it_answers_json_nested_deeper_than_any_payload_needs_with_400(patient_client):
    # Deep enough to pass the parser, too deep for anything this API takes.
    nested = "{" + '"a": {' * 100 + "}" * 101
    response = _post_raw(patient_client, nested)
    assert response.status_code == 400


@pytest.mark.parametrize(
    "raw",
    [
        json.dumps(_body(notes=f"{CANARY}\x00")),
        json.dumps(_body(notes=f"{CANARY}\ud800")),
        json.dumps(_body(notes=f"{CANARY}\udfff end")),
        json.dumps(_body(sleep=f"{CANARY}\x00")),
        json.dumps(_body(leg_pain_side=f"{CANARY}\ud83d")),
        json.dumps({**_body(), f"{CANARY}\x00": 1}),
        json.dumps(_body(date=f"{date.today()}\x00{CANARY}")),
        json.dumps(_body(id=f"\ud800{CANARY}")),
    ],
    ids=[
        "nul-notes",
        "surrogate-notes",
        "low-surrogate-notes",
        "nul-choice",
        "surrogate-choice",
        "nul-key",
        "nul-date",
        "surrogate-id",
    ],
)
def test_it_answers_nul_or_lone_surrogates_in_any_text_with_400(patient_client, logged, raw):
    response = _post_raw(patient_client, raw)
    assert response.status_code == 400, response.content
    assert CANARY not in response.content.decode()
    assert not DailyLog.objects.exists()
    _assert_never_logged(logged)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/auth/login/",
        "/api/v1/auth/register/",
        "/api/v1/clinician/invitations/",
    ],
)
def test_it_answers_nul_and_surrogates_with_400_on_other_endpoints(clinician_client, logged, path):
    for bad in ("\x00", "\ud800"):
        raw = json.dumps(
            {
                "email": f"a{bad}@example.com",
                "password": f"{CANARY}{bad}",
                "code": f"{CANARY}{bad}",
                "first_name": f"{CANARY}{bad}",
                "last_name": "x",
                "date_of_birth": "1980-01-01",
                "timezone": "Europe/London",
            }
        )
        response = _post_raw(clinician_client, raw, path=path)
        assert response.status_code == 400, (path, response.content)
    _assert_never_logged(logged)


def test_it_answers_a_nul_in_a_query_parameter_with_400(clinician_client, patient, logged):
    response = clinician_client.get("/api/v1/clinician/patients/", {"search": f"{CANARY}\x00"})
    assert response.status_code == 400
    _assert_never_logged(logged)


def test_it_still_accepts_ordinary_unicode(patient_client):
    response = _post_raw(patient_client, json.dumps(_body(notes="Douleur 😣 — ça va mieux")))
    assert response.status_code == 201, response.content
    assert DailyLog.objects.get().notes == "Douleur 😣 — ça va mieux"
