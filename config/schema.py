"""The OpenAPI side of the error shape (config/exceptions.py, docs/errors.md).

Every operation documents the errors it can answer, each with the one error schema, so
that a generated client can read `code`, `errors` and what an error adds (`existing_id`).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import permissions, serializers

# Answered by any operation, whatever it declares.
_ALWAYS = {"500": "Unexpected server failure; nothing was saved. Retry later."}


class FieldErrorSerializer(serializers.Serializer[Any]):
    field = serializers.CharField(
        allow_null=True,
        help_text="Dotted path of the field (`safety.fever`); null for the body as a whole.",
    )
    code = serializers.CharField(
        help_text="Machine-readable: `required`, `invalid`, `max_value`, `unknown_field`, ..."
    )
    message = serializers.CharField()


class ErrorSerializer(serializers.Serializer[Any]):
    """Every 4xx and 5xx answer. A 400 on bad input also carries DRF's
    `{"field": ["message"]}` for each field; some errors add keys a client can act on."""

    code = serializers.CharField(
        help_text=(
            "Machine-readable and stable: `invalid`, `not_authenticated`, "
            "`authentication_failed`, `permission_denied`, `not_found`, `conflict`, "
            "`precondition_failed`, `throttled`, `server_error`, ..."
        )
    )
    detail = serializers.CharField(help_text="For a human.")
    # DRF pops declared fields off the class, so this does not shadow `Serializer.errors`.
    errors = FieldErrorSerializer(many=True)  # type: ignore[assignment]


class ConflictErrorSerializer(ErrorSerializer):
    """A 409: the object in the way is `existing_id`."""

    existing_id = serializers.UUIDField(required=False)


def error_response(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


def _needs_permission(view: Any) -> tuple[bool, bool]:
    """(may answer 401, may answer 403) from the view's permission classes."""
    classes = [type(permission) for permission in view.get_permissions()]
    if not classes or all(cls is permissions.AllowAny for cls in classes):
        return False, False
    role_checks = [cls for cls in classes if cls is not permissions.IsAuthenticated]
    return True, bool(role_checks)


class ErrorsAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema, adding the error answers each operation can give."""

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation: dict[str, Any] | None = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        responses: dict[str, Any] = operation["responses"]
        possible = dict(_ALWAYS)
        query = any(p.get("in") == "query" for p in operation.get("parameters", []))
        if "requestBody" in operation or query:
            possible["400"] = "Invalid input: `errors` names each field and why."
        may_401, may_403 = _needs_permission(self.view)
        if may_401:
            possible["401"] = "Missing, invalid or expired token."
        if may_403:
            possible["403"] = "The caller's role may not use this operation."
        if "{" in self.path:
            possible["404"] = "Not found, or outside the caller's scope."
        if self._throttled():
            possible["429"] = "Too many requests; `Retry-After` says when to retry."
        for code, description in possible.items():
            responses.setdefault(code, {"description": description})
        for code, response in responses.items():
            if code[0] in "45" and "content" not in response:
                # Declared without a body (or added above): it is the error shape.
                shape = ConflictErrorSerializer if code == "409" else ErrorSerializer
                typed = self._get_response_for_code(shape, code)
                response["content"] = typed["content"]
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def _throttled(self) -> bool:
        try:
            return bool(self.view.get_throttles())
        except Exception:  # noqa: BLE001 - a view whose throttles need a real request
            return bool(getattr(self.view, "throttle_classes", None))
