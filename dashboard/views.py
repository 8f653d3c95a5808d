"""The clinician web dashboard: server-rendered pages over the same selectors and services
as the API, scoped the same way (another clinic's patient or alert is a 404).

Every page that shows patient data writes audit events, as the API does: one event per
patient page view, one per patient listed on the caseload and the alert inbox, and one per
alert read or changed.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import LoginView, redirect_to_login
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_POST

from config.audit import audit_context
from config.exceptions import ApplicationError
from config.pagination import CountedPaginator
from config.replica import replica_reads
from dashboard import charts, selectors
from dashboard.forms import (
    AcknowledgeForm,
    AlertFilterForm,
    CaseloadFilterForm,
    ChartRangeForm,
    ClinicianLoginForm,
    ResolveForm,
)
from dashboard.sections import PatientPage, patient_sections, resolve_dispositions
from notifications import selectors as notification_selectors
from patients import two_factor
from patients.consent import consent_state_list
from patients.models import AuditEvent, User
from patients.selectors import patient_get
from patients.services import audit_reads, audit_record
from rehab import progress
from rehab.models import Alert
from rehab.selectors import alerts as alert_selectors
from rehab.selectors.logs import figures_of, progress_get
from rehab.services import alerts as alert_services

PAGE_SIZE = 25
DEFAULT_CHART_DAYS = 90

View = Callable[..., HttpResponse]


def _clinician(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


def clinician_signed_in(view: View) -> View:
    """Anonymous: to the login page and back. Signed in but not a clinician (a patient, an
    operator from the admin): 403, since who they are is no secret to themselves.

    Only the second-factor pages use this alone; every other page is `clinician_required`.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not hasattr(user, "clinician"):
            return render(request, "dashboard/403.html", status=403)
        return view(request, *args, **kwargs)

    return wrapper


def second_factor_due(request: HttpRequest) -> str | None:
    """The page a signed-in clinician must pass before any other (docs/security.md §
    Two-factor sign-in): the code of their app when they have set one up (whatever their
    clinic requires), the set-up when their clinic requires it and they have not; None
    when this session may go on."""
    user: Any = request.user
    if user.is_verified():
        return None
    state = two_factor.second_factor_state(user=_clinician(request))
    if state.enrolled:
        return "dashboard:two-factor-verify"
    if state.required:
        return "dashboard:two-factor-setup"
    return None


def clinician_required(view: View) -> View:
    """`clinician_signed_in`, and past the second factor: a password alone opens nothing
    else for a clinician who has set one up, or whose clinic requires it."""

    @clinician_signed_in
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        due = second_factor_due(request)
        if due is not None:
            # Back to this page afterwards, as after the password (a GET only: a form
            # posted before the second factor is not replayed).
            return redirect(f"{reverse(due)}?{urlencode({'next': request.get_full_path()})}")
        return view(request, *args, **kwargs)

    return wrapper


def _base_context(request: HttpRequest) -> dict[str, Any]:
    return {"open_alert_count": selectors.unresolved_alert_count(user=_clinician(request))}


def page_context(request: HttpRequest) -> dict[str, Any]:
    """The base template's context for a page outside the views above (the 404 page): the
    navigation and sign-out for a signed-in clinician, nothing for anyone else."""
    if (
        request.user.is_authenticated
        and hasattr(request.user, "clinician")
        and second_factor_due(request) is None
    ):
        return _base_context(request)
    return {}


def not_found_page(request: HttpRequest) -> HttpResponse:
    """Any 404 under /dashboard/ (registered with config.exceptions in DashboardConfig.ready).

    Worded so that it does not tell another clinic's patient from no patient; with the base
    context, so that a signed-in clinician keeps the navigation and sign-out.
    """
    return render(request, "dashboard/404.html", page_context(request), status=404)


def _safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


# --------------------------------------------------------------------------- sign-in


class DashboardLoginView(LoginView):
    template_name = "dashboard/login.html"
    authentication_form = ClinicianLoginForm
    redirect_authenticated_user = False

    def form_valid(self, form: ClinicianLoginForm) -> HttpResponse:  # type: ignore[override]
        response = super().form_valid(form)
        audit_record(
            actor=form.get_user(),
            action=AuditEvent.Action.LOGIN,
            object_type="dashboard_session",
            context=audit_context(self.request),
        )
        return response


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        audit_record(
            actor=_clinician(request),
            action=AuditEvent.Action.LOGOUT,
            object_type="dashboard_session",
            context=audit_context(request),
        )
    logout(request)
    messages.success(request, "You have signed out.")
    return redirect("dashboard:login")


