"""The template editor and one patient's plan (docs/dashboard.md § Template editor).

Server-rendered forms over the programs services: a template is rewritten in one
`template_update` call (patients already on it keep their own copy), a patient's dosage
changes from their today on through `dosage_change` (earlier days keep theirs), and the
previews show a phase or a patient's day as the app shows it, education cards included.
Scoped as every dashboard page: another clinic's template or patient is a 404.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_http_methods, require_POST

from config.audit import audit_context
from config.exceptions import ApplicationError, ConflictError, refusal_mark
from dashboard.forms_editor import (
    AssignTemplateForm,
    DosageRowFormSet,
    PainCeilingForm,
    TemplateEditor,
)
from dashboard.views import _base_context, _clinician, clinician_required
from patients.models import AuditEvent, Patient, User
from patients.restriction import RecordRestricted
from patients.selectors import patient_get
from patients.services import audit_record
from programs import selectors, services
from programs.education import selectors as education_selectors
from programs.education.render import render_markdown
from programs.models import Dosage, Language, ProgramTemplate

# --------------------------------------------------------------------------- previews


@dataclass
class PreviewItem:
    name: str
    instructions: str
    category: str
    dosage: Any  # anything with the Dosage fields
    due: bool | None = None
    done: bool | None = None


@dataclass
class PreviewCard:
    title: str
    html: str
    language: str
    read: bool | None = None


@dataclass
class Preview:
    """What the app shows a patient for one day of a program."""

    program: str
    language: str
    phase_name: str = ""
    phase_position: int | None = None
    phase_count: int | None = None
    week: int | None = None
    length_weeks: int | None = None
    goals: str = ""
    items: list[PreviewItem] = field(default_factory=list)
    cards: list[PreviewCard] = field(default_factory=list)


def _preview_language(request: HttpRequest) -> str:
    asked = request.GET.get("language")
    if asked in Language.values:
        return str(asked)
    return education_selectors.language_of(translation.get_language())


def _card_html(markdown: str) -> str:
    # render_markdown's output is sanitised against an allow-list (programs/education/render.py).
    return mark_safe(render_markdown(markdown))  # noqa: S308


def template_preview(*, template: ProgramTemplate, position: int, language: str) -> Preview:
    phases = list(template.phases.all())
    phase = next((p for p in phases if p.position == position), None)
    if phase is None:
        raise Http404("No such phase.")
    preview = Preview(
        program=template.name,
        language=language,
        phase_name=phase.name,
        phase_position=phase.position,
        phase_count=len(phases),
        week=1,
        length_weeks=phase.length_weeks,
        goals=phase.goals,
    )
    for item in phase.exercises.all():
        library = item.exercise
        preview.items.append(
            PreviewItem(library.name, library.instructions, library.get_category_display(), item)
        )
    cards = list(phase.education_cards.all())
    latest = education_selectors.latest_versions([c.pk for c in cards])
    for card in cards:
        if latest.get(card.pk):
            version = education_selectors.version_in(latest[card.pk], language)
            preview.cards.append(
                PreviewCard(version.title, _card_html(version.body), version.language)
            )
    return preview


def patient_preview(*, user: User, patient: Patient, language: str) -> Preview:
    today = patient.local_today()
    plan = selectors.day_plan(patient=patient, day=today)
    preview = Preview(program=plan.assignment.name if plan.assignment else "", language=language)
    if plan.phase is not None:
        preview.phase_name = plan.phase.name
        preview.phase_position = plan.phase.position
        preview.phase_count = plan.assignment.phases.count() if plan.assignment else None
        preview.week = plan.week
        preview.length_weeks = plan.phase.length_weeks
        preview.goals = plan.phase.goals
    for item in plan.items:
        exercise = item.exercise
        preview.items.append(
            PreviewItem(
                exercise.name,
                exercise.instructions,
                exercise.get_category_display(),
                item.dosage,
                due=item.due,
                done=item.done,
            )
        )
    for card in education_selectors.patient_cards(user=user, patient=patient, language=language):
        preview.cards.append(
            PreviewCard(
                card.version.title,
                _card_html(card.version.body),
                card.version.language,
                read=card.read_at is not None,
            )
        )
    return preview


# --------------------------------------------------------------------------- templates


@require_http_methods(["GET"])
@clinician_required
def template_list_view(request: HttpRequest) -> HttpResponse:
    templates = selectors.template_list(user=_clinician(request))
    return render(
        request,
        "dashboard/editor/template_list.html",
        {**_base_context(request), "templates": templates},
    )


def _editor_page(
    request: HttpRequest,
    editor: TemplateEditor,
    *,
    template: ProgramTemplate | None,
    status: int = 200,
) -> HttpResponse:
    return render(
        request,
        "dashboard/editor/template_edit.html",
        {**_base_context(request), "editor": editor, "template": template},
        status=status,
    )


def _save_template(
    request: HttpRequest, editor: TemplateEditor, template: ProgramTemplate | None
) -> ProgramTemplate | None:
    """Create or rewrite the template from a valid editor; None (and the editor's errors
    set) when the service refuses it. Nothing is saved on refusal."""
    clinician = _clinician(request).clinician
    data = editor.cleaned()
    try:
        with transaction.atomic():
            if template is None:
                return services.template_create(
                    clinician=clinician, context=audit_context(request), **data
                )
            return services.template_update(
                template=template, clinician=clinician, context=audit_context(request), **data
            )
    except ConflictError as exc:
        editor.header.add_error("name", exc.message)
    except ValidationError as exc:
        editor.errors = [str(message) for message in exc.messages]
    except ApplicationError as exc:
        editor.errors = [exc.message]
    return None


@require_http_methods(["GET", "POST"])
@clinician_required
def template_new_view(request: HttpRequest) -> HttpResponse:
    user = _clinician(request)
    if request.method != "POST":
        return _editor_page(request, TemplateEditor(user=user), template=None)
    editor = TemplateEditor(user=user, data=request.POST)
    if editor.is_valid() and (saved := _save_template(request, editor, None)) is not None:
        messages.success(request, f"Created the template “{saved.name}”.")
        return redirect("dashboard:template-edit", saved.pk)
    return _editor_page(request, editor, template=None, status=400)


@require_http_methods(["GET", "POST"])
@clinician_required
def template_edit_view(request: HttpRequest, template_id: UUID) -> HttpResponse:
    user = _clinician(request)
    template = selectors.template_get(user=user, template_id=template_id)  # 404 elsewhere
    if template.clinic_id is None:
        # Seeded templates are shared by every clinic: shown, and copied to be changed.
        if request.method == "POST":
            return render(request, "dashboard/403.html", _base_context(request), status=403)
        return render(
            request,
            "dashboard/editor/template_seeded.html",
            {**_base_context(request), "template": template},
        )
    if request.method != "POST":
        return _editor_page(
            request, TemplateEditor(user=user, template=template), template=template
        )
    editor = TemplateEditor(user=user, data=request.POST, template=template)
    if editor.is_valid() and (saved := _save_template(request, editor, template)) is not None:
        messages.success(
            request,
            f"Saved “{saved.name}”. Patients already on it keep their own program; "
            "it applies to patients given it from now on.",
        )
        return redirect("dashboard:template-edit", saved.pk)
    return _editor_page(request, editor, template=template, status=400)


@require_POST
@clinician_required
def template_copy_view(request: HttpRequest, template_id: UUID) -> HttpResponse:
    user = _clinician(request)
    template = selectors.template_get(user=user, template_id=template_id)
    name = f"{template.name} (our copy)"
    try:
        copy = services.template_copy(
            template=template, clinician=user.clinician, name=name, context=audit_context(request)
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("dashboard:template-edit", template.pk)
    messages.success(request, f"Copied to “{copy.name}”: edit it below.")
    return redirect("dashboard:template-edit", copy.pk)


@require_http_methods(["GET"])
@clinician_required
def template_preview_view(request: HttpRequest, template_id: UUID) -> HttpResponse:
    template = selectors.template_get(user=_clinician(request), template_id=template_id)
    try:
        position = int(request.GET.get("phase") or 1)
    except ValueError:
        position = 1
    language = _preview_language(request)
    preview = template_preview(template=template, position=position, language=language)
    return render(
        request,
        "dashboard/editor/template_preview.html",
        {
            **_base_context(request),
            "template": template,
            "preview": preview,
            "phases": list(template.phases.all()),
            "languages": Language.choices,
        },
    )


# --------------------------------------------------------------------------- one patient


def _audit_plan_read(request: HttpRequest, patient: Patient, object_id: object) -> None:
    audit_record(
        actor=_clinician(request),
        action=AuditEvent.Action.READ,
        object_type="program_assignment",
        object_id=object_id,
        patient=patient,
        context=audit_context(request),
    )


def _plan_rows(view: selectors.ProgramView) -> list[tuple[Any, Any]]:
    """(phase view, exercise view) in page order, the order the formset's rows follow."""
    return [(phase, exercise) for phase in view.phases for exercise in phase.exercises]


