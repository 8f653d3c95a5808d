"""`/api/v1/me/devices/`: a signed-in device registers its push address, lists and
deletes its user's own; the address goes with the sign-in and with a dead token."""

from __future__ import annotations

import json
import uuid

import pytest
from django.test import Client
from rest_framework.test import APIClient

from notifications.devices import device_forget_dead
from notifications.models import Device
from patients import services as patient_services
from patients.models import AuditEvent, AuthToken, User
from tests.notifications.subscriptions import BrowserKeys, vapid_private_key

pytestmark = pytest.mark.django_db

DEVICES = "/api/v1/me/devices/"
APNS_TOKEN = "a1" * 32
FCM_TOKEN = "dK3x_fcm-token:APA91bH" + "x" * 140
CHROME = "https://fcm.googleapis.com/fcm/send/abc123"


def _signed_in(user: User) -> tuple[AuthToken, APIClient]:
    instance, token = AuthToken.objects.create(user=user, device="RehabApp/3.0")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return instance, client


def _ios(token: str = APNS_TOKEN, **extra: str) -> dict[str, str]:
    return {"platform": "ios", "token": token, **extra}


def test_it_registers_a_phone_with_its_details(patient):
    _, client = _signed_in(patient.user)
    response = client.post(
        DEVICES,
        _ios(app_version="3.0.1", locale="es-ES", time_zone="Europe/Madrid"),
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["platform"] == "ios"
    assert body["locale"] == "es-ES"
    assert body["time_zone"] == "Europe/Madrid"
    assert body["app_version"] == "3.0.1"
    assert body["current"] is True
    # The token is an address for the server only: never shown back.
    assert "token" not in body
    assert APNS_TOKEN not in response.content.decode()
    device = Device.objects.get()
    assert (device.user, device.token, device.channel) == (patient.user, APNS_TOKEN, "apns")
    event = AuditEvent.objects.get(object_type="push_device")
    assert event.action == AuditEvent.Action.CREATE
    assert event.patient_id == patient.pk
    assert event.object_id == str(device.pk)


def test_it_replaces_the_address_when_the_same_sign_in_registers_again(patient):
    _, client = _signed_in(patient.user)
    first = client.post(DEVICES, {"platform": "android", "token": FCM_TOKEN}, format="json")
    again = client.post(DEVICES, {"platform": "android", "token": FCM_TOKEN + "new"}, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert list(Device.objects.values_list("token", flat=True)) == [FCM_TOKEN + "new"]
    same = client.post(DEVICES, {"platform": "android", "token": FCM_TOKEN + "new"}, format="json")
    assert same.status_code == 200
    assert Device.objects.count() == 1
    actions = list(
        AuditEvent.objects.filter(object_type="push_device")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["create", "update", "update"]


def test_it_moves_a_token_to_whoever_signed_in_on_the_phone_last(patient, other_patient):
    _, first_client = _signed_in(patient.user)
    _, second_client = _signed_in(other_patient.user)
    assert first_client.post(DEVICES, _ios(), format="json").status_code == 201
    response = second_client.post(DEVICES, _ios(), format="json")
    assert response.status_code == 201
    device = Device.objects.get()
    assert device.user == other_patient.user
    # The first user's messages no longer reach the phone they handed on.
    assert first_client.get(DEVICES).json()["count"] == 0


def test_it_deletes_the_device_when_its_sign_in_ends(patient):
    _, client = _signed_in(patient.user)
    client.post(DEVICES, _ios(), format="json")
    assert client.post("/api/v1/auth/logout/").status_code == 204
    assert not Device.objects.exists()


def test_it_deletes_devices_when_tokens_are_revoked_elsewhere(patient):
    phone, phone_client = _signed_in(patient.user)
    _, tablet_client = _signed_in(patient.user)
    phone_client.post(DEVICES, _ios(), format="json")
    tablet_client.post(DEVICES, {"platform": "android", "token": FCM_TOKEN}, format="json")
    # A lost phone signed out from the tablet: its push address goes with its token.
    response = tablet_client.delete(f"/api/v1/auth/devices/{phone.public_id}/")
    assert response.status_code == 204
    assert list(Device.objects.values_list("platform", flat=True)) == ["android"]
    # A password change signs out everywhere: no address is left.
    patient_services.auth_sign_out_everywhere(user=patient.user, reason="test")
    assert not Device.objects.exists()


def test_it_lists_and_deletes_only_the_callers_own_devices(patient, other_patient, clinician):
    _, client = _signed_in(patient.user)
    _, other_client = _signed_in(other_patient.user)
    _, clinician_client = _signed_in(clinician.user)
    mine = client.post(DEVICES, _ios(), format="json").json()["id"]
    theirs = other_client.post(DEVICES, _ios("b2" * 32), format="json").json()["id"]
    clinicians = clinician_client.post(DEVICES, _ios("c3" * 32), format="json").json()["id"]

    assert [row["id"] for row in client.get(DEVICES).json()["results"]] == [mine]
    # Another user's device, a clinician's own care-team patient's included: 404, kept.
    assert client.delete(f"{DEVICES}{theirs}/").status_code == 404
    assert clinician_client.delete(f"{DEVICES}{mine}/").status_code == 404
    assert client.delete(f"{DEVICES}{clinicians}/").status_code == 404
    assert client.delete(f"{DEVICES}{uuid.uuid4()}/").status_code == 404
    assert Device.objects.count() == 3

    assert client.delete(f"{DEVICES}{mine}/").status_code == 204
    assert set(Device.objects.values_list("id", flat=True)) == {
        uuid.UUID(theirs),
        uuid.UUID(clinicians),
    }
    event = AuditEvent.objects.get(object_type="push_device", action=AuditEvent.Action.DELETE)
    assert (event.object_id, event.patient_id, event.actor_id) == (
        mine,
        patient.pk,
        patient.user.pk,
    )


def test_it_refuses_anonymous_callers(anon_client):
    assert anon_client.get(DEVICES).status_code == 401
    assert anon_client.post(DEVICES, _ios(), format="json").status_code == 401
    assert not Device.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"platform": "ios", "token": "not hex at all"}, "token"),
        ({"platform": "ios", "token": "ab"}, "token"),
        ({"platform": "android", "token": "bad token with spaces and more"}, "token"),
        ({"platform": "ios"}, "token"),
        ({"platform": "blackberry", "token": APNS_TOKEN}, "platform"),
        ({**_ios(), "time_zone": "Mars/Olympus"}, "time_zone"),
        ({**_ios(), "locale": "<script>"}, "locale"),
        ({**_ios(), "colour": "red"}, "colour"),
        ({"platform": "web", "token": APNS_TOKEN}, "subscription"),
        ({"platform": "ios", "token": APNS_TOKEN, "subscription": {}}, "subscription"),
    ],
)
def test_it_refuses_bad_input_and_stores_nothing(patient, body, field):
    _, client = _signed_in(patient.user)
    response = client.post(DEVICES, body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not Device.objects.exists()
    assert not AuditEvent.objects.filter(object_type="push_device").exists()


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://fcm.googleapis.com/fcm/send/abc",  # not https
        "https://evil.example/fcm/send/abc",  # not a push service
        "https://fcm.googleapis.com.evil.example/x",  # a look-alike
        "https://fcm.googleapis.com:8443/x",  # another port
        "https://user:pw@fcm.googleapis.com/x",  # credentials in the URL
        "https://169.254.169.254/latest/meta-data/",  # the cloud's metadata service
        "https://notify.windows.com/x",  # the wildcard's own domain is not a subdomain
        "file:///etc/passwd",
    ],
)
def test_it_accepts_web_push_endpoints_only_on_the_push_services(patient, endpoint):
    _, client = _signed_in(patient.user)
    body = {"platform": "web", "subscription": BrowserKeys.new().subscription(endpoint)}
    response = client.post(DEVICES, body, format="json")
    assert response.status_code == 400
    assert "subscription" in response.json()
    assert not Device.objects.exists()


