"""Operators' admin for the rehab app.

Clinical content is read-only here: a daily log's answers, an alert's state and the
clinical record are written only through the services, which keep the revisions, the
version the safety evaluation checks, the alert events and the audit trail. An edit form
here would go around all of them (a changed red-flag answer would never raise an alert).
The only writes are actions that call a service (resolve alerts, re-evaluate logs).
"""

from __future__ import annotations

from typing import Any, cast

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from config.audit import audit_context
from config.exceptions import ApplicationError
from patients.admin import ReadOnlyAdmin
from patients.models import AuditEvent
from patients.services import audit_record
from rehab.models import (
    Alert,
    AlertEvent,
    AlertOccurrence,
    DailyLog,
    DailyLogId,
    DailyLogRevision,
    MissedLogReminder,
    Notification,
    SafetySubmission,
    TranslationReview,
)
from rehab.querysets import DailyLogQuerySet, log_date
from rehab.services import alerts as alert_services
from rehab.services import safety as safety_services
from rehab.services.translations import translations_mark_reviewed
from rehab.translations import translation_hash, translation_status

# --- daily logs ---


class DailyLogRevisionInline(admin.TabularInline[DailyLogRevision, DailyLog]):
    model = DailyLogRevision
    extra = 0
    can_delete = False
    readonly_fields = ("version", "data", "changed_fields", "changed_by", "changed_at")
    # One log's revisions: the model's ordering (by log, i.e. by the log's date) would
    # join the log table over every partition for nothing.
    ordering = ("version",)

    def has_add_permission(self, request: object, obj: object = None) -> bool:
        return False


class EvaluationFilter(admin.SimpleListFilter):
    """Where a log's safety evaluation stands: what an operator looks for after an outage
    or a rule that raised on every log (`log_evaluate` marks such logs failed)."""

    title = "safety evaluation"
    parameter_name = "evaluation"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("failed", "Failed"),
            ("unevaluated", "Not evaluated yet"),
            ("evaluated", "Evaluated"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[DailyLog]) -> QuerySet[DailyLog]:
        if self.value() == "failed":
            return queryset.filter(evaluation_failed_at__isnull=False)
        if self.value() == "unevaluated":
            return queryset.filter(evaluated_at__isnull=True, evaluation_failed_at__isnull=True)
        if self.value() == "evaluated":
            return queryset.filter(evaluated_at__isnull=False)
        return queryset


@admin.register(DailyLog)
class DailyLogAdmin(ReadOnlyAdmin, admin.ModelAdmin[DailyLog]):
    list_display = (
        "date",
        "patient",
        "pain",
        "leg_pain",
        "function",
        "evaluated_at",
        "evaluation_attempts",
        "evaluation_failed_at",
        "evaluation_error",
    )
    list_select_related = ("patient",)
    list_filter = (EvaluationFilter, "sleep", "leg_pain_side")
    search_fields = ("patient__last_name", "patient__email", "id")
    date_hierarchy = "date"
    inlines = [DailyLogRevisionInline]
    actions = ["reevaluate"]

    def audit_patient_ids(self, pks: list[Any]) -> dict[Any, Any]:
        """{log id: its patient's id} for the audit of what the page showed, read with
        the logs' dates (from their claimed ids): their months' partitions alone."""
        days = set(DailyLogId.objects.filter(pk__in=pks).values_list("date", flat=True))
        rows = DailyLog.objects.filter(pk__in=pks, date__in=days).values_list("pk", "patient")
        return dict(rows)

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> DailyLog | None:
        """A log by id read from its month's partition alone (`DailyLogQuerySet.by_id`,
        docs/clinical-record.md § Where the daily logs are stored)."""
        if from_field is not None:
            return super().get_object(request, object_id, from_field)
        queryset = cast(DailyLogQuerySet, self.get_queryset(request))
        try:
            return queryset.get_by_id(DailyLog._meta.pk.to_python(object_id))
        except (DailyLog.DoesNotExist, ValidationError, ValueError):
            return None

    @admin.action(description="Re-evaluate the safety rules on the selected logs")
    def reevaluate(self, request: HttpRequest, queryset: QuerySet[DailyLog]) -> None:
        patients = dict(queryset.values_list("pk", "patient_id"))
        retried = safety_services.log_evaluation_retry(log_ids=list(patients))
        for log_id in retried:
            audit_record(
                actor=request.user,  # type: ignore[arg-type]
                action=AuditEvent.Action.UPDATE,
                object_type="daily_log_evaluation",
                object_id=log_id,
                patient_id=patients[log_id],
                changes={"retried": True},
                context=audit_context(request),
            )
        skipped = len(patients) - len(retried)
        self.message_user(
            request,
            f"Queued {len(retried)} log(s) for evaluation"
            + (f"; {skipped} already evaluated, left alone." if skipped else "."),
            messages.SUCCESS,
        )


