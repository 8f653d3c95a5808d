"""Writes: building templates, assigning them, dosage changes, exercise logs, and phase
progression proposals. Every write to patient data is audited in its own transaction.

One module, though over 500 lines: every function writes one patient's program (its
template, assignment, dosage versions, sessions and phase proposals), and they share the
copy-on-assign rules and the dosage-in-force arithmetic; split by function, each part
would import the others' helpers.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any
from uuid import UUID

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy

from config.audit import AuditContext
from config.db import insert_unless_conflict
from config.exceptions import ApplicationError, ConflictError
from patients.models import AuditEvent, Clinician, Patient, User
from patients.restriction import patient_ensure_writable
from patients.services import audit_record
from programs import rules, selectors
from programs.education import services as education_services
from programs.models import (
    DEFAULT_PAIN_CEILING,
    AssignedExercise,
    AssignedPhase,
    Dosage,
    DosageVersion,
    Exercise,
    ExerciseLog,
    PrescribedExercise,
    ProgramAssignment,
    ProgramTemplate,
    ProgressionProposal,
    TemplatePhase,
)

logger = logging.getLogger(__name__)

# How far from the patient's local today a program may start (back-dating a program the
# patient began on paper, or booking one ahead).
ASSIGN_PAST_DAYS = 14
ASSIGN_FUTURE_DAYS = 90
# Exercise logs: as for daily logs (docs/app-developers.md), no future dates, at most 14 days back.
LOG_PAST_DAYS = 14
# A declined proposal is not raised again for the same phase for this long: re-proposing
# every day would teach clinicians to ignore proposals.
DECLINE_COOL_OFF_DAYS = 7
MOVE_AHEAD_DAYS = 90


def dosage_errors(dosage: Mapping[str, Any]) -> dict[str, str]:
    """Cross-field dosage checks (single fields are checked by the serializers)."""
    units = [name for name in ("reps", "hold_seconds", "duration_minutes") if dosage.get(name)]
    if len(units) != 1:
        message = "Give exactly one of reps, hold_seconds or duration_minutes."
        return {name: message for name in (units or ["reps"])}
    return {}


def _dosage_values(source: Mapping[str, Any]) -> dict[str, Any]:
    values = {name: source.get(name) for name in Dosage.DOSAGE_FIELDS}
    values["notes"] = values["notes"] or ""
    return values


def _audit(
    *,
    actor: User | None,
    action: str,
    object_type: str,
    object_id: object,
    patient_id: UUID | str | None,
    changes: Mapping[str, Any] | None = None,
    context: AuditContext | None = None,
) -> None:
    audit_record(
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        patient_id=patient_id,
        changes=changes,
        context=context,
    )


# --------------------------------------------------------------------------- templates


@transaction.atomic
def template_create(
    *,
    clinician: Clinician,
    name: str,
    phases: Sequence[Mapping[str, Any]],
    condition: str = "",
    description: str = "",
    pain_ceiling: int = DEFAULT_PAIN_CEILING,
    context: AuditContext | None = None,
) -> ProgramTemplate:
    """A clinic-owned template with ordered phases of prescribed exercises.

    `phases`: [{name, goals?, length_weeks, cards?, exercises: [{exercise, sets, reps |
    hold_seconds | duration_minutes, sessions_per_week, notes?}]}], in order; `cards`:
    the education cards given with the phase.
    """
    _check_phases(clinician=clinician, phases=phases)
    existing = ProgramTemplate.objects.filter(clinic=clinician.clinic, name=name).first()
    if existing is not None:
        raise ConflictError(
            "Your clinic already has a template with this name.",
            code="duplicate_name",
            extra={"existing_id": str(existing.pk)},
        )
    try:
        with transaction.atomic():
            template = ProgramTemplate.objects.create(
                clinic=clinician.clinic,
                name=name,
                condition=condition,
                description=description,
                pain_ceiling=pain_ceiling,
                created_by=clinician,
            )
    except IntegrityError as exc:  # the same name created concurrently
        existing = ProgramTemplate.objects.get(clinic=clinician.clinic, name=name)
        raise ConflictError(
            "Your clinic already has a template with this name.",
            code="duplicate_name",
            extra={"existing_id": str(existing.pk)},
        ) from exc
    _build_phases(template=template, phases=phases)
    # Not patient data, but what a clinic prescribes from: who built it is audited too.
    _audit(
        actor=clinician.user,
        action=AuditEvent.Action.CREATE,
        object_type="program_template",
        object_id=template.pk,
        patient_id=None,
        changes={
            "name": name,
            "phases": len(phases),
            "exercises": sum(len(phase["exercises"]) for phase in phases),
        },
        context=context,
    )
    return template


def _check_phases(*, clinician: Clinician, phases: Sequence[Mapping[str, Any]]) -> None:
    if not phases:
        raise ValidationError({"phases": "A program needs at least one phase."})
    for p, phase in enumerate(phases, start=1):
        if not phase.get("exercises"):
            raise ValidationError({"phases": f"Phase {p} has no exercises."})
        for e, item in enumerate(phase["exercises"], start=1):
            exercise: Exercise = item["exercise"]
            if exercise.clinic_id not in (None, clinician.clinic_id):
                raise ValidationError({"phases": f"Phase {p}, exercise {e}: unknown exercise."})
            if errors := dosage_errors(item):
                raise ValidationError({"phases": f"Phase {p}, exercise {e}: {errors}"})
        for card in phase.get("cards") or ():
            if card.clinic_id not in (None, clinician.clinic_id):
                raise ValidationError({"phases": f"Phase {p}: unknown education card."})


def _build_phases(*, template: ProgramTemplate, phases: Sequence[Mapping[str, Any]]) -> None:
    for p, phase in enumerate(phases, start=1):
        template_phase = TemplatePhase.objects.create(
            template=template,
            position=p,
            name=phase["name"],
            goals=phase.get("goals") or "",
            length_weeks=phase["length_weeks"],
        )
        PrescribedExercise.objects.bulk_create(
            PrescribedExercise(
                phase=template_phase,
                exercise=item["exercise"],
                position=e,
                **_dosage_values(item),
            )
            for e, item in enumerate(phase["exercises"], start=1)
        )
        if phase.get("cards"):
            template_phase.education_cards.set(phase["cards"])


def _name_taken(template: ProgramTemplate) -> ConflictError:
    return ConflictError(
        "Your clinic already has a template with this name.",
        code="duplicate_name",
        extra={"existing_id": str(template.pk)},
    )


@transaction.atomic
def template_update(
    *,
    template: ProgramTemplate,
    clinician: Clinician,
    name: str,
    phases: Sequence[Mapping[str, Any]],
    condition: str = "",
    description: str = "",
    pain_ceiling: int = DEFAULT_PAIN_CEILING,
    context: AuditContext | None = None,
) -> ProgramTemplate:
    """Rewrite a clinic template: its details and all its phases (as `template_create`).

    Patients already on it are not touched: their program is a copy made when it was
    assigned (`assignment_create`), with its own dated dosage. Only the clinic's own
    templates can be edited; a seeded one is copied first (`template_copy`).
    """
    template = ProgramTemplate.objects.select_for_update().get(pk=template.pk)
    if template.clinic_id != clinician.clinic_id:
        raise ValidationError({"template": "Seeded templates are copied before editing."})
    _check_phases(clinician=clinician, phases=phases)
    clash = (
        ProgramTemplate.objects.filter(clinic=clinician.clinic, name=name)
        .exclude(pk=template.pk)
        .first()
    )
    if clash is not None:
        raise _name_taken(clash)
    before = {
        "name": template.name,
        "condition": template.condition,
        "description": template.description,
        "pain_ceiling": template.pain_ceiling,
        "phases": TemplatePhase.objects.filter(template=template).count(),
        "exercises": PrescribedExercise.objects.filter(phase__template=template).count(),
    }
    template.name, template.condition, template.description = name, condition, description
    template.pain_ceiling = pain_ceiling
    template.save()
    TemplatePhase.objects.filter(template=template).delete()
    _build_phases(template=template, phases=phases)
    after = {
        "name": name,
        "condition": condition,
        "description": description,
        "pain_ceiling": pain_ceiling,
        "phases": len(phases),
        "exercises": sum(len(phase["exercises"]) for phase in phases),
    }
    _audit(
        actor=clinician.user,
        action=AuditEvent.Action.UPDATE,
        object_type="program_template",
        object_id=template.pk,
        patient_id=None,
        changes={
            key: {"from": before[key], "to": after[key]}
            for key in after
            if before[key] != after[key] or key in ("phases", "exercises")
        },
        context=context,
    )
    return template


def template_phases_of(template: ProgramTemplate) -> list[dict[str, Any]]:
    """A template's phases in the shape `template_create` and `template_update` take."""
    return [
        {
            "name": phase.name,
            "goals": phase.goals,
            "length_weeks": phase.length_weeks,
            "cards": list(phase.education_cards.all()),
            "exercises": [
                {"exercise": item.exercise, **item.dosage_dict()}
                for item in phase.exercises.order_by("position").select_related("exercise")
            ],
        }
        for phase in TemplatePhase.objects.filter(template=template).order_by("position")
    ]


