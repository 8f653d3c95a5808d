from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db.models import Prefetch, Q
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone

from patients.models import AuthToken, Clinician, Patient, User


def patient_list(*, user: User) -> Any:
    return (
        Patient.objects.visible_to(user)
        .select_related("clinic", "user")
        .prefetch_related(Prefetch("care_team", queryset=Clinician.objects.select_related("user")))
    )


def patient_get(*, user: User, patient_id: UUID | str) -> Patient:
    """The patient if `user` may see them; 404 otherwise, so ids do not leak."""
    patient: Patient = get_object_or_404(patient_list(user=user), pk=patient_id)
    return patient


def patient_for_user(*, user: User) -> Patient:
    """The signed-in patient's own record."""
    patient: Patient = get_object_or_404(patient_list(user=user), user=user)
    return patient


def patient_own_get(*, user: User) -> Patient:
    """The signed-in patient's own record, for the log write path (the hottest endpoint).

    A patient's own row is in their scope by definition, and the token look-up
    (`patients.authentication`) has already loaded it with the user: no query here.
    """
    patient = getattr(user, "patient", None) if user.is_authenticated else None
    if patient is None:
        raise Http404("No patient record for this account.")
    assert isinstance(patient, Patient)
    return patient


def auth_token_list(*, user: User) -> Any:
    """The user's own signed-in devices (unexpired tokens), newest first."""
    return AuthToken.objects.filter(
        Q(expiry__isnull=True) | Q(expiry__gt=timezone.now()), user=user
    ).order_by("-created", "public_id")


def auth_token_get(*, user: User, token_id: UUID | str) -> AuthToken:
    """One of the user's own tokens; another user's (or an unknown) id is a 404."""
    token: AuthToken = get_object_or_404(auth_token_list(user=user), public_id=token_id)
    return token
