"""The FCM channel against a local server speaking Google's OAuth2 token endpoint (the
service account's JWT-bearer grant, its signature checked) and FCM's HTTP v1 API."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from notifications.channels.base import Outcome, OutgoingMessage
from notifications.channels.fcm import FcmChannel
from tests.notifications.fakes.fcm import FakeFcm, fcm_error
from tests.notifications.fakes.server import serving

PROJECT = "rehab-test"
EMAIL = "push@rehab-test.iam.gserviceaccount.com"
PHONE = "fcm-token:APA91b" + "q" * 140


@pytest.fixture(scope="module")
def account_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def fcm(certificates, account_key) -> Iterator[FakeFcm]:
    fake = FakeFcm(project=PROJECT, client_email=EMAIL, public_key=account_key.public_key())
    with serving(fake, certificates):
        yield fake


def _account(fcm: FakeFcm, key: rsa.RSAPrivateKey) -> dict[str, str]:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": EMAIL,
        "client_id": "1",
        "token_uri": fcm.token_uri,
    }


def _channel(fcm, certificates, closing, key, project=PROJECT) -> FcmChannel:
    channel = FcmChannel(
        project_id=project,
        service_account_info=_account(fcm, key),
        base_url=fcm.base_url,
        ca_file=str(certificates.ca_file),
        timeout=30.0,  # generous: a loaded parallel run only makes the fake slower
    )
    closing.append(channel)
    return channel


def _message(**overrides) -> OutgoingMessage:
    values = {
        "delivery_id": uuid.uuid4(),
        "address": PHONE,
        "subject": "Emergency advice was shown",
        "body": "Were you seen by a doctor?",
        "data": {"kind": "safety_follow_up", "alert": "42"},
    }
    return OutgoingMessage(**{**values, **overrides})


def test_it_gets_a_token_as_the_service_account_and_sends(fcm, certificates, closing, account_key):
    channel = _channel(fcm, certificates, closing, account_key)
    message = _message(urgent=True, ttl_seconds=3600)
    result = channel.send(message)
    assert result.outcome is Outcome.SENT, (result, fcm.refusals)
    assert result.provider_id.startswith(f"projects/{PROJECT}/messages/")
    token_request, send_request = fcm.requests
    assert token_request.path == "/token"
    sent = send_request.json()["message"]
    assert sent["token"] == PHONE
    assert sent["notification"] == {"title": message.subject, "body": message.body}
    assert sent["data"] == {
        "kind": "safety_follow_up",
        "alert": "42",
        "delivery_id": str(message.delivery_id),
    }
    assert sent["android"] == {
        "priority": "HIGH",
        "ttl": "3600s",
        "collapse_key": str(message.delivery_id),
    }


def test_it_reuses_its_access_token_and_sends_routine_messages_at_normal_priority(
    fcm, certificates, closing, account_key
):
    channel = _channel(fcm, certificates, closing, account_key)
    assert channel.send(_message()).outcome is Outcome.SENT
    assert channel.send(_message()).outcome is Outcome.SENT
    assert fcm.grants == 1
    assert fcm.requests[-1].json()["message"]["android"]["priority"] == "NORMAL"


def test_it_renews_a_revoked_access_token_once(fcm, certificates, closing, account_key):
    channel = _channel(fcm, certificates, closing, account_key)
    assert channel.send(_message()).outcome is Outcome.SENT
    fcm.access_tokens.clear()
    assert channel.send(_message()).outcome is Outcome.SENT
    assert fcm.grants == 2


def test_an_unregistered_token_is_a_dead_address(fcm, certificates, closing, account_key):
    fcm.unregistered.add(PHONE)
    result = _channel(fcm, certificates, closing, account_key).send(_message())
    assert result.outcome is Outcome.DEAD_ADDRESS
    assert result.detail == "HTTP 404 UNREGISTERED"


def test_a_token_of_another_project_is_a_dead_address(fcm, certificates, closing, account_key):
    fcm.script(fcm_error(403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH"))
    result = _channel(fcm, certificates, closing, account_key).send(_message())
    assert result.outcome is Outcome.DEAD_ADDRESS


@pytest.mark.parametrize(
    ("reply", "retry_after"),
    [
        (fcm_error(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", **{"retry-after": "60"}), 60.0),
        (fcm_error(503, "UNAVAILABLE", "UNAVAILABLE", **{"retry-after": "5"}), 5.0),
        (fcm_error(500, "INTERNAL", "INTERNAL"), None),
    ],
)
def test_it_asks_for_a_retry_when_fcm_is_busy(
    fcm, certificates, closing, account_key, reply, retry_after
):
    fcm.script(reply)
    result = _channel(fcm, certificates, closing, account_key).send(_message())
    assert result.outcome is Outcome.RETRY
    assert result.retry_after == retry_after


def test_a_refused_service_account_is_an_auth_failure_for_operators(fcm, certificates, closing):
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    result = _channel(fcm, certificates, closing, stranger).send(_message())
    assert result.outcome is Outcome.AUTH_FAILED
    assert "invalid_grant" in result.detail
    assert "FCM_SERVICE_ACCOUNT" in result.detail
    assert "doctor" not in result.detail
    assert [r.path for r in fcm.requests] == ["/token"]


def test_a_project_the_account_may_not_send_to_is_an_auth_failure(
    fcm, certificates, closing, account_key
):
    result = _channel(fcm, certificates, closing, account_key, project="someone-else").send(
        _message()
    )
    assert result.outcome is Outcome.AUTH_FAILED
    assert "403 PERMISSION_DENIED" in result.detail


def test_a_malformed_message_is_a_failure_without_retry(fcm, certificates, closing, account_key):
    result = _channel(fcm, certificates, closing, account_key).send(_message(address=""))
    assert result.outcome is Outcome.FAILED
    assert "INVALID_ARGUMENT" in result.detail
