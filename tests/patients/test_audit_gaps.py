"""What the audit trail used to miss (issue 18, item 6; docs/security.md § Audit trail):
operators' views and changes of patient data in the admin, failed sign-ins at every door,
and denied requests for patient data."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from patients.admin import AuditedAdmin
from patients.models import AuditEvent, Patient, User
from rehab.models import Alert, DailyLog
from tests.dashboard.conftest import make_alert
from tests.factories import PASSWORD, UserFactory
from tests.rehab.factories_record import DailyLogFactory, DiagnosisFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator() -> User:
    return UserFactory.create(email="ops@example.com", is_staff=True, is_superuser=True)


@pytest.fixture
def operator_client(operator: User) -> Client:
    client = Client()
    client.force_login(operator)
    return client


def _admin_url(model: Any, view: str, *args: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _events(**filters: Any) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(**filters).order_by("id"))


# --------------------------------------------------------------------------- the admin


def test_it_audits_an_operator_listing_patients(operator_client, operator, patient, other_patient):
    assert operator_client.get(_admin_url(Patient, "changelist")).status_code == 200
    events = _events(action="read", object_type="admin:patient")
    assert {e.patient_id for e in events} == {patient.pk, other_patient.pk}
    assert {e.actor_id for e in events} == {operator.pk}
    assert all(e.path.startswith("/admin/") for e in events)


@pytest.mark.parametrize(
    ("model", "make"),
    [
        (Patient, lambda patient: patient),
        (DailyLog, lambda patient: DailyLogFactory.create(patient=patient)),
        (Alert, make_alert),
        (DiagnosisFactory._meta.model, lambda patient: DiagnosisFactory.create(patient=patient)),
    ],
)
def test_it_audits_an_operator_opening_patient_data(
    operator_client, operator, patient, model, make
):
    obj = make(patient)
    assert operator_client.get(_admin_url(model, "change", obj.pk)).status_code == 200
    (event,) = _events(action="read", object_type=f"admin:{model._meta.model_name}")
    assert event.patient_id == patient.pk
    assert event.object_id == str(obj.pk)
    assert event.actor_id == operator.pk
    # And their lists, one read per patient shown.
    assert operator_client.get(_admin_url(model, "changelist")).status_code == 200
    assert len(_events(action="read", object_type=f"admin:{model._meta.model_name}")) == 2


def test_it_audits_an_operator_changing_a_patients_account(operator_client, operator, patient):
    user = patient.user
    response = operator_client.post(
        _admin_url(User, "change", user.pk),
        {
            "email": user.email,
            "first_name": "Renamed",
            "last_name": user.last_name,
            "is_active": "on",
            "last_login_0": "",
            "last_login_1": "",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "10:00:00",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    (event,) = _events(action="update", object_type="admin:user")
    assert event.patient_id == patient.pk
    assert event.actor_id == operator.pk
    # Which fields changed, never their values.
    assert "First name" in json.dumps(event.changes)
    assert "Renamed" not in json.dumps(event.changes)


def test_it_audits_no_read_of_an_account_that_is_no_patients(operator_client, clinician):
    assert operator_client.get(_admin_url(User, "change", clinician.user.pk)).status_code == 200
    assert not AuditEvent.objects.filter(object_type="admin:user").exists()


def test_every_audited_admin_finds_its_objects_patient():
    # A wrong lookup would be a 500 on the admin page, not a missing event.
    audited = [ma for ma in admin.site._registry.values() if isinstance(ma, AuditedAdmin)]
    assert len(audited) >= 20
    for model_admin in audited:
        assert model_admin.audit_patient_ids([]) == {}


# --------------------------------------------------------------------------- sign-ins


def test_it_audits_a_failed_api_sign_in_of_a_patient(anon_client, patient):
    response = anon_client.post(
        "/api/v1/auth/login/", {"email": patient.user.email, "password": "wrong"}
    )
    assert response.status_code == 401
    (event,) = _events(action="login_fail")
    assert event.patient_id == patient.pk
    # A patient's email is their data: the account's id says whose sign-in failed.
    assert event.actor_email == ""
    assert event.object_id == str(patient.user.pk)
    assert event.changes == {"door": "api", "throttled": False, "known_account": True}
    assert event.path == "/api/v1/auth/login/"


def test_it_keeps_what_was_typed_out_of_the_trail_for_an_unknown_email(anon_client):
    # Someone who typed their password into the email field.
    typed = "my-secret-passphrase"
    wrong = anon_client.post("/api/v1/auth/login/", {"email": typed, "password": "x"})
    assert wrong.status_code == 400  # not an email: no sign-in was tried
    anon_client.post("/api/v1/auth/login/", {"email": f"{typed}@example.com", "password": "x"})
    events = _events(action="login_fail")
    assert len(events) == 1
    for event in events:
        assert typed not in json.dumps(
            {k: str(v) for k, v in vars(event).items() if not k.startswith("_")}
        )
        assert event.changes["known_account"] is False


def test_it_audits_throttled_sign_ins(anon_client, clinician, settings):
    for _ in range(10):
        anon_client.post("/api/v1/auth/login/", {"email": clinician.user.email, "password": "x"})
    response = anon_client.post(
        "/api/v1/auth/login/", {"email": clinician.user.email, "password": PASSWORD}
    )
    assert response.status_code == 429
    events = _events(action="login_fail")
    assert len(events) == 11
    assert events[-1].changes["throttled"] is True


def test_it_audits_a_failed_dashboard_sign_in(client, clinician):
    client.post("/dashboard/login/", {"username": clinician.user.email, "password": "wrong"})
    (event,) = _events(action="login_fail")
    assert event.changes["door"] == "dashboard"
    assert event.actor_email == clinician.user.email


def test_it_audits_a_failed_admin_sign_in(client, operator):
    client.post(reverse("admin:login"), {"username": operator.email, "password": "wrong"})
    (event,) = _events(action="login_fail")
    assert event.changes["door"] == "admin"
    assert event.object_id == str(operator.pk)


def test_it_audits_no_failure_for_a_good_sign_in(anon_client, patient):
    response = anon_client.post(
        "/api/v1/auth/login/", {"email": patient.user.email, "password": PASSWORD}
    )
    assert response.status_code == 200
    assert _events(action="login_fail") == []


# --------------------------------------------------------------------------- denied requests


def test_it_audits_another_clinics_clinician_asking_for_a_patient(
    other_clinic_clinician_client, other_clinic_clinician, patient
):
    response = other_clinic_clinician_client.get(f"/api/v1/clinician/patients/{patient.pk}/")
    assert response.status_code == 404
    (event,) = _events(action="denied")
    assert event.actor_id == other_clinic_clinician.user.pk
    assert event.patient_id == patient.pk
    assert event.object_id == str(patient.pk)
    assert event.changes == {"status": 404}
    assert event.method == "GET"


def test_it_audits_a_patient_asking_for_another_patients_log(
    other_patient_client, other_patient, patient
):
    log = DailyLogFactory.create(patient=patient)
    response = other_patient_client.get(f"/api/v1/logs/{log.pk}/")
    assert response.status_code == 404
    (event,) = _events(action="denied")
    assert event.actor_id == other_patient.user.pk
    assert event.object_id == str(log.pk)


def test_it_audits_a_patient_refused_a_clinicians_endpoint(patient_client, patient, other_patient):
    response = patient_client.get(f"/api/v1/clinician/patients/{other_patient.pk}/")
    assert response.status_code == 403
    (event,) = _events(action="denied")
    assert event.changes == {"status": 403}
    assert event.patient_id == other_patient.pk


def test_it_audits_a_denied_dashboard_page(other_web_client, patient):
    response = other_web_client.get(f"/dashboard/patients/{patient.pk}/")
    assert response.status_code == 404
    (event,) = _events(action="denied")
    assert event.patient_id == patient.pk


def test_it_audits_no_denial_for_anonymous_callers_or_unknown_urls(
    anon_client, clinician_client, patient
):
    assert anon_client.get(f"/api/v1/clinician/patients/{patient.pk}/").status_code == 401
    assert clinician_client.get("/api/v1/no-such-thing/").status_code == 404
    assert _events(action="denied") == []


@pytest.fixture
def other_web_client(other_clinic_clinician: Any) -> Client:
    client = Client()
    client.force_login(other_clinic_clinician.user)
    return client
