"""Forms of the clinician web dashboard."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from dashboard.sections import resolve_dispositions
from patients import two_factor
from patients.forms import ThrottledSignInForm
from patients.models import User
from rehab.models import Alert, Severity

NOTE_MAX = 2000


class ClinicianLoginForm(ThrottledSignInForm, AuthenticationForm):  # type: ignore[misc]  # our password field wins, by design
    """Email and password, for clinicians only, under the API's sign-in throttle."""

    audit_door = "dashboard"

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "Email or password is incorrect.",
        "not_clinician": (
            "This sign-in is for clinicians. Patients use the app; operators use the admin site."
        ),
    }

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


class TwoFactorCodeForm(forms.Form):
    """A second-factor code: the 6 digits of an authenticator app, or a recovery code."""

    code = forms.CharField(
        label="Code",
        max_length=two_factor.CODE_MAX_LENGTH,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "spellcheck": "false", "autocapitalize": "off"}
        ),
    )