def template_copy(
    *,
    template: ProgramTemplate,
    clinician: Clinician,
    name: str,
    context: AuditContext | None = None,
) -> ProgramTemplate:
    """The clinic's own editable copy of a template (a seeded one, usually)."""
    if template.clinic_id not in (None, clinician.clinic_id):
        raise ValidationError({"template": "Unknown template."})
    return template_create(
        clinician=clinician,
        name=name,
        phases=template_phases_of(template),
        condition=template.condition,
        description=template.description,
        pain_ceiling=template.pain_ceiling,
        context=context,
    )


# --------------------------------------------------------------------------- assignments


@transaction.atomic
def assignment_create(
    *,
    patient: Patient,
    template: ProgramTemplate,
    by: Clinician,
    start_date: date | None = None,
    pain_ceiling: int | None = None,
    today: date | None = None,
    context: AuditContext | None = None,
) -> ProgramAssignment:
    """Give `patient` their own copy of `template` from `start_date` (default: their today).

    Phases, exercises and dosage are copied, so later template edits never change it.
    """
    # Serialise assignments per patient: the check for an active program and the insert
    # must not interleave with another request's (the constraint is the last line).
    patient_ensure_writable(patient_id=patient.pk, for_update=True)
    today = today or patient.local_today()
    start_date = start_date or today
    if template.clinic_id not in (None, patient.clinic_id):
        raise ValidationError({"template_id": "Unknown template."})
    if start_date < today - timedelta(days=ASSIGN_PAST_DAYS):
        raise ValidationError(
            {"start_date": f"A program can start at most {ASSIGN_PAST_DAYS} days ago."}
        )
    if start_date > today + timedelta(days=ASSIGN_FUTURE_DAYS):
        raise ValidationError(
            {"start_date": f"A program can start at most {ASSIGN_FUTURE_DAYS} days ahead."}
        )
    active = ProgramAssignment.objects.filter(patient=patient, ended_on__isnull=True).first()
    if active is not None:
        raise ConflictError(
            "This patient already has an active program; end it first.",
            code="active_program_exists",
            extra={"existing_id": str(active.pk)},
        )
    overlapping = ProgramAssignment.objects.filter(patient=patient, ended_on__gt=start_date).first()
    if overlapping is not None:
        raise ValidationError(
            {"start_date": f"The previous program runs until {overlapping.ended_on}."}
        )
    template_phases = list(
        TemplatePhase.objects.filter(template=template)
        .order_by("position")
        .prefetch_related("exercises__exercise")
    )
    if not template_phases:
        raise ValidationError({"template_id": "This template has no phases."})

    try:
        with transaction.atomic():
            assignment = ProgramAssignment.objects.create(
                patient=patient,
                template=template,
                name=template.name,
                condition=template.condition,
                start_date=start_date,
                pain_ceiling=template.pain_ceiling if pain_ceiling is None else pain_ceiling,
                assigned_by=by,
            )
    except IntegrityError as exc:
        active = ProgramAssignment.objects.filter(patient=patient, ended_on__isnull=True).first()
        raise ConflictError(
            "This patient already has an active program; end it first.",
            code="active_program_exists",
            extra={"existing_id": str(active.pk) if active else None},
        ) from exc

    phases = AssignedPhase.objects.bulk_create(
        AssignedPhase(
            assignment=assignment,
            position=index,
            name=phase.name,
            goals=phase.goals,
            length_weeks=phase.length_weeks,
            started_on=start_date if index == 1 else None,
        )
        for index, phase in enumerate(template_phases, start=1)
    )
    exercises: list[AssignedExercise] = []
    versions: list[DosageVersion] = []
    for assigned_phase, phase in zip(phases, template_phases, strict=True):
        for position, prescribed in enumerate(phase.exercises.order_by("position"), start=1):
            library = prescribed.exercise
            exercise = AssignedExercise(
                phase=assigned_phase,
                exercise=library,
                position=position,
                name=library.name,
                instructions=library.instructions,
                body_region=library.body_region,
                category=library.category,
                media_url=library.media_url,
            )
            exercises.append(exercise)
            versions.append(
                DosageVersion(
                    assigned_exercise=exercise,
                    effective_from=start_date,
                    created_by=by,
                    **prescribed.dosage_dict(),
                )
            )
    AssignedExercise.objects.bulk_create(exercises)
    DosageVersion.objects.bulk_create(versions)
    # The education cards of the template's phases come with the program.
    education_services.program_cards_assign(assignment=assignment, by=by)
    _audit(
        actor=by.user,
        action=AuditEvent.Action.CREATE,
        object_type="program_assignment",
        object_id=assignment.pk,
        patient_id=patient.pk,
        changes={"template_id": str(template.pk), "start_date": start_date.isoformat()},
        context=context,
    )
    return assignment


