"""The one place that turns errors into HTTP answers (docs/architecture.md), in one shape.

Every 4xx and 5xx body under /api/ is an object with (docs/errors.md):

- `code`: a stable, machine-readable name of the error (`invalid`, `not_found`,
  `conflict`, `throttled`, `precondition_failed`, `server_error`, ...);
- `detail`: a sentence for a human;
- `errors`: one entry per problem, `{"field", "code", "message"}`, `field` being the dotted
  path of the field (`safety.fever`) or null for the body as a whole;

plus, for a 400 on bad input, DRF's `{"field": ["message"]}` (docs/app-developers.md;
kept so that clients written against it keep working), and whatever an error adds for the
client to act on (`existing_id` on a conflict).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext, gettext_lazy
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)

# Top-level keys of every error body. A field of one of these names (the invitation `code`
# of registration) is reported in `errors` only, so that the keys keep one type.
RESERVED_KEYS = frozenset({"code", "detail", "errors"})

# `detail` and the messages are in the caller's language (docs/app-developers.md §
# Languages): DRF's and Django's own are translated by them, ours through gettext where they
# are raised; `code` never is.
SERVER_ERROR_DETAIL = gettext_lazy("Internal server error. Nothing was saved; please retry.")


class ApplicationError(Exception):
    """A request that is well-formed but cannot be carried out; answered as 400.

    `code` names the error for a client's code; `extra` is merged into the JSON body so
    that a client can act on it, e.g. `{"existing_id": ...}` on a conflict.
    """

    status_code: int = status.HTTP_400_BAD_REQUEST
    default_code: str = "invalid_request"

    def __init__(
        self, message: str, *, code: str | None = None, extra: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.extra = extra or {}


class ConflictError(ApplicationError):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class PreconditionFailed(ApplicationError):
    """An `If-Match` that names another version than the stored one (RFC 9110 § 13.1.1)."""

    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_code = "precondition_failed"


def refusal_mark(response: HttpResponse, exc: ApplicationError) -> None:
    """Keep the error on its answer, for a middleware that records some refusals (a write
    on a restricted record is audited as denied, docs/security.md § Audit trail)."""
    response.application_error = exc  # type: ignore[attr-defined]


def refusal_of(response: HttpResponse) -> ApplicationError | None:
    """The error an answer was made from (`refusal_mark`), if any."""
    error = getattr(response, "application_error", None)
    return error if isinstance(error, ApplicationError) else None


def error_body(
    *,
    code: str,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    body = {key: value for key, value in (extra or {}).items() if key not in RESERVED_KEYS}
    body.update(code=code, detail=detail, errors=errors or [])
    return body


def _field_errors(detail: Any, path: str | None = None) -> list[dict[str, Any]]:
    """Flatten DRF's nested error detail into one entry per message, with its code."""
    if isinstance(detail, dict):
        found: list[dict[str, Any]] = []
        for key, value in detail.items():
            if key == api_settings.NON_FIELD_ERRORS_KEY:
                found += _field_errors(value, path)
            else:
                found += _field_errors(value, f"{path}.{key}" if path else str(key))
        return found
    if isinstance(detail, list):
        found = []
        for index, item in enumerate(detail):
            if isinstance(item, dict | list):
                # A list of nested objects: the index is part of the path.
                found += _field_errors(item, f"{path}.{index}" if path else str(index))
            else:
                found += _field_errors(item, path)
        return found
    return [
        {
            "field": path,
            "code": getattr(detail, "code", None) or "invalid",
            "message": str(detail),
        }
    ]


def _validation_body(detail: Any) -> dict[str, Any]:
    errors = _field_errors(detail)
    fields = detail if isinstance(detail, dict) else {api_settings.NON_FIELD_ERRORS_KEY: detail}
    invalid = gettext("Invalid input.")
    first = errors[0]["message"] if errors else invalid
    summary = first if len(errors) == 1 and errors[0]["field"] is None else invalid
    return error_body(code="invalid", detail=summary, errors=errors, extra=fields)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    if isinstance(exc, ApplicationError):
        body = error_body(code=exc.code, detail=str(exc.message), extra=exc.extra)
        answer = Response(body, status=exc.status_code)
        refusal_mark(answer, exc)
        return answer

    response = drf_exception_handler(exc, context)
    if response is None:
        # Unexpected: still answer JSON (docs/app-developers.md § Errors: 5xx with a JSON body).
        logger.exception("unhandled error in %s", context.get("view"), exc_info=exc)
        return Response(
            error_body(code="server_error", detail=str(SERVER_ERROR_DETAIL)),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    assert isinstance(exc, exceptions.APIException)
    if isinstance(exc, exceptions.ValidationError):
        response.data = _validation_body(exc.detail)
    else:
        detail = exc.detail
        code = getattr(detail, "code", None) or exc.default_code
        response.data = error_body(code=str(code), detail=str(detail))
    return response


# Django's own 404/500 pages (an unknown URL, an error outside a DRF view) are HTML; under
# /api/ a client must get JSON like everywhere else (docs/app-developers.md § Errors).
def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


NotFoundPage = Callable[[HttpRequest], HttpResponse]

# An app that serves HTML pages registers its own 404 page for its URL prefix, from its
# AppConfig.ready(): config imports no app (docs/architecture.md § Layers).
_not_found_pages: dict[str, NotFoundPage] = {}


def register_not_found_page(prefix: str, page: NotFoundPage) -> None:
    """Answer a 404 under `prefix` (e.g. "/dashboard/") with `page(request)`."""
    _not_found_pages[prefix] = page


def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    return JsonResponse(
        error_body(code="not_found", detail=gettext("Not found.")),
        status=status.HTTP_404_NOT_FOUND,
    )


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _wants_json(request):
        return api_not_found(request)
    for prefix, page in _not_found_pages.items():
        if request.path.startswith(prefix):
            return page(request)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse(
            error_body(code="server_error", detail=str(SERVER_ERROR_DETAIL)),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    return defaults.server_error(request)
