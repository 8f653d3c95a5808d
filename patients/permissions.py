from __future__ import annotations

from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView


class IsClinician(BasePermission):
    message = "Only clinicians can use this endpoint."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return bool(request.user.is_authenticated and hasattr(request.user, "clinician"))


class IsPatient(BasePermission):
    message = "Only patients can use this endpoint."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return bool(request.user.is_authenticated and hasattr(request.user, "patient"))


class IsPatientAnyConsent(BasePermission):
    """A patient, whether or not a consent acceptance is owed: for the endpoints a patient
    must reach before accepting (the consents themselves) and for their data rights
    (export, access log), which do not depend on accepting new terms
    (docs/data-rights.md)."""

    message = "Only patients can use this endpoint."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return bool(request.user.is_authenticated and hasattr(request.user, "patient"))