@admin.register(SafetySubmission)
class SafetySubmissionAdmin(ReadOnlyAdmin, admin.ModelAdmin[SafetySubmission]):
    """Superseded versions and refused submissions owed (or given) their red-flag
    evaluation: after an outage, an operator looks here as for logs."""

    list_display = (
        "created_at",
        "kind",
        "patient",
        "log_link",
        "version",
        "evaluated_at",
        "evaluation_attempts",
        "evaluation_failed_at",
        "evaluation_error",
    )
    list_select_related = ("patient",)
    list_filter = ("kind", EvaluationFilter)
    search_fields = ("patient__last_name", "patient__email", "log__id")
    actions = ["reevaluate"]
    # The log as `log_link` (`_log_link`, with the alerts' admin), not the foreign key.
    exclude = ("log",)
    readonly_fields = ("log_link",)

    @admin.display(description="log")
    def log_link(self, obj: SafetySubmission) -> str:
        return _log_link(obj)

    def get_queryset(self, request: HttpRequest) -> QuerySet[SafetySubmission]:
        rows: QuerySet[SafetySubmission] = (
            super().get_queryset(request).annotate(log_date=log_date())
        )
        return rows

    @admin.action(description="Evaluate the selected submissions again")
    def reevaluate(self, request: HttpRequest, queryset: QuerySet[SafetySubmission]) -> None:
        patients = dict(queryset.values_list("pk", "patient_id"))
        retried = safety_services.submission_evaluation_retry(submission_ids=list(patients))
        for submission_id in retried:
            audit_record(
                actor=request.user,  # type: ignore[arg-type]
                action=AuditEvent.Action.UPDATE,
                object_type="safety_submission_evaluation",
                object_id=submission_id,
                patient_id=patients[submission_id],
                changes={"retried": True},
                context=audit_context(request),
            )
        self.message_user(
            request, f"Queued {len(retried)} submission(s) for evaluation.", messages.SUCCESS
        )


# --- end daily logs ---

# --- safety: alerts ---


def _log_link(obj: Alert | AlertOccurrence | SafetySubmission) -> str:
    """The row's log, as its date linking to the log's page, from the `log_date`
    annotation (`rehab.querysets.log_date`): the admin's own display of the foreign key
    would read each row's log by id alone, over every monthly partition."""
    if obj.log_id is None:
        return "-"
    day = getattr(obj, "log_date", None)
    url = reverse("admin:rehab_dailylog_change", args=[obj.log_id])
    return format_html('<a href="{}">{}</a>', url, day.isoformat() if day else obj.log_id)


