"""The audit trail keeps a tombstone, not the data (docs/data-rights.md § Erasure and
retention, docs/security.md § What the audit trail stores).

The trail is append-only and hash-chained, so erasure cannot rewrite it: instead it never
holds a patient's identifying values in the first place. A patient's life in the service
(invited, registered, signing in and failing to, logging with notes, searched for by
name, renamed by a clinician, asking for erasure, erased) leaves no name, email, birth
date, free text or full address of theirs in any column of any audit event, and the
chains still verify after the erasure."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from patients import audit, services
from patients.dbroles import audit_chain_verify
from patients.models import AuditEvent, Clinician, Patient
from tests.factories import ClinicianFactory, UserFactory

pytestmark = pytest.mark.django_db

IP = "203.0.113.77"
MARKERS = (
    "Zebedee",
    "Zebedina",
    "Quuxley",
    "zebedee.quux",
    "1971-03-14",
    "1972-04-15",
    "zq-secret",
    IP,
)
PASSWORD = "a-long-pass-phrase-9"


def _audit_rows() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(e)::text FROM patients_auditevent e")
        return [row[0] for row in cursor.fetchall()]


def _leaks() -> list[tuple[str, str]]:
    return [
        (marker, row)
        for row in _audit_rows()
        for marker in MARKERS
        if marker.lower() in row.lower()
    ]


def test_the_audit_trail_never_holds_a_patients_identifying_values(clinic, clinician):
    admin = ClinicianFactory.create(
        clinic=clinic, role=Clinician.Role.CLINIC_ADMIN, user=UserFactory.create()
    )
    issued = services.invitation_create(
        clinician=clinician,
        email="zebedee.quux@example.com",
        first_name="Zebedee",
        last_name="Quuxley",
        date_of_birth=dt.date(1971, 3, 14),
        timezone_name="Europe/London",
    )
    app = APIClient(REMOTE_ADDR=IP)
    registered = app.post(
        "/api/v1/auth/register/",
        {"code": issued.code, "email": "zebedee.quux@example.com", "password": PASSWORD},
    )
    assert registered.status_code == 201, registered.json()
    assert (
        app.post(
            "/api/v1/auth/login/", {"email": "zebedee.quux@example.com", "password": "wrong"}
        ).status_code
        == 401
    )
    app.credentials(HTTP_AUTHORIZATION=f"Bearer {registered.json()['token']}")
    patient = Patient.objects.get(email="zebedee.quux@example.com")
    today = patient.local_today().isoformat()
    logged = app.post("/api/v1/logs/", {"date": today, "pain": 4, "notes": "zq-secret note"})
    assert logged.status_code == 201
    edited = app.patch(f"/api/v1/logs/{logged.json()['id']}/", {"notes": "zq-secret edit"})
    assert edited.status_code == 200
    assert app.get("/api/v1/me/").status_code == 200

    physio = APIClient(REMOTE_ADDR="198.51.100.1")
    physio.force_authenticate(clinician.user)
    found = physio.get("/api/v1/clinician/patients/", {"search": "Quuxley"})
    assert [row["id"] for row in found.json()["results"]] == [str(patient.pk)]
    renamed = physio.patch(
        f"/api/v1/clinician/patients/{patient.pk}/",
        {"first_name": "Zebedina", "date_of_birth": "1972-04-15", "condition": "Sciatica"},
        format="json",
    )
    assert renamed.status_code == 200, renamed.json()
    web = Client()
    web.force_login(clinician.user)
    assert web.get("/dashboard/", {"q": "Quuxley"}).status_code == 200

    asked = app.post("/api/v1/me/erasure-request/", {"reason": "zq-secret reason"})
    assert asked.status_code == 201

    # What the trail does say: who acted (ids), on whose record, what changed.
    events = AuditEvent.objects.filter(patient=patient)
    own = events.filter(actor=patient.user)
    assert own.exists()
    assert set(own.values_list("actor_email", flat=True)) == {""}
    assert set(own.exclude(ip=None).values_list("ip", flat=True)) == {"203.0.113.0"}
    update = events.get(object_type="patient", action="update")
    assert update.actor_email == clinician.user.email  # a clinician is named
    assert update.changes["condition"] == {"from": "", "to": "Sciatica"}
    assert update.changes["first_name"] == audit.REDACTED
    paths = set(events.filter(object_type="caseload_row").values_list("path", flat=True))
    assert paths == {"/api/v1/clinician/patients/?search=", "/dashboard/?q="}
    assert _leaks() == []

    # Erasure: the tombstone is added, nothing rewritten, the chains intact.
    admin_api = APIClient()
    admin_api.force_authenticate(admin.user)
    decided = admin_api.post(
        f"/api/v1/clinician/erasure-requests/{asked.json()['id']}/decide/",
        {"decision": "approve"},
    )
    assert decided.status_code == 200
    from rights.erasure import patient_pseudonymise

    assert patient_pseudonymise(patient_id=patient.pk, reason="request")
    assert events.filter(object_type="patient_erasure").count() == 1
    assert _leaks() == []
    report = audit_chain_verify()
    assert report.breaks == []
    assert report.events == AuditEvent.objects.count()


def test_it_keeps_the_values_that_are_not_the_patients(clinician, patient):
    # Clinical facts and settings are not redacted: only the keys that identify or hold
    # free text are (patients.audit.AUDIT_REDACTED_KEYS), at any depth.
    event = services.audit_record(
        actor=clinician.user,
        action=AuditEvent.Action.UPDATE,
        object_type="test",
        patient=patient,
        changes={
            "pain_ceiling": {"from": 5, "to": 6},
            "nested": [{"note": "zq-secret"}, {"email": "zebedee.quux@example.com"}],
            "first_name": {"from": "Zebedee", "to": "Zebedina"},
        },
    )
    event.refresh_from_db()
    assert event.changes == {
        "pain_ceiling": {"from": 5, "to": 6},
        "nested": [{"note": audit.REDACTED}, {"email": audit.REDACTED}],
        "first_name": audit.REDACTED,
    }
