"""The browser-session middleware (settings.PAGE_MIDDLEWARE) is skipped for an API request
without a session cookie (config.middleware.PageMiddleware), and nothing else is: every
security header, the audit of the write and of denied requests stay."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.views import APIView

from patients.models import AuditEvent
from rehab.models import DailyLog
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db

LOGS = "/api/v1/logs/"


@pytest.fixture
def web(clinician) -> Client:
    client = Client()
    client.force_login(clinician.user)
    return client


def _log(patient, **extra):
    return {"date": patient.local_today().isoformat(), "pain": 3, **extra}


def test_a_token_log_post_runs_no_session_middleware_and_keeps_every_control(
    patient, patient_client
):
    response = patient_client.post(LOGS, _log(patient))

    assert response.status_code == 201, response.content
    request = response.wsgi_request
    # Skipped: nothing of a browser session was set up.
    assert not hasattr(request, "session")
    assert "Set-Cookie" not in response
    # Kept: every header of the site-wide controls (docs/security.md).
    assert response["X-Request-ID"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    directives = {d.strip() for d in response["Cache-Control"].split(",")}
    assert {"no-store", "private"} <= directives
    assert "camera=()" in response["Permissions-Policy"]
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response["Vary"] == "Accept-Language"
    # Kept: the write's audit event, with the request's id.
    log = DailyLog.objects.get(patient=patient)
    event = AuditEvent.objects.get(object_id=str(log.pk))
    assert event.actor_id == patient.user_id
    assert event.request_id == response["X-Request-ID"]


def test_a_denied_token_request_is_still_audited(patient, patient_client, clinic, clinician):
    other = PatientFactory.create(clinic=clinic, care_team=[clinician])
    theirs = DailyLog.objects.create(patient=other, date=other.local_today(), pain=4)

    response = patient_client.get(f"{LOGS}{theirs.pk}/")

    assert response.status_code == 404
    assert not hasattr(response.wsgi_request, "session")
    assert AuditEvent.objects.filter(
        actor=patient.user, action=AuditEvent.Action.DENIED, object_id=str(theirs.pk)
    ).exists()


def test_an_api_request_with_a_session_cookie_runs_the_session_middleware(web, clinician):
    # The devices endpoint also takes the dashboard's session (and its CSRF check).
    response = web.get("/api/v1/me/devices/")

    assert response.status_code == 200, response.content
    assert response.wsgi_request.user == clinician.user
    assert response.wsgi_request.user.is_verified() in (True, False)  # django-otp ran


def test_a_page_runs_the_session_middleware(web, clinician):
    response = web.get("/dashboard/")

    assert response.status_code == 200
    assert response.wsgi_request.session.session_key
    assert response.wsgi_request.user == clinician.user


def test_the_admin_middleware_its_silenced_checks_look_for_runs_for_every_page():
    # admin.E408 and admin.E410 look for these in MIDDLEWARE; they run from PAGE_MIDDLEWARE.
    assert "config.middleware.PageMiddleware" in settings.MIDDLEWARE
    assert settings.PAGE_MIDDLEWARE.index(
        "django.contrib.sessions.middleware.SessionMiddleware"
    ) < settings.PAGE_MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware")
    assert "django.middleware.csrf.CsrfViewMiddleware" in settings.MIDDLEWARE
    assert set(settings.SILENCED_SYSTEM_CHECKS) == {"admin.E408", "admin.E410"}


def _views(patterns: list[Any], prefix: str = "") -> list[tuple[str, object]]:
    found = []
    for entry in patterns:
        if isinstance(entry, URLResolver):
            found += _views(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            found.append((prefix + str(entry.pattern), entry.callback))
    return found


def test_every_api_view_is_a_drf_view_exempt_from_djangos_csrf_check():
    # What makes the session middleware safe to skip: an API request without a session is
    # never a CSRF risk, and no API view relies on Django's CSRF middleware (DRF checks
    # CSRF itself for a session-authenticated request).
    api = [(route, view) for route, view in _views(get_resolver().url_patterns)]
    api = [(route, view) for route, view in api if route.startswith("api/v1/")]
    assert api
    for route, view in api:
        cls = getattr(view, "cls", None)
        assert cls is not None, route
        assert issubclass(cls, APIView), route
        assert getattr(view, "csrf_exempt", False), route
