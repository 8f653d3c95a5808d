from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.http import StreamingHttpResponse

from patients.models import AuditEvent, Clinician, ConsentDecision, ConsentDocument
from rehab.models import DailyLog
from tests.factories import ClinicianFactory, PatientFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/clinician/outcomes/csv/"


@pytest.fixture
def admin_client(clinic, api_client_for):
    admin = ClinicianFactory.create(
        clinic=clinic,
        role=Clinician.Role.CLINIC_ADMIN,
        user=UserFactory.create(email="carol@riverside.example"),
    )
    return api_client_for(admin.user)


def _logs(patient, pains):
    today = patient.local_today()
    DailyLog.objects.bulk_create(
        DailyLog(patient=patient, date=today - timedelta(days=len(pains) - 1 - i), pain=p)
        for i, p in enumerate(pains)
    )


def _read(response) -> list[dict[str, str]]:
    assert isinstance(response, StreamingHttpResponse)
    text = b"".join(response.streaming_content).decode()  # type: ignore[arg-type]
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
def cohort(clinic, patient, other_patient):
    _logs(patient, [8, 8, 8, 8, 8, 8, 8, 5, 4, 3, 3, 3, 2, 2])  # a responder
    improving_little = PatientFactory.create(
        clinic=clinic, condition=patient.condition, first_name="Ivy", last_name="Little"
    )
    _logs(improving_little, [6] * 7 + [5] * 7)
    PatientFactory.create(clinic=clinic, condition="Piriformis syndrome")  # no logs
    _logs(other_patient, [9] * 14)
    return [patient, improving_little]


def test_it_streams_one_deidentified_row_per_patient(admin_client, cohort, patient, other_patient):
    response = admin_client.get(URL)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    rows = _read(response)
    assert len(rows) == 3  # this clinic's three patients, not the other clinic's
    by_days = {r["days_logged"]: r for r in rows}
    assert by_days["14"]["responder_mcid"] in ("yes", "no")
    responders = [r for r in rows if r["responder_mcid"] == "yes"]
    assert len(responders) == 1
    assert responders[0]["baseline_pain"] == "8.0"
    assert responders[0]["age_band"] == "50-59"
    assert by_days["0"]["responder_mcid"] == ""
    text = str(rows)
    for secret in (patient.first_name, patient.last_name, patient.email, str(patient.pk)):
        assert secret not in text
    assert patient.date_of_birth.isoformat() not in text
    assert str(other_patient.pk) not in text
    assert AuditEvent.objects.filter(object_type="clinic_outcomes").count() == 1


def test_it_summarises_responders_by_condition_and_program(admin_client, cohort, patient):
    rows = _read(admin_client.get(URL, {"view": "summary"}))
    by_condition = {r["condition"]: r for r in rows}
    sciatica = by_condition[patient.condition]
    assert (sciatica["patients"], sciatica["with_baseline_and_current"]) == ("2", "2")
    assert (sciatica["responders_mcid"], sciatica["responder_rate_percent"]) == ("1", "50.0")
    assert by_condition["Piriformis syndrome"]["responder_rate_percent"] == ""


def test_it_is_for_clinic_admins_only(clinician_client, patient_client, admin_client, cohort):
    assert clinician_client.get(URL).status_code == 403
    assert patient_client.get(URL).status_code == 403
    assert admin_client.get(URL, {"view": "everything"}).status_code == 400


def test_it_leaves_out_patients_without_research_consent_when_asked_for(
    admin_client, clinic, cohort, patient
):
    from django.utils import timezone

    research = ConsentDocument.objects.create(
        clinic=clinic,
        kind="research",
        version=1,
        title="Research",
        body="...",
        required=False,
        published_at=timezone.now(),
    )
    ConsentDecision.objects.create(patient=patient, document=research, decision="accepted")
    ConsentDecision.objects.create(patient=cohort[1], document=research, decision="accepted")
    ConsentDecision.objects.create(patient=cohort[1], document=research, decision="withdrawn")
    rows = _read(admin_client.get(URL))
    assert [r["days_logged"] for r in rows] == ["14"]
