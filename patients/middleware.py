"""Denied requests for patient data reach the audit trail (docs/security.md § Audit trail).

A signed-in caller answered 403 or 404 by a view (a URL that resolved: another clinic's
patient, another patient's log, an id that does not exist) is recorded, API and dashboard
alike, whatever view raised it; scoping itself stays in `QuerySet.visible_to`. So is a
write refused because the record is restricted (409 `record_restricted`,
`patients.restriction`), with the patient the refused write was about. Successful
responses cost one comparison.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse

from config.audit import audit_context
from config.exceptions import refusal_of
from patients import services
from patients.restriction import RecordRestricted

logger = logging.getLogger(__name__)

_DENIED = frozenset({403, 404})
# Only where patient data lives; sign-in and device routes are about the caller's own
# account, and the admin has its own permission model.
_PREFIXES = ("/api/v1/", "/dashboard/")
# Sign-in, and the exercise media links (library content; the token is a credential that
# has no place in the audit trail).
_NOT_PATIENT_DATA = ("auth-", "media-")


class DeniedRequestAuditMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code in _DENIED:
            self._audit(request, response.status_code)
        elif response.status_code == RecordRestricted.status_code:
            refusal = refusal_of(response)
            if isinstance(refusal, RecordRestricted):
                self._audit(request, response.status_code, patient_id=refusal.patient_id)
        return response

    def _audit(self, request: HttpRequest, status: int, patient_id: str | None = None) -> None:
        match = request.resolver_match
        user = getattr(request, "user", None)
        if match is None or user is None or not user.is_authenticated:
            return
        if not request.path.startswith(_PREFIXES) or (match.url_name or "").startswith(
            _NOT_PATIENT_DATA
        ):
            return
        kwargs = {key: str(value) for key, value in match.kwargs.items()}
        try:
            services.audit_denied(
                actor=user,
                view=match.view_name,
                status=status,
                object_id=next(iter(kwargs.values()), ""),
                patient_id=patient_id or kwargs.get("patient_id"),
                context=audit_context(request),
            )
        except DatabaseError:
            # The refusal stands either way; a failed audit write must not turn it into
            # a 500. Logged without the request's values.
            logger.exception("could not audit a denied request to %s", match.view_name)
