"""Erasure and retention (docs/data-rights.md): a patient asks, a clinic admin decides;
records under the clinic's retention hold are kept with the account closed, and the
daily retention job pseudonymises what is past it. The audit trail keeps a tombstone
(who, when, why), never the data."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.db.models import DateField, F, Max, OuterRef, Subquery, Value
from django.db.models.functions import Cast, Coalesce, Greatest
from django.utils import timezone
from django.utils.translation import gettext
from rest_framework.exceptions import PermissionDenied

from config.audit import AuditContext
from config.db import insert_unless_conflict
from config.exceptions import ApplicationError, ConflictError
from notifications import patient_data as notifications_data
from patients.models import (
    AuditEvent,
    AuthToken,
    Clinic,
    Clinician,
    Invitation,
    Patient,
    User,
)
from patients.services import audit_record
from programs.models import ExerciseLog
from rehab.models import (
    Alert,
    AssessedMark,
    DailyLog,
    DailyLogRevision,
    Diagnosis,
    ImagingFinding,
    Intervention,
    ProvocativeTest,
    QuestionnaireResponse,
)
from rights.models import ClinicRetention, Erasure, ErasureRequest, ExportJob
from rights.services import export_storage

logger = logging.getLogger(__name__)

_EPOCH = date(1900, 1, 1)


def retention_years(*, clinic_id: UUID | Any) -> int:
    row = ClinicRetention.objects.filter(clinic_id=clinic_id).first()
    return row.years_after_last_contact if row else settings.RETENTION_YEARS_DEFAULT


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _latest(model: Any, column: str) -> Coalesce:
    return Coalesce(
        Subquery(
            model.objects.filter(patient=OuterRef("pk"))
            .values("patient")
            .annotate(latest=Max(column))
            .values("latest")[:1],
            output_field=DateField(),
        ),
        Value(_EPOCH),
    )


def _with_last_contact(patients: Any) -> Any:
    """Annotates `last_contact`: the latest date anything was recorded for the patient."""
    return patients.annotate(
        last_contact=Greatest(
            Cast(F("created_at"), DateField()),
            _latest(DailyLog, "date"),
            _latest(Intervention, "date"),
            _latest(ImagingFinding, "date"),
            _latest(Diagnosis, "date_from"),
            _latest(QuestionnaireResponse, "date"),
            _latest(ExerciseLog, "date"),
        )
    )


def hold_until(*, patient: Patient) -> date:
    """The first day the patient's clinical record may be erased."""
    last: date = _with_last_contact(Patient.objects.filter(pk=patient.pk)).get().last_contact
    return _add_years(last, retention_years(clinic_id=patient.clinic_id))


# --------------------------------------------------------------------------- requests


def erasure_request_create(
    *, patient: Patient, actor: User, reason: str = "", context: AuditContext | None = None
) -> ErasureRequest:
    erasure_request = ErasureRequest(patient=patient, reason=reason)
    with transaction.atomic():
        # One pending request per patient (a unique index): a second one inserts nothing
        # rather than failing, which would log the reason in the database server's log.
        if not insert_unless_conflict(erasure_request):
            raise ConflictError(
                gettext("An erasure request is already waiting for your clinic's decision."),
                code="erasure_request_pending",
            )
        audit_record(
            actor=actor,
            action=AuditEvent.Action.CREATE,
            object_type="erasure_request",
            object_id=erasure_request.pk,
            patient=patient,
            context=context,
        )
    return erasure_request


def _require_admin(clinician: Clinician) -> None:
    if clinician.role != Clinician.Role.CLINIC_ADMIN:
        raise PermissionDenied("Only a clinic admin can decide erasure requests.")


def account_close(*, patient: Patient) -> int:
    """The patient can no longer sign in: every token revoked, the user deactivated; and
    the record is restricted: off every list, reminder and scheduled job, still opened by
    id (docs/data-rights.md § Restriction)."""
    # FOR UPDATE first: a write in flight on the record (which holds the row's KEY SHARE
    # lock, `patients.restriction.patient_ensure_writable`) commits before the record is
    # restricted, and a later one sees the restriction.
    list(Patient.objects.select_for_update().filter(pk=patient.pk).values_list("pk"))
    Patient.objects.filter(pk=patient.pk, restricted_at__isnull=True).update(
        restricted_at=timezone.now()
    )
    if patient.user_id is None:
        return 0
    # Each token's push device goes with it (the foreign key cascades).
    revoked = (
        AuthToken.objects.filter(user_id=patient.user_id).delete()[1].get(AuthToken._meta.label, 0)
    )
    User.objects.filter(pk=patient.user_id).update(is_active=False)
    notifications_data.account_closed(user_id=patient.user_id)
    return int(revoked)


@transaction.atomic
def erasure_request_decide(
    *,
    clinician: Clinician,
    erasure_request: ErasureRequest,
    approve: bool,
    note: str = "",
    context: AuditContext | None = None,
) -> ErasureRequest:
    """Reject, or approve: the account is closed at once; the records are pseudonymised
    now when no retention hold applies, else kept (restricted) until the hold ends."""
    _require_admin(clinician)
    erasure_request = ErasureRequest.objects.select_for_update().get(pk=erasure_request.pk)
    if erasure_request.status != ErasureRequest.Status.PENDING:
        raise ApplicationError("This request has already been decided.")
    patient = erasure_request.patient
    erasure_request.decided_by = clinician.user
    erasure_request.decided_at = timezone.now()
    erasure_request.decision_note = note
    tokens = 0
    if not approve:
        erasure_request.status = ErasureRequest.Status.REJECTED
    else:
        tokens = account_close(patient=patient)
        until = hold_until(patient=patient)
        if until > patient.local_today():
            erasure_request.status = ErasureRequest.Status.RESTRICTED
            erasure_request.hold_until = until
        else:
            patient_pseudonymise(patient_id=patient.pk, reason=Erasure.Reason.REQUEST)
            erasure_request.status = ErasureRequest.Status.ERASED
    erasure_request.save()
    audit_record(
        actor=clinician.user,
        action=AuditEvent.Action.UPDATE,
        object_type="erasure_request",
        object_id=erasure_request.pk,
        patient_id=patient.pk,
        changes={"status": erasure_request.status, "tokens_revoked": tokens},
        context=context,
    )
    return erasure_request


