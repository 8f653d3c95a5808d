"""The admin site: Django's, asking operators for a second factor (docs/security.md §
Two-factor sign-in).

With MFA_REQUIRED_ADMIN (on in production) an operator must pass a TOTP or recovery code
at sign-in, and a session that did not is not let in (django-otp's OTPAdminSite). An
operator who has set up a device is asked for it whatever the setting, as on every door.
The first operator gets a single-use code with `manage.py addstatictoken EMAIL`, then adds
an authenticator app under "TOTP devices" (README, § Two-factor sign-in).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django_otp.admin import OTPAdminSite
from django_otp.forms import OTPAuthenticationFormMixin

from patients import throttling, two_factor
from patients.models import User


def operator_two_factor_due(user: Any) -> bool:
    """Whether this signed-in user must pass a second factor before the admin opens."""
    if not isinstance(user, User):
        return False
    return bool(settings.MFA_REQUIRED_ADMIN) or two_factor.two_factor_enrolled(user=user)


class OperatorTwoFactorFormMixin(OTPAuthenticationFormMixin):
    """The admin sign-in form's code field, checked once the password was right.

    django-otp's form makes the operator pick a device from a list first; here the code's
    shape picks it (patients.two_factor.two_factor_verify). A wrong code counts as a failed
    sign-in (patients/throttling.py), as a wrong password does.
    """

    otp_error_messages = {
        **OTPAuthenticationFormMixin.otp_error_messages,
        "token_required": "Enter the code from your authenticator app, or a recovery code.",
        "invalid_token": "That code is not right, or it has been used already.",
    }
    cleaned_data: dict[str, Any]
    request: Any

    def clean_otp(self, user: Any) -> None:
        if user is None or not operator_two_factor_due(user):
            return
        code = self.cleaned_data.get("otp_token") or ""
        if not two_factor.normalise_code(code):
            user.otp_device = None
            raise ValidationError(self.otp_error_messages["token_required"], code="token_required")
        device = two_factor.two_factor_verify(user=user, code=code)
        if device is None:
            user.otp_device = None
            ip = throttling.client_ip(self.request) if self.request is not None else None
            throttling.sign_in_failed(email=user.email, ip=ip)
            raise ValidationError(self.otp_error_messages["invalid_token"], code="invalid_token")
        # django-otp's user_logged_in handler marks the session verified by this device.
        user.otp_device = device

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean()
        self.clean_otp(self.get_user())
        return cleaned


class OperatorAdminSite(OTPAdminSite):
    """`admin.site` (patients/admin_apps.py). Its login form is patients.admin's."""

    login_template = "admin/operator_login.html"

    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)

    def has_permission(self, request: HttpRequest) -> bool:
        if not super(OTPAdminSite, self).has_permission(request):
            return False
        user: Any = request.user
        return bool(user.is_verified()) or not operator_two_factor_due(user)
