from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from patients.models import Patient
from rights.querysets import ExportJobQuerySet


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
