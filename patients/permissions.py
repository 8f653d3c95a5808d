from __future__ import annotations

from django.utils.translation import gettext
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from config.exceptions import ApplicationError

CONSENT_REQUIRED = "consent_required"


class ConsentRequired(ApplicationError):
    """The 403 a patient gets while an acceptance is owed; the app acts on `code`
    (docs/data-rights.md), and `consents` says where to read and accept them."""

    status_code = 403
    default_code = CONSENT_REQUIRED


def consent_required_error() -> ConsentRequired:
    return ConsentRequired(
        gettext("Please read and accept your clinic's updated terms to continue."),
        extra={"consents": "/api/v1/me/consents/"},
    )


class IsClinician(BasePermission):
    message = "Only clinicians can use this endpoint."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return bool(request.user.is_authenticated and hasattr(request.user, "clinician"))


class IsPatient(BasePermission):
    """A patient who owes no consent acceptance (docs/data-rights.md).

    While one is owed the answer is 403 with `"code": "consent_required"`, which the app
    acts on by showing the documents. The flag is a column of the patient row that the
    token look-up loaded: no query here.
    """

    message = "Only patients can use this endpoint."

    def has_permission(self, request: Request, view: APIView) -> bool:
        patient = getattr(request.user, "patient", None) if request.user.is_authenticated else None
        if patient is None:
            return False
        if patient.consent_owed:
            raise consent_required_error()
        return True


class IsPatientAnyConsent(BasePermission):
    """A patient, whether or not a consent acceptance is owed: for the endpoints a patient
    must reach before accepting (the consents themselves) and for their data rights
    (export, access log), which do not depend on accepting new terms
    (docs/data-rights.md)."""

    message = "Only patients can use this endpoint."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return bool(request.user.is_authenticated and hasattr(request.user, "patient"))