# --------------------------------------------------------------------------- caseload


@require_GET
@clinician_required
@replica_reads
def caseload_view(request: HttpRequest) -> HttpResponse:
    user = _clinician(request)
    form = CaseloadFilterForm(request.GET or None)
    data = form.cleaned_data if form.is_valid() else {}
    mcid = {"yes": True, "no": False}.get(data.get("mcid") or "")
    filters = selectors.CaseloadFilters(
        search=(data.get("q") or "").strip(),
        alerts=data.get("alerts") or "",
        mcid=mcid,
        stale=bool(data.get("stale")),
    )
    patients = selectors.dashboard_caseload(user=user, filters=filters)
    # The page's query counts the caseload too (`CountedPaginator`): no COUNT query.
    page = CountedPaginator(patients, PAGE_SIZE).get_page(request.GET.get("page"))
    shown = list(page.object_list)
    # Program figures for the page only: a few set-based queries, whatever its size.
    program = selectors.caseload_program_columns(shown)
    rows = [
        {
            "patient": p,
            "figures": figures_of(p),
            "days_since_log": _days_since(p),
            "program": program[p.pk],
        }
        for p in shown
    ]
    audit_reads(
        actor=user,
        object_type="caseload_row",
        patient_ids=(row["patient"].pk for row in rows),
        context=audit_context(request),
    )
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "dashboard/caseload.html",
        {
            **_base_context(request),
            "form": form,
            "page": page,
            "rows": rows,
            "filtered": any(filters.__dict__.values()),
            "query": query.urlencode(),
            "stale_days": selectors.STALE_DAYS,
        },
    )


def _days_since(patient: Any) -> int | None:
    last, today = getattr(patient, "last_log_date", None), getattr(patient, "local_date", None)
    if last is None or today is None:
        return None
    return int((today - last).days)


# --------------------------------------------------------------------------- patient


@require_GET
@clinician_required
@replica_reads
def patient_view(request: HttpRequest, patient_id: UUID) -> HttpResponse:
    user = _clinician(request)
    patient = patient_get(user=user, patient_id=patient_id)  # 404 outside the clinic
    audit_record(
        actor=user,
        action=AuditEvent.Action.READ,
        object_type="patient_dashboard",
        object_id=patient.pk,
        patient=patient,
        context=audit_context(request),
    )
    range_form = ChartRangeForm(request.GET or None)
    chosen = (range_form.cleaned_data.get("range") if range_form.is_valid() else "") or str(
        DEFAULT_CHART_DAYS
    )
    summary = progress_get(patient=patient)
    logs = summary.series
    today = patient.local_today()
    start, end = selectors.chart_window(
        today=today,
        days=None if chosen == "all" else int(chosen),
        first_log=logs[0]["date"] if logs else None,
    )
    page = PatientPage(
        user=user, patient=patient, today=today, start=start, end=end, path=request.get_full_path()
    )
    sections = patient_sections(page)
    rolling = progress.rolling_means((row["date"], row["pain"]) for row in logs)
    figures = summary.figures
    chart_svg = charts.pain_chart_svg(
        logs=logs,
        rolling=rolling,
        baseline=figures.baseline_pain,
        start=start,
        end=end,
        bands=[band for s in sections for band in s.bands],
        markers=[marker for s in sections for marker in s.markers],
        script_urls=[static("pygaljs/pygal-tooltips.min.js")],
        # django-csp's nonce of this response (config/settings.py CONTENT_SECURITY_POLICY).
        script_nonce=str(request.csp_nonce) if hasattr(request, "csp_nonce") else None,
        title=f"Daily pain and function, {start:%d %b %Y} to {end:%d %b %Y}",
    )
    shown = [row for row in logs if start <= row["date"] <= end]
    return render(
        request,
        "dashboard/patient.html",
        {
            **_base_context(request),
            "patient": patient,
            "figures": figures,
            "mcid_threshold": (
                progress.mcid_threshold(figures.baseline_pain)
                if figures.baseline_pain is not None
                else None
            ),
            "last_log": logs[-1] if logs else None,
            # pygal writes the SVG through an XML serializer, which escapes every text
            # and attribute (band and marker labels included).
            "chart_svg": mark_safe(chart_svg),  # noqa: S308
            "chart_points": len(shown),
            "chart_table": shown,
            "chart_start": start,
            "chart_end": end,
            "range_form": range_form,
            "chosen_range": chosen,
            "sections": sections,
            # Each current consent document of the clinic and the patient's decision on
            # it (docs/data-rights.md § Consent): what the clinician may rely on.
            "consents": consent_state_list(patient=patient),
        },
    )