@transaction.atomic
def assignment_update(
    *,
    assignment: ProgramAssignment,
    by: Clinician,
    pain_ceiling: int,
    context: AuditContext | None = None,
) -> ProgramAssignment:
    """Per-assignment override of the progression pain ceiling."""
    patient_ensure_writable(patient_id=assignment.patient_id)
    assignment = ProgramAssignment.objects.select_for_update().get(pk=assignment.pk)
    changes = {}
    if assignment.pain_ceiling != pain_ceiling:
        changes["pain_ceiling"] = {"from": assignment.pain_ceiling, "to": pain_ceiling}
        assignment.pain_ceiling = pain_ceiling
        assignment.save(update_fields=["pain_ceiling", "updated_at"])
    _audit(
        actor=by.user,
        action=AuditEvent.Action.UPDATE,
        object_type="program_assignment",
        object_id=assignment.pk,
        patient_id=assignment.patient_id,
        changes=changes,
        context=context,
    )
    return assignment


@transaction.atomic
def assignment_end(
    *,
    assignment: ProgramAssignment,
    by: Clinician | None,
    on: date | None = None,
    today: date | None = None,
    context: AuditContext | None = None,
) -> ProgramAssignment:
    """Stop the program from `on` (the first day off it; default the patient's today).

    Ending it again is a no-op (a retried request). Pending proposals are declined.
    """
    patient_ensure_writable(patient_id=assignment.patient_id)
    assignment = (
        ProgramAssignment.objects.select_for_update()
        .select_related("patient")
        .get(pk=assignment.pk)
    )
    if assignment.ended_on is not None:
        return assignment
    today = today or assignment.patient.local_today()
    on = on or today
    if on < today:
        raise ValidationError({"on": "A program cannot be ended in the past."})
    # Ending a program that had not started yet cancels it: it covers no day at all.
    assignment.ended_on = max(on, assignment.start_date)
    assignment.save(update_fields=["ended_on", "updated_at"])
    ProgressionProposal.objects.filter(
        assignment=assignment, status=ProgressionProposal.Status.PENDING
    ).update(
        status=ProgressionProposal.Status.DECLINED,
        decided_by=by,
        decided_at=timezone.now(),
        note="Program ended.",
    )
    _audit(
        actor=by.user if by else None,
        action=AuditEvent.Action.UPDATE,
        object_type="program_assignment",
        object_id=assignment.pk,
        patient_id=assignment.patient_id,
        changes={"ended_on": assignment.ended_on.isoformat()},
        context=context,
    )
    return assignment