class AlertOccurrenceInline(admin.TabularInline[AlertOccurrence, Alert]):
    model = AlertOccurrence
    extra = 0
    can_delete = False
    # `log_link`, not the foreign key `log` (see `_log_link`).
    fields = readonly_fields = (
        "log_link",
        "source",
        "log_version",
        "fired_on",
        "rule_version",
        "advice_message_key",
        "advice_language",
        "basis",
        "fired_at",
    )

    @admin.display(description="log")
    def log_link(self, obj: AlertOccurrence) -> str:
        return _log_link(obj)

    def get_queryset(self, request: HttpRequest) -> QuerySet[AlertOccurrence]:
        return super().get_queryset(request).annotate(log_date=log_date())

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class AlertEventInline(admin.TabularInline[AlertEvent, Alert]):
    model = AlertEvent
    extra = 0
    can_delete = False
    readonly_fields = ("kind", "actor", "note", "data", "at")

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[AlertEvent]:
        return super().get_queryset(request).select_related("actor")


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin, admin.ModelAdmin[Alert]):
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
    # Its page shows the log as `log_link`, not through the foreign key (`_log_link`).
    exclude = ("log",)
    readonly_fields = ("log_link",)

    @admin.display(description="log")
    def log_link(self, obj: Alert) -> str:
        return _log_link(obj)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Alert]:
        rows: QuerySet[Alert] = super().get_queryset(request).annotate(log_date=log_date())
        return rows

    @admin.action(description="Resolve the selected alerts (no action needed)")
    def resolve_no_action(self, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
        resolved, skipped = 0, []
        for alert in queryset.exclude(status=Alert.Status.RESOLVED).select_related("patient"):
            try:
                alert = alert_services.alert_resolve(
                    alert=alert,
                    actor=request.user,
                    disposition=Alert.Disposition.NO_ACTION_NEEDED,
                    note="Resolved from the admin",
                )
            except ApplicationError as exc:
                # Resolved by a clinician (or automatically) since the list was read.
                skipped.append(f"{alert.rule} for {alert.patient}: {exc.message}")
                continue
            # The same audit event as the dashboard's resolve form writes.
            audit_record(
                actor=request.user,  # type: ignore[arg-type]
                action=AuditEvent.Action.UPDATE,
                object_type="alert",
                object_id=alert.pk,
                patient_id=alert.patient_id,
                changes={"status": "resolved", "disposition": alert.disposition},
                context=audit_context(request),
            )
            resolved += 1
        self.message_user(request, f"Resolved {resolved} alert(s).", messages.SUCCESS)
        if skipped:
            self.message_user(request, "Not resolved: " + "; ".join(skipped), messages.WARNING)


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin, admin.ModelAdmin[Notification]):
    """Read-only: a notification is how a clinician hears of an alert. An edited `read_at`
    (or a deleted row) would take a red flag out of their unread list, a moved one would
    tell the wrong clinician, and none of it would be audited."""

    audit_patient_path = "alert__patient"

    list_display = ("created_at", "clinician", "kind", "message", "read_at")
    list_filter = ("kind",)
    search_fields = ("message", "clinician__user__email", "alert__patient__last_name")
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
class InterventionAdmin(ReadOnlyAdmin, admin.ModelAdmin[Intervention]):
    list_display = ("date", "patient", "kind", "target", "side", "guidance", "session_number")
    list_select_related = ("patient",)
    list_filter = ("kind", "guidance", "side")
    search_fields = ("patient__last_name", "patient__email", "agent", "target", "performed_by")
    date_hierarchy = "date"


@admin.register(ProvocativeTest)
class ProvocativeTestAdmin(ReadOnlyAdmin, admin.ModelAdmin[ProvocativeTest]):
    list_display = ("performed_at", "patient", "test", "side", "result", "concordant")
    list_select_related = ("patient",)
    list_filter = ("test", "result", "side")
    search_fields = ("patient__last_name", "patient__email", "symptom_location")
    date_hierarchy = "performed_at"


@admin.register(ImagingFinding)
class ImagingFindingAdmin(ReadOnlyAdmin, admin.ModelAdmin[ImagingFinding]):
    list_display = ("date", "patient", "modality", "body_region")
    list_select_related = ("patient",)
    list_filter = ("modality",)
    search_fields = ("patient__last_name", "patient__email", "body_region", "finding")
    date_hierarchy = "date"


@admin.register(Diagnosis)
class DiagnosisAdmin(ReadOnlyAdmin, admin.ModelAdmin[Diagnosis]):
    list_display = ("name", "patient", "date_from", "date_to")
    list_select_related = ("patient",)
    list_filter = (("date_to", admin.EmptyFieldListFilter),)
    search_fields = ("patient__last_name", "patient__email", "name")
    date_hierarchy = "date_from"


