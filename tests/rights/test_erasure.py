from __future__ import annotations

import datetime as dt

import pytest

from patients.models import AuditEvent, AuthToken, Clinician, Patient
from rehab.models import DailyLog, QuestionnaireResponse
from rights import erasure
from rights.models import ClinicRetention, Erasure, ErasureRequest
from tests.factories import ClinicianFactory, UserFactory
from tests.rights.conftest import fill_record

pytestmark = pytest.mark.django_db

ME = "/api/v1/me/erasure-request/"
LIST = "/api/v1/clinician/erasure-requests/"


@pytest.fixture
def admin_client(clinic, api_client_for):
    admin = ClinicianFactory.create(
        clinic=clinic,
        role=Clinician.Role.CLINIC_ADMIN,
        user=UserFactory.create(email="carol@riverside.example"),
    )
    return api_client_for(admin.user)


def _request(patient_client) -> str:
    response = patient_client.post(ME, {"reason": "Moving on"})
    assert response.status_code == 201, response.json()
    return str(response.json()["id"])


def _age_records(patient: Patient, years: int) -> None:
    """Move everything recorded for the patient `years` years into the past."""
    shift = dt.timedelta(days=365 * years + 5)
    for log in DailyLog.objects.filter(patient=patient):
        DailyLog.objects.filter(pk=log.pk).update(date=log.date - shift)
    Patient.objects.filter(pk=patient.pk).update(created_at=patient.created_at - shift)
    for model in ("interventions", "imaging_findings", "questionnaire_responses"):
        for row in getattr(patient, model).all():
            type(row).objects.filter(pk=row.pk).update(date=row.date - shift)
    patient.diagnoses.update(date_from=dt.date(2000, 1, 1))
    patient.exercise_logs.all().delete()


def test_a_request_under_a_retention_hold_closes_the_account_and_keeps_the_records(
    patient_client, admin_client, patient, clinician
):
    fill_record(patient, clinician)
    request_id = _request(patient_client)
    assert patient_client.post(ME, {}).status_code == 409  # one pending at a time
    decided = admin_client.post(f"{LIST}{request_id}/decide/", {"decision": "approve"})
    assert decided.status_code == 200, decided.json()
    assert decided.json()["status"] == "restricted"
    assert decided.json()["hold_until"] is not None
    # Signed out everywhere, cannot sign in, the records kept.
    assert not AuthToken.objects.filter(user=patient.user).exists()
    assert patient_client.get("/api/v1/me/").status_code == 401
    patient.user.refresh_from_db()
    assert not patient.user.is_active
    patient.refresh_from_db()
    assert patient.first_name == "Pat"
    assert DailyLog.objects.filter(patient=patient).count() == 10
    assert not Erasure.objects.exists()


def test_a_request_without_a_hold_is_erased_at_once(
    patient_client, admin_client, patient, clinician
):
    fill_record(patient, None)
    _age_records(patient, 9)
    request_id = _request(patient_client)
    decided = admin_client.post(f"{LIST}{request_id}/decide/", {"decision": "approve"})
    assert decided.json()["status"] == "erased"
    patient.refresh_from_db()
    assert (patient.first_name, patient.last_name) == ("Erased", "patient")
    assert "example.com" not in patient.email
    assert patient.date_of_birth == dt.date(patient.date_of_birth.year, 1, 1)
    assert not DailyLog.objects.filter(patient=patient).exclude(notes="").exists()
    psfs = QuestionnaireResponse.objects.get(patient=patient, instrument="psfs")
    assert psfs.answers["activities"][0]["activity"] == "Activity 1"
    assert DailyLog.objects.filter(patient=patient).count() == 10  # the numbers stay
    patient.user.refresh_from_db()
    assert not patient.user.has_usable_password()
    tombstone = AuditEvent.objects.get(patient=patient, object_type="patient_erasure")
    assert tombstone.changes == {"reason": "request"}
    assert tombstone.action == AuditEvent.Action.DELETE


def test_a_rejected_request_changes_nothing(patient_client, admin_client, patient):
    request_id = _request(patient_client)
    decided = admin_client.post(f"{LIST}{request_id}/decide/", {"decision": "reject"})
    assert decided.json()["status"] == "rejected"
    assert patient_client.get("/api/v1/me/").status_code == 200
    again = admin_client.post(f"{LIST}{request_id}/decide/", {"decision": "approve"})
    assert again.status_code == 400
    assert patient_client.get(ME).json()["status"] == "rejected"


