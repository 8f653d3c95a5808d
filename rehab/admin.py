"""Operators' admin for the rehab app.

Clinical content is read-only here: a daily log's answers, an alert's state and the
clinical record are written only through the services, which keep the revisions, the
version the safety evaluation checks, the alert events and the audit trail. An edit form
here would go around all of them (a changed red-flag answer would never raise an alert).
The only writes are actions that call a service (resolve alerts, re-evaluate logs).
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from programs.admin import ReadOnlyMixin
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
class DailyLogAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("date", "patient", "pain", "leg_pain", "function", "evaluated_at")
    list_select_related = ("patient",)
    list_filter = ("sleep", "leg_pain_side")
    search_fields = ("patient__last_name", "patient__email", "id")
    date_hierarchy = "date"
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
class AlertAdmin(ReadOnlyMixin, admin.ModelAdmin):
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
class InterventionAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("date", "patient", "kind", "target", "side", "guidance", "session_number")
    list_select_related = ("patient",)
    list_filter = ("kind", "guidance", "side")
    search_fields = ("patient__last_name", "patient__email", "agent", "target", "performed_by")
    date_hierarchy = "date"


@admin.register(ProvocativeTest)
class ProvocativeTestAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("performed_at", "patient", "test", "side", "result", "concordant")
    list_select_related = ("patient",)
    list_filter = ("test", "result", "side")
    search_fields = ("patient__last_name", "patient__email", "symptom_location")
    date_hierarchy = "performed_at"


@admin.register(ImagingFinding)
class ImagingFindingAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("date", "patient", "modality", "body_region")
    list_select_related = ("patient",)
    list_filter = ("modality",)
    search_fields = ("patient__last_name", "patient__email", "body_region", "finding")
    date_hierarchy = "date"


@admin.register(Diagnosis)
class DiagnosisAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("name", "patient", "date_from", "date_to")
    list_select_related = ("patient",)
    list_filter = (("date_to", admin.EmptyFieldListFilter),)
    search_fields = ("patient__last_name", "patient__email", "name")
    date_hierarchy = "date_from"


@admin.register(AssessedMark)
class AssessedMarkAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("patient", "symptom", "until", "created_at", "revoked_at")
    list_select_related = ("patient",)
    list_filter = ("symptom", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("patient__last_name", "patient__email")
    date_hierarchy = "until"


@admin.register(QuestionnaireResponse)
class QuestionnaireResponseAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("date", "patient", "instrument", "score", "items_missing", "scoring_version")
    list_select_related = ("patient",)
    list_filter = ("instrument", "scoring_version")
    search_fields = ("patient__last_name", "patient__email")
    date_hierarchy = "submitted_at"


@admin.register(QuestionnaireDue)
class QuestionnaireDueAdmin(ReadOnlyMixin, admin.ModelAdmin):
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


# --- end clinical record ---
