from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from knox.auth import TokenAuthentication


class BearerTokenAuthentication(TokenAuthentication):
    """django-rest-knox tokens (stored hashed, expiring, per device) sent as `Bearer`."""


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "patients.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: object) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer"}
