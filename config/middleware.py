"""Middleware of the whole site (docs/security.md): what every request and response gets,
whatever view answers it."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any

from csp.middleware import CSPMiddleware
from django.conf import settings
from django.contrib.auth import SESSION_KEY, logout
from django.contrib.messages.middleware import MessageMiddleware
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.urls import Resolver404, resolve
from django.utils import translation
from django.utils.cache import patch_vary_headers
from django.utils.http import http_date
from django.utils.module_loading import import_string
from django.utils.translation import gettext, gettext_noop

from config import audit
from config.i18n import ACTIVATED_ATTRIBUTE, DEFAULT_LANGUAGE, accept_language, activate_for_request
from config.parsers import unstorable_text

logger = logging.getLogger(__name__)


def _error(request: HttpRequest, status: int, message: str, **params: object) -> HttpResponse:
    # The API's JSON error shape under /api/ (config/exceptions.py), plain text elsewhere.
    # This runs before any language is active (no token is read yet): `message` (marked
    # with gettext_noop) is translated into the `Accept-Language` header's language
    # (docs/app-developers.md § Languages). Only this refusal path pays for it.
    header = request.META.get("HTTP_ACCEPT_LANGUAGE")
    language = (accept_language(header) if header else None) or DEFAULT_LANGUAGE
    with translation.override(language):
        detail = gettext(message) % params if params else gettext(message)
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": detail}, status=status)
    else:
        response = HttpResponse(detail, status=status, content_type="text/plain; charset=utf-8")
    patch_vary_headers(response, ("Accept-Language",))
    return response


class RequestContextMiddleware:
    """Give every request its audit context (config/audit.py) once, before any view, and
    echo the request's id in the X-Request-ID response header, so that a client's report
    or a proxy's log line can be matched with the audit trail."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        context = audit.attach(request)
        response = self.get_response(request)
        response.headers[audit.REQUEST_ID_HEADER] = context.request_id
        return response


# Views that take file uploads, by URL name ("namespace:name"), with the largest body each
# may receive; registered by the apps that own them (their AppConfig.ready), since config
# imports no app. The size is read when a request comes, so settings changes apply.
_UPLOAD_LIMITS: dict[str, Callable[[], int]] = {}


def register_upload_limit(view_name: str, limit: Callable[[], int]) -> None:
    _UPLOAD_LIMITS[view_name] = limit


def _upload_limit(request: HttpRequest) -> int | None:
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return None
    limit = _UPLOAD_LIMITS.get(match.view_name)
    return limit() if limit is not None else None


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
            # Only oversized bodies pay for the URL look-up: an upload view's own limit.
            limit = max(limit, _upload_limit(request) or 0)
        if limit is not None and length > limit:
            return _error(
                request,
                413,
                gettext_noop("The request body is larger than %(size)s KB."),
                size=limit // 1024,
            )
        if any(
            unstorable_text(key) or any(unstorable_text(value) for value in values)
            for key, values in request.GET.lists()
        ):
            return _error(
                request, 400, gettext_noop("Query parameters may not contain NUL characters.")
            )
        return self.get_response(request)


class ApiLanguageMiddleware:
    """Answer /api/ in the caller's language (docs/app-developers.md § Languages).

    Activates the `Accept-Language` header's language (English when it names none we
    speak) for the request; the bearer-token authentication then switches to a patient's
    profile language, which wins over the phone's (patients/authentication.py). Django's
    LocaleMiddleware is not used: it would also switch the clinicians' dashboard, and it
    reads session and cookie state the API does not have. The answer varies on the header.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith("/api/"):
            return self.get_response(request)
        header = request.META.get("HTTP_ACCEPT_LANGUAGE")
        language = accept_language(header) if header else None
        # English is what nothing activated means (LANGUAGE_CODE): no activation to pay for.
        if language is not None and language != DEFAULT_LANGUAGE:
            activate_for_request(request, language)
        try:
            response = self.get_response(request)
        finally:
            # The activation is per thread: the next request on it starts from scratch.
            if getattr(request, ACTIVATED_ATTRIBUTE, False):
                translation.deactivate()
        if "Vary" in response:
            patch_vary_headers(response, ("Accept-Language",))
        else:
            response["Vary"] = "Accept-Language"
        return response


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

    # What Django's add_never_cache_headers and patch_cache_control(private=True) write on a
    # response without Cache-Control, as a constant: they parse and rebuild the header
    # three times, ~20-60 us of every request (tests/dashboard/test_hardening.py holds the
    # two to the same headers).
    NO_STORE = "max-age=0, no-cache, no-store, must-revalidate, private"

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not response.has_header("Cache-Control"):
            if not response.has_header("Expires"):
                response.headers["Expires"] = http_date()
            response.headers["Cache-Control"] = self.NO_STORE
        response.headers.setdefault("Permissions-Policy", settings.PERMISSIONS_POLICY)
        return response


_SIGNED_IN = "_signed_in_at"
# Recording the time of every request would write on every request; a minute's precision
# on a 30-minute timeout costs one cache write a minute at most.
_RECORD_EVERY = 60


def record_sign_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """`user_logged_in` receiver (patients/apps.py): when the session began, stored with
    the sign-in itself (no write of its own)."""
    session = getattr(request, "session", None)
    if session is not None:
        session[_SIGNED_IN] = int(time.time())


def _activity_key(session_key: str) -> str:
    # Not the session key itself: whoever reads the cache must not be able to use it.
    return "session-activity:" + hashlib.sha256(session_key.encode()).hexdigest()


class SessionInactivityMiddleware:
    """Sign a dashboard or admin session out after settings.SESSION_INACTIVITY_TIMEOUT
    seconds without a request, and SESSION_COOKIE_AGE seconds after sign-in however busy.
    The API's token clients carry no session and are left alone.

    The last request's time is kept in the cache (Redis), not the session: recording it
    in the session would write the session table once a minute for every open page. When
    the cache is down, sessions are not timed out (logged; as the throttles, failing
    open), and SESSION_COOKIE_AGE still ends them.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        session = getattr(request, "session", None)
        signed_in = session is not None and session.session_key and SESSION_KEY in session
        if signed_in and self._expired(session):
            logout(request)
        return self.get_response(request)

    def _expired(self, session: Any) -> bool:
        now = time.time()
        timeout: int = settings.SESSION_INACTIVITY_TIMEOUT
        signed_in: float | None = session.get(_SIGNED_IN)
        if signed_in is not None and now - signed_in > settings.SESSION_COOKIE_AGE:
            return True
        key = _activity_key(session.session_key)
        try:
            last_seen: float | None = cache.get(key)
            if last_seen is None:
                # Nothing recorded within the timeout (the record expires with it): idle,
                # unless the session began since (its first request records it).
                if signed_in is not None and now - signed_in > timeout:
                    return True
            elif now - last_seen > timeout:
                return True
            if last_seen is None or now - last_seen >= _RECORD_EVERY:
                cache.set(key, now, timeout=timeout + _RECORD_EVERY)
        except Exception:
            logger.warning("session activity cache unavailable; not timing out", exc_info=True)
        return False


