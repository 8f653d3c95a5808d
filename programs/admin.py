"""Operators' admin. The library (exercises, templates) is editable; patients' programs,
logs and proposals are read-only here, because their writes go through the services,
which keep the dosage history and the audit trail."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db import models, router
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from config.audit import audit_context
from config.django_private import mark_saved
from patients.admin import ReadOnlyAdmin
from patients.models import AuditEvent, User
from patients.services import audit_record
from programs.media.files import process_image, process_upload
from programs.media.selectors import media_view
from programs.media.services import OBJECT_TYPE, media_create, media_delete
from programs.models import (
    AssignedExercise,
    AssignedPhase,
    CardAssignment,
    CardRead,
    DosageVersion,
    EducationCard,
    EducationCardVersion,
    Exercise,
    ExerciseLog,
    ExerciseMedia,
    PrescribedExercise,
    ProgramAssignment,
    ProgramTemplate,
    ProgressionProposal,
    TemplatePhase,
)

# A media link typed without a scheme is taken as https (Django 6's default too).
HTTPS_URLS: Mapping[type[models.Field[Any, Any]], Mapping[str, Any]] = {
    models.URLField: {"assume_scheme": "https"}
}


@admin.register(Exercise)
class ExerciseAdmin(admin.ModelAdmin[Exercise]):
    list_display = ("name", "category", "body_region", "clinic", "sets", "sessions_per_week")
    list_filter = ("category", "body_region", "clinic")
    list_select_related = ("clinic",)
    search_fields = ("name", "slug", "instructions")
    prepopulated_fields = {"slug": ("name",)}
    formfield_overrides = HTTPS_URLS


class TemplatePhaseInline(admin.TabularInline[TemplatePhase, ProgramTemplate]):
    model = TemplatePhase
    extra = 0
    show_change_link = True  # the phase's own page holds its exercises
    fields = ("position", "name", "length_weeks", "goals")


@admin.register(ProgramTemplate)
class ProgramTemplateAdmin(admin.ModelAdmin[ProgramTemplate]):
    list_display = ("name", "condition", "clinic", "created_by", "updated_at")
    list_filter = ("clinic",)
    list_select_related = ("clinic", "created_by__user", "created_by__clinic")
    search_fields = ("name", "condition", "slug")
    raw_id_fields = ("created_by",)
    inlines = [TemplatePhaseInline]


class PrescribedExerciseInline(admin.TabularInline[PrescribedExercise, TemplatePhase]):
    model = PrescribedExercise
    extra = 0
    autocomplete_fields = ("exercise",)
    fields = (
        "position",
        "exercise",
        "sets",
        "reps",
        "hold_seconds",
        "duration_minutes",
        "sessions_per_week",
        "notes",
    )


@admin.register(TemplatePhase)
class TemplatePhaseAdmin(admin.ModelAdmin[TemplatePhase]):
    list_display = ("template", "position", "name", "length_weeks")
    list_filter = ("template",)
    list_select_related = ("template",)
    search_fields = ("name", "template__name")
    inlines = [PrescribedExerciseInline]


@admin.register(PrescribedExercise)
class PrescribedExerciseAdmin(admin.ModelAdmin[PrescribedExercise]):
    list_display = ("exercise", "phase", "sets", "reps", "hold_seconds", "sessions_per_week")
    list_filter = ("phase__template",)
    list_select_related = ("exercise", "phase__template")
    search_fields = ("exercise__name", "phase__template__name")
    autocomplete_fields = ("exercise",)


class AssignedPhaseInline(ReadOnlyAdmin, admin.TabularInline[AssignedPhase, ProgramAssignment]):
    model = AssignedPhase
    extra = 0
    show_change_link = True
    fields = ("position", "name", "length_weeks", "started_on")
    readonly_fields = fields


@admin.register(ProgramAssignment)
class ProgramAssignmentAdmin(ReadOnlyAdmin, admin.ModelAdmin[ProgramAssignment]):
    list_display = ("patient", "name", "start_date", "ended_on", "pain_ceiling", "assigned_by")
    list_filter = ("patient__clinic", ("ended_on", admin.EmptyFieldListFilter))
    list_select_related = ("patient", "assigned_by__user", "assigned_by__clinic")
    search_fields = ("name", "patient__last_name", "patient__email")
    date_hierarchy = "start_date"
    inlines = [AssignedPhaseInline]


class AssignedExerciseInline(ReadOnlyAdmin, admin.TabularInline[AssignedExercise, AssignedPhase]):
    formfield_overrides = HTTPS_URLS
    model = AssignedExercise
    extra = 0
    show_change_link = True
    fields = ("position", "name", "category", "body_region")
    readonly_fields = fields


@admin.register(AssignedPhase)
class AssignedPhaseAdmin(ReadOnlyAdmin, admin.ModelAdmin[AssignedPhase]):
    audit_patient_path = "assignment__patient"
    list_display = ("assignment", "position", "name", "length_weeks", "started_on")
    list_select_related = ("assignment__patient",)
    search_fields = ("name", "assignment__patient__last_name")
    inlines = [AssignedExerciseInline]


class DosageVersionInline(ReadOnlyAdmin, admin.TabularInline[DosageVersion, AssignedExercise]):
    model = DosageVersion
    extra = 0
    fields = (
        "effective_from",
        "sets",
        "reps",
        "hold_seconds",
        "duration_minutes",
        "sessions_per_week",
        "notes",
        "created_by",
    )
    readonly_fields = fields


@admin.register(AssignedExercise)
class AssignedExerciseAdmin(ReadOnlyAdmin, admin.ModelAdmin[AssignedExercise]):
    audit_patient_path = "phase__assignment__patient"
    formfield_overrides = HTTPS_URLS
    list_display = ("name", "phase", "category")
    list_filter = ("category",)
    list_select_related = ("phase__assignment__patient",)
    search_fields = ("name", "phase__assignment__patient__last_name")
    inlines = [DosageVersionInline]


@admin.register(DosageVersion)
class DosageVersionAdmin(ReadOnlyAdmin, admin.ModelAdmin[DosageVersion]):
    audit_patient_path = "assigned_exercise__phase__assignment__patient"
    list_display = ("assigned_exercise", "effective_from", "sets", "reps", "sessions_per_week")
    list_select_related = ("assigned_exercise",)
    search_fields = ("assigned_exercise__name",)
    date_hierarchy = "effective_from"


@admin.register(ExerciseLog)
class ExerciseLogAdmin(ReadOnlyAdmin, admin.ModelAdmin[ExerciseLog]):
    list_display = (
        "date",
        "patient",
        "assigned_exercise",
        "sets_done",
        "pain_during",
        "difficulty",
        "stopped_for_pain",
    )
    list_filter = ("stopped_for_pain", "patient__clinic")
    list_select_related = ("patient", "assigned_exercise")
    search_fields = ("patient__last_name", "patient__email", "assigned_exercise__name")
    date_hierarchy = "date"
    show_full_result_count = False


@admin.register(ProgressionProposal)
class ProgressionProposalAdmin(ReadOnlyAdmin, admin.ModelAdmin[ProgressionProposal]):
    audit_patient_path = "assignment__patient"
    list_display = (
        "assignment",
        "from_phase",
        "to_phase",
        "status",
        "evaluated_on",
        "decided_by",
        "decided_at",
    )
    list_filter = ("status",)
    list_select_related = (
        "assignment__patient",
        "from_phase",
        "to_phase",
        "decided_by__user",
        "decided_by__clinic",
    )
    search_fields = ("assignment__patient__last_name", "note")
    date_hierarchy = "created_at"


# --------------------------------------------------------------------------- education
# Read-only: a card's text changes only as a new version (the dashboard's education pages
# and the API), so that a read receipt always names the words read.


class EducationCardVersionInline(
    ReadOnlyAdmin, admin.TabularInline[EducationCardVersion, EducationCard]
):
    model = EducationCardVersion
    extra = 0
    show_change_link = True
    fields = ("language", "number", "title", "created_by", "created_at")
    readonly_fields = fields


@admin.register(EducationCard)
class EducationCardAdmin(ReadOnlyAdmin, admin.ModelAdmin[EducationCard]):
    audit_patient_path = None
    list_display = ("__str__", "condition", "clinic", "created_at")
    list_filter = ("clinic",)
    list_select_related = ("clinic",)
    search_fields = ("slug", "condition", "versions__title")
    inlines = [EducationCardVersionInline]


@admin.register(EducationCardVersion)
class EducationCardVersionAdmin(ReadOnlyAdmin, admin.ModelAdmin[EducationCardVersion]):
    audit_patient_path = None
    list_display = ("title", "language", "number", "card", "created_at")
    list_filter = ("language",)
    list_select_related = ("card",)
    search_fields = ("title", "body", "card__slug")


@admin.register(CardAssignment)
class CardAssignmentAdmin(ReadOnlyAdmin, admin.ModelAdmin[CardAssignment]):
    list_display = ("card", "patient", "assigned_by", "assigned_at")
    list_select_related = ("card", "patient", "assigned_by__user", "assigned_by__clinic")
    search_fields = ("patient__last_name", "card__slug")
    date_hierarchy = "assigned_at"


@admin.register(CardRead)
class CardReadAdmin(ReadOnlyAdmin, admin.ModelAdmin[CardRead]):
    list_display = ("version", "patient", "read_at")
    list_select_related = ("version", "patient")
    search_fields = ("patient__last_name", "version__title")
    date_hierarchy = "read_at"


# --------------------------------------------------------------------------- exercise media


class ExerciseMediaAddForm(forms.ModelForm[ExerciseMedia]):
    """Adding media: the file (its kind comes from its bytes), a video's poster, and whose
    it is (no clinic: shared with every clinic). Checked here as the dashboard checks it;
    stored by `media_create` in `save_model`."""

    upload = forms.FileField(label="Image or video", help_text="JPEG, PNG or WebP; MP4 or WebM.")
    poster = forms.FileField(required=False, help_text="Videos only: a still shown before playing.")

    class Meta:
        model = ExerciseMedia
        fields = ("exercise", "clinic", "alt_text")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        upload, poster = data.get("upload"), data.get("poster")
        try:
            if upload is not None:
                processed = process_upload(upload, field="upload")
                if poster is not None and processed.kind != "video":
                    raise ValidationError({"poster": "Only a video has a poster image."})
                upload.seek(0)
            if poster is not None:
                process_image(poster, field="poster", poster=True)
                poster.seek(0)
        except ValidationError as exc:
            self.add_error(None, exc)
        return data


@admin.register(ExerciseMedia)
class ExerciseMediaAdmin(admin.ModelAdmin[ExerciseMedia]):
    list_display = ("exercise", "kind", "clinic", "position", "content_type", "size_bytes")
    list_filter = ("kind", "clinic")
    list_select_related = ("exercise", "clinic")
    search_fields = ("exercise__name", "alt_text")
    autocomplete_fields = ("exercise",)
    readonly_fields = (
        "preview",
        "exercise",
        "clinic",
        "kind",
        "content_type",
        "size_bytes",
        "sha256",
        "width",
        "height",
        "uploaded_by",
        "created_at",
    )

    def get_form(
        self,
        request: HttpRequest,
        obj: ExerciseMedia | None = None,
        change: bool = False,
        **kwargs: Any,
    ) -> type[forms.ModelForm[ExerciseMedia]]:
        if obj is None:
            kwargs["form"] = ExerciseMediaAddForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: ExerciseMedia | None = None) -> tuple[str, ...]:
        if obj is None:
            return ("exercise", "clinic", "upload", "poster", "alt_text")
        return (*self.readonly_fields, "alt_text", "position")

    def get_readonly_fields(
        self, request: HttpRequest, obj: ExerciseMedia | None = None
    ) -> tuple[str, ...]:
        return self.readonly_fields if obj is not None else ()

    @admin.display(description="Preview")
    def preview(self, obj: ExerciseMedia) -> str:
        view = media_view(obj)
        if obj.kind == ExerciseMedia.Kind.IMAGE:
            return format_html('<img src="{}" alt="" style="max-width:320px">', view.url)
        return format_html(
            '<video src="{}" controls preload="metadata" style="max-width:320px"></video>',
            view.url,
        )

    def save_model(self, request: HttpRequest, obj: ExerciseMedia, form: Any, change: bool) -> None:
        if change:
            obj.save(update_fields=["alt_text", "position"])
            audit_record(
                actor=request.user if isinstance(request.user, User) else None,
                action=AuditEvent.Action.UPDATE,
                object_type=OBJECT_TYPE,
                object_id=obj.pk,
                changes={name: getattr(obj, name) for name in form.changed_data},
                context=audit_context(request),
            )
            return
        created = media_create(
            exercise=form.cleaned_data["exercise"],
            clinic=form.cleaned_data.get("clinic"),
            upload=form.cleaned_data["upload"],
            poster=form.cleaned_data.get("poster"),
            alt_text=form.cleaned_data.get("alt_text") or "",
            actor=request.user if isinstance(request.user, User) else None,
            context=audit_context(request),
        )
        # The admin goes on with `obj` (its history entry, the redirect): make it the row.
        for field in ExerciseMedia._meta.concrete_fields:
            setattr(obj, field.attname, getattr(created, field.attname))
        mark_saved(obj, router.db_for_write(ExerciseMedia))

    def delete_model(self, request: HttpRequest, obj: ExerciseMedia) -> None:
        media_delete(
            media=obj,
            actor=request.user if isinstance(request.user, User) else None,
            context=audit_context(request),
        )

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ExerciseMedia]) -> None:
        for media in queryset:
            self.delete_model(request, media)
