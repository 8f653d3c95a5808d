from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from rehab.models import (
    Alert,
    AlertEvent,
    AlertOccurrence,
    DailyLog,
    DailyLogRevision,
    Notification,
)
from rehab.services import safety as safety_services

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

# --- safety: alerts ---


class AlertOccurrenceInline(admin.TabularInline):
    model = AlertOccurrence
    extra = 0
    can_delete = False
    readonly_fields = ("log", "fired_on", "rule_version", "basis", "fired_at")

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class AlertEventInline(admin.TabularInline):
    model = AlertEvent
    extra = 0
    can_delete = False
    readonly_fields = ("kind", "actor", "note", "data", "at")

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[AlertEvent]:
        return super().get_queryset(request).select_related("actor")


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "patient",
        "rule",
        "severity",
        "status",
        "occurrence_count",
        "notified_at",
        "escalated_at",
    )
    list_filter = ("status", "severity", "rule")
    list_select_related = ("patient",)
    search_fields = ("patient__last_name", "patient__email", "rule", "id")
    date_hierarchy = "created_at"
    raw_id_fields = ("patient", "log", "acknowledged_by", "resolved_by")
    readonly_fields = (
        "rule",
        "rule_version",
        "severity",
        "basis",
        "created_at",
        "updated_at",
        "last_fired_at",
        "opened_at",
        "occurrence_count",
        "notified_at",
        "escalated_at",
    )
    inlines = [AlertOccurrenceInline, AlertEventInline]
    actions = ["resolve_no_action"]

    @admin.action(description="Resolve the selected alerts (no action needed)")
    def resolve_no_action(self, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
        resolved = 0
        for alert in queryset.exclude(status=Alert.Status.RESOLVED):
            safety_services.alert_resolve(
                alert=alert,
                actor=request.user,
                disposition=Alert.Disposition.NO_ACTION_NEEDED,
                note="Resolved from the admin",
            )
            resolved += 1
        self.message_user(request, f"Resolved {resolved} alert(s).", messages.SUCCESS)


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("created_at", "clinician", "kind", "message", "read_at")
    list_filter = ("kind",)
    list_select_related = ("clinician__user", "clinician__clinic")
    raw_id_fields = ("clinician", "alert")
    date_hierarchy = "created_at"


# --- end safety ---

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
