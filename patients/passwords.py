"""Password validators (settings.AUTH_PASSWORD_VALIDATORS), and what a password change does.

Django calls every configured validator's `password_changed` after a user whose password
was set (`set_password`, whoever called it) is saved: `create_clinician --password`, the
admin's password form, registration, a future reset flow. That makes it the one place
where a password change can sign the user out everywhere (docs/security.md).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext


class NotOnlyWhitespaceValidator:
    """Refuse a password of only spaces (or other blanks): long enough for the length
    rule, but the first thing anyone would guess."""

    def validate(self, password: str, user: Any = None) -> None:
        if not password.strip():
            raise ValidationError(
                gettext("This password is only spaces."), code="password_only_whitespace"
            )

    def get_help_text(self) -> str:
        return gettext("Your password can't be only spaces.")


class SignOutEverywhereOnPasswordChange:
    """Not a rule on the password: when it changes, every API token of the user is deleted
    (every device signed out) and an audit event says so.

    Their web sessions need no deleting: Django checks each session against a hash of the
    password on every request, so a session opened before the change ends at its next
    request (the admin keeps the session of someone changing their own password).
    """

    def validate(self, password: str, user: Any = None) -> None:
        return None

    def get_help_text(self) -> str:
        return "Changing the password signs this account out of every device and browser."

    def password_changed(self, password: str, user: Any = None) -> None:
        if user is None or user.pk is None:
            return
        # Imported here: settings name this class, and services import the models.
        from patients.services import auth_sign_out_everywhere

        auth_sign_out_everywhere(user=user, reason="password_changed")
