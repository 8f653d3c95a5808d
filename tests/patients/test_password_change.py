"""Any password change signs the user out everywhere (issue 18 item 5, docs/security.md),
and a password of only spaces is refused (item 12)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from patients.models import AuditEvent, AuthToken, Clinician, User
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-new-and-long-passphrase-2027"
ME = "/api/v1/auth/devices/"


def _phone(user: User) -> APIClient:
    _, token = AuthToken.objects.create(user=user, device="phone")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def _browser(user: User) -> Client:
    client = Client()
    client.force_login(user)
    assert client.get("/dashboard/").status_code == 200
    return client


def _signed_out(phone: APIClient, browser: Client) -> bool:
    return (
        phone.get(ME).status_code == 401
        and browser.get("/dashboard/").status_code == 302
        and "_auth_user_id" not in browser.session
    )


def test_it_signs_a_clinician_out_everywhere_when_create_clinician_sets_a_password(
    clinician: Clinician,
):
    phone, browser = _phone(clinician.user), _browser(clinician.user)
    assert phone.get(ME).status_code == 200

    call_command(
        "create_clinician",
        f"--email={clinician.user.email}",
        f"--password={NEW_PASSWORD}",
        f"--clinic={clinician.clinic.name}",
        stdout=StringIO(),
    )

    assert _signed_out(phone, browser)
    assert not AuthToken.objects.filter(user=clinician.user).exists()
    event = AuditEvent.objects.get(action="logout", object_id=str(clinician.user.pk))
    assert event.changes == {"all_devices": True, "tokens": 1, "reason": "password_changed"}


def test_it_signs_a_user_out_everywhere_when_an_operator_sets_their_password_in_the_admin(
    clinician: Clinician,
):
    phone, browser = _phone(clinician.user), _browser(clinician.user)
    operator = UserFactory.create(email="ops@example.com", is_staff=True, is_superuser=True)
    admin = Client()
    admin.force_login(operator)

    response = admin.post(
        reverse("admin:auth_user_password_change", args=[clinician.user.pk]),
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
    )

    assert response.status_code == 302, response.content
    assert _signed_out(phone, browser)
    # The operator's own session is not the one that changed hands.
    assert admin.get(reverse("admin:index")).status_code == 200


def test_it_signs_a_user_out_everywhere_when_they_change_their_own_password_in_the_admin(db):
    operator = UserFactory.create(email="ops@example.com", is_staff=True, is_superuser=True)
    phone = _phone(operator)
    other_browser, admin = Client(), Client()
    other_browser.force_login(operator)
    admin.force_login(operator)

    response = admin.post(
        reverse("admin:password_change"),
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    assert response.status_code == 302, response.content
    assert phone.get(ME).status_code == 401
    assert other_browser.get(reverse("admin:index")).status_code == 302
    # Django keeps the session the change was made from.
    assert admin.get(reverse("admin:index")).status_code == 200


def test_it_signs_a_patient_out_everywhere_whenever_set_password_is_saved(patient):
    assert patient.user is not None
    phone, other_phone = _phone(patient.user), _phone(patient.user)
    user = get_user_model().objects.get(pk=patient.user.pk)

    user.set_password(NEW_PASSWORD)
    user.save()

    assert phone.get(ME).status_code == 401
    assert other_phone.get(ME).status_code == 401
    login = APIClient().post("/api/v1/auth/login/", {"email": user.email, "password": NEW_PASSWORD})
    assert login.status_code == 200


def test_it_keeps_tokens_when_a_user_is_saved_without_a_new_password(patient):
    assert patient.user is not None
    phone = _phone(patient.user)
    patient.user.first_name = "Renamed"
    patient.user.save()
    assert phone.get(ME).status_code == 200


def test_it_keeps_other_users_signed_in(patient, clinician):
    assert patient.user is not None
    phone = _phone(patient.user)
    clinician.user.set_password(NEW_PASSWORD)
    clinician.user.save()
    assert phone.get(ME).status_code == 200


@pytest.mark.parametrize("password", [" " * 12, "\t" * 10, " \u00a0 " * 4])
def test_it_refuses_a_password_of_only_spaces_in_create_clinician(db, password):
    with pytest.raises(CommandError, match="only spaces"):
        call_command(
            "create_clinician",
            "--email=lead@northside.example",
            f"--password={password}",
            "--clinic=Northside Physio",
            stdout=StringIO(),
        )
    assert not User.objects.filter(email="lead@northside.example").exists()
