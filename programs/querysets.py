"""Who may see what in programs. Patient-owned rows are scoped by `patients`' one rule
(`ScopedQuerySet` with a `patient_path`); library rows (exercises, templates) are not
patient data, and a clinician sees the global ones plus their own clinic's."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import models
from django.db.models import Q

from patients.querysets import ScopedQuerySet

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

    from patients.models import User


class LibraryQuerySet(models.QuerySet[Any]):
    def visible_to(self, user: User | AnonymousUser) -> LibraryQuerySet:
        clinician = getattr(user, "clinician", None) if user.is_authenticated else None
        if clinician is None:
            # Patients see their own copies (assignments), never the clinic's library.
            return self.none()
        return self.filter(Q(clinic__isnull=True) | Q(clinic_id=clinician.clinic_id))

    def owned_by_clinic(self, clinic_id: object) -> LibraryQuerySet:
        return self.filter(clinic_id=clinic_id)


class ExerciseMediaQuerySet(models.QuerySet[Any]):
    """Media follows the library's rule: a clinician sees the shared media and their own
    clinic's, of exercises they can see. Patients get media only through their plan
    (`for_patient_exercises`), never by listing the library."""

    def visible_to(self, user: User | AnonymousUser) -> ExerciseMediaQuerySet:
        clinician = getattr(user, "clinician", None) if user.is_authenticated else None
        if clinician is None:
            return self.none()
        clinic = Q(clinic__isnull=True) | Q(clinic_id=clinician.clinic_id)
        exercise = Q(exercise__clinic__isnull=True) | Q(exercise__clinic_id=clinician.clinic_id)
        return self.filter(clinic & exercise)

    def for_clinic(self, clinic_id: object) -> ExerciseMediaQuerySet:
        """What a clinic's patients may be shown: shared media and that clinic's."""
        return self.filter(Q(clinic__isnull=True) | Q(clinic_id=clinic_id))


class AssignmentQuerySet(ScopedQuerySet):
    patient_path = "patient"

    def active(self) -> AssignmentQuerySet:
        return self.filter(ended_on__isnull=True)


class AssignedPhaseQuerySet(ScopedQuerySet):
    patient_path = "assignment__patient"


class AssignedExerciseQuerySet(ScopedQuerySet):
    patient_path = "phase__assignment__patient"


class ExerciseLogQuerySet(ScopedQuerySet):
    patient_path = "patient"


class ProposalQuerySet(ScopedQuerySet):
    patient_path = "assignment__patient"

    def pending(self) -> ProposalQuerySet:
        return self.filter(status="pending")


class CardAssignmentQuerySet(ScopedQuerySet):
    patient_path = "patient"


class CardReadQuerySet(ScopedQuerySet):
    patient_path = "patient"