def test_only_a_clinic_admin_of_the_clinic_decides(
    patient_client, clinician_client, other_clinic_clinician_client, admin_client
):
    request_id = _request(patient_client)
    url = f"{LIST}{request_id}/decide/"
    assert clinician_client.post(url, {"decision": "approve"}).status_code == 403
    assert other_clinic_clinician_client.post(url, {"decision": "approve"}).status_code == 404
    assert other_clinic_clinician_client.get(LIST).json()["count"] == 0
    assert admin_client.post(url, {"decision": "maybe"}).status_code == 400
    assert ErasureRequest.objects.get().status == "pending"


def test_the_retention_job_erases_only_what_is_past_the_clinics_period(
    patient, clinician, other_patient, other_clinic_clinician, clinic
):
    fill_record(patient, None)
    fill_record(other_patient, None)
    _age_records(patient, 9)
    _age_records(other_patient, 9)
    # The other clinic keeps records for 10 years: not due yet.
    ClinicRetention.objects.create(clinic=other_patient.clinic, years_after_last_contact=10)
    assert erasure.retention_sweep() == 1
    assert erasure.retention_sweep() == 0  # a second run finds the tombstone
    patient.refresh_from_db()
    other_patient.refresh_from_db()
    assert patient.first_name == "Erased"
    assert other_patient.first_name == "Olly"
    assert Erasure.objects.get().reason == "retention"


def test_the_retention_job_leaves_a_recent_patient_alone(patient, clinician):
    fill_record(patient, clinician)
    assert erasure.retention_sweep() == 0


def test_a_clinic_admin_sets_the_retention_period(admin_client, clinician_client):
    url = "/api/v1/clinician/retention/"
    assert admin_client.get(url).json() == {"years_after_last_contact": 8}
    assert admin_client.put(url, {"years_after_last_contact": 10}).status_code == 200
    assert clinician_client.get(url).json() == {"years_after_last_contact": 10}
    assert clinician_client.put(url, {"years_after_last_contact": 1}).status_code == 403
    assert admin_client.put(url, {"years_after_last_contact": 0}).status_code == 400
    assert ClinicRetention.objects.get().years_after_last_contact == 10


def _web(user):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


DASHBOARD = "/dashboard/erasure-requests/"


def test_a_clinic_admin_decides_in_the_dashboard(patient_client, patient, clinic):
    admin = ClinicianFactory.create(
        clinic=clinic, role=Clinician.Role.CLINIC_ADMIN, user=UserFactory.create()
    )
    request_id = _request(patient_client)
    web = _web(admin.user)
    page = web.get(DASHBOARD)
    assert page.status_code == 200
    assert patient.full_name in page.content.decode()
    assert AuditEvent.objects.filter(patient=patient, object_type="erasure_request_list").exists()
    response = web.post(f"{DASHBOARD}{request_id}/decide/", {"decision": "approve"})
    assert response.status_code == 302
    assert ErasureRequest.objects.get().status == "restricted"
    assert not AuthToken.objects.filter(user=patient.user).exists()


def test_the_dashboard_page_is_for_the_clinics_admins_only(
    patient_client, clinician, other_clinic_clinician
):
    request_id = _request(patient_client)
    assert _web(clinician.user).get(DASHBOARD).status_code == 403
    decide = f"{DASHBOARD}{request_id}/decide/"
    assert _web(clinician.user).post(decide, {"decision": "approve"}).status_code == 403
    other_admin = other_clinic_clinician
    Clinician.objects.filter(pk=other_admin.pk).update(role=Clinician.Role.CLINIC_ADMIN)
    other_admin.refresh_from_db()
    assert _web(other_admin.user).post(decide, {"decision": "approve"}).status_code == 404
    assert "Pat Doe" not in _web(other_admin.user).get(DASHBOARD).content.decode()
    from django.test import Client

    assert Client().get(DASHBOARD).status_code == 302  # to the sign-in page
    assert ErasureRequest.objects.get().status == "pending"


def test_the_dashboard_navigation_links_the_erasure_requests_for_clinic_admins_only(
    clinic, clinician
):
    admin = ClinicianFactory.create(
        clinic=clinic, role=Clinician.Role.CLINIC_ADMIN, user=UserFactory.create()
    )
    link = f'href="{DASHBOARD}"'
    caseload = _web(admin.user).get("/dashboard/")
    assert caseload.status_code == 200
    assert link in caseload.content.decode()
    # On its own page the link is marked as the current one.
    page = _web(admin.user).get(DASHBOARD).content.decode()
    assert f'{link} aria-current="page"' in page
    assert link not in _web(clinician.user).get("/dashboard/").content.decode()
