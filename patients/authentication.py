from __future__ import annotations

import binascii
from hmac import compare_digest
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from knox.auth import TokenAuthentication
from knox.crypto import hash_token
from knox.models import get_token_model
from knox.settings import CONSTANTS, knox_settings
from rest_framework import exceptions


class BearerTokenAuthentication(TokenAuthentication):
    """django-rest-knox tokens (stored hashed, expiring, per device) sent as `Bearer`.

    Knox's own look-up costs three queries on every request: the token with its user,
    then every other token of that user (to delete the expired ones), and later the
    permission and scoping checks ask the user for its patient and clinician rows, one
    query each. This is the hottest path (every log POST), so the token comes back with
    the user and both role rows in one query, and expired tokens of other devices are
    purged by a beat task (`patients.tasks.purge_expired_tokens_task`) instead.
    Knox still hashes, compares and expires the tokens exactly as it does.
    """

    def authenticate_credentials(self, token: bytes) -> tuple[Any, Any]:
        msg = _("Invalid token.")
        text = token.decode("utf-8")
        candidates = (
            get_token_model()
            .objects.filter(token_key=text[: CONSTANTS.TOKEN_KEY_LENGTH])
            .select_related("user", "user__patient", "user__clinician")
        )
        for auth_token in candidates:
            if auth_token.expiry is not None and auth_token.expiry < timezone.now():
                auth_token.delete()
                continue
            try:
                digest = hash_token(text)
            except (TypeError, binascii.Error) as exc:
                raise exceptions.AuthenticationFailed(msg) from exc
            if compare_digest(digest, auth_token.digest):
                if knox_settings.AUTO_REFRESH and auth_token.expiry:
                    self.renew_token(auth_token)
                return self.validate_user(auth_token)
        raise exceptions.AuthenticationFailed(msg)


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "patients.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: object) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer"}