@transaction.atomic
def dosage_change(
    *,
    assigned_exercise: AssignedExercise,
    by: Clinician,
    effective_from: date,
    changes: Mapping[str, Any],
    today: date | None = None,
    context: AuditContext | None = None,
) -> DosageVersion:
    """Change one patient's dosage from `effective_from` on; earlier days keep theirs.

    Fields not in `changes` keep their value in force on that day. A second change for
    the same day replaces the first (both are audited).
    """
    # The record's lock before the exercise's, as every write on a patient's data takes them.
    patient_ensure_writable(
        patient_id=AssignedExercise.objects.filter(pk=assigned_exercise.pk)
        .values_list("phase__assignment__patient_id", flat=True)
        .first()
    )
    exercise = (
        AssignedExercise.objects.select_for_update()
        .select_related("phase__assignment__patient")
        .get(pk=assigned_exercise.pk)
    )
    assignment = exercise.phase.assignment
    today = today or assignment.patient.local_today()
    if effective_from < today:
        raise ValidationError(
            {"effective_from": "Dosage can change from today on; past days keep theirs."}
        )
    if effective_from < assignment.start_date:
        raise ValidationError({"effective_from": "This is before the program starts."})
    if assignment.ended_on is not None and effective_from >= assignment.ended_on:
        raise ValidationError({"effective_from": "The program has ended by then."})
    versions = list(exercise.dosage_versions.order_by("effective_from"))
    current = [v for v in versions if v.effective_from <= effective_from][-1]
    values = current.dosage_dict()
    values.update({name: changes[name] for name in Dosage.DOSAGE_FIELDS if name in changes})
    values["notes"] = values["notes"] or ""
    if errors := dosage_errors(values):
        raise ValidationError(errors)
    before = current.dosage_dict()
    version, _ = DosageVersion.objects.update_or_create(
        assigned_exercise=exercise,
        effective_from=effective_from,
        defaults={**values, "created_by": by},
    )
    _audit(
        actor=by.user,
        action=AuditEvent.Action.UPDATE,
        object_type="dosage",
        object_id=exercise.pk,
        patient_id=assignment.patient_id,
        changes={
            "effective_from": effective_from.isoformat(),
            **{
                name: {"from": before[name], "to": values[name]}
                for name in Dosage.DOSAGE_FIELDS
                if before[name] != values[name]
            },
        },
        context=context,
    )
    return version


