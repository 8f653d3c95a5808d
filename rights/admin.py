"""Operators' read-only view of the data-rights records (docs/data-rights.md).

The consent models belong to the patients app but are registered here, with the rest
of the data-rights records; every write goes through the services (and the audit)."""

from __future__ import annotations

from django.contrib import admin

from patients.admin import ReadOnlyAdmin
from patients.models import ConsentDecision, ConsentDocument
from rights.models import ClinicRetention, Erasure, ErasureRequest, ExportJob


@admin.register(ConsentDocument)
class ConsentDocumentAdmin(ReadOnlyAdmin, admin.ModelAdmin[ConsentDocument]):
    audit_patient_path = None
    list_display = ("clinic", "kind", "version", "required", "published_at")
    list_filter = ("kind", "required")


@admin.register(ConsentDecision)
class ConsentDecisionAdmin(ReadOnlyAdmin, admin.ModelAdmin[ConsentDecision]):
    list_display = ("at", "patient_id", "document", "decision")
    list_filter = ("decision",)


@admin.register(ExportJob)
class ExportJobAdmin(ReadOnlyAdmin, admin.ModelAdmin[ExportJob]):
    list_display = ("created_at", "format", "status", "progress", "attempts")
    list_filter = ("status", "format")
    exclude = ("error",)


@admin.register(ClinicRetention)
class ClinicRetentionAdmin(ReadOnlyAdmin, admin.ModelAdmin[ClinicRetention]):
    audit_patient_path = None
    list_display = ("clinic", "years_after_last_contact", "updated_at")


@admin.register(ErasureRequest)
class ErasureRequestAdmin(ReadOnlyAdmin, admin.ModelAdmin[ErasureRequest]):
    list_display = ("requested_at", "status", "decided_at", "hold_until")
    list_filter = ("status",)
    exclude = ("reason", "decision_note")


@admin.register(Erasure)
class ErasureAdmin(ReadOnlyAdmin, admin.ModelAdmin[Erasure]):
    list_display = ("erased_at", "reason")
