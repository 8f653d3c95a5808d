"""Operators' admin. The library (exercises, templates) is editable; patients' programs,
logs and proposals are read-only here, because their writes go through the services,
which keep the dosage history and the audit trail."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib import admin
from django.db import models

from patients.admin import ReadOnlyAdmin
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
