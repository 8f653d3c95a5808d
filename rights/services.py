"""Writes and workflows of the data-rights features (docs/data-rights.md)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from django.conf import settings
from django.core import signing
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext

from config import enqueue
from config.audit import AuditContext
from config.exceptions import ApplicationError
from patients.models import AuditEvent, Patient, User
from patients.services import audit_record
from rights import fhir, formats, selectors
from rights.models import ExportFormat, ExportJob

logger = logging.getLogger(__name__)

CONTENT_TYPES = {
    ExportFormat.JSON: "application/json",
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.FHIR: "application/fhir+json",
}
EXTENSIONS = {ExportFormat.JSON: "json", ExportFormat.CSV: "csv", ExportFormat.FHIR: "fhir.json"}

# A job whose message was lost (or whose worker died) is re-enqueued after this long, at
# most this many times, then marked failed.
EXPORT_STALE_AFTER = timedelta(minutes=5)
EXPORT_MAX_ATTEMPTS = 3
_LINK_SALT = "rights.export-download"


def export_storage() -> Storage:
    return storages["exports"]


@dataclass(frozen=True)
class Rendered:
    content: str
    content_type: str
    file_name: str


def export_render(*, user: User, patient: Patient, fmt: str) -> Rendered:
    """Everything held about `patient`, in `fmt`, as `user` may see it."""
    data = selectors.patient_data_get(user=user, patient=patient)
    content = _render(data, fmt)
    stamp = data.exported_at.strftime("%Y%m%d")
    return Rendered(
        content=content,
        content_type=CONTENT_TYPES[ExportFormat(fmt)],
        file_name=f"patient-{patient.pk}-{stamp}.{EXTENSIONS[ExportFormat(fmt)]}",
    )


def _render(data: selectors.PatientData, fmt: str) -> str:
    if fmt == ExportFormat.FHIR:
        return fhir.bundle_json(data)
    if fmt == ExportFormat.CSV:
        return formats.csv_text(data)
    return formats.json_text(data)


def export_audit(
    *, actor: User | None, patient: Patient, fmt: str, context: AuditContext | None, how: str
) -> None:
    audit_record(
        actor=actor,
        action=AuditEvent.Action.READ,
        object_type="export",
        patient=patient,
        changes={"format": fmt, "how": how},
        context=context,
    )


# --------------------------------------------------------------------------- jobs


@transaction.atomic
def export_job_create(
    *, user: User, patient: Patient, fmt: str, context: AuditContext | None = None
) -> ExportJob:
    """Ask a worker for an export file; the app polls the job for progress and the link."""
    job = ExportJob.objects.create(patient=patient, requested_by=user, format=fmt)
    audit_record(
        actor=user,
        action=AuditEvent.Action.CREATE,
        object_type="export_job",
        object_id=job.pk,
        patient=patient,
        changes={"format": fmt},
        context=context,
    )
    enqueue.publish_on_commit("rights.tasks.export_job_build_task", str(job.pk))
    return job


def _progress(job_id: UUID | str, percent: int) -> None:
    ExportJob.objects.filter(pk=job_id, finished_at__isnull=True).update(progress=percent)


def export_job_build(*, job_id: UUID | str) -> str:
    """Build the job's file into storage; idempotent (a finished job is left as it is).

    The job is claimed with a conditional UPDATE, so a second delivery of the message
    while a worker is on it does nothing; a claim older than EXPORT_STALE_AFTER is taken
    over (the first worker died).
    """
    now = timezone.now()
    claimed = ExportJob.objects.filter(
        Q(status=ExportJob.Status.PENDING)
        | Q(status=ExportJob.Status.RUNNING, started_at__lt=now - EXPORT_STALE_AFTER),
        pk=job_id,
        finished_at__isnull=True,
    ).update(
        status=ExportJob.Status.RUNNING, started_at=now, attempts=F("attempts") + 1, progress=5
    )
    if not claimed:
        return "skipped"
    job = ExportJob.objects.select_related("patient__clinic", "patient__user", "requested_by").get(
        pk=job_id
    )
    requester = job.requested_by
    if requester is None or not requester.is_active:
        # Whoever asked can no longer see it: nothing is built on their behalf.
        ExportJob.objects.filter(pk=job.pk).update(
            status=ExportJob.Status.FAILED, finished_at=timezone.now(), error="requester gone"
        )
        return "failed"
    # The requester's own scope, as at request time: a clinician who moved clinic (or a
    # patient record no longer theirs) gets nothing.
    patient = Patient.objects.visible_to(requester).filter(pk=job.patient_id).first()
    if patient is None:
        ExportJob.objects.filter(pk=job.pk).update(
            status=ExportJob.Status.FAILED, finished_at=timezone.now(), error="out of scope"
        )
        return "failed"
    data = selectors.patient_data_get(user=requester, patient=patient)
    _progress(job.pk, 50)
    content = _render(data, job.format).encode()
    _progress(job.pk, 90)
    storage = export_storage()
    name = storage.save(f"{job.pk}.{EXTENSIONS[ExportFormat(job.format)]}", ContentFile(content))
    finished = timezone.now()
    ExportJob.objects.filter(pk=job.pk).update(
        status=ExportJob.Status.READY,
        progress=100,
        file_name=name,
        size_bytes=len(content),
        finished_at=finished,
        expires_at=finished + timedelta(hours=settings.EXPORT_FILE_TTL_HOURS),
        error="",
    )
    return "ready"


def export_link_token(*, job: ExportJob) -> str:
    """A signed, expiring token naming the job (django.core.signing.TimestampSigner)."""
    return signing.TimestampSigner(salt=_LINK_SALT).sign(str(job.pk))


def export_download_get(*, token: str) -> ExportJob:
    """The ready job a download token names; a bad or expired token, or a file no longer
    kept, is a 400 with a `code` the app can act on (ask for a new export)."""
    try:
        job_id = signing.TimestampSigner(salt=_LINK_SALT).unsign(
            token, max_age=settings.EXPORT_LINK_MAX_AGE
        )
    except signing.BadSignature as exc:  # SignatureExpired is a BadSignature
        raise ApplicationError(
            gettext("This download link is invalid or has expired; ask for a new one."),
            code="export_link_invalid",
        ) from exc
    job = (
        ExportJob.objects.select_related("patient", "requested_by")
        .filter(pk=job_id, status=ExportJob.Status.READY)
        .first()
    )
    if job is None or (job.expires_at is not None and job.expires_at <= timezone.now()):
        raise ApplicationError(
            gettext("This export is no longer available; ask for a new one."),
            code="export_gone",
        )
    ready: ExportJob = job
    return ready


def export_jobs_sweep() -> int:
    """Beat: re-enqueue builds a lost message left owed, fail those that keep failing,
    and remove files past their expiry. Returns how many jobs it touched."""
    now = timezone.now()
    touched = 0
    owed = ExportJob.objects.filter(
        finished_at__isnull=True, created_at__lt=now - EXPORT_STALE_AFTER
    ).values_list("pk", "attempts")
    for job_id, attempts in owed:
        touched += 1
        if attempts >= EXPORT_MAX_ATTEMPTS:
            ExportJob.objects.filter(pk=job_id, finished_at__isnull=True).update(
                status=ExportJob.Status.FAILED, finished_at=now, error="too many attempts"
            )
        else:
            enqueue.task_publish("rights.tasks.export_job_build_task", str(job_id))
    storage = export_storage()
    for job_id, name in ExportJob.objects.filter(
        status=ExportJob.Status.READY, expires_at__lte=now
    ).values_list("pk", "file_name"):
        touched += 1
        if name:
            storage.delete(name)
        ExportJob.objects.filter(pk=job_id).update(status=ExportJob.Status.EXPIRED, file_name="")
    return touched