# --------------------------------------------------------------------------- exercise logs

LOG_FIELDS = (
    "sets_done",
    "reps_done",
    "hold_seconds_done",
    "duration_minutes_done",
    "pain_during",
    "difficulty",
    "stopped_for_pain",
    "notes",
)


def _log_values(data: Mapping[str, Any]) -> dict[str, Any]:
    """The body with defaults applied: absent, null and the default are the same thing."""
    values = {name: data.get(name) for name in LOG_FIELDS}
    values["stopped_for_pain"] = bool(values["stopped_for_pain"])
    values["notes"] = values["notes"] or ""
    return values


def _same_or_conflict(
    *, log_id: UUID, patient: Patient, exercise_id: object, day: object, values: dict[str, Any]
) -> ExerciseLog:
    existing: ExerciseLog = ExerciseLog.objects.select_related("assigned_exercise").get(pk=log_id)
    same = (
        existing.patient_id == patient.pk
        and existing.assigned_exercise_id == exercise_id
        and existing.date == day
        and all(getattr(existing, name) == value for name, value in values.items())
    )
    if not same:
        raise ConflictError(
            gettext("An exercise log with this id exists with different content."),
            code="id_reused",
            extra={"existing_id": str(log_id)},
        )
    return existing


def exercise_log_create(
    *,
    patient: Patient,
    assigned_exercise: AssignedExercise,
    day: date,
    data: Mapping[str, Any],
    log_id: UUID | None = None,
    today: date | None = None,
    context: AuditContext | None = None,
) -> tuple[ExerciseLog, bool]:
    """Store one session; returns (log, created).

    Retry-safe by the app's id: the primary key decides, not a lookup first, so two copies
    of one upload racing each other store one row. The same id with the same body answers
    the stored log (created False); with a different body, 409 naming it.
    """
    values = _log_values(data)
    exercise_id = assigned_exercise.pk
    try:
        _validate_log(
            patient=patient,
            assigned_exercise=assigned_exercise,
            day=day,
            values=values,
            today=today,
        )
    except ValidationError:
        # A late retry of a log accepted earlier (its date may have left the window since)
        # still answers with what was stored.
        if log_id is not None and ExerciseLog.objects.filter(pk=log_id).exists():
            log = _same_or_conflict(
                log_id=log_id, patient=patient, exercise_id=exercise_id, day=day, values=values
            )
            return log, False
        raise
    # A retry (the same id again) inserts nothing rather than failing the primary key:
    # a unique violation would put the patient's values in the database server's log.
    log = ExerciseLog(
        id=log_id or uuid.uuid4(),
        patient=patient,
        assigned_exercise=assigned_exercise,
        date=day,
        **values,
    )
    with transaction.atomic():
        created = insert_unless_conflict(log)
        if created:
            _audit(
                actor=patient.user,
                action=AuditEvent.Action.CREATE,
                object_type="exercise_log",
                object_id=log.pk,
                patient_id=patient.pk,
                context=context,
            )
    if not created:
        log = _same_or_conflict(
            log_id=log.pk, patient=patient, exercise_id=exercise_id, day=day, values=values
        )
        return log, False
    return log, True


