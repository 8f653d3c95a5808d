"""A fake APNs provider API: HTTP/2 only, token (ES256 JWT) authentication, Apple's
answers and reasons."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from tests.notifications.fakes.server import FakeProvider, Reply, Request

_PATH = re.compile(r"^/3/device/(?P<token>[0-9a-fA-F]+)$")


def _reason(status: int, reason: str, **extra: object) -> Reply:
    return Reply.json(status, {"reason": reason, **extra})


class FakeApns(FakeProvider):
    def __init__(
        self, *, team_id: str, key_id: str, public_key: ec.EllipticCurvePublicKey, topic: str
    ) -> None:
        super().__init__()
        self.team_id, self.key_id, self.public_key, self.topic = team_id, key_id, public_key, topic
        self.unregistered: set[str] = set()
        self.provider_tokens: set[str] = set()

    def handle(self, request: Request) -> Reply:
        if request.http_version != "2":
            # Apple's servers speak HTTP/2 only.
            return _reason(505, "HTTP/2 required")
        match = _PATH.match(request.path)
        if request.method != "POST" or match is None:
            return _reason(405 if match else 404, "MethodNotAllowed" if match else "BadPath")
        authorization = request.headers.get("authorization", "")
        if not authorization.startswith("bearer "):
            return _reason(403, "MissingProviderToken")
        token = authorization.removeprefix("bearer ")
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(token, self.public_key, algorithms=["ES256"])
        except jwt.PyJWTError:
            return _reason(403, "InvalidProviderToken")
        if header.get("kid") != self.key_id or claims.get("iss") != self.team_id:
            return _reason(403, "InvalidProviderToken")
        if claims.get("iat", 0) < time.time() - 3600:
            return _reason(403, "ExpiredProviderToken")
        self.provider_tokens.add(token)
        if request.headers.get("apns-topic") != self.topic:
            return _reason(400, "DeviceTokenNotForTopic")
        if request.headers.get("apns-push-type") not in ("alert", "background"):
            return _reason(400, "InvalidPushType")
        payload = request.json()
        if "aps" not in payload:
            return _reason(400, "PayloadEmpty")
        if match["token"] in self.unregistered:
            return _reason(410, "Unregistered", timestamp=int(time.time() * 1000))
        apns_id = request.headers.get("apns-id") or str(uuid.uuid4()).upper()
        return Reply(200, b"", {"apns-id": apns_id})

    @staticmethod
    def payload(request: Request) -> dict[str, Any]:
        value = json.loads(request.body)
        assert isinstance(value, dict)
        return value
