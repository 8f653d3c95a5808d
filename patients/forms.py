"""Sign-in forms of the web pages (the dashboard and the admin site)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from config.audit import audit_context
from patients import throttling
from patients.services import PASSWORD_MAX_LENGTH, audit_sign_in_failed


class ThrottledSignInForm(forms.Form):
    """Mixed into a Django sign-in form: the API's sign-in throttle, and its length limit.

    Every web sign-in page is another door to the same accounts, so failed sign-ins count
    towards the API's limit (10 per client address, or per email from that address, in
    15 minutes), or a password could be guessed through whichever door is not counted. A
    too-long password is refused before it is hashed, and not counted (no such password
    exists to guess).
    """

    throttled_message = "Too many failed sign-ins. Try again in %(minutes)s minute(s)."
    # Which door the audit trail names (patients.services.audit_sign_in_failed).
    audit_door = "web"
    request: Any

    password = forms.CharField(
        label="Password",
        strip=False,
        max_length=PASSWORD_MAX_LENGTH,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def clean(self) -> dict[str, Any]:
        email = (self.cleaned_data.get("username") or "").strip().lower()
        ip = throttling.client_ip(self.request) if self.request is not None else None
        context = audit_context(self.request) if self.request is not None else None
        if email:
            wait = throttling.sign_in_blocked(email=email, ip=ip)
            if wait is not None:
                audit_sign_in_failed(
                    email=email, door=self.audit_door, throttled=True, context=context
                )
                raise ValidationError(
                    self.throttled_message,
                    code="throttled",
                    params={"minutes": max(1, -(-wait // 60))},
                )
        try:
            cleaned = super().clean()
        except ValidationError as exc:
            if exc.code == "invalid_login" and email:
                throttling.sign_in_failed(email=email, ip=ip)
                audit_sign_in_failed(email=email, door=self.audit_door, context=context)
            raise
        return cleaned if cleaned is not None else self.cleaned_data
