from __future__ import annotations

import csv
import io
import json

import pytest

from patients.models import AuditEvent
from rights.formats import csv_safe
from tests.rights.conftest import OTHER_MARKER

pytestmark = pytest.mark.django_db

FORMATS = ("json", "csv", "fhir")


def test_it_exports_every_section_as_json(patient_client, record):
    response = patient_client.get("/api/v1/me/export/json/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "attachment" in response["Content-Disposition"]
    data = json.loads(response.content)
    assert data["patient_id"] == str(record.pk)
    assert data["patient"][0]["email"] == record.email
    assert len(data["daily_logs"]) == 10
    for section in (
        "interventions",
        "provocative_tests",
        "imaging_findings",
        "diagnoses",
        "questionnaire_responses",
        "alerts",
        "program_assignments",
        "program_phases",
        "program_exercises",
        "program_dosages",
    ):
        assert data[section], section
    # Background bookkeeping is not patient data.
    assert "evaluation_attempts" not in data["daily_logs"][0]


@pytest.mark.parametrize("fmt", FORMATS)
def test_it_gives_a_clinician_the_same_export(clinician_client, record, fmt):
    response = clinician_client.get(f"/api/v1/clinician/patients/{record.pk}/export/{fmt}/")
    assert response.status_code == 200
    assert str(record.pk).encode() in response.content


@pytest.mark.parametrize("fmt", FORMATS)
def test_it_never_exports_another_patients_data(
    patient_client, clinician_client, record, other_record, fmt
):
    for client, url in (
        (patient_client, f"/api/v1/me/export/{fmt}/"),
        (clinician_client, f"/api/v1/clinician/patients/{record.pk}/export/{fmt}/"),
    ):
        response = client.get(url)
        assert response.status_code == 200
        assert OTHER_MARKER.encode() not in response.content
        assert str(other_record.pk).encode() not in response.content
        assert other_record.email.encode() not in response.content


@pytest.mark.parametrize("fmt", FORMATS)
def test_it_hides_another_clinics_patient(other_clinic_clinician_client, record, fmt):
    response = other_clinic_clinician_client.get(
        f"/api/v1/clinician/patients/{record.pk}/export/{fmt}/"
    )
    assert response.status_code == 404
    assert not AuditEvent.objects.filter(patient=record, object_type="export").exists()


def test_it_keeps_patients_and_clinicians_to_their_own_doors(
    patient_client, clinician_client, record
):
    assert (
        patient_client.get(f"/api/v1/clinician/patients/{record.pk}/export/json/").status_code
        == 403
    )
    assert clinician_client.get("/api/v1/me/export/json/").status_code == 403


def test_it_refuses_anonymous_exports(anon_client, record):
    assert anon_client.get("/api/v1/me/export/fhir/").status_code == 401


def test_it_audits_each_export(clinician_client, clinician, record):
    clinician_client.get(f"/api/v1/clinician/patients/{record.pk}/export/csv/")
    event = AuditEvent.objects.get(patient=record, object_type="export")
    assert event.actor_id == clinician.user_id
    assert event.action == AuditEvent.Action.READ
    assert event.changes == {"format": "csv", "how": "direct"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+SUM(A1)", "'+SUM(A1)"),
        ("-2+3", "'-2+3"),
        ("@cmd", "'@cmd"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("plain", "plain"),
        (7, "7"),
        (None, ""),
        (True, "true"),
    ],
)
def test_it_neutralises_cells_a_spreadsheet_would_run(value, expected):
    assert csv_safe(value) == expected


def test_it_writes_a_csv_with_no_live_formula(patient_client, record):
    response = patient_client.get("/api/v1/me/export/csv/")
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["section", "record_id", "field", "value"]
    assert sorted({r[0] for r in rows[1:] if r[2] == "pain"}) == ["daily_logs"]
    assert any(r[3] == "'=HYPERLINK(1)" for r in rows)
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
