from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from django.conf import settings
from django.db import DatabaseError, transaction
from django.test import override_settings
from django.utils import timezone

from patients.models import HISTORY_FLAGS, AuditEvent, Patient
from tests.factories import ClinicianFactory, PatientFactory, UserFactory

pytestmark = pytest.mark.django_db

DETAIL = "/api/v1/clinician/patients/{}/"


def _url(patient: Any) -> str:
    return DETAIL.format(getattr(patient, "pk", patient))


def _snapshot(patient: Patient) -> dict[str, Any]:
    fresh = Patient.objects.get(pk=patient.pk)
    return {
        "first_name": fresh.first_name,
        "last_name": fresh.last_name,
        "date_of_birth": fresh.date_of_birth,
        "timezone": fresh.timezone,
        "condition": fresh.condition,
        "affected_side": fresh.affected_side,
        "history": fresh.history,
    }


# --------------------------------------------------------------------------- detail


def test_it_shows_a_patient_to_their_clinician(clinician_client, patient, clinician):
    response = clinician_client.get(_url(patient))
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(patient.pk)
    assert body["first_name"] == "Pat"
    assert body["last_name"] == "Doe"
    assert body["email"] == "pat@example.com"
    assert body["date_of_birth"] == "1975-05-17"
    assert body["timezone"] == "Europe/London"
    assert body["condition"] == "Sciatica (L5 radiculopathy)"
    assert body["affected_side"] == "left"
    assert body["registered"] is True
    assert body["care_team"] == [
        {"id": str(clinician.pk), "name": "Alice Physio", "role": "physiotherapist"}
    ]


def test_it_shows_six_history_flags_defaulting_to_false(clinician_client, patient):
    history = clinician_client.get(_url(patient)).json()["history"]
    assert history == {
        "cancer": False,
        "immunosuppressed": False,
        "iv_drug_use": False,
        "osteoporosis": False,
        "long_term_steroids": False,
        "previous_spine_surgery": False,
    }
    assert set(history) == set(HISTORY_FLAGS)


def test_it_shows_a_patient_to_any_clinician_of_the_clinic(api_client_for, patient, clinic):
    # Scope is the clinic: a colleague covering the caseload sees the patient too.
    colleague = ClinicianFactory(clinic=clinic, user=UserFactory(email="cover@riverside.example"))
    response = api_client_for(colleague.user).get(_url(patient))
    assert response.status_code == 200
    assert len(response.json()["care_team"]) == 1


def test_it_shows_an_invited_patient_as_not_registered(clinician_client, clinician):
    invited = PatientFactory(
        clinic=clinician.clinic,
        user=None,
        email="new@example.com",
        first_name="Nina",
        last_name="New",
    )
    response = clinician_client.get(_url(invited))
    assert response.status_code == 200
    assert response.json()["registered"] is False


# --------------------------------------------------------------------------- patch


def test_it_updates_history_flags(clinician_client, patient):
    response = clinician_client.patch(
        _url(patient), {"history": {"cancer": True, "osteoporosis": True}}
    )
    assert response.status_code == 200
    assert response.json()["history"]["cancer"] is True
    assert response.json()["history"]["osteoporosis"] is True
    patient.refresh_from_db()
    assert patient.history_cancer is True
    assert patient.history_osteoporosis is True
    assert patient.history_iv_drug_use is False


def test_it_merges_history_keeping_flags_not_sent(clinician_client, patient):
    clinician_client.patch(_url(patient), {"history": {"cancer": True, "iv_drug_use": True}})
    response = clinician_client.patch(_url(patient), {"history": {"iv_drug_use": False}})
    assert response.status_code == 200
    history = response.json()["history"]
    assert history["cancer"] is True
    assert history["iv_drug_use"] is False
    assert Patient.objects.get(pk=patient.pk).history_cancer is True


def test_it_keeps_fields_not_sent(clinician_client, patient):
    before = _snapshot(patient)
    response = clinician_client.patch(_url(patient), {"condition": "Deep gluteal syndrome"})
    assert response.status_code == 200
    after = _snapshot(patient)
    assert after["condition"] == "Deep gluteal syndrome"
    assert {k: v for k, v in after.items() if k != "condition"} == {
        k: v for k, v in before.items() if k != "condition"
    }


