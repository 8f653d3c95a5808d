"""Apple Push Notification service: the HTTP/2 provider API with token (.p8, ES256 JWT)
authentication, through httpx with h2 (docs/architecture.md, "Notifications")."""

from __future__ import annotations

import json
import re
import ssl
import threading
import time
from pathlib import Path

import httpx
import jwt
from django.conf import settings

from notifications.channels.base import Outcome, OutgoingMessage, SendResult
from notifications.channels.httputil import retry_after_seconds

_TOKEN = re.compile(r"^[0-9a-fA-F]{64,200}$")
# Apple refuses provider tokens older than an hour, and throttles a provider that makes
# new ones more often than every 20 minutes: one token is used for 50 minutes.
PROVIDER_TOKEN_LIFETIME = 50 * 60
# Answers that mean the device token will never work for this app.
_DEAD_REASONS = {"BadDeviceToken", "DeviceTokenNotForTopic", "Unregistered", "ExpiredToken"}


class ApnsChannel:
    name = "apns"

    def __init__(
        self,
        *,
        team_id: str,
        key_id: str,
        private_key: str,
        topic: str,
        base_url: str = "https://api.push.apple.com",
        timeout: float = 10.0,
        ca_file: str | None = None,
    ) -> None:
        self._team_id, self._key_id, self._private_key = team_id, key_id, private_key
        self._topic = topic
        self._base_url = base_url.rstrip("/")
        # One long-lived HTTP/2 connection, as Apple asks: many streams over it, not a new
        # TLS handshake per message.
        # `ca_file`: a test's certificate authority instead of the system's.
        verify = ssl.create_default_context(cafile=ca_file) if ca_file else True
        self._client = httpx.Client(http2=True, timeout=timeout, verify=verify)
        self._lock = threading.Lock()
        self._token: tuple[str, float] | None = None

    @classmethod
    def from_settings(cls) -> ApnsChannel | None:
        """The channel as configured (docs/deployment.md), None when APNs is not set."""
        key = settings.APNS_PRIVATE_KEY
        if not key and settings.APNS_PRIVATE_KEY_FILE:
            key = Path(settings.APNS_PRIVATE_KEY_FILE).read_text()
        if not (key and settings.APNS_TEAM_ID and settings.APNS_KEY_ID and settings.APNS_TOPIC):
            return None
        return cls(
            team_id=settings.APNS_TEAM_ID,
            key_id=settings.APNS_KEY_ID,
            private_key=key,
            topic=settings.APNS_TOPIC,
            base_url=settings.APNS_BASE_URL,
            timeout=settings.PUSH_TIMEOUT,
            ca_file=settings.PUSH_CA_FILE or None,
        )

    def _provider_token(self, *, renew: bool = False) -> str:
        with self._lock:
            now = time.time()
            if renew or self._token is None or now - self._token[1] > PROVIDER_TOKEN_LIFETIME:
                token = jwt.encode(
                    {"iss": self._team_id, "iat": int(now)},
                    self._private_key,
                    algorithm="ES256",
                    headers={"kid": self._key_id},
                )
                self._token = (token, now)
            return self._token[0]

    def send(self, message: OutgoingMessage) -> SendResult:
        if not _TOKEN.match(message.address):
            return SendResult(Outcome.DEAD_ADDRESS, detail="not an APNs device token")
        aps: dict[str, object] = {"alert": {"title": message.subject, "body": message.body}}
        if message.urgent:
            aps |= {"sound": "default", "interruption-level": "time-sensitive"}
        payload = {**message.data, "delivery_id": str(message.delivery_id), "aps": aps}
        headers = {
            "apns-topic": self._topic,
            "apns-push-type": "alert",
            # The delivery's id twice: apns-id names the notification in Apple's answers,
            # apns-collapse-id makes a re-sent copy replace the first on the phone.
            "apns-id": str(message.delivery_id),
            "apns-collapse-id": str(message.delivery_id),
            "apns-priority": "10" if message.urgent else "5",
            "apns-expiration": str(int(time.time()) + message.ttl_seconds),
        }
        url = f"{self._base_url}/3/device/{message.address}"
        body = json.dumps(payload, separators=(",", ":")).encode()
        try:
            provider_token = self._provider_token()
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            return SendResult(
                Outcome.AUTH_FAILED,
                detail=f"cannot sign the APNs provider token ({type(exc).__name__}): "
                "check APNS_PRIVATE_KEY / APNS_PRIVATE_KEY_FILE (the .p8 key)",
            )
        for attempt in range(2):
            try:
                response = self._client.post(
                    url,
                    content=body,
                    headers={**headers, "authorization": f"bearer {provider_token}"},
                )
            except httpx.HTTPError as exc:
                return SendResult(Outcome.RETRY, detail=f"network: {type(exc).__name__}")
            reason = _reason(response)
            if response.status_code == 403 and reason == "ExpiredProviderToken" and attempt == 0:
                # Our cached token outlived Apple's patience (a clock skew): sign a new one.
                provider_token = self._provider_token(renew=True)
                continue
            return _result(response, reason)
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        self._client.close()


def _reason(response: httpx.Response) -> str:
    try:
        reason = response.json().get("reason", "")
    except (ValueError, AttributeError):
        return ""
    return reason if isinstance(reason, str) else ""


def _result(response: httpx.Response, reason: str) -> SendResult:
    status = response.status_code
    detail = f"HTTP {status} {reason}".strip()
    if status == 200:
        return SendResult(Outcome.SENT, provider_id=response.headers.get("apns-id", ""))
    if status == 410 or (status == 400 and reason in _DEAD_REASONS):
        return SendResult(Outcome.DEAD_ADDRESS, detail=detail)
    if status == 403:
        return SendResult(
            Outcome.AUTH_FAILED,
            detail=f"{detail}: APNs refused our provider token or topic "
            "(check APNS_TEAM_ID, APNS_KEY_ID, the .p8 key and APNS_TOPIC)",
        )
    if status in (429, 500, 503):
        return SendResult(
            Outcome.RETRY,
            retry_after=retry_after_seconds(response.headers.get("retry-after")),
            detail=detail,
        )
    return SendResult(Outcome.FAILED, detail=detail)
