from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from patients.models import Clinic, Clinician, Patient, User

pytestmark = pytest.mark.django_db

LOGIN = "/api/v1/auth/login/"
PASSWORD = "lumbar-extension-series-7"


def _create(**options: Any) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    args = {
        "email": "lead@northside.example",
        "password": PASSWORD,
        "clinic": "Northside Physio",
        **options,
    }
    call_command(
        "create_clinician",
        *[f"--{key.replace('_', '-')}={value}" for key, value in args.items()],
        stdout=out,
        stderr=err,
    )
    return out.getvalue(), err.getvalue()


def _login(email: str, password: str) -> Any:
    return APIClient().post(LOGIN, {"email": email, "password": password})


def test_it_creates_a_clinic_and_a_clinician_who_can_sign_in(db):
    out, _ = _create(first_name="Lee", last_name="Lead")
    assert "lead@northside.example" in out

    clinician = Clinician.objects.select_related("user", "clinic").get()
    assert clinician.clinic.name == "Northside Physio"
    assert clinician.role == "physiotherapist"
    assert clinician.user.first_name == "Lee"
    assert clinician.user.last_name == "Lead"
    assert not clinician.user.is_staff

    response = _login("lead@northside.example", PASSWORD)
    assert response.status_code == 200
    assert response.json()["role"] == "clinician"


def test_it_is_idempotent_and_updates_the_password(db):
    _create()
    _create(password="a-brand-new-passphrase-8")

    assert User.objects.filter(email="lead@northside.example").count() == 1
    assert Clinician.objects.count() == 1
    assert Clinic.objects.count() == 1
    assert _login("lead@northside.example", "a-brand-new-passphrase-8").status_code == 200
    assert _login("lead@northside.example", PASSWORD).status_code == 401


def test_it_keeps_names_when_run_again_without_them(db):
    _create(first_name="Lee", last_name="Lead")
    _create()
    user = User.objects.get(email="lead@northside.example")
    assert (user.first_name, user.last_name) == ("Lee", "Lead")


def test_it_treats_the_email_case_insensitively(db):
    _create()
    _create(email="LEAD@Northside.example", password="a-brand-new-passphrase-8")
    assert User.objects.count() == 1
    assert _login("lead@northside.example", "a-brand-new-passphrase-8").status_code == 200


def test_it_reuses_an_existing_clinic_by_name(clinic):
    _create(clinic="Riverside Physio")
    assert Clinic.objects.count() == 1
    assert Clinician.objects.get().clinic == clinic


def test_it_creates_a_clinic_admin_when_asked(db):
    _create(role="clinic_admin")
    assert Clinician.objects.get().role == "clinic_admin"


def test_it_refuses_an_email_that_belongs_to_a_patient(patient):
    with pytest.raises(CommandError, match="patient"):
        _create(email="pat@example.com")
    assert not Clinician.objects.filter(user__email="pat@example.com").exists()
    assert not Clinic.objects.filter(name="Northside Physio").exists()
    # The patient's sign-in is untouched.
    patient_user = Patient.objects.get(pk=patient.pk).user
    assert patient_user is not None
    assert not patient_user.check_password(PASSWORD)


def test_it_refuses_to_move_a_clinician_to_another_clinic(clinician):
    with pytest.raises(CommandError, match="Riverside Physio"):
        _create(email="alice@riverside.example", clinic="Somewhere Else")
    assert Clinician.objects.get(pk=clinician.pk).clinic.name == "Riverside Physio"
    # Refused as a whole: neither the new clinic nor the new password is kept.
    assert not Clinic.objects.filter(name="Somewhere Else").exists()
    assert _login("alice@riverside.example", PASSWORD).status_code == 401


def test_it_warns_about_a_weak_password_but_still_creates_the_account(db):
    _, err = _create(password="12345")
    assert "Weak password" in err
    assert _login("lead@northside.example", "12345").status_code == 200


def test_it_requires_email_password_and_clinic(db):
    with pytest.raises(CommandError):
        call_command("create_clinician", "--email=x@example.com", "--password=p")