def _dosage_initial(spec: Any) -> dict[str, Any]:
    return {name: getattr(spec, name) for name in Dosage.DOSAGE_FIELDS} if spec else {}


@require_http_methods(["GET", "POST"])
@clinician_required
def patient_plan_view(request: HttpRequest, patient_id: UUID) -> HttpResponse:
    user = _clinician(request)
    patient = patient_get(user=user, patient_id=patient_id)  # 404 outside the clinic
    today = patient.local_today()
    view = selectors.program_for_patient(patient=patient, on=today)
    active = view if view is not None and view.assignment.ended_on is None else None
    rows = _plan_rows(active) if active else []
    initial = [_dosage_initial(exercise.dosage) for _, exercise in rows]
    assign_form = AssignTemplateForm(user=user)
    formset = DosageRowFormSet(initial=initial, prefix="dosage")
    ceiling = PainCeilingForm(
        initial={"pain_ceiling": active.assignment.pain_ceiling} if active else None,
        prefix="ceiling",
    )
    errors: list[str] = []
    status = 200
    # A write refused because the record is restricted (docs/data-rights.md § Restriction):
    # the page says why, answered 409 and audited as denied like the API's.
    refused: RecordRestricted | None = None
    if request.method == "POST" and request.POST.get("action") == "assign":
        assign_form = AssignTemplateForm(request.POST, user=user)
        if assign_form.is_valid():
            try:
                services.assignment_create(
                    patient=patient,
                    template=assign_form.cleaned_data["template"],
                    by=user.clinician,
                    context=audit_context(request),
                )
            except ValidationError as exc:
                errors = [str(m) for m in exc.messages]
            except RecordRestricted as exc:
                errors, refused = [exc.message], exc
            except ApplicationError as exc:
                errors = [exc.message]
            else:
                messages.success(request, f"{patient.full_name} now has the program.")
                return redirect("dashboard:patient-plan", patient.pk)
        status = 400
    elif request.method == "POST":
        if active is None:
            raise Http404("No active program.")
        formset = DosageRowFormSet(request.POST, initial=initial, prefix="dosage")
        ceiling = PainCeilingForm(
            request.POST, initial={"pain_ceiling": active.assignment.pain_ceiling}, prefix="ceiling"
        )
        if formset.is_valid() and ceiling.is_valid() and len(formset.forms) == len(rows):
            try:
                changed = _save_plan(
                    request,
                    active=active,
                    rows=rows,
                    formset=formset,
                    ceiling=ceiling,
                    errors=errors,
                )
            except RecordRestricted as exc:
                changed, refused = None, exc
                errors.append(exc.message)
            if changed is not None:
                if changed:
                    messages.success(
                        request,
                        f"Saved {changed} change{'s' if changed != 1 else ''} from "
                        f"{_effective_from(active, today):%d %b %Y}; earlier days keep theirs.",
                    )
                else:
                    messages.success(request, "Nothing changed.")
                return redirect("dashboard:patient-plan", patient.pk)
        elif len(formset.forms) != len(rows):
            errors.append("The program changed while you were editing it: reload the page.")
        status = 400
    _audit_plan_read(request, patient, active.assignment.pk if active else "")
    if refused is not None:
        status = refused.status_code
    response = render(
        request,
        "dashboard/editor/patient_plan.html",
        {
            **_base_context(request),
            "patient": patient,
            "today": today,
            "program": active,
            "ended": view if active is None else None,
            "rows": [
                (phase, exercise, form)
                for (phase, exercise), form in zip(rows, formset.forms, strict=False)
            ],
            "formset": formset,
            "ceiling": ceiling,
            "assign_form": assign_form,
            "errors": errors,
            "effective_from": _effective_from(active, today) if active else today,
        },
        status=status,
    )
    if refused is not None:
        refusal_mark(response, refused)
    return response


