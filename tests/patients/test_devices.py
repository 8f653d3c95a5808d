"""The caller's own signed-in devices: list them, sign one out (a lost phone)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from patients.models import AuditEvent, AuthToken, User

pytestmark = pytest.mark.django_db

DEVICES = "/api/v1/auth/devices/"


def _device(user: User, device: str) -> tuple[AuthToken, APIClient]:
    instance, token = AuthToken.objects.create(user=user, device=device)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return instance, client


def test_it_lists_the_callers_devices_with_the_current_one_marked(patient, other_patient):
    phone, phone_client = _device(patient.user, "RehabApp/2.1 (iPhone)")
    tablet, _ = _device(patient.user, "RehabApp/2.1 (iPad)")
    _device(other_patient.user, "someone else's phone")

    response = phone_client.get(DEVICES)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 2
    rows = {row["id"]: row for row in body["results"]}
    assert set(rows) == {str(phone.public_id), str(tablet.public_id)}
    assert rows[str(phone.public_id)]["current"] is True
    assert rows[str(tablet.public_id)]["current"] is False
    assert rows[str(tablet.public_id)]["device"] == "RehabApp/2.1 (iPad)"
    assert set(rows[str(phone.public_id)]) == {"id", "device", "created", "expiry", "current"}
    # The digest (the primary key) is never shown.
    assert phone.digest not in response.content.decode()


def test_it_leaves_expired_tokens_out(patient):
    _, client = _device(patient.user, "current")
    old, _ = _device(patient.user, "old")
    AuthToken.objects.filter(pk=old.pk).update(expiry=timezone.now() - timedelta(seconds=1))
    assert [row["device"] for row in client.get(DEVICES).json()["results"]] == ["current"]


def test_it_pages_the_devices(patient):
    _, client = _device(patient.user, "this one")
    for i in range(3):
        _device(patient.user, f"device {i}")
    body = client.get(DEVICES, {"page_size": 2}).json()
    assert body["count"] == 4
    assert len(body["results"]) == 2
    assert body["next"]
    assert client.get(DEVICES, {"page_size": 201}).status_code == 400


def test_it_signs_out_one_device(clinician):
    _, laptop_client = _device(clinician.user, "laptop")
    phone, phone_client = _device(clinician.user, "lost phone")
    response = laptop_client.delete(f"{DEVICES}{phone.public_id}/")
    assert response.status_code == 204
    assert phone_client.get(DEVICES).status_code == 401
    assert laptop_client.get(DEVICES).status_code == 200
    event = AuditEvent.objects.get(action="logout")
    assert event.object_id == str(phone.public_id)
    assert event.actor == clinician.user
    assert event.changes == {"device": "lost phone"}


def test_it_signs_out_the_current_device_too(patient):
    phone, client = _device(patient.user, "phone")
    assert client.delete(f"{DEVICES}{phone.public_id}/").status_code == 204
    assert client.get(DEVICES).status_code == 401


def test_it_answers_404_for_another_users_device(patient, other_patient, other_clinic_clinician):
    _, client = _device(patient.user, "mine")
    theirs, their_client = _device(other_patient.user, "theirs")
    clinicians, clinician_client = _device(other_clinic_clinician.user, "clinician's")
    assert client.delete(f"{DEVICES}{theirs.public_id}/").status_code == 404
    assert client.delete(f"{DEVICES}{clinicians.public_id}/").status_code == 404
    assert their_client.get(DEVICES).status_code == 200
    assert clinician_client.get(DEVICES).status_code == 200
    assert not AuditEvent.objects.exists()


# Named ids: a random one in the test's name would differ between the parallel workers'
# collections (docs/testing.md).
@pytest.mark.parametrize(
    "device_id", [str(uuid.uuid4()), "not-a-uuid", "1"], ids=["unknown", "malformed", "number"]
)
def test_it_answers_404_for_an_unknown_or_malformed_id(patient, device_id):
    _, client = _device(patient.user, "mine")
    assert client.delete(f"{DEVICES}{device_id}/").status_code == 404
    assert AuthToken.objects.filter(user=patient.user).count() == 1


def test_it_refuses_anonymous_callers_with_401(anon_client, patient):
    phone, _ = _device(patient.user, "phone")
    assert anon_client.get(DEVICES).status_code == 401
    assert anon_client.delete(f"{DEVICES}{phone.public_id}/").status_code == 401
    assert AuthToken.objects.filter(pk=phone.pk).exists()


def test_it_documents_the_devices_endpoints_in_the_schema(client):
    import yaml

    document = yaml.safe_load(client.get("/api/schema/").content)
    listing = document["paths"]["/api/v1/auth/devices/"]["get"]
    assert {"bearerAuth": []} in listing["security"]
    page = listing["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert page == "#/components/schemas/PaginatedDeviceList"
    fields = document["components"]["schemas"]["Device"]["properties"]
    assert set(fields) == {"id", "device", "created", "expiry", "current"}
    assert {p["name"] for p in listing["parameters"]} >= {"page", "page_size"}
    revoke = document["paths"]["/api/v1/auth/devices/{device_id}/"]["delete"]
    assert set(revoke["responses"]) >= {"204", "404"}
