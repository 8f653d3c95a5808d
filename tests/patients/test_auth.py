from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from patients.models import AuditEvent, AuthToken, Patient
from tests.factories import PASSWORD
from tests.patients.hashing import hashed_lengths

pytestmark = pytest.mark.django_db

LOGIN = "/api/v1/auth/login/"
LOGOUT = "/api/v1/auth/logout/"
ME_PATIENT_DETAIL = "/api/v1/clinician/patients/{}/"


def _login(client: APIClient, email: str, password: str = PASSWORD, ip: str = "10.0.0.1"):
    return client.post(LOGIN, {"email": email, "password": password}, REMOTE_ADDR=ip)


def test_it_signs_in_a_patient(anon_client, patient):
    response = _login(anon_client, "pat@example.com")
    assert response.status_code == 200
    body = response.json()
    assert body["role"] == "patient"
    assert body["token"]
    assert body["expires_at"]


def test_it_signs_in_a_clinician_with_any_email_case(anon_client, clinician):
    response = _login(anon_client, "ALICE@Riverside.example")
    assert response.status_code == 200
    assert response.json()["role"] == "clinician"


def test_it_stores_only_a_hash_of_the_token(anon_client, patient):
    from knox.crypto import hash_token

    token = _login(anon_client, "pat@example.com").json()["token"]
    stored = AuthToken.objects.get(user=patient.user)
    assert stored.digest == hash_token(token)
    # The whole row as the database holds it: the token is in no column.
    row = AuthToken.objects.filter(pk=stored.pk).values().get()
    assert set(row) == {field.attname for field in AuthToken._meta.concrete_fields}
    assert not [name for name, value in row.items() if token in str(value)]


def test_it_rejects_a_wrong_password_with_401(anon_client, patient):
    response = _login(anon_client, "pat@example.com", "wrong-password")
    assert response.status_code == 401
    assert not AuthToken.objects.exists()


def test_it_rejects_an_unknown_email_with_401(anon_client, db):
    assert _login(anon_client, "nobody@example.com").status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [({"password": "x"}, "email"), ({"email": "a@b.example"}, "password"), ({}, "email")],
)
def test_it_rejects_missing_fields_with_400(anon_client, db, body, field):
    response = anon_client.post(LOGIN, body)
    assert response.status_code == 400
    assert field in response.json()


def _long_email(length: int) -> str:
    # A valid address (Django's validator allows up to 320 characters) longer than the
    # 254 the email columns hold.
    domain = "@" + ".".join(["d" * 60] * 3) + ".example"
    return "a" * (length - len(domain)) + domain


@pytest.mark.parametrize("length", [255, 300, 320])
def test_it_rejects_an_email_longer_than_254_characters_with_400(anon_client, patient, length):
    from patients.models import SignInFailure

    email = _long_email(length)
    assert len(email) == length
    response = _login(anon_client, email, "bad")
    assert response.status_code == 400
    assert "email" in response.json()
    assert not SignInFailure.objects.exists()
    assert not AuditEvent.objects.exists()


def test_it_rejects_unknown_fields(anon_client, patient):
    response = anon_client.post(
        LOGIN, {"email": "pat@example.com", "password": PASSWORD, "remember": True}
    )
    assert response.status_code == 400
    assert "remember" in response.json()


def test_it_throttles_an_email_after_ten_failures_from_one_address(anon_client, patient):
    for _ in range(10):
        assert _login(anon_client, "pat@example.com", "bad", ip="10.0.1.1").status_code == 401
    # Even the right password is refused now, from that address.
    response = _login(anon_client, "pat@example.com", ip="10.0.1.1")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0


def test_it_never_locks_the_owner_out_through_failures_from_other_addresses(anon_client, patient):
    # An attacker spreading 30 wrong passwords over addresses (a botnet, a proxy pool)...
    for i in range(30):
        _login(anon_client, "pat@example.com", "bad", ip=f"10.0.{i // 10}.{i}")
    # ...leaves the owner, at an address with no recent failures, able to sign in.
    assert _login(anon_client, "pat@example.com", ip="10.0.99.1").status_code == 200
    # While the addresses that failed ten times are held back.
    assert _login(anon_client, "pat@example.com", ip="10.0.0.1").status_code == 200
    for _ in range(10):
        _login(anon_client, "pat@example.com", "bad", ip="10.0.0.1")
    assert _login(anon_client, "pat@example.com", ip="10.0.0.1").status_code == 429
    assert _login(anon_client, "pat@example.com", ip="10.0.99.1").status_code == 200


def test_it_throttles_a_client_after_ten_failures_across_emails(anon_client, patient):
    for i in range(10):
        _login(anon_client, f"guess{i}@example.com", "bad", ip="10.9.9.9")
    assert _login(anon_client, "pat@example.com", ip="10.9.9.9").status_code == 429
    assert _login(anon_client, "pat@example.com", ip="10.9.9.10").status_code == 200


def test_it_never_counts_successful_sign_ins(anon_client, patient):
    for _ in range(12):
        assert _login(anon_client, "pat@example.com").status_code == 200


def test_it_forgets_failures_older_than_the_window(anon_client, patient):
    for _ in range(10):
        _login(anon_client, "pat@example.com", "bad")
    from patients.models import SignInFailure

    SignInFailure.objects.update(at=timezone.now() - timedelta(minutes=16))
    assert _login(anon_client, "pat@example.com").status_code == 200