def _effective_from(view: selectors.ProgramView, today: Any) -> Any:
    # A program booked to start later changes from its first day.
    return max(today, view.assignment.start_date)


class _Refused(Exception):
    pass


def _save_plan(
    request: HttpRequest,
    *,
    active: selectors.ProgramView,
    rows: list[tuple[Any, Any]],
    formset: Any,
    ceiling: PainCeilingForm,
    errors: list[str],
) -> int | None:
    """Apply every changed row and the ceiling together; None (nothing saved) if the
    service refuses any of them."""
    clinician = _clinician(request).clinician
    today = active.assignment.patient.local_today()
    changed = 0
    try:
        with transaction.atomic():
            for (_, exercise), form in zip(rows, formset.forms, strict=True):
                if not form.has_changed():
                    continue
                try:
                    services.dosage_change(
                        assigned_exercise=exercise.exercise,
                        by=clinician,
                        effective_from=_effective_from(active, today),
                        changes={k: form.cleaned_data.get(k) for k in Dosage.DOSAGE_FIELDS},
                        context=audit_context(request),
                    )
                except ValidationError as exc:
                    form.add_error(None, exc.messages)
                    raise _Refused from exc
                changed += 1
            if ceiling.has_changed():
                services.assignment_update(
                    assignment=active.assignment,
                    by=clinician,
                    pain_ceiling=ceiling.cleaned_data["pain_ceiling"],
                    context=audit_context(request),
                )
                changed += 1
    except _Refused:
        errors.append("Nothing was saved: correct the rows marked below.")
        return None
    return changed


@require_http_methods(["GET"])
@clinician_required
def patient_preview_view(request: HttpRequest, patient_id: UUID) -> HttpResponse:
    user = _clinician(request)
    patient = patient_get(user=user, patient_id=patient_id)  # 404 outside the clinic
    language = _preview_language(request)
    preview = patient_preview(user=user, patient=patient, language=language)
    _audit_plan_read(request, patient, "preview")
    return render(
        request,
        "dashboard/editor/patient_preview.html",
        {
            **_base_context(request),
            "patient": patient,
            "today": patient.local_today(),
            "preview": preview,
            "languages": Language.choices,
        },
    )
