"""The admin asks operators for a second factor (patients/admin_site.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client, override_settings
from django_otp.plugins.otp_static.models import StaticToken

from patients.models import SignInFailure, User
from tests.factories import PASSWORD, UserFactory
from tests.otp import code_for, enrol, next_step

pytestmark = pytest.mark.django_db

ADMIN = "/admin/"
ADMIN_LOGIN = "/admin/login/"
BASE_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture
def operator() -> User:
    return UserFactory.create(email="ops@example.com", is_staff=True, is_superuser=True)


def _sign_in(client: Client, code: str | None = None, *, password: str = PASSWORD):
    body = {"username": "ops@example.com", "password": password, "next": ADMIN}
    if code is not None:
        body["otp_token"] = code
    return client.post(ADMIN_LOGIN, body, REMOTE_ADDR="10.0.0.9")


@override_settings(MFA_REQUIRED_ADMIN=True)
def test_it_keeps_an_operator_with_a_password_alone_out_of_the_admin(client, operator):
    refused = _sign_in(client)
    assert refused.status_code == 200
    assert b"Enter the code from your authenticator app, or a recovery code." in refused.content
    assert client.get(ADMIN).status_code == 302
    # A session signed in some other way without the second factor is no better.
    session = Client()
    session.force_login(operator)
    assert session.get(ADMIN)["Location"].startswith(ADMIN_LOGIN)


@override_settings(MFA_REQUIRED_ADMIN=True)
def test_it_lets_the_first_operator_in_with_a_code_from_addstatictoken(client, operator):
    # The bootstrap of README § Two-factor sign-in: django-otp's command prints a code.
    call_command("addstatictoken", "ops@example.com", token="bootstrap1")
    signed_in = _sign_in(client, "bootstrap1")
    assert signed_in.status_code == 302
    assert signed_in["Location"] == ADMIN
    assert client.get(ADMIN).status_code == 200
    # Single use.
    assert not StaticToken.objects.filter(token="bootstrap1").exists()
    assert _sign_in(Client(), "bootstrap1").status_code == 200


@override_settings(MFA_REQUIRED_ADMIN=True)
def test_it_lets_an_operator_in_with_the_code_of_their_app(client, operator, frozen):
    device, _ = enrol(operator)
    next_step(frozen)
    assert _sign_in(client, code_for(device))["Location"] == ADMIN
    assert client.get(ADMIN).status_code == 200


@override_settings(MFA_REQUIRED_ADMIN=True)
def test_it_counts_a_wrong_code_at_the_admin_as_a_failed_sign_in(client, operator, frozen):
    enrol(operator)
    response = _sign_in(client, "wrongcod")
    assert response.status_code == 200
    assert b"That code is not right" in response.content
    assert SignInFailure.objects.filter(email="ops@example.com").count() == 1
    assert client.get(ADMIN).status_code == 302


@override_settings(MFA_REQUIRED_ADMIN=False)
def test_it_lets_an_operator_in_with_a_password_where_not_required(client, operator):
    assert _sign_in(client)["Location"] == ADMIN
    assert client.get(ADMIN).status_code == 200


@override_settings(MFA_REQUIRED_ADMIN=False)
def test_it_asks_an_operator_who_set_up_two_factor_even_where_not_required(
    client, operator, frozen
):
    device, _ = enrol(operator)
    next_step(frozen)
    assert _sign_in(client).status_code == 200
    assert client.get(ADMIN).status_code == 302
    assert _sign_in(client, code_for(device))["Location"] == ADMIN


def _setting(name: str, **env: str) -> str:
    code = (
        "import environ; environ.Env.read_env = classmethod(lambda cls, *a, **k: None); "
        f"import django; django.setup(); from django.conf import settings; "
        f"print(settings.{name})"
    )
    base = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", str(BASE_DIR)),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_SECRET_KEY": "x" * 60,
        "DATABASE_URL": "postgres://x@h/db",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        # What a production start must state (docs/security.md).
        "DJANGO_TRUSTED_PROXY_COUNT": "0",
        "EMAIL_URL": "smtp://localhost:25",
    }
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


def test_two_factor_is_required_by_default_in_production_and_not_for_make_run():
    for name in ("MFA_REQUIRED_DEFAULT", "MFA_REQUIRED_ADMIN"):
        assert _setting(name, DJANGO_DEBUG="false") == "True"
        assert _setting(name, DJANGO_DEBUG="true") == "False"
        assert _setting(name, DJANGO_DEBUG="false", **{name: "false"}) == "False"
