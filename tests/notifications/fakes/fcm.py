"""A fake FCM: Google's OAuth2 token endpoint (the JWT-bearer grant of a service account)
and the HTTP v1 send endpoint, with FCM's error shapes."""

from __future__ import annotations

import re
import secrets
import time
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.notifications.fakes.server import FakeProvider, Reply, Request

GOOGLE_TOKEN_ENDPOINT = "https://oauth2.googleapis.com/token"
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
_SEND = re.compile(r"^/v1/projects/(?P<project>[^/]+)/messages:send$")


def fcm_error(status_code: int, status: str, code: str = "", **headers: str) -> Reply:
    details = (
        [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}]
        if code
        else []
    )
    return Reply.json(
        status_code,
        {
            "error": {
                "code": status_code,
                "message": status.lower(),
                "status": status,
                "details": details,
            }
        },
        headers,
    )


class FakeFcm(FakeProvider):
    def __init__(self, *, project: str, client_email: str, public_key: rsa.RSAPublicKey) -> None:
        super().__init__()
        self.project, self.client_email, self.public_key = project, client_email, public_key
        self.access_tokens: set[str] = set()
        self.unregistered: set[str] = set()
        self.grants = 0
        self.refusals: list[str] = []

    @property
    def token_uri(self) -> str:
        return f"{self.base_url}/token"

    def handle(self, request: Request) -> Reply:
        if request.path == "/token" and request.method == "POST":
            return self._token(request)
        match = _SEND.match(request.path)
        if match and request.method == "POST":
            return self._send(request, match["project"])
        return fcm_error(404, "NOT_FOUND")

    def scriptable(self, request: Request) -> bool:
        return request.path != "/token"

    def _token(self, request: Request) -> Reply:
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return Reply.json(400, {"error": "unsupported_grant_type"})
        try:
            claims = jwt.decode(
                form.get("assertion", ""),
                self.public_key,
                algorithms=["RS256"],
                # google-auth addresses its assertions to Google's token endpoint whatever
                # token_uri says; Google accepts that audience, and the endpoint itself.
                audience=[GOOGLE_TOKEN_ENDPOINT, self.token_uri],
            )
        except jwt.PyJWTError as exc:
            self.refusals.append(repr(exc))
            return Reply.json(
                400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
            )
        if (
            claims.get("iss") != self.client_email
            or SCOPE not in str(claims.get("scope", "")).split()
        ):
            return Reply.json(400, {"error": "invalid_scope"})
        if not claims["iat"] <= time.time() + 60 < claims["exp"] + 60:
            return Reply.json(400, {"error": "invalid_grant", "error_description": "Bad time."})
        token = secrets.token_urlsafe(24)
        self.access_tokens.add(token)
        self.grants += 1
        return Reply.json(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    def _send(self, request: Request, project: str) -> Reply:
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        if bearer not in self.access_tokens:
            return fcm_error(401, "UNAUTHENTICATED")
        if project != self.project:
            return fcm_error(403, "PERMISSION_DENIED")
        message = request.json().get("message", {})
        token = message.get("token")
        if not token:
            return fcm_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT")
        if token in self.unregistered:
            return fcm_error(404, "NOT_FOUND", "UNREGISTERED")
        return Reply.json(200, {"name": f"projects/{project}/messages/0:{secrets.token_hex(8)}"})
