"""Consent records (docs/data-rights.md): versioned documents per clinic, and each
patient's decisions on them. Imported by `patients.models`, so Django registers them as
the patients app's models; relations are named by string, so this module imports no
model module (and `patients.models` can import it at the top)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from patients.querysets import ConsentDecisionQuerySet, ConsentDocumentQuerySet


class ConsentKind(models.TextChoices):
    TERMS = "terms", "Terms of use"
    PRIVACY = "privacy", "Privacy notice"
    RESEARCH = "research", "Use of de-identified data for research and service audits"
    SENSITIVE_QUESTIONS = "sensitive_questions", "Optional sensitive questions"


class ConsentDocument(models.Model):
    """One version of one of a clinic's consent texts.

    A draft (`published_at` NULL) can be edited; a published version never changes, and
    the latest published version of a kind is the current one. Publishing a required
    version makes every patient of the clinic owe an acceptance of it.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    clinic = models.ForeignKey(
        "patients.Clinic", on_delete=models.PROTECT, related_name="consent_documents"
    )
    kind = models.CharField(max_length=24, choices=ConsentKind.choices)
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    body = models.TextField(max_length=100_000)
    required = models.BooleanField(
        help_text="Required documents must be accepted to use the app; others are optional."
    )
    published_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ConsentDocumentQuerySet.as_manager()

    class Meta:
        ordering = ("kind", "-version")
        constraints = [
            models.UniqueConstraint(
                fields=("clinic", "kind", "version"), name="consentdocument_unique_version"
            ),
            models.CheckConstraint(
                condition=Q(version__gte=1), name="consentdocument_version_from_1"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} v{self.version}"


class ConsentDecision(models.Model):
    """A patient's decision on one consent document version: rows are only ever added,
    so the history is the table; the latest row per document is the state."""

    class Decision(models.TextChoices):
        ACCEPTED = "accepted", "Accepted"
        DECLINED = "declined", "Declined"
        WITHDRAWN = "withdrawn", "Withdrawn"

    id = models.BigAutoField(primary_key=True)
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.CASCADE, related_name="consent_decisions"
    )
    document = models.ForeignKey(ConsentDocument, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=10, choices=Decision.choices)
    at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )

    objects = ConsentDecisionQuerySet.as_manager()

    class Meta:
        ordering = ("-at", "-id")
        indexes = [models.Index(fields=("patient", "document", "at"))]

    def __str__(self) -> str:
        return f"{self.patient_id} {self.decision} {self.document_id}"
