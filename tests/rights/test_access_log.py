from __future__ import annotations

import pytest

from patients.models import AuditEvent
from patients.services import audit_record

pytestmark = pytest.mark.django_db

URL = "/api/v1/me/access-log/"


def test_it_shows_a_clinicians_read(patient_client, clinician_client, patient):
    assert clinician_client.get(f"/api/v1/clinician/patients/{patient.pk}/").status_code == 200
    response = patient_client.get(URL)
    assert response.status_code == 200
    entries = response.json()["results"]
    assert entries[0]["who"] == {"role": "physiotherapist", "name": "Alice Physio"}
    assert entries[0]["action"] == "read"
    assert entries[0]["what"] == "patient"
    assert entries[0]["via"] == "api"
    # The clinician is named, not their sign-in: no email in the log.
    assert b"alice@riverside.example" not in response.content


def test_it_never_shows_another_patients_reads(
    patient_client, other_patient_client, other_clinic_clinician_client, patient, other_patient
):
    other_patient_client.get("/api/v1/me/")
    other_clinic_clinician_client.get(f"/api/v1/clinician/patients/{other_patient.pk}/")
    # ... nor another clinic's clinician trying this patient (a 404, not a read of them).
    other_clinic_clinician_client.get(f"/api/v1/clinician/patients/{patient.pk}/")
    assert AuditEvent.objects.filter(patient=other_patient).count() == 2
    response = patient_client.get(URL)
    assert response.json()["count"] == 0
    assert b"Olly" not in response.content
    assert b"Bob" not in response.content


def test_it_names_the_patient_themself_the_service_and_the_channel(
    patient_client, clinician, patient
):
    patient_client.get("/api/v1/me/")
    audit_record(actor=None, action="update", object_type="alert", patient=patient)
    AuditEvent.objects.create(
        actor=clinician.user,
        actor_email=clinician.user.email,
        patient=patient,
        action="read",
        object_type="patient_page",
        path=f"/dashboard/patients/{patient.pk}/",
    )
    entries = patient_client.get(URL).json()["results"]
    by_what = {e["what"]: e for e in entries}
    assert by_what["profile"]["who"] == {"role": "patient", "name": "You"}
    assert by_what["alert"]["who"] == {"role": "system", "name": "Rehab service"}
    assert by_what["alert"]["via"] == "system"
    assert by_what["patient_page"]["via"] == "dashboard"


def test_it_leaves_out_sign_ins_and_pages(patient_client, patient):
    audit_record(actor=patient.user, action=AuditEvent.Action.LOGIN, object_type="auth_token")
    for _ in range(3):
        audit_record(actor=patient.user, action="read", object_type="profile", patient=patient)
    body = patient_client.get(URL, {"page_size": 2}).json()
    assert body["count"] == 3
    assert len(body["results"]) == 2
    assert body["next"] is not None
    assert patient_client.get(URL, {"page_size": 0}).status_code == 400


def test_reading_the_log_is_itself_logged(patient_client, patient):
    patient_client.get(URL)
    assert AuditEvent.objects.filter(patient=patient, object_type="access_log").count() == 1
    assert patient_client.get(URL).json()["results"][0]["what"] == "access_log"


def test_it_is_for_patients_only(clinician_client, anon_client):
    assert clinician_client.get(URL).status_code == 403
    assert anon_client.get(URL).status_code == 401
