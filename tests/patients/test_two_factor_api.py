"""API sign-in with a second factor (docs/app-developers.md, sign-in: the `otp` field)."""

from __future__ import annotations

import pytest
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from patients.models import AuditEvent, AuthToken, SignInFailure
from tests.factories import PASSWORD
from tests.otp import code_for, enrol, next_step

pytestmark = pytest.mark.django_db

LOGIN = "/api/v1/auth/login/"
EMAIL = "alice@riverside.example"


def _login(client, otp: str | None = None, *, password: str = PASSWORD, ip: str = "10.0.0.1"):
    body = {"email": EMAIL, "password": password}
    if otp is not None:
        body["otp"] = otp
    return client.post(LOGIN, body, REMOTE_ADDR=ip)


@pytest.fixture
def enrolled(clinician, frozen) -> tuple[TOTPDevice, list[str]]:
    device, codes = enrol(clinician.user)
    next_step(frozen)  # the code enrolment used is spent
    return device, codes


def test_it_signs_in_a_clinician_without_two_factor_with_the_password_alone(anon_client, clinician):
    response = _login(anon_client)
    assert response.status_code == 200
    assert response.json()["role"] == "clinician"


def test_it_asks_an_enrolled_clinician_for_a_code(anon_client, clinician, enrolled):
    response = _login(anon_client)
    assert response.status_code == 401
    assert response.json()["code"] == "mfa_required"
    assert response.json()["detail"]
    assert response["WWW-Authenticate"] == "Bearer"
    assert not AuthToken.objects.filter(user=clinician.user).exists()
    # Asking is how a client learns a code is needed: not a failed sign-in.
    assert not SignInFailure.objects.exists()


def test_it_signs_in_with_the_code_of_the_app(anon_client, clinician, enrolled):
    device, _ = enrolled
    response = _login(anon_client, code_for(device))
    assert response.status_code == 200
    assert response.json()["token"]
    event = AuditEvent.objects.get(actor=clinician.user, action="login")
    assert event.changes == {"second_factor": "totp"}


def test_it_refuses_a_wrong_code_and_counts_it_as_a_failed_sign_in(
    anon_client, clinician, enrolled
):
    device, _ = enrolled
    wrong = f"{(int(code_for(device)) + 1) % 1_000_000:06d}"
    response = _login(anon_client, wrong)
    assert response.status_code == 401
    assert response.json()["code"] == "mfa_required"
    assert SignInFailure.objects.filter(email=EMAIL).count() == 1
    assert not AuthToken.objects.filter(user=clinician.user).exists()


def test_it_refuses_a_code_used_already(anon_client, clinician, enrolled):
    device, _ = enrolled
    code = code_for(device)
    assert _login(anon_client, code).status_code == 200
    replay = _login(anon_client, code, ip="10.0.0.2")
    assert replay.status_code == 401
    assert replay.json()["code"] == "mfa_required"


def test_it_accepts_each_recovery_code_once(anon_client, clinician, enrolled, frozen):
    _, codes = enrolled
    # Typed as people type them: upper case, in two groups.
    typed = f"{codes[0][:4].upper()} {codes[0][4:].upper()}"
    first = _login(anon_client, typed)
    assert first.status_code == 200
    assert AuditEvent.objects.get(actor=clinician.user, action="login").changes == {
        "second_factor": "recovery_code"
    }
    again = _login(anon_client, codes[0])
    assert again.status_code == 401
    assert again.json()["code"] == "mfa_required"
    assert StaticToken.objects.filter(device__user=clinician.user).count() == len(codes) - 1
    # The others still work, once django-otp's wait after a failure (1 s, doubling with
    # each further one) has passed.
    next_step(frozen)
    assert _login(anon_client, codes[1]).status_code == 200


def test_it_refuses_a_right_code_with_a_wrong_password(anon_client, clinician, enrolled):
    device, _ = enrolled
    response = _login(anon_client, code_for(device), password="not-the-password")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"  # not mfa_required: no hint
    # The code was not even looked at, so it is still good.
    assert _login(anon_client, code_for(device)).status_code == 200


def test_it_blocks_sign_in_after_ten_wrong_codes(anon_client, clinician, enrolled):
    device, _ = enrolled
    for _ in range(10):
        assert _login(anon_client, "wrongcod").status_code == 401
    # The right password and a right code: refused until the window passes.
    blocked = _login(anon_client, code_for(device))
    assert blocked.status_code == 429


def test_it_ignores_a_code_sent_for_an_account_without_two_factor(anon_client, patient):
    response = anon_client.post(
        LOGIN,
        {"email": "pat@example.com", "password": PASSWORD, "otp": "123456"},
        REMOTE_ADDR="10.0.0.1",
    )
    assert response.status_code == 200
    assert response.json()["role"] == "patient"


def test_it_refuses_an_overlong_code_as_bad_input(anon_client, clinician, enrolled):
    response = _login(anon_client, "1" * 65)
    assert response.status_code == 400
    assert "otp" in response.json()
    assert not SignInFailure.objects.exists()


def test_it_uses_only_the_clinicians_own_devices(
    anon_client, clinician, other_clinic_clinician, enrolled
):
    # Bob has two-factor sign-in too: Alice's codes mean nothing for him.
    _, codes = enrolled
    _, other_codes = enrol(other_clinic_clinician.user)
    response = anon_client.post(
        LOGIN,
        {"email": "bob@hilltop.example", "password": PASSWORD, "otp": codes[0]},
        REMOTE_ADDR="10.0.0.3",
    )
    assert response.status_code == 401
    assert response.json()["code"] == "mfa_required"
    # Alice's code was not spent on Bob's sign-in.
    assert _login(anon_client, codes[0]).status_code == 200
    assert StaticToken.objects.filter(device__user=other_clinic_clinician.user).count() == len(
        other_codes
    )


def test_the_schema_documents_the_otp_field_and_mfa_required(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    login = schema["paths"]["/api/v1/auth/login/"]["post"]
    request_schema = schema["components"]["schemas"]["LoginRequest"]
    assert "otp" in request_schema["properties"]
    assert "otp" not in request_schema.get("required", [])
    assert "mfa_required" in login["responses"]["401"]["description"]
