"""Reads for the data-rights endpoints: everything held about one patient, the exports'
jobs and the patient's access log (docs/data-rights.md).

Every read goes through `visible_to(user)`, the one place scoping is written, even where
the patient was already fetched in scope: an export must never carry another patient's row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from django.db import models
from django.shortcuts import get_object_or_404
from django.utils import timezone

from notifications import patient_data as notifications_data
from patients.models import AuditEvent, ConsentDecision, Patient, User
from programs.models import (
    AssignedExercise,
    AssignedPhase,
    CardAssignment,
    CardRead,
    DosageVersion,
    ExerciseLog,
    ProgramAssignment,
)
from rehab.models import (
    Alert,
    AssessedMark,
    DailyLog,
    DailyLogRevision,
    Diagnosis,
    ImagingFinding,
    Intervention,
    ProvocativeTest,
    QuestionnaireDue,
    QuestionnaireResponse,
)
from rights.models import ExportJob

# Bookkeeping of the background machinery, not something held *about* the patient.
_LOG_INTERNAL = (
    "evaluated_at",
    "evaluated_version",
    "evaluation_attempts",
    "evaluation_failed_at",
    "evaluation_error",
)
_ALERT_INTERNAL = (
    "notify_due",
    "notified_at",
    "escalation_due_at",
    "escalated_at",
    "notify_attempts",
    "notify_retry_at",
    "escalation_attempts",
    "escalation_retry_at",
    "delivery_error",
)
_INTERVENTION_INTERNAL = ("fever_rechecked_at", "fever_recheck_attempts", "fever_recheck_failed_at")


def _columns(model: type[models.Model], exclude: Iterable[str] = ()) -> list[str]:
    skip = set(exclude)
    return [f.attname for f in model._meta.concrete_fields if f.name not in skip]


def _rows(
    queryset: models.QuerySet[Any], order: tuple[str, ...], exclude: Iterable[str] = ()
) -> list[dict[str, Any]]:
    return list(queryset.order_by(*order).values(*_columns(queryset.model, exclude)))


@dataclass
class PatientData:
    """Everything held about one patient, section by section, as plain rows."""

    patient: Patient
    exported_at: Any
    sections: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def patient_data_get(*, user: User, patient: Patient) -> PatientData:
    """Every row held about `patient` that `user` may see (the patient themself, or a
    clinician of their clinic). The caller fetched `patient` in scope (a 404 otherwise)."""
    own = {"patient": patient}
    account = patient.user
    profile = {
        **{name: getattr(patient, name) for name in _columns(Patient)},
        "account_email": account.email if account is not None else None,
        "account_created_at": account.date_joined if account is not None else None,
        "account_last_login": account.last_login if account is not None else None,
        "clinic_name": patient.clinic.name,
    }
    sections: dict[str, list[dict[str, Any]]] = {
        "patient": [profile],
        "daily_logs": _rows(
            DailyLog.objects.visible_to(user).filter(**own), ("date",), _LOG_INTERNAL
        ),
        "daily_log_revisions": _rows(
            DailyLogRevision.objects.filter(
                log__in=DailyLog.objects.visible_to(user).filter(**own)
            ),
            ("changed_at", "id"),
        ),
        "interventions": _rows(
            Intervention.objects.visible_to(user).filter(**own),
            ("date", "created_at"),
            _INTERVENTION_INTERNAL,
        ),
        "provocative_tests": _rows(
            ProvocativeTest.objects.visible_to(user).filter(**own), ("performed_at", "test")
        ),
        "imaging_findings": _rows(
            ImagingFinding.objects.visible_to(user).filter(**own), ("date", "created_at")
        ),
        "diagnoses": _rows(
            Diagnosis.objects.visible_to(user).filter(**own), ("date_from", "created_at")
        ),
        "assessed_marks": _rows(
            AssessedMark.objects.visible_to(user).filter(**own), ("created_at",)
        ),
        "questionnaire_responses": _rows(
            QuestionnaireResponse.objects.visible_to(user).filter(**own), ("submitted_at",)
        ),
        "questionnaire_schedule": _rows(
            QuestionnaireDue.objects.visible_to(user).filter(**own), ("due_from",)
        ),
        "alerts": _rows(
            Alert.objects.visible_to(user).filter(**own), ("opened_at",), _ALERT_INTERNAL
        ),
        "program_assignments": _rows(
            ProgramAssignment.objects.visible_to(user).filter(**own), ("start_date", "created_at")
        ),
        "program_phases": _rows(
            AssignedPhase.objects.visible_to(user).filter(assignment__patient=patient),
            ("assignment__start_date", "position"),
        ),
        "program_exercises": _rows(
            AssignedExercise.objects.visible_to(user).filter(phase__assignment__patient=patient),
            ("phase__assignment__start_date", "phase__position", "position"),
        ),
        "program_dosages": _rows(
            DosageVersion.objects.filter(
                assigned_exercise__in=AssignedExercise.objects.visible_to(user).filter(
                    phase__assignment__patient=patient
                )
            ),
            ("assigned_exercise_id", "effective_from"),
        ),
        "exercise_logs": _rows(
            ExerciseLog.objects.visible_to(user).filter(**own), ("date", "created_at")
        ),
        # Which education cards the patient was given, and which versions they read.
        "education_assignments": list(
            CardAssignment.objects.visible_to(user)
            .filter(**own)
            .order_by("assigned_at", "id")
            .values(
                "id",
                "card_id",
                "program_phase_id",
                "assigned_by_id",
                "assigned_at",
                card_slug=models.F("card__slug"),
            )
        ),
        "education_reads": list(
            CardRead.objects.visible_to(user)
            .filter(**own)
            .order_by("read_at", "id")
            .values(
                "id",
                "version_id",
                "read_at",
                card_id=models.F("version__card_id"),
                version_number=models.F("version__number"),
                version_language=models.F("version__language"),
                version_title=models.F("version__title"),
            )
        ),
        # Every decision (the history), with the document it was on.
        "consent_decisions": list(
            ConsentDecision.objects.visible_to(user)
            .filter(**own)
            .order_by("at", "id")
            .values(
                "id",
                "document_id",
                "decision",
                "at",
                kind=models.F("document__kind"),
                version=models.F("document__version"),
                title=models.F("document__title"),
                required=models.F("document__required"),
            )
        ),
    }
    # Each app that holds patient data above the clinical record lists its own tables
    # (docs/data-rights.md, "Adding a table that holds patient data"). `patient` was
    # fetched in `user`'s scope; this re-checks it, so no other patient's row can follow.
    if Patient.objects.visible_to(user).filter(pk=patient.pk).exists():
        sections.update(notifications_data.patient_sections(patient=patient))
    return PatientData(patient=patient, exported_at=timezone.now(), sections=sections)


# --------------------------------------------------------------------------- export jobs


def export_job_get(*, user: User, patient: Patient, job_id: UUID | str) -> ExportJob:
    """One export of `patient` visible to `user`; another patient's (or unknown) is a 404."""
    job: ExportJob = get_object_or_404(
        ExportJob.objects.visible_to(user).filter(patient=patient), pk=job_id
    )
    return job


# --------------------------------------------------------------------------- access log


def access_log_list(*, user: User, patient: Patient) -> models.QuerySet[AuditEvent]:
    """The audit trail of `patient`'s data, newest first, for the patient's own eyes:
    who read or changed it. Sign-ins are not about their data, and a refused request
    (`denied`: someone outside their care got a 404) read nothing; naming that person
    would tell the patient about another clinic's staff."""
    return (
        AuditEvent.objects.visible_to(user)
        .filter(patient=patient)
        .exclude(
            action__in=(
                AuditEvent.Action.LOGIN,
                AuditEvent.Action.LOGOUT,
                AuditEvent.Action.LOGIN_FAILED,
                AuditEvent.Action.DENIED,
            )
        )
        .select_related("actor__clinician")
        .order_by("-at", "-id")
    )