# The amount done is counted in the unit of the dosage in force that day.
DONE_FIELD_BY_UNIT = {
    "reps": ("reps_done", gettext_lazy("reps")),
    "hold_seconds": ("hold_seconds_done", gettext_lazy("hold seconds")),
    "duration_minutes": ("duration_minutes_done", gettext_lazy("minutes")),
}


def _validate_log(
    *,
    patient: Patient,
    assigned_exercise: AssignedExercise,
    day: date,
    values: Mapping[str, Any],
    today: date | None,
) -> None:
    today = today or patient.local_today()
    if day > today:
        raise ValidationError({"date": gettext("This date is in the future for you.")})
    if day < today - timedelta(days=LOG_PAST_DAYS):
        raise ValidationError(
            {"date": gettext("Logs can be at most %(days)s days old.") % {"days": LOG_PAST_DAYS}}
        )
    assignment = assigned_exercise.phase.assignment
    if assignment.patient_id != patient.pk:
        raise ValidationError({"exercise": gettext("Unknown exercise.")})
    if day < assignment.start_date or (
        assignment.ended_on is not None and day >= assignment.ended_on
    ):
        raise ValidationError({"date": gettext("Your program does not cover this date.")})
    # Only what was prescribed that day can be logged for it: an exercise of another phase
    # would count as a session of a phase the patient was not in (adherence, progression).
    program = selectors.assignments_between([patient.pk], start=day, end=day).get(patient.pk, [])
    plan = next((selectors.plan_of(a) for a in program if a.pk == assignment.pk), None)
    phase = plan.phase_on(day) if plan is not None else None
    exercise_plan = next(
        (e for e in (phase.exercises if phase else ()) if e.id == assigned_exercise.pk), None
    )
    dosage = exercise_plan.dosage_on(day) if exercise_plan is not None else None
    if dosage is None:
        raise ValidationError(
            {"exercise": gettext("This exercise is not in your plan on this date.")}
        )
    unit = next(name for name in DONE_FIELD_BY_UNIT if getattr(dosage, name) is not None)
    done_field, unit_name = DONE_FIELD_BY_UNIT[unit]
    errors = {
        field: gettext("This exercise is counted in %(unit)s, not %(other)s.")
        % {"unit": unit_name, "other": name}
        for other, (field, name) in DONE_FIELD_BY_UNIT.items()
        if other != unit and values.get(field) is not None
    }
    if values.get(done_field) is None:
        errors[done_field] = gettext("This exercise is counted in %(unit)s: send %(field)s.") % {
            "unit": unit_name,
            "field": done_field,
        }
    if errors:
        raise ValidationError(errors)


