"""Middleware of the whole site (docs/security.md): what every request and response gets,
whatever view answers it."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from config.parsers import unstorable_text


def _error(request: HttpRequest, status: int, detail: str) -> HttpResponse:
    # The API's JSON error shape under /api/ (config/exceptions.py), plain text elsewhere.
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": detail}, status=status)
    return HttpResponse(detail, status=status, content_type="text/plain; charset=utf-8")


class InputGuardMiddleware:
    """Refuse, before any view runs, a body larger than Django reads
    (`DATA_UPLOAD_MAX_MEMORY_SIZE`: 413) and a query parameter holding a NUL (400).

    Django checks the size only when `request.body` is read; DRF streams the body into its
    parser instead, so a body of any size was parsed. A NUL in a query parameter reached
    PostgreSQL, which refuses it: a 500 with the value in the log.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit: int | None = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0  # as Django reads it: no body
        if limit is not None and length > limit:
            return _error(request, 413, f"The request body is larger than {limit // 1024} KB.")
        if any(
            unstorable_text(key) or any(unstorable_text(value) for value in values)
            for key, values in request.GET.lists()
        ):
            return _error(request, 400, "Query parameters may not contain NUL characters.")
        return self.get_response(request)
