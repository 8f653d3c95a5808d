"""ETag/304 where the app polls, If-Match/412 on log edits (config/conditional.py)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
import yaml

from rehab.models import DailyLog, DailyLogRevision

pytestmark = pytest.mark.django_db

LOGS = "/api/v1/logs/"


@pytest.mark.parametrize("url", ["/api/v1/me/progress/", "/api/v1/me/questionnaires/"])
def test_it_answers_304_when_the_etag_still_matches(patient_client, url):
    first = patient_client.get(url)
    assert first.status_code == 200
    etag = first["ETag"]
    assert "private" in first["Cache-Control"]
    again = patient_client.get(url, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304
    assert again.content == b""
    assert patient_client.get(url, HTTP_IF_NONE_MATCH='"stale"').status_code == 200


def test_it_changes_the_progress_etag_when_a_log_arrives(patient_client):
    etag = patient_client.get("/api/v1/me/progress/")["ETag"]
    created = patient_client.post(LOGS, {"date": date.today().isoformat(), "pain": 4})
    assert created.status_code == 201
    response = patient_client.get("/api/v1/me/progress/", HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 200
    assert response["ETag"] != etag


def test_it_keeps_the_etag_to_the_caller_scope(patient_client, other_patient_client):
    # Another patient's copy never matches: the body, hence the ETag, is theirs.
    etag = other_patient_client.get("/api/v1/me/progress/")["ETag"]
    patient_client.post(LOGS, {"date": date.today().isoformat(), "pain": 4})
    assert patient_client.get("/api/v1/me/progress/", HTTP_IF_NONE_MATCH=etag).status_code == 200


def _log(client) -> dict[str, Any]:
    response = client.post(LOGS, {"date": date.today().isoformat(), "pain": 4})
    assert response.status_code == 201
    data: dict[str, Any] = response.json()
    return data


def test_it_gives_a_log_its_version_as_etag(patient_client):
    log = _log(patient_client)
    response = patient_client.get(f"{LOGS}{log['id']}/")
    assert response["ETag"] == '"v1"'


def test_it_edits_a_log_whose_if_match_is_current(patient_client):
    log = _log(patient_client)
    response = patient_client.patch(f"{LOGS}{log['id']}/", {"pain": 5}, HTTP_IF_MATCH='"v1"')
    assert response.status_code == 200
    assert response.json()["pain"] == 5
    assert response["ETag"] == '"v2"'


def test_it_refuses_a_stale_if_match_with_412_and_changes_nothing(patient_client):
    log = _log(patient_client)
    assert patient_client.patch(f"{LOGS}{log['id']}/", {"pain": 5}).status_code == 200
    stale = patient_client.patch(f"{LOGS}{log['id']}/", {"pain": 7}, HTTP_IF_MATCH='"v1"')
    assert stale.status_code == 412
    body = stale.json()
    assert body["code"] == "precondition_failed"
    assert body["errors"] == []
    assert body["detail"]
    stored = DailyLog.objects.get(pk=log["id"])
    assert (stored.pain, stored.version) == (5, 2)
    assert DailyLogRevision.objects.count() == 1


def test_it_answers_404_not_412_for_another_patients_log(patient_client, other_patient_client):
    log = _log(other_patient_client)
    response = patient_client.patch(f"{LOGS}{log['id']}/", {"pain": 7}, HTTP_IF_MATCH='"v9"')
    assert response.status_code == 404
    assert DailyLog.objects.get(pk=log["id"]).pain == 4


def test_it_documents_the_conditional_headers(client):
    paths = yaml.safe_load(client.get("/api/schema/").content)["paths"]
    for path in ("/api/v1/me/plan/", "/api/v1/me/progress/", "/api/v1/me/questionnaires/"):
        operation = paths[path]["get"]
        assert "If-None-Match" in {p["name"] for p in operation["parameters"]}, path
        assert "304" in operation["responses"], path
        assert "ETag" in operation["responses"]["200"]["headers"], path
    patch = paths["/api/v1/logs/{log_id}/"]["patch"]
    assert "If-Match" in {p["name"] for p in patch["parameters"]}
    assert "412" in patch["responses"]
