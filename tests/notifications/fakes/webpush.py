"""A fake Web Push service (RFC 8030): checks the VAPID signature (RFC 8292) as the push
services do, and decrypts the aes128gcm payload (RFC 8291) with the browser's keys, as
the browser would."""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from typing import Any

import http_ece  # type: ignore[import-untyped]
import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from tests.notifications.fakes.server import FakeProvider, Reply, Request
from tests.notifications.subscriptions import BrowserKeys

_PATH = re.compile(r"^/push/(?P<id>[A-Za-z0-9_-]+)$")
_VAPID = re.compile(r"^vapid t=(?P<t>[^,\s]+),\s*k=(?P<k>[A-Za-z0-9_-]+)$")


def _unb64(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


class FakeWebPush(FakeProvider):
    def __init__(self) -> None:
        super().__init__()
        self.browsers: dict[str, tuple[BrowserKeys, str]] = {}
        self.gone: set[str] = set()
        # What the browser was shown: the decrypted payloads, with the headers that came.
        self.delivered: list[tuple[dict[str, Any], dict[str, str]]] = []

    def subscribe(self, keys: BrowserKeys, application_server_key: str) -> dict[str, object]:
        """A browser subscribes with the server's VAPID public key: the subscription as
        `PushSubscription.toJSON()` gives it."""
        subscription_id = secrets.token_urlsafe(16)
        self.browsers[subscription_id] = (keys, application_server_key)
        return keys.subscription(f"{self.base_url}/push/{subscription_id}")

    def handle(self, request: Request) -> Reply:
        match = _PATH.match(request.path)
        if request.method != "POST" or match is None:
            return Reply(404)
        vapid = _VAPID.match(request.headers.get("authorization", ""))
        if vapid is None:
            return Reply(401, b"missing VAPID authorization")
        try:
            public_key = ec.EllipticCurvePublicKey.from_encoded_point(
                ec.SECP256R1(), _unb64(vapid["k"])
            )
            claims = jwt.decode(
                vapid["t"], public_key, algorithms=["ES256"], audience=self.base_url
            )
        except (ValueError, jwt.PyJWTError):
            return Reply(401, b"bad VAPID token")
        if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
            return Reply(401, b"VAPID sub is no contact")
        if claims["exp"] > time.time() + 24 * 3600:
            return Reply(401, b"VAPID token lives too long")
        subscription_id = match["id"]
        if subscription_id in self.gone:
            return Reply(410, b"subscription expired")
        if subscription_id not in self.browsers:
            return Reply(404, b"no such subscription")
        keys, application_server_key = self.browsers[subscription_id]
        if vapid["k"] != application_server_key:
            # The subscription was made for another server's key.
            return Reply(403, b"VAPID key does not match the subscription")
        if request.headers.get("content-encoding") != "aes128gcm" or "ttl" not in request.headers:
            return Reply(400, b"aes128gcm body and TTL required")
        plaintext = http_ece.decrypt(
            request.body,
            private_key=keys.private_key,
            auth_secret=keys.auth,
            version="aes128gcm",
        )
        self.delivered.append((json.loads(plaintext), request.headers))
        return Reply(201, b"", {"location": f"{self.base_url}/message/{secrets.token_hex(8)}"})