@override_settings(THROTTLE_RATES={"login": "2/min", "register": "1/hour", "logs": "1/hour"})
def test_it_takes_the_login_rate_from_settings(anon_client, patient):
    _login(anon_client, "pat@example.com", "bad")
    _login(anon_client, "pat@example.com", "bad")
    assert _login(anon_client, "pat@example.com").status_code == 429


@override_settings(THROTTLE_RATES={"login": "2/minute", "register": "1/hour", "logs": "1/hour"})
def test_it_reads_drf_style_units_in_the_login_rate(anon_client, patient):
    assert _login(anon_client, "pat@example.com", "bad").status_code == 401
    assert _login(anon_client, "pat@example.com", "bad").status_code == 401
    assert _login(anon_client, "pat@example.com").status_code == 429


def test_it_logs_out_one_device_only(anon_client, patient):
    phone = _login(anon_client, "pat@example.com").json()["token"]
    tablet = _login(anon_client, "pat@example.com").json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {phone}")
    assert client.post(LOGOUT).status_code == 204
    assert client.post(LOGOUT).status_code == 401
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {tablet}")
    assert other.post(LOGOUT).status_code == 204


def test_it_logs_out_every_device(anon_client, patient):
    tokens = [_login(anon_client, "pat@example.com").json()["token"] for _ in range(3)]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens[0]}")
    assert client.post("/api/v1/auth/logout-all/").status_code == 204
    assert not AuthToken.objects.filter(user=patient.user).exists()


def _signed_in(anon_client: APIClient) -> APIClient:
    token = _login(anon_client, "pat@example.com").json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.mark.parametrize("path", [LOGOUT, "/api/v1/auth/logout-all/"])
@pytest.mark.parametrize(
    ("body", "field"),
    [({"all": True}, "all"), ({"token": "x", "device": "y"}, "device"), ([], None)],
)
def test_it_rejects_a_logout_body_with_anything_in_it(anon_client, patient, path, body, field):
    client = _signed_in(anon_client)
    response = client.post(path, body, format="json")
    assert response.status_code == 400
    if field:
        assert field in response.json()
    # Nothing was signed out.
    assert AuthToken.objects.filter(user=patient.user).count() == 1
    assert client.post(path).status_code == 204


@pytest.mark.parametrize("path", [LOGOUT, "/api/v1/auth/logout-all/"])
def test_it_accepts_an_empty_logout_body(anon_client, patient, path):
    assert _signed_in(anon_client).post(path, {}, format="json").status_code == 204
    assert _signed_in(anon_client).post(path).status_code == 204


def test_it_rejects_an_expired_token_with_401(clinician, patient):
    instance, token = AuthToken.objects.create(user=clinician.user, expiry=timedelta(hours=1))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    url = ME_PATIENT_DETAIL.format(patient.pk)
    assert client.get(url).status_code == 200
    AuthToken.objects.filter(pk=instance.pk).update(expiry=timezone.now() - timedelta(seconds=1))
    assert client.get(url).status_code == 401


def test_it_rejects_a_missing_or_garbled_token_with_401(anon_client, patient):
    url = ME_PATIENT_DETAIL.format(patient.pk)
    assert anon_client.get(url).status_code == 401
    anon_client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    assert anon_client.get(url).status_code == 401
    anon_client.credentials(HTTP_AUTHORIZATION="Token whatever")
    assert anon_client.get(url).status_code == 401


def test_it_refuses_api_sign_in_to_operators_without_a_clinical_role(anon_client, db):
    from patients.models import User

    User.objects.create_superuser("ops@example.com", PASSWORD)
    assert _login(anon_client, "ops@example.com").status_code == 401


def test_it_audits_sign_in_and_sign_out(anon_client, patient: Patient):
    token = _login(anon_client, "pat@example.com").json()["token"]
    anon_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    anon_client.post(LOGOUT)
    actions = list(
        AuditEvent.objects.filter(actor=patient.user)
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["login", "logout"]


def test_it_records_where_a_sign_in_came_from(anon_client, patient: Patient):
    _login(anon_client, "pat@example.com", ip="10.1.2.3")
    event = AuditEvent.objects.get(action="login")
    # A patient's address is kept to its network (docs/security.md § What the audit
    # trail stores); a clinician's whole.
    assert event.ip == "10.1.2.0"
    assert event.path == LOGIN


def test_it_records_a_clinicians_whole_address(anon_client, clinician):
    _login(anon_client, clinician.user.email, ip="10.1.2.3")
    assert AuditEvent.objects.get(action="login").ip == "10.1.2.3"


def test_it_rejects_a_password_over_1024_characters_before_hashing_it(
    anon_client, patient, monkeypatch
):
    from patients.models import SignInFailure

    hashed = hashed_lengths(monkeypatch)
    response = _login(anon_client, "pat@example.com", "x" * 1025)
    assert response.status_code == 400
    assert "password" in response.json()
    assert hashed == []
    # Not a failed sign-in: no password this long can be set, so it guesses at none.
    assert not SignInFailure.objects.exists()
    assert not AuditEvent.objects.exists()

    # 1024 characters are still a (wrong) password, hashed and counted.
    assert _login(anon_client, "pat@example.com", "x" * 1024).status_code == 401
    assert hashed
    assert set(hashed) == {1024}
    assert SignInFailure.objects.count() == 1
