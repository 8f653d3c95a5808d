"""Web Push (RFC 8030) with VAPID (RFC 8292) and aes128gcm payload encryption (RFC 8291),
through pywebpush: the dashboard's browsers and any web app (docs/architecture.md,
"Notifications")."""

from __future__ import annotations

import base64
import json
import time
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from py_vapid import Vapid, VapidException  # type: ignore[import-untyped]

from notifications.channels.base import Outcome, OutgoingMessage, SendResult
from notifications.channels.httputil import host_allowed, retry_after_seconds


def load_vapid_key(private_key: str) -> Any:
    """The VAPID signing key from its setting: PEM, or base64url (raw 32 bytes or DER)."""
    if private_key.lstrip().startswith("-----BEGIN"):
        return Vapid.from_pem(private_key.strip().encode())
    return Vapid.from_string(private_key.strip())


def vapid_public_key(private_key: str) -> str:
    """The browser's `applicationServerKey`: the uncompressed public point, base64url."""
    raw = load_vapid_key(private_key).public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class WebPushChannel:
    name = "webpush"

    def __init__(
        self,
        *,
        vapid_private_key: str,
        subject: str,
        allowed_hosts: list[str] | tuple[str, ...],
        timeout: float = 10.0,
        ca_file: str | None = None,
    ) -> None:
        self._vapid = load_vapid_key(vapid_private_key)
        self._subject = subject
        self._allowed_hosts = tuple(allowed_hosts)
        self._timeout = timeout
        self._session = requests.Session()
        self._session.verify = ca_file or True
        # requests lets REQUESTS_CA_BUNDLE override a session's own CA file.
        self._session.trust_env = not ca_file
        # A push service answers, it never redirects: a redirect would send the payload
        # and our VAPID signature to a host nobody checked.
        self._session.max_redirects = 0

    @classmethod
    def from_settings(cls) -> WebPushChannel | None:
        """The channel as configured (docs/deployment.md), None when VAPID is not set."""
        if not settings.WEBPUSH_VAPID_PRIVATE_KEY:
            return None
        return cls(
            vapid_private_key=settings.WEBPUSH_VAPID_PRIVATE_KEY,
            subject=settings.WEBPUSH_VAPID_SUBJECT,
            allowed_hosts=settings.WEBPUSH_ALLOWED_HOSTS,
            timeout=settings.PUSH_TIMEOUT,
            ca_file=settings.PUSH_CA_FILE or None,
        )

    def send(self, message: OutgoingMessage) -> SendResult:
        try:
            subscription = json.loads(message.address)
            endpoint = subscription["endpoint"]
            assert isinstance(endpoint, str)
        except (ValueError, KeyError, TypeError, AssertionError):
            return SendResult(Outcome.FAILED, detail="malformed Web Push subscription")
        # Checked again at send time: the allow-list may have been narrowed since the
        # device registered (docs/security.md, "Web Push endpoints").
        if not host_allowed(endpoint, self._allowed_hosts):
            return SendResult(Outcome.DEAD_ADDRESS, detail="endpoint not on WEBPUSH_ALLOWED_HOSTS")
        parts = urlsplit(endpoint)
        try:
            headers: dict[str, str] = self._vapid.sign(
                {
                    "sub": self._subject,
                    "aud": f"{parts.scheme}://{parts.netloc}",
                    "exp": int(time.time()) + 12 * 3600,
                }
            )
        except VapidException as exc:
            return SendResult(Outcome.AUTH_FAILED, detail=f"VAPID claims refused: {exc}")
        # Topic: a message re-sent after a worker died replaces the undelivered first
        # copy at the push service (at most 32 URL-safe characters: the id's hex).
        headers["Topic"] = message.delivery_id.hex
        headers["Urgency"] = "high" if message.urgent else "normal"
        payload = json.dumps(
            {
                "title": message.subject,
                "body": message.body,
                "data": dict(message.data),
                "delivery_id": str(message.delivery_id),
                "urgent": message.urgent,
            }
        ).encode()
        # Imported at the first push, not with the channels: pywebpush brings aiohttp (~8 MB
        # of every process that imports the tasks; docs/deployment.md § Memory).
        from pywebpush import WebPusher, WebPushException  # type: ignore[import-untyped]

        try:
            pusher = WebPusher(subscription, requests_session=self._session)
            response = pusher.send(
                payload,
                headers,
                ttl=message.ttl_seconds,
                content_encoding="aes128gcm",
                timeout=self._timeout,
            )
        except WebPushException as exc:
            # The subscription's keys cannot encrypt: the browser gave a broken one.
            return SendResult(Outcome.DEAD_ADDRESS, detail=f"unusable subscription keys: {exc}")
        except requests.TooManyRedirects:
            return SendResult(Outcome.FAILED, detail="push service answered with a redirect")
        except requests.RequestException as exc:
            return SendResult(Outcome.RETRY, detail=f"network: {type(exc).__name__}")
        assert isinstance(response, requests.Response)
        return _result(response)

    def close(self) -> None:
        self._session.close()


def _result(response: requests.Response) -> SendResult:
    status = response.status_code
    reason = f"HTTP {status} {response.reason or ''}".strip()
    if status in (200, 201, 202):
        return SendResult(Outcome.SENT, provider_id=response.headers.get("Location", ""))
    if status in (404, 410):
        return SendResult(Outcome.DEAD_ADDRESS, detail=reason)
    if status in (401, 403):
        return SendResult(
            Outcome.AUTH_FAILED,
            detail=f"{reason}: the push service refused our VAPID signature "
            "(check WEBPUSH_VAPID_PRIVATE_KEY and WEBPUSH_VAPID_SUBJECT)",
        )
    if status == 429 or status >= 500:
        return SendResult(
            Outcome.RETRY,
            retry_after=retry_after_seconds(response.headers.get("Retry-After")),
            detail=reason,
        )
    return SendResult(Outcome.FAILED, detail=reason)
