"""The dashboard's two-factor pages (docs/security.md § Two-factor sign-in): the second
step of signing in, setting up an authenticator app, recovery codes, turning it off.

Each page acts on the signed-in clinician's own devices only (patients.two_factor takes
the user, and no device is ever named in a URL or a form). Pages that show a secret or
recovery codes are never cached: they are shown once.
"""

from __future__ import annotations

import django_otp
import qrcode
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST
from django_otp.plugins.otp_totp.models import TOTPDevice
from qrcode.image.svg import SvgPathImage
from rest_framework.exceptions import Throttled

from config.audit import audit_context
from config.exceptions import ApplicationError
from dashboard.forms import TwoFactorCodeForm
from dashboard.views import (
    _base_context,
    _clinician,
    _safe_next,
    clinician_required,
    clinician_signed_in,
    second_factor_due,
)
from patients import throttling, two_factor
from patients.models import AuditEvent
from patients.services import audit_record


def _qr_svg(uri: str) -> str:
    # Drawn here, as SVG paths only (no text from the URI in it), so that the secret
    # never leaves the server for an image service.
    image = qrcode.make(uri, image_factory=SvgPathImage, box_size=8, border=2)
    return str(image.to_string(encoding="unicode"))


def _codes_page(request: HttpRequest, codes: list[str], *, next_url: str) -> HttpResponse:
    return render(
        request,
        "dashboard/two_factor_codes.html",
        {**_base_context(request), "codes": codes, "next": next_url},
    )


@require_http_methods(["GET"])
@never_cache
@clinician_required
def two_factor_view(request: HttpRequest) -> HttpResponse:
    user = _clinician(request)
    device = two_factor.totp_device_get(user=user)
    return render(
        request,
        "dashboard/two_factor.html",
        {
            **_base_context(request),
            "device": device,
            "codes_left": two_factor.recovery_codes_left(user=user) if device else 0,
            "required": two_factor.second_factor_state(user=user).required,
            "form": TwoFactorCodeForm(),
        },
    )


@require_http_methods(["GET", "POST"])
@never_cache
@clinician_signed_in
def two_factor_setup_view(request: HttpRequest) -> HttpResponse:
    """Open to a clinician with no device yet, before the gate (a clinic that requires two
    factors sends them here); once set up, the second factor comes first."""
    user = _clinician(request)
    if two_factor.two_factor_enrolled(user=user):
        # Already set up: the gate asks for a code if this session has not given one.
        return redirect("dashboard:two-factor")
    next_url = _safe_next(request, reverse("dashboard:caseload"))
    form = TwoFactorCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            device, codes = two_factor.totp_enrolment_confirm(
                user=user, code=form.cleaned_data["code"], context=audit_context(request)
            )
        except ApplicationError as exc:
            form.add_error("code", exc.message)
        else:
            django_otp.login(request, device)
            return _codes_page(request, codes, next_url=next_url)
    device = two_factor.totp_enrolment_start(user=user)
    return render(
        request,
        "dashboard/two_factor_setup.html",
        {
            "form": form,
            "secret": two_factor.totp_secret(device),
            "uri": device.config_url,
            "qr_svg": mark_safe(_qr_svg(device.config_url)),  # noqa: S308  # paths only
            "required": two_factor.second_factor_state(user=user).required,
            "next": next_url,
        },
        status=400 if form.errors else 200,
    )


@require_http_methods(["GET", "POST"])
@never_cache
@clinician_signed_in
def two_factor_verify_view(request: HttpRequest) -> HttpResponse:
    """The second step of signing in, for a clinician who has set up two factors."""
    next_url = _safe_next(request, reverse("dashboard:caseload"))
    if second_factor_due(request) != "dashboard:two-factor-verify":
        return redirect(next_url)
    user = _clinician(request)
    form = TwoFactorCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            device = two_factor.second_factor_check(
                user=user, code=form.cleaned_data["code"], ip=throttling.client_ip(request)
            )
        except Throttled as exc:
            minutes = max(1, -(-int(getattr(exc, "wait", None) or 60) // 60))
            form.add_error(None, f"Too many failed sign-ins. Try again in {minutes} minute(s).")
        except two_factor.MfaRequired:
            form.add_error("code", "That code is not right, or it has been used already.")
        else:
            django_otp.login(request, device)
            audit_record(
                actor=user,
                action=AuditEvent.Action.LOGIN,
                object_type="dashboard_session",
                changes={"second_factor": two_factor.device_kind(device)},
                context=audit_context(request),
            )
            if not isinstance(device, TOTPDevice):
                left = two_factor.recovery_codes_left(user=user)
                messages.warning(
                    request,
                    f"You signed in with a recovery code; {left} left. Make new ones from "
                    "Two-factor sign-in if you are running out.",
                )
            return redirect(next_url)
    return render(
        request,
        "dashboard/two_factor_verify.html",
        {"form": form, "next": next_url},
        status=400 if form.errors else 200,
    )


@require_POST
@never_cache
@clinician_required
def recovery_codes_view(request: HttpRequest) -> HttpResponse:
    try:
        codes = two_factor.recovery_codes_regenerate(
            user=_clinician(request), context=audit_context(request)
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("dashboard:two-factor")
    return _codes_page(request, codes, next_url=reverse("dashboard:two-factor"))


@require_POST
@clinician_required
def two_factor_disable_view(request: HttpRequest) -> HttpResponse:
    form = TwoFactorCodeForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Enter a current code to turn two-factor sign-in off.")
        return redirect("dashboard:two-factor")
    try:
        two_factor.two_factor_disable(
            user=_clinician(request), code=form.cleaned_data["code"], context=audit_context(request)
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Two-factor sign-in is off. Your recovery codes are gone.")
    return redirect("dashboard:two-factor")
