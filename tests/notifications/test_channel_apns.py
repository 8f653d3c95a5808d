"""The APNs channel against a local server speaking Apple's provider API over HTTP/2 with
TLS (ALPN h2), token authentication checked as Apple does."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from notifications.channels.apns import ApnsChannel
from notifications.channels.base import Outcome, OutgoingMessage
from tests.notifications.fakes.apns import FakeApns
from tests.notifications.fakes.server import Reply, serving

TEAM, KEY_ID, TOPIC = "TEAM123456", "KEY1234567", "com.example.rehab"
DEVICE = "ab" * 32


def _p8(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture(scope="module")
def signing_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def apns(certificates, signing_key) -> Iterator[FakeApns]:
    fake = FakeApns(team_id=TEAM, key_id=KEY_ID, public_key=signing_key.public_key(), topic=TOPIC)
    with serving(fake, certificates):
        yield fake


def _channel(apns, certificates, closing, key=None, **overrides) -> ApnsChannel:
    options = {
        "team_id": TEAM,
        "key_id": KEY_ID,
        "private_key": key,
        "topic": TOPIC,
        "base_url": apns.base_url,
        "ca_file": str(certificates.ca_file),
        "timeout": 30.0,  # generous: a loaded parallel run only makes the fake slower
        **overrides,
    }
    channel = ApnsChannel(**options)
    closing.append(channel)
    return channel


def _message(**overrides) -> OutgoingMessage:
    values = {
        "delivery_id": uuid.uuid4(),
        "address": DEVICE,
        "subject": "Time for today's log",
        "body": "How is your back today?",
        "data": {"kind": "daily_log"},
    }
    return OutgoingMessage(**{**values, **overrides})


def test_it_delivers_over_http2_with_a_signed_provider_token(
    apns, certificates, closing, signing_key
):
    channel = _channel(apns, certificates, closing, _p8(signing_key))
    message = _message(urgent=True, ttl_seconds=600)
    before = int(time.time())
    result = channel.send(message)
    after = time.time()
    assert result.outcome is Outcome.SENT, result
    assert result.provider_id == str(message.delivery_id)
    (request,) = apns.requests
    assert request.http_version == "2"
    assert request.path == f"/3/device/{DEVICE}"
    headers = request.headers
    assert headers["apns-collapse-id"] == str(message.delivery_id)
    assert headers["apns-id"] == str(message.delivery_id)
    assert headers["apns-priority"] == "10"
    assert headers["apns-push-type"] == "alert"
    # Ten minutes from the send, however long the send took.
    assert before + 600 <= int(headers["apns-expiration"]) <= after + 600
    payload = FakeApns.payload(request)
    assert payload["aps"]["alert"] == {"title": message.subject, "body": message.body}
    assert payload["kind"] == "daily_log"
    assert payload["delivery_id"] == str(message.delivery_id)


def test_it_sends_routine_messages_at_normal_priority_and_reuses_the_token(
    apns, certificates, closing, signing_key
):
    channel = _channel(apns, certificates, closing, _p8(signing_key))
    assert channel.send(_message()).outcome is Outcome.SENT
    assert channel.send(_message()).outcome is Outcome.SENT
    assert [r.headers["apns-priority"] for r in apns.requests] == ["5", "5"]
    # One provider token for both: Apple throttles providers that sign one per message.
    assert len(apns.provider_tokens) == 1
    assert "interruption-level" not in FakeApns.payload(apns.requests[0])["aps"]


def test_an_unregistered_device_is_a_dead_address(apns, certificates, closing, signing_key):
    apns.unregistered.add(DEVICE)
    result = _channel(apns, certificates, closing, _p8(signing_key)).send(_message())
    assert result.outcome is Outcome.DEAD_ADDRESS
    assert "410 Unregistered" in result.detail


@pytest.mark.parametrize(
    ("reply", "retry_after"),
    [
        (Reply.json(429, {"reason": "TooManyRequests"}, {"retry-after": "120"}), 120.0),
        (Reply.json(503, {"reason": "ServiceUnavailable"}, {"retry-after": "7"}), 7.0),
        (Reply.json(500, {"reason": "InternalServerError"}), None),
    ],
)
def test_it_asks_for_a_retry_when_apple_is_busy(
    apns, certificates, closing, signing_key, reply, retry_after
):
    apns.script(reply)
    result = _channel(apns, certificates, closing, _p8(signing_key)).send(_message())
    assert result.outcome is Outcome.RETRY
    assert result.retry_after == retry_after
    assert str(reply.status) in result.detail


def test_a_wrong_key_is_an_auth_failure_for_operators(apns, certificates, closing):
    wrong = ec.generate_private_key(ec.SECP256R1())
    result = _channel(apns, certificates, closing, _p8(wrong)).send(_message())
    assert result.outcome is Outcome.AUTH_FAILED
    assert "InvalidProviderToken" in result.detail
    assert "APNS_KEY_ID" in result.detail
    # The message's text is never part of what operators see.
    assert "back" not in result.detail


def test_a_wrong_topic_is_a_dead_address_for_this_app(apns, certificates, closing, signing_key):
    channel = _channel(apns, certificates, closing, _p8(signing_key), topic="com.other.app")
    assert channel.send(_message()).outcome is Outcome.DEAD_ADDRESS


def test_an_expired_provider_token_is_signed_again(apns, certificates, closing, signing_key):
    channel = _channel(apns, certificates, closing, _p8(signing_key))
    stale = jwt.encode(
        {"iss": TEAM, "iat": int(time.time()) - 7200},
        _p8(signing_key),
        algorithm="ES256",
        headers={"kid": KEY_ID},
    )
    channel._token = (stale, time.time())
    result = channel.send(_message())
    assert result.outcome is Outcome.SENT
    assert len(apns.requests) == 2


def test_an_unreadable_key_is_an_auth_failure(apns, certificates, closing):
    result = _channel(apns, certificates, closing, "not a key").send(_message())
    assert result.outcome is Outcome.AUTH_FAILED
    assert "APNS_PRIVATE_KEY" in result.detail
    assert apns.requests == []


def test_a_server_down_is_a_retry(certificates, closing, signing_key):
    channel = ApnsChannel(
        team_id=TEAM,
        key_id=KEY_ID,
        private_key=_p8(signing_key),
        topic=TOPIC,
        base_url="https://localhost:9",
        ca_file=str(certificates.ca_file),
        timeout=2.0,
    )
    closing.append(channel)
    result = channel.send(_message())
    assert result.outcome is Outcome.RETRY
    assert result.detail.startswith("network:")
