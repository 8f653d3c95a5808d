"""The clinician's caseload: one page of patients with their figures, in constant queries."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from patients import selectors as patient_selectors
from patients.models import User
from rehab.selectors.logs import with_log_figures


def caseload_list(*, user: User, search: str = "") -> QuerySet:
    """Visible patients, most urgent first, each annotated with the caseload figures."""
    patients = patient_selectors.patient_list(user=user)
    if search:
        patients = patients.filter(
            Q(first_name__icontains=search)
            | Q(last_name__icontains=search)
            | Q(email__icontains=search)
            | Q(condition__icontains=search)
        )
    return with_log_figures(patients).order_by("last_name", "first_name", "id")
