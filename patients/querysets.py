"""Who may see what: the only place scoping is written (docs/architecture.md).

Every other app's `visible_to` is built from `patient_scope`, so a clinician sees their
own clinic's patients, a patient sees themself, and everyone else sees nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self

from django.db import models
from django.db.models import Q
from django.utils import timezone

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

    from patients.models import User


def patient_scope(user: User | AnonymousUser, prefix: str = "") -> Q:
    """A filter on patients (or on rows reached through `prefix`) visible to `user`."""
    path = f"{prefix}__" if prefix else ""
    if not user.is_authenticated:
        return Q(pk__in=[])
    clinician = getattr(user, "clinician", None)
    if clinician is not None:
        return Q(**{f"{path}clinic_id": clinician.clinic_id})
    patient = getattr(user, "patient", None)
    if patient is not None:
        return Q(**{f"{path}pk": patient.pk})
    return Q(pk__in=[])


# What `PatientQuerySet.active` means, for the set-based jobs written in SQL (the patient
# table aliased `p`). A restricted patient's record is kept, not worked on: no list,
# reminder, questionnaire, proposal or review rule (docs/data-rights.md § Restriction).
ACTIVE_PATIENT_SQL = "p.restricted_at IS NULL"


def active_patients(prefix: str = "") -> Q:
    """A filter on patients (or on rows reached through `prefix`) not restricted."""
    path = f"{prefix}__" if prefix else ""
    return Q(**{f"{path}restricted_at__isnull": True})


class ScopedQuerySet(models.QuerySet[Any]):
    """A queryset of rows that belong to a patient through `patient_path`."""

    patient_path = "patient"

    def visible_to(self, user: User | AnonymousUser) -> Self:
        return self.filter(patient_scope(user, self.patient_path))

    def of_active_patients(self) -> Self:
        """Rows of patients whose record is not restricted (`PatientQuerySet.active`)."""
        return self.filter(active_patients(self.patient_path))


class PatientQuerySet(models.QuerySet[Any]):
    def visible_to(self, user: User | AnonymousUser) -> PatientQuerySet:
        """Every patient `user` may open, restricted ones included: a restricted record
        stays reachable by id for what the law still needs (an export, a legal claim)."""
        return self.filter(patient_scope(user))

    def active(self) -> PatientQuerySet:
        """Patients whose record is not restricted: what every list, reminder and
        scheduled job works on."""
        return self.filter(active_patients())


class ClinicianQuerySet(models.QuerySet[Any]):
    def visible_to(self, user: User | AnonymousUser) -> ClinicianQuerySet:
        clinician = getattr(user, "clinician", None)
        if not user.is_authenticated or clinician is None:
            return self.none()
        return self.filter(clinic_id=clinician.clinic_id)


class InvitationQuerySet(ScopedQuerySet):
    def usable(self) -> InvitationQuerySet:
        return self.filter(
            used_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now()
        )


class AuditEventQuerySet(ScopedQuerySet):
    pass


class ConsentDocumentQuerySet(models.QuerySet[Any]):
    def visible_to(self, user: User | AnonymousUser) -> ConsentDocumentQuerySet:
        """A clinician sees their clinic's documents, drafts included; a patient sees the
        published documents of their own clinic; nobody else sees any."""
        if not user.is_authenticated:
            return self.none()
        clinician = getattr(user, "clinician", None)
        if clinician is not None:
            return self.filter(clinic_id=clinician.clinic_id)
        patient = getattr(user, "patient", None)
        if patient is not None:
            return self.filter(clinic_id=patient.clinic_id, published_at__isnull=False)
        return self.none()


class ConsentDecisionQuerySet(ScopedQuerySet):
    pass
