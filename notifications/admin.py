"""Operators' view of deliveries: read-only (a delivery is written only by the sending
machinery), filtered by kind, channel and status, audited as every admin read of a
patient's rows is."""

from __future__ import annotations

from django.contrib import admin

from notifications.models import Delivery, Reminder, SafetyFollowUp
from patients.admin import ReadOnlyAdmin


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin, admin.ModelAdmin[Delivery]):
    list_display = (
        "created_at",
        "kind",
        "channel",
        "status",
        "attempts",
        "next_attempt_at",
        "sent_at",
        "last_outcome",
        "last_error",
    )
    list_filter = ("status", "kind", "channel", "last_outcome")
    search_fields = ("id", "alert__id", "invitation__id", "provider_id")
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in Delivery._meta.fields]


@admin.register(SafetyFollowUp)
class SafetyFollowUpAdmin(ReadOnlyAdmin, admin.ModelAdmin[SafetyFollowUp]):
    """The safety follow-ups: which are due, asked, answered or skipped
    (docs/safety-path.md, "Safety follow-up")."""

    list_display = ("due_at", "severity", "status", "asked_at", "seen_by", "answered_at")
    list_filter = ("status", "severity", "seen_by")
    search_fields = ("id", "alert__id")
    date_hierarchy = "due_at"
    readonly_fields = [field.name for field in SafetyFollowUp._meta.fields]


@admin.register(Reminder)
class ReminderAdmin(ReadOnlyAdmin, admin.ModelAdmin[Reminder]):
    """Patient reminders owed or sent (docs/architecture.md, "Patient reminders"); their
    sends are the deliveries of kind `reminder`."""

    list_display = ("due_at", "kind", "local_date", "created_at")
    list_filter = ("kind",)
    search_fields = ("id", "patient__id")
    date_hierarchy = "due_at"
    readonly_fields = [field.name for field in Reminder._meta.fields]