# --------------------------------------------------------------------------- erasure


def _pseudonymise_questionnaire_answers(answers: Any) -> Any:
    # PSFS activities are the patient's own words; the ratings stay for the outcomes.
    if isinstance(answers, dict) and isinstance(answers.get("activities"), list):
        return {
            **answers,
            "activities": [
                {**item, "activity": f"Activity {n}"}
                for n, item in enumerate(answers["activities"], start=1)
            ],
        }
    return answers


@transaction.atomic
def patient_pseudonymise(*, patient_id: UUID | str, reason: str) -> bool:
    """Remove what identifies the patient and every free text, keep the numbers (for the
    clinic's de-identified outcomes). Idempotent: a second run finds the tombstone."""
    patient = Patient.objects.select_for_update().filter(pk=patient_id).first()
    if patient is None or Erasure.objects.filter(patient_id=patient.pk).exists():
        return False
    account_close(patient=patient)
    if patient.user_id is not None:
        User.objects.filter(pk=patient.user_id).update(
            email=f"erased-{patient.user_id}@erased.invalid",
            first_name="",
            last_name="",
            password=make_password(None),  # unusable: no password signs in
            is_active=False,
        )
    Patient.objects.filter(pk=patient.pk).update(
        first_name="Erased",
        last_name="patient",
        email=f"erased-{patient.pk}@erased.invalid",
        # The year stays: the outcomes file's age bands need it, nothing more.
        date_of_birth=date(patient.date_of_birth.year, 1, 1),
    )
    own = {"patient_id": patient.pk}
    DailyLog.objects.filter(**own).update(notes="")
    for revision in DailyLogRevision.objects.filter(log__patient_id=patient.pk):
        revision.data = {k: v for k, v in revision.data.items() if k != "notes"}
        revision.save(update_fields=["data"])
    Intervention.objects.filter(**own).update(description="", performed_by="")
    ProvocativeTest.objects.filter(**own).update(notes="", symptom_location="")
    ImagingFinding.objects.filter(**own).update(finding="(erased)")
    Diagnosis.objects.filter(**own).update(notes="")
    AssessedMark.objects.filter(**own).update(note="")
    ExerciseLog.objects.filter(**own).update(notes="")
    Alert.objects.filter(**own).update(acknowledged_note="", resolved_note="")
    for response in QuestionnaireResponse.objects.filter(**own, instrument="psfs"):
        response.answers = _pseudonymise_questionnaire_answers(response.answers)
        response.save(update_fields=["answers"])
    # Education assignments and read receipts stay, like the exercise logs: which card,
    # which version, when; no free text and nothing that names the patient.
    # The invitation goes, and its delivery record with it (the foreign key cascades).
    Invitation.objects.filter(**own).delete()
    # The apps above the clinical record erase their own tables here, in this transaction
    # (docs/data-rights.md, "Adding a table that holds patient data").
    notifications_data.patient_pseudonymise(patient=patient)
    storage = export_storage()
    for name in (
        ExportJob.objects.filter(**own).exclude(file_name="").values_list("file_name", flat=True)
    ):
        storage.delete(name)
    ExportJob.objects.filter(**own).delete()
    Erasure.objects.create(patient_id=patient.pk, reason=reason)
    # The tombstone: that the patient was erased, when and why; nothing erased.
    audit_record(
        actor=None,
        action=AuditEvent.Action.DELETE,
        object_type="patient_erasure",
        patient_id=patient.pk,
        changes={"reason": reason},
    )
    return True


def retention_sweep(*, today: date | None = None) -> int:
    """Daily: pseudonymise every patient whose clinic's retention period after the last
    contact has ended. Returns how many were erased."""
    today = today or timezone.now().date()
    years = dict(ClinicRetention.objects.values_list("clinic_id", "years_after_last_contact"))
    candidates = _with_last_contact(
        Patient.objects.exclude(pk__in=Erasure.objects.values("patient_id"))
    ).values_list("pk", "clinic_id", "last_contact")
    erased = 0
    for pk, clinic_id, last in candidates.iterator(chunk_size=2000):
        if _add_years(last, years.get(clinic_id, settings.RETENTION_YEARS_DEFAULT)) > today:
            continue
        if patient_pseudonymise(patient_id=pk, reason=Erasure.Reason.RETENTION):
            erased += 1
            ErasureRequest.objects.filter(
                patient_id=pk, status=ErasureRequest.Status.RESTRICTED
            ).update(status=ErasureRequest.Status.ERASED)
    return erased


@transaction.atomic
def retention_set(
    *, clinician: Clinician, years: int, context: AuditContext | None = None
) -> ClinicRetention:
    if clinician.role != Clinician.Role.CLINIC_ADMIN:
        raise PermissionDenied("Only a clinic admin can set the retention period.")
    clinic = Clinic.objects.get(pk=clinician.clinic_id)
    row, _ = ClinicRetention.objects.update_or_create(
        clinic=clinic, defaults={"years_after_last_contact": years}
    )
    audit_record(
        actor=clinician.user,
        action=AuditEvent.Action.UPDATE,
        object_type="clinic_retention",
        object_id=clinic.pk,
        changes={"years_after_last_contact": years},
        context=context,
    )
    return row
