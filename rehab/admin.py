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
# --- end clinical record ---
