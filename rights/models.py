from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from patients.models import Patient
from rights.querysets import ErasureRequestQuerySet, ExportJobQuerySet


class ExportFormat(models.TextChoices):
    JSON = "json", "JSON"
    CSV = "csv", "CSV"
    FHIR = "fhir", "FHIR R4 Bundle"


class ExportJob(models.Model):
    """One export of everything held about a patient, built by a worker into storage.

    `finished_at` NULL is work still owed: the beat sweeper re-enqueues a job whose message
    was lost (docs/data-rights.md).
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"
        EXPIRED = "expired", "Expired (file removed)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="export_jobs")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    format = models.CharField(max_length=4, choices=ExportFormat.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent done, 0-100.")
    file_name = models.CharField(max_length=200, blank=True)
    size_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # When the file is removed from storage; the signed links die sooner (EXPORT_LINK_MAX_AGE).
    expires_at = models.DateTimeField(null=True, blank=True)

    objects = ExportJobQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at",)
        indexes = [
            models.Index(fields=("patient", "created_at")),
            # The sweeper's question: which jobs are still owed a build?
            models.Index(
                fields=("created_at",),
                name="exportjob_unfinished",
                condition=Q(finished_at__isnull=True),
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(progress__lte=100), name="exportjob_progress_100"),
        ]

    def __str__(self) -> str:
        return f"{self.format} export {self.id} ({self.status})"


class ClinicRetention(models.Model):
    """How long a clinic keeps a patient's clinical record after the last contact.

    Without a row the default (`RETENTION_YEARS_DEFAULT`) applies. Records inside the
    hold are kept (restricted: the account is closed) when erasure is asked for; past it,
    the retention job pseudonymises them (docs/data-rights.md)."""

    clinic = models.OneToOneField(
        "patients.Clinic", on_delete=models.CASCADE, related_name="retention"
    )
    years_after_last_contact = models.PositiveSmallIntegerField(default=8)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.clinic}: {self.years_after_last_contact} years"


class ErasureRequest(models.Model):
    """A patient's request to erase their data, decided by a clinic admin."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for a decision"
        REJECTED = "rejected", "Rejected"
        RESTRICTED = "restricted", "Account closed; records kept under the retention hold"
        ERASED = "erased", "Erased (pseudonymised)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="+")
    requested_at = models.DateTimeField(auto_now_add=True)
    reason = models.TextField(blank=True, max_length=2000)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True, max_length=2000)
    hold_until = models.DateField(null=True, blank=True)

    objects = ErasureRequestQuerySet.as_manager()

    class Meta:
        ordering = ("-requested_at",)
        constraints = [
            models.UniqueConstraint(
                fields=("patient",),
                condition=Q(status="pending"),
                name="erasurerequest_one_pending_per_patient",
            )
        ]

    def __str__(self) -> str:
        return f"Erasure request {self.id} ({self.status})"


class Erasure(models.Model):
    """The tombstone of a pseudonymised patient: when and why, never what."""

    class Reason(models.TextChoices):
        REQUEST = "request", "The patient's request"
        RETENTION = "retention", "Retention period ended"

    patient = models.OneToOneField(Patient, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=10, choices=Reason.choices)
    erased_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.patient_id} erased {self.erased_at:%Y-%m-%d} ({self.reason})"