def test_it_keeps_history_when_only_the_profile_changes(clinician_client, patient):
    Patient.objects.filter(pk=patient.pk).update(history_long_term_steroids=True)
    response = clinician_client.patch(_url(patient), {"timezone": "America/New_York"})
    assert response.status_code == 200
    assert response.json()["timezone"] == "America/New_York"
    assert response.json()["history"]["long_term_steroids"] is True


def test_it_updates_the_profile(clinician_client, patient):
    response = clinician_client.patch(
        _url(patient),
        {
            "first_name": "Patricia",
            "last_name": "Doe-Smith",
            "date_of_birth": "1976-01-02",
            "timezone": "Australia/Sydney",
            "condition": "",
            "affected_side": "both",
        },
    )
    assert response.status_code == 200
    patient.refresh_from_db()
    assert patient.first_name == "Patricia"
    assert patient.last_name == "Doe-Smith"
    assert patient.date_of_birth == date(1976, 1, 2)
    assert patient.timezone == "Australia/Sydney"
    assert patient.condition == ""
    assert patient.affected_side == "both"


def test_it_accepts_an_empty_patch(clinician_client, patient):
    before = _snapshot(patient)
    response = clinician_client.patch(_url(patient), {})
    assert response.status_code == 200
    assert _snapshot(patient) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"history": {"diabetes": True}}, "history"),
        ({"history": {"cancer": "yes"}}, "history"),
        ({"history": {"cancer": 1}}, "history"),
        ({"history": {"cancer": None}}, "history"),
        ({"history": {"cancer": "true"}}, "history"),
        ({"history": ["cancer"]}, "history"),
        ({"history": None}, "history"),
        ({"email": "new@example.com"}, "email"),
        ({"nickname": "Pat"}, "nickname"),
        ({"timezone": "Europe/Narnia"}, "timezone"),
        ({"timezone": ""}, "timezone"),
        ({"affected_side": "middle"}, "affected_side"),
        ({"condition": "x" * 201}, "condition"),
        ({"first_name": ""}, "first_name"),
        ({"date_of_birth": "not-a-date"}, "date_of_birth"),
        ({"date_of_birth": "2999-01-01"}, "date_of_birth"),
    ],
)
def test_it_rejects_bad_patches_and_changes_nothing(clinician_client, patient, body, field):
    before = _snapshot(patient)
    response = clinician_client.patch(_url(patient), body)
    assert response.status_code == 400
    assert field in response.json()
    assert _snapshot(patient) == before
    assert not AuditEvent.objects.filter(action="update").exists()


def test_it_rejects_a_bad_flag_without_applying_the_good_ones(clinician_client, patient):
    response = clinician_client.patch(
        _url(patient), {"history": {"cancer": True, "osteoporosis": "yes"}}
    )
    assert response.status_code == 400
    assert Patient.objects.get(pk=patient.pk).history_cancer is False


def test_it_rejects_a_date_of_birth_of_today(clinician_client, patient):
    today = timezone.now().date().isoformat()
    response = clinician_client.patch(_url(patient), {"date_of_birth": today})
    assert response.status_code == 400
    assert "date_of_birth" in response.json()


# --------------------------------------------------------------------------- scope


def test_it_hides_other_clinics_patients_with_404(other_clinic_clinician_client, patient):
    before = _snapshot(patient)
    assert other_clinic_clinician_client.get(_url(patient)).status_code == 404
    response = other_clinic_clinician_client.patch(_url(patient), {"history": {"cancer": True}})
    assert response.status_code == 404
    assert _snapshot(patient) == before


def test_it_hides_the_clinics_patients_from_each_other(clinician_client, other_patient):
    assert clinician_client.get(_url(other_patient)).status_code == 404
    assert clinician_client.patch(_url(other_patient), {}).status_code == 404


def test_it_refuses_patients_with_403(patient_client, patient, other_patient):
    # Even for their own record: this is a clinician endpoint.
    assert patient_client.get(_url(patient)).status_code == 403
    assert patient_client.patch(_url(patient), {"history": {"cancer": True}}).status_code == 403
    assert patient_client.get(_url(other_patient)).status_code == 403
    assert Patient.objects.get(pk=patient.pk).history_cancer is False


def test_it_refuses_anonymous_callers_with_401(anon_client, patient):
    assert anon_client.get(_url(patient)).status_code == 401
    assert anon_client.patch(_url(patient), {"history": {"cancer": True}}).status_code == 401
    assert Patient.objects.get(pk=patient.pk).history_cancer is False


