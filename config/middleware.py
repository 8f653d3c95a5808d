"""Middleware of the whole site (docs/security.md): what every request and response gets,
whatever view answers it."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import SESSION_KEY, logout
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import add_never_cache_headers, patch_cache_control

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


class BrowserHardeningMiddleware:
    """`Cache-Control: no-store` on every response whose view did not choose its own
    caching, and `Permissions-Policy` (settings.PERMISSIONS_POLICY).

    Patient data must not stay in a browser's or a proxy's cache (a shared clinic
    computer, the back button after signing out). Stated for every response rather than
    for a list of views, so that a new view is covered without anyone remembering; a
    response that may be cached says so itself (the public safety rules, static files).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not response.has_header("Cache-Control"):
            add_never_cache_headers(response)
            patch_cache_control(response, private=True)
        response.headers.setdefault("Permissions-Policy", settings.PERMISSIONS_POLICY)
        return response


_LAST_SEEN = "_inactivity_last_seen"
_SIGNED_IN = "_inactivity_signed_in"
# Recording the time of every request would write the session on every request; a minute's
# precision on a 30-minute timeout costs one write a minute at most.
_RECORD_EVERY = 60


class SessionInactivityMiddleware:
    """Sign a session out after settings.SESSION_INACTIVITY_TIMEOUT seconds without a
    request, and after SESSION_COOKIE_AGE seconds in all (which the sliding record of
    activity would otherwise extend). Only sessions that carry a signed-in user: the API's
    token clients have none."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        session = getattr(request, "session", None)
        if session is not None and SESSION_KEY in session:
            now = int(time.time())
            last_seen = session.get(_LAST_SEEN, now)
            signed_in = session.get(_SIGNED_IN, now)
            if (
                now - last_seen > settings.SESSION_INACTIVITY_TIMEOUT
                or now - signed_in > settings.SESSION_COOKIE_AGE
            ):
                logout(request)
            else:
                session.setdefault(_SIGNED_IN, now)
                if _LAST_SEEN not in session or now - last_seen >= _RECORD_EVERY:
                    session[_LAST_SEEN] = now
        return self.get_response(request)