@admin.register(AssessedMark)
class AssessedMarkAdmin(ReadOnlyAdmin, admin.ModelAdmin[AssessedMark]):
    list_display = ("patient", "symptom", "until", "created_at", "revoked_at")
    list_select_related = ("patient",)
    list_filter = ("symptom", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("patient__last_name", "patient__email")
    date_hierarchy = "until"


@admin.register(QuestionnaireResponse)
class QuestionnaireResponseAdmin(ReadOnlyAdmin, admin.ModelAdmin[QuestionnaireResponse]):
    list_display = ("date", "patient", "instrument", "score", "items_missing", "scoring_version")
    list_select_related = ("patient",)
    list_filter = ("instrument", "scoring_version")
    search_fields = ("patient__last_name", "patient__email")
    date_hierarchy = "submitted_at"


@admin.register(QuestionnaireDue)
class QuestionnaireDueAdmin(ReadOnlyAdmin, admin.ModelAdmin[QuestionnaireDue]):
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


@admin.register(MissedLogReminder)
class MissedLogReminderAdmin(ReadOnlyAdmin, admin.ModelAdmin[MissedLogReminder]):
    """NR-LOG-01's reminders to patients: an unsent one (no `sent_at`) is still owed."""

    list_display = ("patient", "streak_from", "missed_days", "created_at", "sent_at")
    list_select_related = ("patient",)
    list_filter = (("sent_at", admin.EmptyFieldListFilter),)
    search_fields = ("patient__last_name", "patient__email")
    date_hierarchy = "created_at"


# --- translations ---


@admin.register(TranslationReview)
class TranslationReviewAdmin(admin.ModelAdmin[TranslationReview]):
    """Clinicians' reviews of the translated safety texts (docs/app-developers.md §
    Languages). The page lists first every translation nobody has reviewed (the patient
    sees its English beside it until then), with a form to mark the ones read reviewed;
    below, the reviews recorded. Marking needs the "add translation review" permission,
    which operators give to the clinicians who review translations."""

    change_list_template = "admin/rehab/translationreview/change_list.html"
    list_display = ("message_key", "language", "current", "reviewed_by", "reviewed_at")
    list_filter = ("language",)
    search_fields = ("message_key",)
    readonly_fields = (
        "language",
        "message_key",
        "translation_hash",
        "source_text",
        "translated_text",
        "reviewed_by",
        "reviewed_at",
    )

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(boolean=True, description="still the current translation")
    def current(self, review: TranslationReview) -> bool:
        try:
            return translation_hash(review.message_key, review.language) == (
                review.translation_hash
            )
        except KeyError:  # a text the rules no longer have
            return False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Reviews are recorded from the list of unreviewed translations, never typed in.
        return False

    def _can_review(self, request: HttpRequest) -> bool:
        return request.user.has_perm("rehab.add_translationreview")

    def get_urls(self) -> list[URLPattern]:
        review = path(
            "review/",
            self.admin_site.admin_view(self.review_view),
            name="rehab_translationreview_review",
        )
        return [review, *super().get_urls()]

    def review_view(self, request: HttpRequest) -> HttpResponse:
        """Mark the translations ticked on the list reviewed, by the signed-in clinician."""
        if request.method != "POST":
            return redirect("admin:rehab_translationreview_changelist")
        if not self._can_review(request):
            raise PermissionDenied
        marked = []
        for item in request.POST.getlist("translation"):
            language, _sep, key = item.partition(":")
            marked += translations_mark_reviewed(
                reviewer=request.user,  # type: ignore[arg-type]
                language=language,
                keys=[key],
            )
        for review in marked:
            self.log_addition(request, review, [{"added": {}}])
        self.message_user(
            request, f"Marked {len(marked)} translation(s) reviewed.", messages.SUCCESS
        )
        return redirect("admin:rehab_translationreview_changelist")

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        status = translation_status()
        context = {
            **(extra_context or {}),
            "unreviewed": [row for row in status if row["state"] == "unreviewed"],
            "untranslated": [row for row in status if row["state"] == "untranslated"],
            "can_review": self._can_review(request),
        }
        return super().changelist_view(request, extra_context=context)
