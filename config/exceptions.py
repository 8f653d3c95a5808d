"""The one place that turns domain errors into HTTP answers (docs/architecture.md)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)


class ApplicationError(Exception):
    """A request that is well-formed but cannot be carried out; answered as 400.

    `extra` is merged into the JSON body so that a client can act on it, e.g.
    `{"existing_id": ...}` on a conflict.
    """

    status_code: int = status.HTTP_400_BAD_REQUEST

    def __init__(self, message: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}


class ConflictError(ApplicationError):
    status_code = status.HTTP_409_CONFLICT


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    if isinstance(exc, ApplicationError):
        return Response({"detail": exc.message, **exc.extra}, status=exc.status_code)

    response = drf_exception_handler(exc, context)
    if response is None:
        # Unexpected: still answer JSON (docs/app-developers.md § Errors: 5xx with a JSON body).
        logger.exception("unhandled error in %s", context.get("view"), exc_info=exc)
        return Response(
            {"detail": "Internal server error. Nothing was saved; please retry."},
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
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


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"detail": "Not found."}, status=status.HTTP_404_NOT_FOUND)
    for prefix, page in _not_found_pages.items():
        if request.path.startswith(prefix):
            return page(request)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse(
            {"detail": "Internal server error. Nothing was saved; please retry."},
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    return defaults.server_error(request)
