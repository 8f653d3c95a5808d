"""The Web Push channel against a local push service that checks VAPID as the real ones
do and decrypts each payload with the browser's keys."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from notifications.channels.base import Outcome, OutgoingMessage
from notifications.channels.webpush import WebPushChannel, vapid_public_key
from notifications.devices import device_forget_dead
from notifications.models import Device
from patients.models import AuthToken
from tests.notifications.fakes.server import Reply, serving
from tests.notifications.fakes.webpush import FakeWebPush
from tests.notifications.subscriptions import BrowserKeys, vapid_private_key


@pytest.fixture(scope="module")
def vapid_key() -> str:
    return vapid_private_key()


@pytest.fixture
def push_service(certificates) -> Iterator[FakeWebPush]:
    fake = FakeWebPush()
    with serving(fake, certificates):
        yield fake


def _host(push_service: FakeWebPush) -> str:
    return push_service.base_url.removeprefix("https://")


def _channel(push_service, certificates, closing, key, **overrides) -> WebPushChannel:
    options = {
        "vapid_private_key": key,
        "subject": "mailto:ops@rehab.example",
        "allowed_hosts": [_host(push_service)],
        "ca_file": str(certificates.ca_file),
        "timeout": 30.0,  # generous: a loaded parallel run only makes the fake slower
        **overrides,
    }
    channel = WebPushChannel(**options)
    closing.append(channel)
    return channel


def _message(address: str, **overrides) -> OutgoingMessage:
    values = {
        "delivery_id": uuid.uuid4(),
        "address": address,
        "subject": "Emergency alert",
        "body": "A patient reported new bladder changes.",
        "data": {"kind": "alert", "alert": "17"},
    }
    return OutgoingMessage(**{**values, **overrides})


def _subscribe(push_service: FakeWebPush, key: str) -> str:
    import json

    return json.dumps(push_service.subscribe(BrowserKeys.new(), vapid_public_key(key)))


def test_it_delivers_an_encrypted_payload_signed_with_vapid(
    push_service, certificates, closing, vapid_key
):
    address = _subscribe(push_service, vapid_key)
    message = _message(address, urgent=True, ttl_seconds=900)
    result = _channel(push_service, certificates, closing, vapid_key).send(message)
    assert result.outcome is Outcome.SENT, (result, push_service.requests)
    assert result.provider_id.startswith(f"{push_service.base_url}/message/")
    ((payload, headers),) = push_service.delivered
    assert payload == {
        "title": "Emergency alert",
        "body": "A patient reported new bladder changes.",
        "data": {"kind": "alert", "alert": "17"},
        "delivery_id": str(message.delivery_id),
        "urgent": True,
    }
    # What crossed the network was ciphertext only.
    assert b"bladder" not in push_service.requests[0].body
    assert headers["topic"] == message.delivery_id.hex
    assert headers["urgency"] == "high"
    assert headers["ttl"] == "900"


def test_routine_messages_go_at_normal_urgency(push_service, certificates, closing, vapid_key):
    address = _subscribe(push_service, vapid_key)
    assert (
        _channel(push_service, certificates, closing, vapid_key).send(_message(address)).outcome
        is Outcome.SENT
    )
    assert push_service.delivered[0][1]["urgency"] == "normal"


def test_an_expired_subscription_is_a_dead_address(push_service, certificates, closing, vapid_key):
    address = _subscribe(push_service, vapid_key)
    push_service.gone.update(push_service.browsers)
    result = _channel(push_service, certificates, closing, vapid_key).send(_message(address))
    assert result.outcome is Outcome.DEAD_ADDRESS
    assert result.detail.startswith("HTTP 410")


def test_an_unknown_subscription_is_a_dead_address(push_service, certificates, closing, vapid_key):
    address = _subscribe(push_service, vapid_key).replace("/push/", "/push/x")
    result = _channel(push_service, certificates, closing, vapid_key).send(_message(address))
    assert result.outcome is Outcome.DEAD_ADDRESS
    assert result.detail.startswith("HTTP 404")


@pytest.mark.parametrize(
    ("reply", "retry_after"),
    [
        (Reply(429, b"", {"retry-after": "30"}), 30.0),
        (Reply(503, b"", {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}), 0.0),
        (Reply(503), None),
    ],
)
def test_it_asks_for_a_retry_when_the_push_service_is_busy(
    push_service, certificates, closing, vapid_key, reply, retry_after
):
    address = _subscribe(push_service, vapid_key)
    push_service.script(reply)
    result = _channel(push_service, certificates, closing, vapid_key).send(_message(address))
    assert result.outcome is Outcome.RETRY
    assert result.retry_after == retry_after


def test_a_key_other_than_the_subscriptions_is_an_auth_failure(
    push_service, certificates, closing, vapid_key
):
    address = _subscribe(push_service, vapid_key)
    other_key = vapid_private_key()
    result = _channel(push_service, certificates, closing, other_key).send(_message(address))
    assert result.outcome is Outcome.AUTH_FAILED
    assert "WEBPUSH_VAPID_PRIVATE_KEY" in result.detail
    assert "bladder" not in result.detail
    assert push_service.delivered == []


def test_it_never_calls_an_endpoint_off_the_allow_list(
    push_service, certificates, closing, vapid_key
):
    address = _subscribe(push_service, vapid_key)
    channel = _channel(
        push_service, certificates, closing, vapid_key, allowed_hosts=["fcm.googleapis.com"]
    )
    result = channel.send(_message(address))
    assert result.outcome is Outcome.DEAD_ADDRESS
    assert push_service.requests == []


def test_it_never_follows_a_redirect(push_service, certificates, closing, vapid_key):
    address = _subscribe(push_service, vapid_key)
    push_service.script(Reply(307, b"", {"location": "https://169.254.169.254/"}))
    result = _channel(push_service, certificates, closing, vapid_key).send(_message(address))
    assert result.outcome is Outcome.FAILED
    assert len(push_service.requests) == 1


@pytest.mark.django_db
def test_a_registered_browser_is_reached_and_forgotten_when_gone(
    push_service, certificates, closing, vapid_key, patient, settings
):
    """From the registration endpoint to the browser and back: the device's address is
    what the channel sends to, and a dead answer removes the device."""
    settings.WEBPUSH_ALLOWED_HOSTS = [_host(push_service)]
    from rest_framework.test import APIClient

    _, token = AuthToken.objects.create(user=patient.user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    subscription = push_service.subscribe(BrowserKeys.new(), vapid_public_key(vapid_key))
    response = client.post(
        "/api/v1/me/devices/", {"platform": "web", "subscription": subscription}, format="json"
    )
    assert response.status_code == 201, response.json()
    device = Device.objects.get()
    channel = _channel(push_service, certificates, closing, vapid_key)
    assert channel.send(_message(device.address)).outcome is Outcome.SENT
    assert len(push_service.delivered) == 1

    push_service.gone.update(push_service.browsers)
    result = channel.send(_message(device.address))
    assert result.outcome is Outcome.DEAD_ADDRESS
    assert (
        device_forget_dead(channel=device.channel, address=device.address, detail=result.detail)
        == 1
    )
    assert not Device.objects.exists()
