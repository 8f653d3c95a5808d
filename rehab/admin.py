from __future__ import annotations

from django.contrib import admin

from rehab.models import DailyLog, DailyLogRevision

# --- daily logs ---


class DailyLogRevisionInline(admin.TabularInline):
    model = DailyLogRevision
    extra = 0
    can_delete = False
    readonly_fields = ("version", "data", "changed_fields", "changed_by", "changed_at")

    def has_add_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(DailyLog)
class DailyLogAdmin(admin.ModelAdmin):
    list_display = ("date", "patient", "pain", "leg_pain", "function", "evaluated_at")
    list_select_related = ("patient",)
    list_filter = ("sleep", "leg_pain_side")
    search_fields = ("patient__last_name", "patient__email", "id")
    date_hierarchy = "date"
    raw_id_fields = ("patient",)
    readonly_fields = ("created_at", "updated_at", "version", "safety_advice")
    inlines = [DailyLogRevisionInline]


# --- end daily logs ---

# --- clinical record ---
# Imports stay in this section so that the daily-log half of the file is untouched.
from rehab.models import (  # noqa: E402
    AssessedMark,
    Diagnosis,
    ImagingFinding,
    Intervention,
    ProvocativeTest,
    QuestionnaireDue,
    QuestionnaireResponse,
)


@admin.register(Intervention)
class InterventionAdmin(admin.ModelAdmin):
    list_display = ("date", "patient", "kind", "target", "side", "guidance", "session_number")
    list_select_related = ("patient",)
    list_filter = ("kind", "guidance", "side")
    search_fields = ("patient__last_name", "patient__email", "agent", "target", "performed_by")
    date_hierarchy = "date"
    raw_id_fields = ("patient", "created_by")
    readonly_fields = ("created_at",)


@admin.register(ProvocativeTest)
class ProvocativeTestAdmin(admin.ModelAdmin):
    list_display = ("performed_at", "patient", "test", "side", "result", "concordant")
    list_select_related = ("patient",)
    list_filter = ("test", "result", "side")
    search_fields = ("patient__last_name", "patient__email", "symptom_location")
    date_hierarchy = "performed_at"
    raw_id_fields = ("patient", "examiner", "created_by")
    readonly_fields = ("created_at",)


@admin.register(ImagingFinding)
class ImagingFindingAdmin(admin.ModelAdmin):
    list_display = ("date", "patient", "modality", "body_region")
    list_select_related = ("patient",)
    list_filter = ("modality",)
    search_fields = ("patient__last_name", "patient__email", "body_region", "finding")
    date_hierarchy = "date"
    raw_id_fields = ("patient", "created_by")
    readonly_fields = ("created_at",)


@admin.register(Diagnosis)
class DiagnosisAdmin(admin.ModelAdmin):
    list_display = ("name", "patient", "date_from", "date_to")
    list_select_related = ("patient",)
    list_filter = (("date_to", admin.EmptyFieldListFilter),)
    search_fields = ("patient__last_name", "patient__email", "name")
    date_hierarchy = "date_from"
    raw_id_fields = ("patient", "created_by")
    readonly_fields = ("created_at",)


@admin.register(AssessedMark)
class AssessedMarkAdmin(admin.ModelAdmin):
    list_display = ("patient", "symptom", "until", "created_at", "revoked_at")
    list_select_related = ("patient",)
    list_filter = ("symptom", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("patient__last_name", "patient__email")
    date_hierarchy = "until"
    raw_id_fields = ("patient", "created_by", "revoked_by")
    # Marks feed the safety rules and are audited through the API: read-only here.
    readonly_fields = (
        "patient",
        "symptom",
        "until",
        "note",
        "created_by",
        "created_at",
        "revoked_at",
        "revoked_by",
    )

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_delete_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(QuestionnaireResponse)
class QuestionnaireResponseAdmin(admin.ModelAdmin):
    list_display = ("date", "patient", "instrument", "score", "items_missing", "scoring_version")
    list_select_related = ("patient",)
    list_filter = ("instrument", "scoring_version")
    search_fields = ("patient__last_name", "patient__email")
    date_hierarchy = "submitted_at"
    raw_id_fields = ("patient", "submitted_by")
    # Scores are computed by rehab.scoring from the answers; editing either breaks the link.
    readonly_fields = (
        "instrument",
        "instrument_version",
        "scoring_version",
        "answers",
        "score",
        "items_missing",
        "date",
        "submitted_at",
    )


@admin.register(QuestionnaireDue)
class QuestionnaireDueAdmin(admin.ModelAdmin):
    list_display = ("patient", "instrument", "reason", "due_from", "expires_at", "expired_at")
    list_select_related = ("patient",)
    list_filter = (
        "instrument",
        "reason",
        ("response", admin.EmptyFieldListFilter),
        ("expired_at", admin.EmptyFieldListFilter),
    )
    search_fields = ("patient__last_name", "patient__email")
    date_hierarchy = "due_from"
    raw_id_fields = ("patient", "intervention", "response")
    readonly_fields = ("created_at", "expired_at")


# --- end clinical record ---