def test_it_answers_404_for_an_unknown_patient(clinician_client, patient):
    assert clinician_client.get(_url(uuid.uuid4())).status_code == 404
    assert clinician_client.patch(_url(uuid.uuid4()), {}).status_code == 404


def test_it_answers_404_with_json_for_a_malformed_id(clinician_client, patient):
    response = clinician_client.get("/api/v1/clinician/patients/not-a-uuid/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")


def test_it_refuses_a_revoked_token_with_401(clinician, patient, api_client_for):
    from patients.models import AuthToken

    client = api_client_for(clinician.user)
    assert client.get(_url(patient)).status_code == 200
    AuthToken.objects.filter(user=clinician.user).delete()
    assert client.get(_url(patient)).status_code == 401


# --------------------------------------------------------------------------- audit


def test_it_audits_a_read(clinician_client, clinician, patient):
    clinician_client.get(_url(patient), REMOTE_ADDR="192.0.2.10", HTTP_USER_AGENT="RehabWeb/1")
    event = AuditEvent.objects.get(action="read")
    assert event.actor == clinician.user
    assert event.actor_email == "alice@riverside.example"
    assert event.patient_id == patient.pk
    assert event.object_type == "patient"
    assert event.object_id == str(patient.pk)
    assert event.ip == "192.0.2.10"
    assert event.method == "GET"
    assert event.path == _url(patient)
    assert event.user_agent == "RehabWeb/1"
    assert timezone.now() - event.at < timedelta(minutes=1)


def test_it_audits_an_update_with_what_changed(clinician_client, clinician, patient):
    clinician_client.patch(
        _url(patient),
        {"condition": "Piriformis syndrome", "history": {"cancer": True, "osteoporosis": False}},
        REMOTE_ADDR="192.0.2.11",
    )
    event = AuditEvent.objects.get(action="update")
    assert event.actor == clinician.user
    assert event.patient_id == patient.pk
    assert event.ip == "192.0.2.11"
    assert event.method == "PATCH"
    # Only real changes are recorded: osteoporosis was already false.
    assert event.changes == {
        "condition": {"from": "Sciatica (L5 radiculopathy)", "to": "Piriformis syndrome"},
        "history.cancer": {"from": False, "to": True},
    }


@override_settings(TRUSTED_PROXY_COUNT=1)
def test_it_takes_the_address_the_proxy_saw(clinician_client, patient):
    # The TLS proxy appends the caller's address; what the caller wrote before it is untrusted.
    clinician_client.get(
        _url(patient), HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.7", REMOTE_ADDR="10.0.0.2"
    )
    assert AuditEvent.objects.get(action="read").ip == "198.51.100.7"


def test_it_survives_a_forwarded_for_header_that_is_not_an_address(clinician_client, patient):
    response = clinician_client.get(
        _url(patient), HTTP_X_FORWARDED_FOR="not-an-ip", REMOTE_ADDR="10.0.0.3"
    )
    assert response.status_code == 200
    assert AuditEvent.objects.get(action="read").ip == "10.0.0.3"


def test_it_writes_no_read_event_for_refused_requests_but_audits_the_denial(
    other_clinic_clinician_client, patient_client, anon_client, patient
):
    other_clinic_clinician_client.get(_url(patient))
    patient_client.get(_url(patient))
    anon_client.get(_url(patient))
    events = AuditEvent.objects.filter(patient_id=patient.pk)
    assert not events.exclude(action="denied").exists()
    # The two signed-in callers' refusals (404 and 403); an anonymous one is no one's.
    assert sorted(e.changes["status"] for e in events) == [403, 404]


REFUSED = "permission denied" if settings.DATABASE_OWNER else "append-only"


def test_it_refuses_to_update_audit_events(clinician_client, patient):
    clinician_client.get(_url(patient))
    events = AuditEvent.objects.filter(patient_id=patient.pk)
    # As the application role: it holds no UPDATE privilege on the table; a single-role
    # setup (an external DATABASE_URL alone) meets the append-only trigger instead.
    with pytest.raises(DatabaseError, match=REFUSED), transaction.atomic():
        events.update(actor_email="someone-else@example.com")
    assert events.get().actor_email == "alice@riverside.example"


def test_it_refuses_to_delete_audit_events(clinician_client, patient):
    clinician_client.get(_url(patient))
    events = AuditEvent.objects.filter(patient_id=patient.pk)
    with pytest.raises(DatabaseError, match=REFUSED), transaction.atomic():
        events.delete()
    assert events.count() == 1
