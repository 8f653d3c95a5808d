"""Education cards in the dashboard (docs/dashboard.md § Education cards): the library,
writing a card and editing it (each edit a new version), and one patient's cards with
their read receipts. Scoped as every dashboard page: another clinic's card or patient is
a 404."""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_http_methods

from config.audit import audit_context
from config.exceptions import refusal_mark
from dashboard.forms_editor import CardAssignForm, CardCreateForm, CardTextForm
from dashboard.views import _base_context, _clinician, clinician_required
from patients.models import AuditEvent
from patients.restriction import RecordRestricted
from patients.selectors import patient_get
from patients.services import audit_record
from programs.education import selectors, services
from programs.education.render import render_markdown
from programs.models import Language


def _form_errors(form: CardTextForm | CardAssignForm, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for name, errors in exc.message_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


@require_http_methods(["GET"])
@clinician_required
def card_list_view(request: HttpRequest) -> HttpResponse:
    cards = selectors.card_list(user=_clinician(request))
    return render(
        request,
        "dashboard/education/card_list.html",
        {**_base_context(request), "cards": cards},
    )


@require_http_methods(["GET", "POST"])
@clinician_required
def card_new_view(request: HttpRequest) -> HttpResponse:
    user = _clinician(request)
    form = CardCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            card = services.card_create(
                clinician=user.clinician, context=audit_context(request), **form.cleaned_data
            )
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, "Card created.")
            return redirect("dashboard:education-card", card.pk)
    return render(
        request,
        "dashboard/education/card_new.html",
        {**_base_context(request), "form": form},
        status=400 if form.errors else 200,
    )


@require_http_methods(["GET", "POST"])
@clinician_required
def card_view(request: HttpRequest, card_id: UUID) -> HttpResponse:
    user = _clinician(request)
    item = selectors.library_card_get(user=user, card_id=card_id)  # 404 elsewhere
    editable = item.card.clinic_id == user.clinician.clinic_id
    language = request.GET.get("language")
    language = language if language in Language.values else selectors.DEFAULT_LANGUAGE
    latest = item.versions.get(language)
    form = CardTextForm(
        initial={
            "language": language,
            "title": latest.title if latest else "",
            "body": latest.body if latest else "",
        }
    )
    if request.method == "POST":
        if not editable:
            return render(request, "dashboard/403.html", _base_context(request), status=403)
        form = CardTextForm(request.POST)
        if form.is_valid():
            try:
                version = services.card_version_create(
                    card=item.card,
                    clinician=user.clinician,
                    context=audit_context(request),
                    **form.cleaned_data,
                )
            except ValidationError as exc:
                _form_errors(form, exc)
            else:
                messages.success(
                    request,
                    f"Saved version {version.number} ({version.get_language_display()}). "
                    "Patients see it as unread; their receipts of earlier versions stay.",
                )
                return redirect(
                    f"{request.path}?language={version.language}"  # a choice, not free text
                )
    texts = [
        (version, mark_safe(render_markdown(version.body)))  # noqa: S308 - sanitised
        for version in item.latest_list
    ]
    return render(
        request,
        "dashboard/education/card_detail.html",
        {
            **_base_context(request),
            "item": item,
            "texts": texts,
            "history": selectors.card_history(card=item.card),
            "editable": editable,
            "form": form,
            "languages": Language.choices,
        },
        status=400 if form.errors else 200,
    )


@require_http_methods(["GET", "POST"])
@clinician_required
def patient_education_view(request: HttpRequest, patient_id: UUID) -> HttpResponse:
    user = _clinician(request)
    patient = patient_get(user=user, patient_id=patient_id)  # 404 outside the clinic
    receipts = selectors.patient_receipts(user=user, patient=patient)
    given = [r.assignment.card_id for r in receipts]
    form = CardAssignForm(user=user, exclude=given)
    refused: RecordRestricted | None = None
    if request.method == "POST":
        form = CardAssignForm(request.POST, user=user, exclude=given)
        if form.is_valid():
            try:
                services.card_assign(
                    patient=patient,
                    card=form.cleaned_data["card"],
                    by=user.clinician,
                    context=audit_context(request),
                )
            except ValidationError as exc:
                _form_errors(form, exc)
            except RecordRestricted as exc:
                # Refused, 409 and audited as denied (docs/data-rights.md § Restriction).
                form.add_error(None, exc.message)
                refused = exc
            else:
                messages.success(request, f"Card given to {patient.full_name}.")
                return redirect("dashboard:patient-education", patient.pk)
    audit_record(
        actor=user,
        action=AuditEvent.Action.READ,
        object_type="card_receipts",
        object_id=patient.pk,
        patient=patient,
        context=audit_context(request),
    )
    response = render(
        request,
        "dashboard/education/patient_cards.html",
        {**_base_context(request), "patient": patient, "receipts": receipts, "form": form},
        status=refused.status_code if refused else 400 if form.errors else 200,
    )
    if refused is not None:
        refusal_mark(response, refused)
    return response
