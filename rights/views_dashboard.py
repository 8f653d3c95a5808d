"""The clinic admin's erasure decisions in the dashboard (docs/data-rights.md); the same
service as `POST /api/v1/clinician/erasure-requests/{id}/decide/`."""

from __future__ import annotations

from uuid import UUID

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from config.audit import audit_context
from config.exceptions import ApplicationError
from dashboard.views import clinician_required, page_context
from patients.models import Clinician, User
from patients.services import audit_reads
from rights import erasure
from rights.models import ErasureRequest


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")])
    note = forms.CharField(max_length=2000, required=False, widget=forms.Textarea)


def _admin(request: HttpRequest) -> Clinician | None:
    user = request.user
    assert isinstance(user, User)
    clinician = user.clinician
    return clinician if clinician.role == Clinician.Role.CLINIC_ADMIN else None


@clinician_required
def erasure_requests_view(request: HttpRequest) -> HttpResponse:
    admin = _admin(request)
    if admin is None:
        return render(request, "dashboard/403.html", page_context(request), status=403)
    requests = list(
        ErasureRequest.objects.visible_to(admin.user)
        .select_related("patient")
        .order_by("-requested_at")[:200]
    )
    audit_reads(
        actor=admin.user,
        object_type="erasure_request_list",
        patient_ids=(r.patient_id for r in requests),
        context=audit_context(request),
    )
    return render(
        request,
        "rights/erasure_requests.html",
        {**page_context(request), "requests": requests, "form": DecisionForm()},
    )


@require_POST
@clinician_required
def erasure_request_decide_view(request: HttpRequest, request_id: UUID) -> HttpResponse:
    admin = _admin(request)
    if admin is None:
        return render(request, "dashboard/403.html", page_context(request), status=403)
    found = get_object_or_404(ErasureRequest.objects.visible_to(admin.user), pk=request_id)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose approve or reject.")
    else:
        try:
            decided = erasure.erasure_request_decide(
                clinician=admin,
                erasure_request=found,
                approve=form.cleaned_data["decision"] == "approve",
                note=form.cleaned_data["note"],
                context=audit_context(request),
            )
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Request {decided.get_status_display().lower()}.")
    return HttpResponseRedirect(reverse("rights-dashboard:erasure-requests"))
