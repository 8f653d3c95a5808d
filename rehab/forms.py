"""Forms of the clinician web dashboard."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from patients import throttling
from patients.models import User
from patients.services import PASSWORD_MAX_LENGTH
from rehab.models import Alert, Severity
from rehab.views.dashboard_sections import resolve_dispositions

NOTE_MAX = 2000


class ClinicianLoginForm(AuthenticationForm):
    """Email and password, for clinicians only, under the API's sign-in throttle.

    The dashboard is a second door to the same accounts: failed sign-ins here count
    towards the same limit as the API's (10 per email or client in 15 minutes), or a
    password could be guessed through whichever door is not counted.
    """

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "Email or password is incorrect.",
        "not_clinician": (
            "This sign-in is for clinicians. Patients use the app; operators use the admin site."
        ),
        "throttled": "Too many failed sign-ins. Try again in %(minutes)s minute(s).",
    }
    # As the API's login: a too-long password is refused before it is hashed (and not
    # counted as a failed sign-in).
    password = forms.CharField(
        label="Password",
        strip=False,
        max_length=PASSWORD_MAX_LENGTH,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def clean(self) -> dict[str, Any]:
        email = (self.cleaned_data.get("username") or "").strip().lower()
        ip = throttling.client_ip(self.request) if self.request is not None else None
        if email:
            wait = throttling.sign_in_blocked(email=email, ip=ip)
            if wait is not None:
                raise ValidationError(
                    self.error_messages["throttled"],
                    code="throttled",
                    params={"minutes": max(1, -(-wait // 60))},
                )
        try:
            return super().clean()
        except ValidationError as exc:
            if exc.code == "invalid_login" and email:
                throttling.sign_in_failed(email=email, ip=ip)
            raise

    def confirm_login_allowed(self, user: Any) -> None:
        super().confirm_login_allowed(user)
        if not isinstance(user, User) or not hasattr(user, "clinician"):
            raise ValidationError(self.error_messages["not_clinician"], code="not_clinician")


class AcknowledgeForm(forms.Form):
    note = forms.CharField(
        label="Note (optional)",
        required=False,
        max_length=NOTE_MAX,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class ResolveForm(forms.Form):
    disposition = forms.ChoiceField(
        label="Outcome",
        choices=[("", "Choose…"), *resolve_dispositions()],
        error_messages={"required": "Choose what was done before resolving the alert."},
    )
    note = forms.CharField(
        label="Note (optional)",
        required=False,
        max_length=NOTE_MAX,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class CaseloadFilterForm(forms.Form):
    q = forms.CharField(label="Search", required=False, max_length=100)
    alerts = forms.ChoiceField(
        label="Open alerts",
        required=False,
        choices=[
            ("", "All patients"),
            ("any", "Any open alert"),
            *((value, f"Open {label.lower()} alert") for value, label in Severity.choices),
        ],
    )
    mcid = forms.ChoiceField(
        label="Meaningful change",
        required=False,
        choices=[("", "Either"), ("yes", "Reached"), ("no", "Not reached")],
    )
    stale = forms.BooleanField(label="No log for 3+ days", required=False)


class AlertFilterForm(forms.Form):
    status = forms.ChoiceField(
        label="Status",
        required=False,
        choices=[("", "Open and acknowledged"), *Alert.Status.choices],
    )
    severity = forms.ChoiceField(
        label="Severity", required=False, choices=[("", "Any"), *Severity.choices]
    )


CHART_RANGES = (("30", "30 days"), ("90", "90 days"), ("180", "6 months"), ("365", "1 year"))


class ChartRangeForm(forms.Form):
    range = forms.ChoiceField(
        label="Chart period", required=False, choices=[*CHART_RANGES, ("all", "All logs")]
    )