# The JSON API: what a browser never renders as a document, and what no page's flash
# messages are for. docs/security.md § Browser hardening.
JSON_API_PREFIX = "/api/v1/"
# The strictest policy, for answers that are data: nothing may load from them and nothing
# may frame them. A constant, where the pages' policy is built per response (a nonce).
JSON_API_CSP = "default-src 'none'; frame-ancestors 'none'"


class PageCSPMiddleware(CSPMiddleware):
    """django-csp's policy for pages (dashboard, admin, the API docs), and a fixed
    `default-src 'none'` one for the JSON API's answers.

    django-csp builds its policy for every response, also for JSON, before it looks at
    its exclusions: ~40 us of the log POST. A JSON answer needs no script or style
    sources, so the strictest constant policy replaces it.
    """

    def process_request(self, request: HttpRequest) -> None:
        if not request.path_info.startswith(JSON_API_PREFIX):
            super().process_request(request)

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if request.path_info.startswith(JSON_API_PREFIX):
            response.headers.setdefault("Content-Security-Policy", JSON_API_CSP)
            return response
        return super().process_response(request, response)


class PageMessageMiddleware(MessageMiddleware):
    """Django's flash messages for pages only. The JSON API shows none, and setting up
    the message storage (cookie and session) cost ~35 us of every API request. Messages
    added during an API request would raise MessageFailure, as without the middleware."""

    def process_request(self, request: HttpRequest) -> None:
        if not request.path_info.startswith(JSON_API_PREFIX):
            super().process_request(request)

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if request.path_info.startswith(JSON_API_PREFIX):
            return response
        result: HttpResponse = super().process_response(request, response)
        return result


def _api_without_session(request: HttpRequest) -> bool:
    return request.path_info.startswith(JSON_API_PREFIX) and (
        settings.SESSION_COOKIE_NAME not in request.COOKIES
    )


class PageMiddleware:
    """The middleware of a browser's session (settings.PAGE_MIDDLEWARE: the session, the
    session's user, its second factor, its inactivity timeout), run in this one's place
    in MIDDLEWARE, in their order (with their `process_view` hooks, should one have any),
    for every request but a JSON API request (/api/v1/) that carries no session cookie.

    Such a request (the app's, signed in with its token) gives them nothing to do: no
    session to load, so no session user, no second factor and no idle timer. A request
    with the session cookie, API or not, runs them all as before. CSRF and every
    site-wide control (security headers, no-store, CSP, the audit of denied requests)
    stay in MIDDLEWARE and run for every request.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        handler: Callable[[HttpRequest], HttpResponse] = get_response
        view_hooks: list[Callable[..., HttpResponse | None]] = []
        for path in reversed(settings.PAGE_MIDDLEWARE):
            instance = import_string(path)(handler)
            if hasattr(instance, "process_view"):
                view_hooks.insert(0, instance.process_view)
            handler = instance
        self.page_handler = handler
        self.view_hooks = view_hooks

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _api_without_session(request):
            return self.get_response(request)
        return self.page_handler(request)

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., HttpResponse],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponse | None:
        if _api_without_session(request):
            return None
        for hook in self.view_hooks:
            response = hook(request, view_func, view_args, view_kwargs)
            if response is not None:
                return response
        return None