# --------------------------------------------------------------------------- progression


def progression_proposals_generate(
    *, on: date, daily_pain: Mapping[UUID, Mapping[date, int]]
) -> int:
    """Propose the next phase where the rule holds on `on`; returns how many were created.

    `daily_pain`: per patient, their daily-log pain (0-10 NRS) by local date, covering at
    least the 15 days before `on`. Only patients in it are considered (programs cannot read
    the daily logs: the caller, in `rehab`, feeds them). `on` is the patients' local today;
    call once per group of patients sharing a local date. Idempotent and safe to run twice
    at once: one pending proposal per assignment and phase is a database constraint.
    """
    patient_ids = list(daily_pain)
    if not patient_ids:
        return 0
    window_start = on - timedelta(days=rules.WEEK)
    assignments = selectors.assignments_between(patient_ids, start=on, end=on)
    logs = selectors.session_logs_between(
        patient_ids, start=window_start, end=on - timedelta(days=1)
    )
    blocking: set[tuple[UUID, UUID]] = set()
    cool_off = timezone.now() - timedelta(days=DECLINE_COOL_OFF_DAYS)
    for assignment_id, phase_id, status, decided_at in ProgressionProposal.objects.filter(
        assignment__patient_id__in=patient_ids
    ).values_list("assignment_id", "from_phase_id", "status", "decided_at"):
        if status != ProgressionProposal.Status.DECLINED or decided_at > cool_off:
            blocking.add((assignment_id, phase_id))

    created = 0
    for patient_id, patient_assignments in assignments.items():
        for assignment in patient_assignments:
            plan = selectors.plan_of(assignment)
            check = rules.progression_check(
                plan=plan, on=on, logs=logs.get(patient_id, []), daily_pain=daily_pain[patient_id]
            )
            if not check.ready or check.from_phase is None or check.to_phase is None:
                continue
            if (assignment.pk, check.from_phase.id) in blocking:
                continue
            proposal = ProgressionProposal(
                assignment=assignment,
                from_phase_id=check.from_phase.id,
                to_phase_id=check.to_phase.id,
                evaluated_on=on,
                basis=check.basis,
            )
            with transaction.atomic():
                # Another run may have created it first: nothing inserted, nothing failed
                # (a unique violation would log the basis in the database server's log).
                if not insert_unless_conflict(proposal):
                    continue
                _audit(
                    actor=None,
                    action=AuditEvent.Action.CREATE,
                    object_type="progression_proposal",
                    object_id=proposal.pk,
                    patient_id=patient_id,
                    changes={"basis": check.basis},
                )
            created += 1
    return created