# --------------------------------------------------------------------------- alerts


@require_GET
@clinician_required
def alert_inbox_view(request: HttpRequest) -> HttpResponse:
    user = _clinician(request)
    form = AlertFilterForm(request.GET or None)
    data = form.cleaned_data if form.is_valid() else {}
    alerts = selectors.inbox_alerts(
        user=user, status=data.get("status") or "", severity=data.get("severity") or ""
    )
    page = Paginator(alerts, PAGE_SIZE).get_page(request.GET.get("page"))
    audit_reads(
        actor=user,
        object_type="alert_list",
        patient_ids=(alert.patient_id for alert in page.object_list),
        context=audit_context(request),
    )
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "dashboard/alerts.html",
        {
            **_base_context(request),
            "form": form,
            "page": page,
            "query": query.urlencode(),
            "next": request.get_full_path(),
            "dispositions": resolve_dispositions(),
        },
    )


def _alert_page(
    request: HttpRequest,
    alert: Alert,
    *,
    acknowledge_form: AcknowledgeForm | None = None,
    resolve_form: ResolveForm | None = None,
    status: int = 200,
) -> HttpResponse:
    return render(
        request,
        "dashboard/alert_detail.html",
        {
            **_base_context(request),
            "alert": alert,
            "stories": alert_selectors.alert_submission_stories(alert),
            "deliveries": notification_selectors.alert_deliveries(alert=alert),
            "follow_ups": notification_selectors.alert_follow_ups(alert=alert),
            "acknowledge_form": acknowledge_form,
            "resolve_form": resolve_form,
            "next": _safe_next(request, reverse("dashboard:alert", args=[alert.pk])),
            "dispositions": resolve_dispositions(),
        },
        status=status,
    )


@require_GET
@clinician_required
def alert_view(request: HttpRequest, alert_id: UUID) -> HttpResponse:
    alert = alert_selectors.alert_get(user=_clinician(request), alert_id=alert_id)
    _audit_alert(request, alert, AuditEvent.Action.READ)
    return _alert_page(request, alert)


def _audit_alert(request: HttpRequest, alert: Alert, action: str, **changes: Any) -> None:
    audit_record(
        actor=_clinician(request),
        action=action,
        object_type="alert",
        object_id=alert.pk,
        patient_id=alert.patient_id,
        changes=changes,
        context=audit_context(request),
    )


@require_POST
@clinician_required
def alert_acknowledge_view(request: HttpRequest, alert_id: UUID) -> HttpResponse:
    user = _clinician(request)
    alert = alert_selectors.alert_get(user=user, alert_id=alert_id)  # 404 outside the clinic
    form = AcknowledgeForm(request.POST)
    if not form.is_valid():
        return _alert_page(request, alert, acknowledge_form=form, status=400)
    try:
        alert = alert_services.alert_acknowledge(
            alert=alert, actor=user, note=form.cleaned_data["note"]
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        _audit_alert(request, alert, AuditEvent.Action.UPDATE, status="acknowledged")
        messages.success(request, f"Acknowledged {alert.rule} for {alert.patient.full_name}.")
    return HttpResponseRedirect(_safe_next(request, reverse("dashboard:alert", args=[alert.pk])))


@require_POST
@clinician_required
def alert_resolve_view(request: HttpRequest, alert_id: UUID) -> HttpResponse:
    user = _clinician(request)
    alert = alert_selectors.alert_get(user=user, alert_id=alert_id)  # 404 outside the clinic
    form = ResolveForm(request.POST)
    if not form.is_valid():
        return _alert_page(request, alert, resolve_form=form, status=400)
    try:
        alert = alert_services.alert_resolve(
            alert=alert,
            actor=user,
            disposition=form.cleaned_data["disposition"],
            note=form.cleaned_data["note"],
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        _audit_alert(
            request,
            alert,
            AuditEvent.Action.UPDATE,
            status="resolved",
            disposition=alert.disposition,
        )
        messages.success(request, f"Resolved {alert.rule} for {alert.patient.full_name}.")
    return HttpResponseRedirect(_safe_next(request, reverse("dashboard:alert", args=[alert.pk])))
