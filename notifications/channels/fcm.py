"""Firebase Cloud Messaging, HTTP v1 API, authenticated as a service account (OAuth2
JWT-bearer grant, through google-auth): Android phones (docs/architecture.md,
"Notifications")."""

from __future__ import annotations

import json
import ssl
import threading
from pathlib import Path
from typing import Any

import google.auth.exceptions
import httpx
import requests
from django.conf import settings
from google.auth.transport.requests import Request as GoogleAuthRequest
from google.oauth2 import service_account

from notifications.channels.base import Outcome, OutgoingMessage, SendResult
from notifications.channels.httputil import retry_after_seconds

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
# FCM's error codes (google.firebase.fcm.v1.FcmError) that mean the token is gone for
# this app: uninstalled or expired, or issued for another Firebase project.
_DEAD_CODES = {"UNREGISTERED", "SENDER_ID_MISMATCH"}


class FcmChannel:
    name = "fcm"

    def __init__(
        self,
        *,
        project_id: str,
        service_account_info: dict[str, Any],
        base_url: str = "https://fcm.googleapis.com",
        timeout: float = 10.0,
        ca_file: str | None = None,
    ) -> None:
        self._url = f"{base_url.rstrip('/')}/v1/projects/{project_id}/messages:send"
        self._credentials = service_account.Credentials.from_service_account_info(
            service_account_info, scopes=[SCOPE]
        )
        # The token endpoint (the service account's `token_uri`) is called by google-auth
        # through requests; the messages through httpx, over one HTTP/2 connection.
        session = requests.Session()
        session.verify = ca_file or True
        # requests lets REQUESTS_CA_BUNDLE override a session's own CA file.
        session.trust_env = not ca_file
        self._session = session
        self._auth_request = GoogleAuthRequest(session=session)
        self._timeout = timeout
        verify = ssl.create_default_context(cafile=ca_file) if ca_file else True
        self._client = httpx.Client(http2=True, timeout=timeout, verify=verify)
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls) -> FcmChannel | None:
        """The channel as configured (docs/deployment.md), None when FCM is not set."""
        raw = settings.FCM_SERVICE_ACCOUNT_JSON
        if not raw and settings.FCM_SERVICE_ACCOUNT_FILE:
            raw = Path(settings.FCM_SERVICE_ACCOUNT_FILE).read_text()
        if not (raw and settings.FCM_PROJECT_ID):
            return None
        return cls(
            project_id=settings.FCM_PROJECT_ID,
            service_account_info=json.loads(raw),
            base_url=settings.FCM_BASE_URL,
            timeout=settings.PUSH_TIMEOUT,
            ca_file=settings.PUSH_CA_FILE or None,
        )

    def _access_token(self, *, renew: bool = False) -> str:
        with self._lock:
            if renew or not self._credentials.valid:
                self._credentials.refresh(self._auth_request)
            token = self._credentials.token
            assert isinstance(token, str)
            return token

    def _body(self, message: OutgoingMessage) -> dict[str, Any]:
        return {
            "message": {
                "token": message.address,
                "notification": {"title": message.subject, "body": message.body},
                # The app de-duplicates on delivery_id; FCM's data values are strings.
                "data": {**message.data, "delivery_id": str(message.delivery_id)},
                "android": {
                    "priority": "HIGH" if message.urgent else "NORMAL",
                    "ttl": f"{message.ttl_seconds}s",
                    # A copy re-sent after a worker died replaces the first on the phone.
                    "collapse_key": str(message.delivery_id),
                },
            }
        }

    def send(self, message: OutgoingMessage) -> SendResult:
        body = self._body(message)
        for attempt in range(2):
            try:
                token = self._access_token(renew=attempt > 0)
            except google.auth.exceptions.TransportError as exc:
                return SendResult(Outcome.RETRY, detail=f"token endpoint: {type(exc).__name__}")
            except (google.auth.exceptions.RefreshError, ValueError) as exc:
                retryable = getattr(exc, "retryable", False)
                return SendResult(
                    Outcome.RETRY if retryable else Outcome.AUTH_FAILED,
                    detail=f"OAuth2 token refused: {_first_line(exc)} (check "
                    "FCM_SERVICE_ACCOUNT_FILE / FCM_SERVICE_ACCOUNT_JSON: the key, its "
                    "client_email and token_uri)",
                )
            try:
                response = self._client.post(
                    self._url, json=body, headers={"authorization": f"Bearer {token}"}
                )
            except httpx.HTTPError as exc:
                return SendResult(Outcome.RETRY, detail=f"network: {type(exc).__name__}")
            if response.status_code == 401 and attempt == 0:
                # The access token was revoked or expired early: one fresh token, once.
                continue
            return _result(response)
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        self._client.close()
        self._session.close()


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


def _error(response: httpx.Response) -> tuple[str, str]:
    """The google.rpc status and FCM's own error code of an error answer."""
    try:
        error = response.json().get("error", {})
        status = str(error.get("status", ""))
        codes = [
            str(detail.get("errorCode"))
            for detail in error.get("details", [])
            if isinstance(detail, dict) and detail.get("errorCode")
        ]
    except (ValueError, AttributeError):
        return "", ""
    return status, codes[0] if codes else ""


def _result(response: httpx.Response) -> SendResult:
    status_code = response.status_code
    if status_code == 200:
        try:
            name = str(response.json().get("name", ""))
        except (ValueError, AttributeError):
            name = ""
        return SendResult(Outcome.SENT, provider_id=name)
    status, code = _error(response)
    detail = f"HTTP {status_code} {code or status}".strip()
    if code in _DEAD_CODES:
        return SendResult(Outcome.DEAD_ADDRESS, detail=detail)
    if status_code in (401, 403) or code == "THIRD_PARTY_AUTH_ERROR":
        return SendResult(
            Outcome.AUTH_FAILED,
            detail=f"{detail}: FCM refused our credentials (check the service account's "
            "role, FCM_PROJECT_ID, and for iOS through FCM the APNs key in Firebase)",
        )
    if status_code == 429 or status_code >= 500:
        return SendResult(
            Outcome.RETRY,
            retry_after=retry_after_seconds(response.headers.get("retry-after")),
            detail=detail,
        )
    return SendResult(Outcome.FAILED, detail=detail)