@pytest.mark.parametrize(
    "endpoint",
    [
        CHROME,
        "https://updates.push.services.mozilla.com/wpush/v2/gAAAA",
        "https://wns2-par02p.notify.windows.com/w/?token=BQYAAA",
        "https://web.push.apple.com/QGuQyavXutnMH",
    ],
)
def test_it_accepts_the_real_push_services(patient, endpoint):
    _, client = _signed_in(patient.user)
    keys = BrowserKeys.new()
    subscription = keys.subscription(endpoint)
    response = client.post(
        DEVICES, {"platform": "web", "subscription": subscription}, format="json"
    )
    assert response.status_code == 201, response.json()
    device = Device.objects.get()
    assert device.channel == "webpush"
    # The address the channel is given is the subscription as the browser gave it.
    assert json.loads(device.address) == subscription


def test_it_refuses_broken_web_push_keys(patient):
    _, client = _signed_in(patient.user)
    subscription = BrowserKeys.new().subscription(CHROME)
    subscription["keys"] = {"p256dh": "AAAA", "auth": "short"}
    response = client.post(
        DEVICES, {"platform": "web", "subscription": subscription}, format="json"
    )
    assert response.status_code == 400
    assert not Device.objects.exists()


def test_it_forgets_a_dead_address_and_audits_it(patient):
    _, client = _signed_in(patient.user)
    _, browser_client = _signed_in(patient.user)
    client.post(DEVICES, _ios(), format="json")
    subscription = BrowserKeys.new().subscription(CHROME)
    browser_client.post(DEVICES, {"platform": "web", "subscription": subscription}, format="json")
    web = Device.objects.get(platform="web")

    assert (
        device_forget_dead(channel="apns", address=APNS_TOKEN, detail="HTTP 410 Unregistered") == 1
    )
    assert device_forget_dead(channel="apns", address=APNS_TOKEN) == 0
    assert device_forget_dead(channel="webpush", address=web.address, detail="HTTP 410") == 1
    assert not Device.objects.exists()
    events = AuditEvent.objects.filter(object_type="push_device", action="delete", actor=None)
    assert events.count() == 2
    assert {event.patient_id for event in events} == {patient.pk}
    assert all(APNS_TOKEN not in str(event.changes) for event in events)


