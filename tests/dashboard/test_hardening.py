"""Browser hardening of every page and API answer (issue 18 item 8, docs/security.md):
no caching of patient data, a Content-Security-Policy on the dashboard and the admin,
Referrer-Policy and Permissions-Policy, and sessions signed out when left idle."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.test import Client, override_settings
from django.utils import timezone

from patients.models import Clinician, Patient
from rehab.models import DailyLog
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_web(db) -> Client:
    client = Client()
    client.force_login(
        UserFactory.create(email="ops@example.com", is_staff=True, is_superuser=True)
    )
    return client


def _with_a_log(patient: Patient) -> Patient:
    DailyLog.objects.create(patient=patient, date=timezone.localdate() - timedelta(days=1), pain=5)
    return patient


def _no_store(response) -> bool:
    directives = {d.strip() for d in response.get("Cache-Control", "").split(",")}
    return {"no-store", "private"} <= directives


def test_it_forbids_caching_of_patient_data_in_the_api(patient_client, clinician_client, patient):
    for client, path in (
        (patient_client, "/api/v1/me/"),
        (patient_client, "/api/v1/logs/"),
        (clinician_client, "/api/v1/clinician/patients/"),
        (clinician_client, f"/api/v1/clinician/patients/{patient.pk}/"),
        (clinician_client, f"/api/v1/clinician/patients/{patient.pk}/logs/"),
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        assert _no_store(response), (path, response.get("Cache-Control"))


def test_it_forbids_caching_of_error_answers_and_sign_ins(anon_client, patient):
    response = anon_client.post(
        "/api/v1/auth/login/", {"email": patient.email, "password": "wrong"}
    )
    assert response.status_code == 401
    assert _no_store(response)


def test_it_forbids_caching_of_dashboard_and_admin_pages(web, admin_web, patient):
    _with_a_log(patient)
    for client, path in (
        (web, "/dashboard/"),
        (web, f"/dashboard/patients/{patient.pk}/"),
        (web, "/dashboard/alerts/"),
        (admin_web, "/admin/"),
        (admin_web, "/admin/patients/patient/"),
        (admin_web, f"/admin/patients/patient/{patient.pk}/change/"),
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        assert _no_store(response), (path, response.get("Cache-Control"))


def test_it_keeps_the_public_safety_rules_cacheable(patient_client):
    response = patient_client.get("/api/v1/safety/rules/")
    assert response["Cache-Control"] == "public, max-age=300"


def _csp(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {
        name: values
        for name, *values in (part.split() for part in header.split(";") if part.strip())
    }


@pytest.mark.parametrize("path", ["/dashboard/", "/dashboard/login/", "/admin/", "/admin/login/"])
def test_it_sends_a_content_security_policy_without_inline_scripts(web, admin_web, path):
    client = admin_web if path.startswith("/admin/") else web
    response = (Client() if path.endswith("login/") else client).get(path)
    assert response.status_code == 200
    policy = _csp(response)
    assert policy["default-src"] == ["'self'"]
    assert "'unsafe-inline'" not in policy["script-src"]
    assert "'unsafe-eval'" not in policy["script-src"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]


def test_it_runs_the_charts_inline_script_with_the_pages_nonce(web, patient):
    _with_a_log(patient)
    response = web.get(f"/dashboard/patients/{patient.pk}/")
    nonces = [v for v in _csp(response)["script-src"] if v.startswith("'nonce-")]
    assert len(nonces) == 1
    nonce = nonces[0].removeprefix("'nonce-").removesuffix("'")
    html = response.content.decode()
    # Inline scripts need the nonce; a file from our own origin (push.js) is allowed by
    # 'self' and carries none, so that pages stay byte-identical (tests/dashboard/test_scope).
    scripts = [tag for tag in re.findall(r"<script\b[^>]*>", html) if " src=" not in tag]
    assert scripts, "the chart has no script"
    for tag in scripts:
        assert f'nonce="{nonce}"' in tag, tag


def test_it_gives_the_json_api_the_strictest_fixed_policy(patient_client, patient):
    for response in (
        patient_client.get("/api/v1/me/"),
        patient_client.post("/api/v1/logs/", {"date": "not a date", "pain": 5}),
        patient_client.get("/api/v1/no-such-thing/"),
    ):
        assert _csp(response) == {"default-src": ["'none'"], "frame-ancestors": ["'none'"]}
        assert response["X-Frame-Options"] == "DENY"
        assert _no_store(response)


def test_it_keeps_the_full_policy_on_the_api_documentation(anon_client):
    response = anon_client.get("/api/docs/")
    assert response.status_code == 200
    policy = _csp(response)
    assert policy["default-src"] == ["'self'"]
    assert "'unsafe-inline'" not in policy["script-src"]


def test_it_sets_up_flash_messages_for_pages_only(web, patient_client):
    # The JSON API shows no flash messages: no message storage is set up for it.
    api = patient_client.get("/api/v1/me/")
    assert api.status_code == 200
    assert not hasattr(api.wsgi_request, "_messages")
    page = web.get("/dashboard/")
    assert page.status_code == 200
    assert hasattr(page.wsgi_request, "_messages")


@pytest.mark.parametrize("path", ["/dashboard/", "/api/v1/me/", "/admin/login/"])
def test_it_sends_referrer_and_permissions_policies(web, patient_client, path):
    client = patient_client if path.startswith("/api/") else web
    response = client.get(path)
    assert response["Referrer-Policy"] == "same-origin"
    policy = response["Permissions-Policy"]
    for feature in ("camera=()", "microphone=()", "geolocation=()", "payment=()"):
        assert feature in policy


# --------------------------------------------------------------------------- inactivity


def _signed_in(client: Client, path: str) -> bool:
    response = client.get(path)
    return response.status_code == 200


@pytest.mark.parametrize("path", ["/dashboard/", "/admin/"])
def test_it_signs_an_idle_session_out_after_30_minutes_by_default(clinician: Clinician, path):
    user = clinician.user
    user.is_staff = user.is_superuser = True
    user.save()
    client = Client()
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        client.force_login(user)
        assert _signed_in(client, path)
        clock.shift(timedelta(minutes=29))
        assert _signed_in(client, path)  # activity: the half hour starts again
        clock.shift(timedelta(minutes=29))
        assert _signed_in(client, path)
        clock.shift(timedelta(minutes=31))
        response = client.get(path)
        assert response.status_code == 302
        assert "login" in response["Location"]
        assert "_auth_user_id" not in client.session
        # Signing in again is all it takes.
        client.force_login(user)
        assert _signed_in(client, path)


@override_settings(SESSION_INACTIVITY_TIMEOUT=120)
def test_it_takes_the_inactivity_timeout_from_settings(web):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        assert _signed_in(web, "/dashboard/")
        clock.shift(timedelta(seconds=121))
        assert not _signed_in(web, "/dashboard/")


@override_settings(SESSION_COOKIE_AGE=3600)
def test_it_still_ends_a_busy_session_at_the_session_age(web):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        for _ in range(5):
            assert _signed_in(web, "/dashboard/")
            clock.shift(timedelta(minutes=14))
        clock.shift(timedelta(minutes=5))  # 75 minutes in, never idle for long
        assert not _signed_in(web, "/dashboard/")


def test_it_leaves_token_clients_alone(patient_client):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        assert patient_client.get("/api/v1/me/").status_code == 200
        clock.shift(timedelta(hours=2))
        assert patient_client.get("/api/v1/me/").status_code == 200


def test_it_keeps_sessions_working_when_the_activity_cache_is_down(web, monkeypatch, caplog):
    from config import middleware

    class DownCache:
        def get(self, *args: object, **kwargs: object) -> None:
            raise ConnectionError("redis is down")

    monkeypatch.setattr(middleware, "cache", DownCache())
    assert _signed_in(web, "/dashboard/")
    assert "session activity cache unavailable" in caplog.text


def test_it_writes_the_no_store_headers_django_would():
    from django.http import HttpResponse
    from django.utils.cache import add_never_cache_headers, patch_cache_control

    from config.middleware import BrowserHardeningMiddleware

    with time_machine.travel(timezone.now(), tick=False):
        django_s = HttpResponse()
        add_never_cache_headers(django_s)
        patch_cache_control(django_s, private=True)
        ours = BrowserHardeningMiddleware(lambda request: HttpResponse())(None)  # type: ignore[arg-type]
    assert ours["Cache-Control"] == django_s["Cache-Control"]
    assert ours["Expires"] == django_s["Expires"]
