from __future__ import annotations

import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from patients.models import Clinic, Clinician, Patient, User

pytestmark = pytest.mark.django_db

BASE_DIR = Path(__file__).resolve().parent.parent.parent
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


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("12345", "too short"),
        ("password123", "too common"),
        ("8172635498172", "entirely numeric"),
        ("lead@northside.example", "too similar"),
    ],
)
def test_it_refuses_a_weak_password_and_saves_nothing(db, password, message):
    with pytest.raises(CommandError, match="Weak password") as raised:
        _create(password=password)
    assert message in str(raised.value)
    assert not User.objects.exists()
    assert not Clinic.objects.exists()


def test_it_keeps_the_old_password_when_a_rerun_brings_a_weak_one(db):
    _create()
    with pytest.raises(CommandError, match="Weak password"):
        _create(password="12345")
    assert _login("lead@northside.example", PASSWORD).status_code == 200


def test_it_matches_an_existing_clinic_name_whatever_its_case(clinic):
    _create(clinic="  riverside PHYSIO ")
    assert Clinic.objects.count() == 1
    assert Clinician.objects.get().clinic == clinic


@pytest.mark.django_db(transaction=True)
def test_it_exits_0_when_run_and_rerun_and_non_zero_for_a_weak_password():
    # The real command line once, for its exit codes (the rest goes through call_command).
    from tests.processes import production_env
    from tests.rehab.worker_support import database_url

    env = production_env(database_url=database_url())

    def run(password: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "manage.py",
                "create_clinician",
                "--email=lead@northside.example",
                f"--password={password}",
                "--clinic=Northside Physio",
            ],
            cwd=BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    first = run(PASSWORD)
    assert first.returncode == 0, first.stderr
    again = run("a-brand-new-passphrase-8")
    assert again.returncode == 0, again.stderr
    weak = run("12345")
    assert weak.returncode != 0
    assert "Weak password" in weak.stderr
    assert "too short" in weak.stderr
    # The rerun's password stands; hashed by the production hasher, not the tests' MD5.
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    stored = User.objects.get(email="lead@northside.example").password
    assert PBKDF2PasswordHasher().verify("a-brand-new-passphrase-8", stored)
    assert Clinician.objects.count() == 1


def test_it_requires_email_password_and_clinic(db):
    with pytest.raises(CommandError):
        call_command("create_clinician", "--email=x@example.com", "--password=p")


def test_the_database_refuses_a_second_clinic_whose_name_differs_only_in_case(clinic):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Clinic.objects.create(name="RIVERSIDE physio")
    assert Clinic.objects.count() == 1


def test_it_uses_the_clinic_a_concurrent_run_created_in_another_case(clinic, monkeypatch):
    from patients import services

    real = services._clinic_by_name
    calls: list[str] = []

    def missed_by_the_first_read(*, name: str) -> Clinic | None:
        # The other run's clinic committed between this run's read and its insert.
        calls.append(name)
        return None if len(calls) == 1 else real(name=name)

    monkeypatch.setattr(services, "_clinic_by_name", missed_by_the_first_read)
    out, _ = _create(clinic="riverside PHYSIO")
    assert len(calls) == 2
    assert "Riverside Physio" in out
    assert Clinic.objects.count() == 1
    assert Clinician.objects.get().clinic == clinic


@pytest.mark.db_owner  # a migration's own DDL: the owner's work
def test_the_migration_stops_on_names_that_differ_only_in_case(clinic):
    import importlib

    from django.apps import apps
    from django.db import connection

    migration = importlib.import_module("patients.migrations.0004_clinic_unique_name_ci")
    check = migration.check_no_names_differ_only_in_case
    check(apps, connection.schema_editor())  # today's data passes

    # DDL is transactional in PostgreSQL: the test's rollback restores the constraint.
    constraint = next(c for c in Clinic._meta.constraints if c.name == "clinic_unique_name_ci")
    with connection.schema_editor() as editor:
        editor.remove_constraint(Clinic, constraint)
    Clinic.objects.create(name="RIVERSIDE PHYSIO")
    with pytest.raises(RuntimeError, match="'RIVERSIDE PHYSIO', 'Riverside Physio'"):
        check(apps, connection.schema_editor())


def test_it_refuses_a_password_longer_than_sign_in_accepts_and_saves_nothing(db):
    with pytest.raises(CommandError, match="too long"):
        _create(password="a-long-passphrase-" * 57)  # 1026 characters
    assert not User.objects.exists()
    assert not Clinic.objects.exists()