def test_a_clinicians_dashboard_session_registers_its_browser(clinician, settings):
    settings.MFA_REQUIRED_DEFAULT = False
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(clinician.user)
    body = {"platform": "web", "subscription": BrowserKeys.new().subscription(CHROME)}
    # The dashboard's script sends the CSRF token; without it the session cannot write.
    refused = browser.post(DEVICES, body, content_type="application/json")
    assert refused.status_code == 403
    browser.get("/dashboard/")
    csrf = browser.cookies["csrftoken"].value
    response = browser.post(DEVICES, body, content_type="application/json", HTTP_X_CSRFTOKEN=csrf)
    assert response.status_code == 201, response.content
    device = Device.objects.get()
    assert device.session_id == browser.session.session_key
    assert device.auth_token_id is None
    # Signing out of the dashboard ends the session, and the browser's address with it.
    browser.post("/dashboard/logout/", HTTP_X_CSRFTOKEN=csrf)
    assert not Device.objects.exists()


def test_a_session_short_of_its_second_factor_cannot_register(clinician):
    clinician.clinic.two_factor_required = True
    clinician.clinic.save()
    browser = Client()
    browser.force_login(clinician.user)
    body = {"platform": "web", "subscription": BrowserKeys.new().subscription(CHROME)}
    response = browser.post(DEVICES, body, content_type="application/json")
    assert response.status_code == 401
    assert not Device.objects.exists()


def test_it_publishes_the_vapid_public_key(anon_client, settings):
    assert anon_client.get("/api/v1/push/webpush-key/").json() == {"public_key": None}
    settings.WEBPUSH_VAPID_PRIVATE_KEY = vapid_private_key()
    key = anon_client.get("/api/v1/push/webpush-key/").json()["public_key"]
    assert len(key) == 87  # 65 bytes, base64url without padding