def _locked_proposal(proposal: ProgressionProposal) -> ProgressionProposal:
    locked: ProgressionProposal = (
        ProgressionProposal.objects.select_for_update(of=("self",))
        .select_related("assignment__patient", "from_phase", "to_phase")
        .get(pk=proposal.pk)
    )
    return locked


@transaction.atomic
def proposal_accept(
    *,
    proposal: ProgressionProposal,
    by: Clinician,
    on: date | None = None,
    note: str = "",
    today: date | None = None,
    context: AuditContext | None = None,
) -> ProgressionProposal:
    """Move the assignment to the proposed phase from `on` (default the patient's today).

    Accepting an accepted proposal again returns it unchanged (a retried request).
    """
    patient_ensure_writable(patient_id=proposal.assignment.patient_id)
    proposal = _locked_proposal(proposal)
    if proposal.status == ProgressionProposal.Status.ACCEPTED:
        return proposal
    if proposal.status != ProgressionProposal.Status.PENDING:
        raise ConflictError("This proposal was already declined.", code="already_decided")
    assignment = proposal.assignment
    ProgramAssignment.objects.select_for_update().filter(pk=assignment.pk).first()
    today = today or assignment.patient.local_today()
    on = on or today
    from_phase = AssignedPhase.objects.get(pk=proposal.from_phase_id)
    to_phase = AssignedPhase.objects.get(pk=proposal.to_phase_id)
    if assignment.ended_on is not None:
        raise ApplicationError("This program has ended.", code="program_ended")
    if to_phase.started_on is not None or from_phase.started_on is None:
        raise ConflictError(
            "The program has moved on since this proposal was made.", code="stale_proposal"
        )
    if on < today:
        raise ValidationError({"on": "The next phase can start today at the earliest."})
    if on <= from_phase.started_on:
        raise ValidationError({"on": "The next phase must start after the current one."})
    if on > today + timedelta(days=MOVE_AHEAD_DAYS):
        raise ValidationError({"on": f"At most {MOVE_AHEAD_DAYS} days ahead."})
    to_phase.started_on = on
    to_phase.save(update_fields=["started_on"])
    proposal.status = ProgressionProposal.Status.ACCEPTED
    proposal.effective_from = on
    proposal.decided_by = by
    proposal.decided_at = timezone.now()
    proposal.note = note
    proposal.save(update_fields=["status", "effective_from", "decided_by", "decided_at", "note"])
    _audit(
        actor=by.user,
        action=AuditEvent.Action.UPDATE,
        object_type="progression_proposal",
        object_id=proposal.pk,
        patient_id=assignment.patient_id,
        changes={"status": "accepted", "effective_from": on.isoformat(), "note": note},
        context=context,
    )
    return proposal


@transaction.atomic
def proposal_decline(
    *,
    proposal: ProgressionProposal,
    by: Clinician,
    note: str = "",
    context: AuditContext | None = None,
) -> ProgressionProposal:
    """The patient stays in their phase. Declining again returns it unchanged."""
    patient_ensure_writable(patient_id=proposal.assignment.patient_id)
    proposal = _locked_proposal(proposal)
    if proposal.status == ProgressionProposal.Status.DECLINED:
        return proposal
    if proposal.status != ProgressionProposal.Status.PENDING:
        raise ConflictError("This proposal was already accepted.", code="already_decided")
    proposal.status = ProgressionProposal.Status.DECLINED
    proposal.decided_by = by
    proposal.decided_at = timezone.now()
    proposal.note = note
    proposal.save(update_fields=["status", "decided_by", "decided_at", "note"])
    _audit(
        actor=by.user,
        action=AuditEvent.Action.UPDATE,
        object_type="progression_proposal",
        object_id=proposal.pk,
        patient_id=proposal.assignment.patient_id,
        changes={"status": "declined", "note": note},
        context=context,
    )
    return proposal
