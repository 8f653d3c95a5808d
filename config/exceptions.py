"""The one place that turns domain errors into HTTP answers (STYLE.md)."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
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
        # Unexpected: still answer JSON (api-contract.md: 5xx with a JSON body).
        logger.exception("unhandled error in %s", context.get("view"), exc_info=exc)
        return Response(
            {"detail": "Internal server error. Nothing was saved; please retry."},
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    return response


# Django's own 404/500 pages (an unknown URL, an error outside a DRF view) are HTML; under
# /api/ a client must get JSON like everywhere else (api-contract.md § General).
def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"detail": "Not found."}, status=status.HTTP_404_NOT_FOUND)
    if request.path.startswith("/dashboard/"):
        # Imported here: the dashboard's views import this module.
        from rehab.views.dashboard import page_context

        # Worded so that it does not tell another clinic's patient from no patient; with
        # the base context, so that a signed-in clinician keeps the navigation and sign-out.
        return render(
            request,
            "dashboard/404.html",
            page_context(request),
            status=status.HTTP_404_NOT_FOUND,
        )
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse(
            {"detail": "Internal server error. Nothing was saved; please retry."},
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    return defaults.server_error(request)
