"""Who acts and from where: the audit context that travels from a view down to the
services instead of the HTTP request (docs/architecture.md § Audit context).

Services write the audit trail, but they know nothing of HTTP: a service called from a
Celery task, a management command or a test has no request, and one that reads
`request.META` is tied to the web process. A view builds one `AuditContext` per request
with `audit_context(request)` and passes it as `context=`; a service without one (a task)
passes None and the event records no address.

This module lives in `config` because every app uses it and `config` imports no app; it
reads the user only through attributes every user object has (`pk`, `is_authenticated`),
and its role only when that costs no query.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings
from django.db.models import Model
from django.http import HttpRequest
from rest_framework.request import Request

from config.django_private import relation_cached

# The header a request id arrives in (from a trusted proxy) and is echoed in.
REQUEST_ID_HEADER = "X-Request-ID"
# What a request id from outside may look like: a proxy's UUID or token, never free text
# that would reach the audit trail and the logs.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# The attribute of the Django request that holds its context (RequestContextMiddleware).
_ATTRIBUTE = "audit_context"


@dataclass(frozen=True, slots=True)
class AuditContext:
    """The facts of one request that an audit event records, beside what the service
    itself knows (the actor it acts for, the patient, the object)."""

    request_id: str
    actor_id: Any = None  # the signed-in user's primary key, None when anonymous
    # "clinician" or "patient"; None for an operator, an anonymous caller, or when the
    # role is not known without a query (a session's user whose role rows were not read).
    actor_role: str | None = None
    ip: str | None = None
    user_agent: str = ""
    method: str = ""
    path: str = ""


def client_ip(request: HttpRequest | Request) -> str | None:
    """The caller's address, as the outermost of our trusted proxies saw it.

    Each of the `TRUSTED_PROXY_COUNT` proxies in front appends the address it saw to
    X-Forwarded-For, so the entry the outermost one added (counting from the right) is the
    last one a client cannot forge; entries left of it are whatever the client sent, and
    trusting them would let anyone dodge the per-client sign-in limit by rotating the
    header. With no proxy (0) the header is ignored. A value that is not an IP address (a
    broken proxy, a forged header) must not reach the `inet` columns either, where it
    would be a 500: the socket's address is used instead.
    """
    trusted: int = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    candidates: list[str] = []
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "") if trusted else ""
    if forwarded:
        entries = [entry.strip() for entry in forwarded.split(",")]
        # Fewer entries than proxies: the outer ones were bypassed or did not append, and
        # the leftmost entry is then the one a trusted proxy added.
        candidates.append(entries[-min(trusted, len(entries))])
    candidates.append(request.META.get("REMOTE_ADDR") or "")
    for candidate in candidates:
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    return None


def request_id(request: HttpRequest) -> str:
    """The id of this request: the proxy's X-Request-ID when settings.TRUST_REQUEST_ID
    says a proxy in front sets it (and it looks like an id), otherwise a new one.

    A client-chosen id is not trusted by default: it would let a caller make its requests
    look like someone else's in the audit trail and the logs.
    """
    if getattr(settings, "TRUST_REQUEST_ID", False):
        given = str(request.META.get("HTTP_X_REQUEST_ID", ""))
        if _REQUEST_ID.fullmatch(given):
            return given
    return uuid.uuid4().hex


def _clean(text: str, limit: int) -> str:
    # PostgreSQL text cannot hold NUL; a header with one must not turn into a 500.
    return text.replace("\x00", "")[:limit]


def _path_without_values(request: HttpRequest) -> str:
    # The query's names, not its values: a caseload search is often a patient's name, and
    # the audit trail keeps what it records for good (docs/security.md § What the audit
    # trail stores).
    query = "&".join(f"{name}=" for name in dict.fromkeys(request.GET.keys()))
    return f"{request.path}?{query}" if query else request.path


def context_from_request(request: HttpRequest) -> AuditContext:
    """The request's facts, without its actor (which DRF only knows once the view has
    authenticated the caller). Built once, by RequestContextMiddleware."""
    return AuditContext(
        request_id=request_id(request),
        ip=client_ip(request),
        user_agent=_clean(request.META.get("HTTP_USER_AGENT", ""), 300),
        method=request.method or "",
        path=_clean(_path_without_values(request), 500),
    )


# The one-to-one rows that give a user a clinical role (patients.models.User.role).
_ROLES = ("clinician", "patient")


def _loaded_role(user: Any) -> str | None:
    """The user's role when their role rows are already loaded (token sign-in loads both),
    else None: an audit context never costs a query."""
    if not isinstance(user, Model) or not all(
        hasattr(type(user), role) and relation_cached(user, role) for role in _ROLES
    ):
        return None
    role: str | None = getattr(user, "role", None)
    return role


def audit_context(request: HttpRequest | Request) -> AuditContext:
    """The audit context of this request, with the caller as authenticated now (a view of
    DRF authenticates inside the view, after every middleware ran).

    The one way views, forms and admin actions build what they pass to services as
    `context=`.
    """
    django_request: HttpRequest = request._request if isinstance(request, Request) else request
    context: AuditContext | None = getattr(django_request, _ATTRIBUTE, None)
    if context is None:
        # A request that did not pass the middleware (RequestFactory in a test, a view
        # called directly): build it now, and keep it for the rest of the request.
        context = context_from_request(django_request)
        setattr(django_request, _ATTRIBUTE, context)
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        if context.actor_id != user.pk:
            context = replace(context, actor_id=user.pk, actor_role=_loaded_role(user))
    elif context.actor_id is not None:
        context = replace(context, actor_id=None, actor_role=None)
    return context


def attach(request: HttpRequest) -> AuditContext:
    """Build the request's context and keep it on the request (RequestContextMiddleware)."""
    context = context_from_request(request)
    setattr(request, _ATTRIBUTE, context)
    return context
