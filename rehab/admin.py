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
# --- end clinical record ---
