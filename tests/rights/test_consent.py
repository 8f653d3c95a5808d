from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from patients import consent, services
from patients.models import AuditEvent, Clinician, ConsentDecision, ConsentDocument, Patient
from rehab.models import DailyLog
from tests.factories import ClinicianFactory, UserFactory

pytestmark = pytest.mark.django_db

ME = "/api/v1/me/"
CONSENTS = "/api/v1/me/consents/"
DOCS = "/api/v1/clinician/consent-documents/"


@pytest.fixture
def clinic_admin(clinic) -> Clinician:
    return ClinicianFactory.create(
        clinic=clinic,
        role=Clinician.Role.CLINIC_ADMIN,
        user=UserFactory.create(email="carol@riverside.example", first_name="Carol"),
    )


@pytest.fixture
def admin_client(clinic_admin, api_client_for):
    return api_client_for(clinic_admin.user)


def _publish(admin_client, *, kind="terms", required=True, title="Terms") -> dict[str, Any]:
    created = admin_client.post(
        DOCS, {"kind": kind, "title": title, "body": f"{title} text", "required": required}
    )
    assert created.status_code == 201, created.json()
    published = admin_client.post(f"{DOCS}{created.json()['id']}/publish/")
    assert published.status_code == 200, published.json()
    data: dict[str, Any] = published.json()
    return data


def _log_body(patient: Patient) -> dict[str, Any]:
    return {"date": patient.local_today().isoformat(), "pain": 4}


def test_a_clinic_without_documents_requires_nothing(patient_client, patient):
    assert patient_client.get(CONSENTS).json() == {"owed": False, "documents": []}
    assert patient_client.post("/api/v1/logs/", _log_body(patient)).status_code == 201


def test_a_required_document_blocks_patient_endpoints_until_accepted(
    patient_client, admin_client, patient
):
    terms = _publish(admin_client)
    response = patient_client.get(ME)
    assert response.status_code == 403
    assert response.json()["code"] == "consent_required"
    assert patient_client.post("/api/v1/logs/", _log_body(patient)).status_code == 403
    assert not DailyLog.objects.exists()
    assert patient_client.get("/api/v1/me/plan/").status_code == 403
    # What stays open: the consents themselves, the patient's data rights, sign-out.
    state = patient_client.get(CONSENTS).json()
    assert state["owed"] is True
    assert state["documents"][0]["state"] == "pending"
    assert patient_client.get("/api/v1/me/access-log/").status_code == 200

    accepted = patient_client.post(f"{CONSENTS}{terms['id']}/", {"decision": "accepted"})
    assert accepted.status_code == 200
    assert accepted.json()["state"] == "accepted"
    assert patient_client.get(ME).status_code == 200
    assert patient_client.post("/api/v1/logs/", _log_body(patient)).status_code == 201
    assert patient_client.post("/api/v1/auth/logout/").status_code == 204


def test_sign_out_works_while_consent_is_owed(patient_client, admin_client):
    _publish(admin_client)
    assert patient_client.post("/api/v1/auth/logout/").status_code == 204


def test_a_new_required_version_must_be_accepted_again(patient_client, admin_client, patient):
    v1 = _publish(admin_client)
    patient_client.post(f"{CONSENTS}{v1['id']}/", {"decision": "accepted"})
    v2 = _publish(admin_client, title="Terms, revised")
    assert v2["version"] == 2
    assert patient_client.get(ME).status_code == 403
    stale = patient_client.post(f"{CONSENTS}{v1['id']}/", {"decision": "accepted"})
    assert stale.status_code == 400
    assert stale.json()["code"] == "consent_document_superseded"
    assert (
        patient_client.post(f"{CONSENTS}{v2['id']}/", {"decision": "accepted"}).status_code == 200
    )
    assert patient_client.get(ME).status_code == 200


def test_a_required_document_cannot_be_declined_or_withdrawn(patient_client, admin_client):
    terms = _publish(admin_client)
    for decision in ("declined", "withdrawn"):
        response = patient_client.post(f"{CONSENTS}{terms['id']}/", {"decision": decision})
        assert response.status_code == 400
        assert response.json()["code"] == "consent_required_document"
    assert not ConsentDecision.objects.exists()


def test_an_optional_consent_is_given_withdrawn_and_its_history_kept(
    patient_client, admin_client, patient
):
    research = _publish(admin_client, kind="research", required=False, title="Research")
    assert patient_client.get(ME).status_code == 200  # optional: nothing owed
    url = f"{CONSENTS}{research['id']}/"
    assert patient_client.post(url, {"decision": "withdrawn"}).json()["code"] == (
        "consent_not_given"
    )
    assert patient_client.post(url, {"decision": "accepted"}).status_code == 200
    assert consent.consent_given(patient=patient, kind="research")
    assert patient_client.post(url, {"decision": "withdrawn"}).json()["state"] == "withdrawn"
    assert not consent.consent_given(patient=patient, kind="research")
    history = patient_client.get(f"{CONSENTS}history/").json()
    assert [d["decision"] for d in history["results"]] == ["withdrawn", "accepted"]
    assert AuditEvent.objects.filter(patient=patient, object_type="consent_decision").count() == 2


def test_it_refuses_a_bad_decision_and_records_nothing(patient_client, admin_client):
    terms = _publish(admin_client)
    response = patient_client.post(f"{CONSENTS}{terms['id']}/", {"decision": "maybe"})
    assert response.status_code == 400
    assert "decision" in response.json()
    assert not ConsentDecision.objects.exists()


REGISTER = "/api/v1/auth/register/"


def _invited(clinician) -> str:
    issued = services.invitation_create(
        clinician=clinician,
        email="new@example.com",
        first_name="New",
        last_name="Patient",
        date_of_birth=date(1980, 1, 1),
        timezone_name="Europe/London",
    )
    return issued.code


def _register(client, code: str, consents: list[dict[str, Any]] | None = None):
    body: dict[str, Any] = {
        "code": code,
        "email": "new@example.com",
        "password": "a-long-pass-phrase-9",
    }
    if consents is not None:
        body["consents"] = consents
    return client.post(REGISTER, body, format="json")


def _nothing_registered() -> None:
    assert not Patient.objects.filter(email="new@example.com", user__isnull=False).exists()
    assert not ConsentDecision.objects.exists()
    assert not AuditEvent.objects.filter(object_type__in=("account", "consent_decision")).exists()


def test_registration_needs_the_clinics_required_documents_accepted(
    admin_client, clinician, anon_client
):
    _publish(admin_client)
    _publish(admin_client, kind="research", required=False, title="Research")
    code = _invited(clinician)
    response = _register(anon_client, code)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "consent_required"
    # What the app shows before it tries again: the current documents, texts included.
    assert sorted((d["kind"], d["version"], d["required"]) for d in body["documents"]) == [
        ("research", 1, False),
        ("terms", 1, True),
    ]
    assert {d["body"] for d in body["documents"]} == {"Terms text", "Research text"}
    # Accepting only the optional one is not enough either.
    response = _register(anon_client, code, [{"kind": "research", "version": 1}])
    assert response.json()["code"] == "consent_required"
    _nothing_registered()
    # The code still works.
    assert _register(anon_client, code, [{"kind": "terms", "version": 1}]).status_code == 201


def test_registration_refuses_a_version_that_is_not_current(admin_client, clinician, anon_client):
    _publish(admin_client)
    _publish(admin_client, title="Terms, second edition")  # version 2 is current
    code = _invited(clinician)
    for stale in (
        [{"kind": "terms", "version": 1}],
        [{"kind": "terms", "version": 3}],
        [{"kind": "terms", "version": 2}, {"kind": "privacy", "version": 1}],  # not published
    ):
        response = _register(anon_client, code, stale)
        assert response.status_code == 400, stale
        assert response.json()["code"] == "consent_document_superseded"
        assert [d["version"] for d in response.json()["documents"]] == [2]
    _nothing_registered()


@pytest.mark.parametrize(
    "consents",
    [
        [{"kind": "terms", "version": 1}, {"kind": "terms", "version": 1}],
        [{"kind": "cookies", "version": 1}],
        [{"kind": "terms", "version": 0}],
        [{"kind": "terms"}],
        [{"kind": "terms", "version": 1, "decision": "declined"}],
        "terms",
    ],
)
def test_registration_refuses_malformed_consents(admin_client, clinician, anon_client, consents):
    _publish(admin_client)
    response = _register(anon_client, _invited(clinician), consents)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"].startswith("consents")
    _nothing_registered()


def test_registration_shows_no_document_to_a_wrong_code(admin_client, clinician, anon_client):
    _publish(admin_client)
    _invited(clinician)
    response = _register(anon_client, "WRONG-CODE-1234", [{"kind": "terms", "version": 9}])
    assert response.status_code == 400
    assert "documents" not in response.json()
    assert "Terms text" not in response.content.decode()


def test_registration_records_the_acceptances_with_the_account(
    admin_client, clinician, anon_client
):
    terms = _publish(admin_client)
    research = _publish(admin_client, kind="research", required=False, title="Research")
    _publish(admin_client, kind="sensitive_questions", required=False, title="Sensitive")
    response = _register(
        anon_client,
        _invited(clinician),
        [{"kind": "terms", "version": 1}, {"kind": "research", "version": 1}],
    )
    assert response.status_code == 201, response.json()
    patient = Patient.objects.get(email="new@example.com")
    assert patient.consent_owed is False
    decisions = ConsentDecision.objects.filter(patient=patient)
    assert sorted((str(d.document_id), d.decision, d.actor_id) for d in decisions) == sorted(
        [
            (terms["id"], "accepted", patient.user_id),
            (research["id"], "accepted", patient.user_id),
        ]
    )
    events = AuditEvent.objects.filter(patient=patient, object_type="consent_decision")
    assert sorted(e.changes["kind"] for e in events) == ["research", "terms"]
    assert consent.consent_given(patient=patient, kind="research")
    assert not consent.consent_given(patient=patient, kind="sensitive_questions")
    # The app works at once: nothing is owed.
    anon_client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['token']}")
    assert anon_client.get(ME).status_code == 200
    states = {
        d["document"]["kind"]: d["state"] for d in anon_client.get(CONSENTS).json()["documents"]
    }
    assert states == {"terms": "accepted", "research": "accepted", "sensitive_questions": "pending"}


def test_registration_without_consents_still_works_where_nothing_is_required(
    clinician, anon_client
):
    assert _register(anon_client, _invited(clinician)).status_code == 201
    assert not ConsentDecision.objects.exists()


def test_only_a_clinic_admin_manages_documents(clinician_client, admin_client):
    payload = {"kind": "terms", "title": "T", "body": "B", "required": True}
    assert clinician_client.post(DOCS, payload).status_code == 403
    draft = admin_client.post(DOCS, payload).json()
    assert clinician_client.post(f"{DOCS}{draft['id']}/publish/").status_code == 403
    assert not ConsentDocument.objects.filter(published_at__isnull=False).exists()
    assert clinician_client.get(DOCS).json()["count"] == 1


def test_it_hides_another_clinics_documents_and_patients(
    admin_client, other_clinic_clinician_client, other_patient_client, patient_client, patient
):
    terms = _publish(admin_client)
    assert other_clinic_clinician_client.get(DOCS).json()["count"] == 0
    assert other_clinic_clinician_client.post(f"{DOCS}{terms['id']}/publish/").status_code == 404
    response = other_patient_client.post(f"{CONSENTS}{terms['id']}/", {"decision": "accepted"})
    assert response.status_code == 404
    assert other_patient_client.get(ME).status_code == 200  # another clinic: not blocked
    assert (
        other_clinic_clinician_client.get(
            f"/api/v1/clinician/patients/{patient.pk}/consents/"
        ).status_code
        == 404
    )


def test_a_patient_cannot_see_a_draft(patient_client, admin_client):
    draft = admin_client.post(
        DOCS, {"kind": "terms", "title": "Draft", "body": "B", "required": True}
    ).json()
    response = patient_client.post(f"{CONSENTS}{draft['id']}/", {"decision": "accepted"})
    assert response.status_code == 404
    assert patient_client.get(CONSENTS).json()["documents"] == []


def test_clinicians_see_the_state_on_the_patient(clinician_client, admin_client, patient):
    _publish(admin_client)
    _publish(admin_client, kind="research", required=False, title="Research")
    detail = clinician_client.get(f"/api/v1/clinician/patients/{patient.pk}/").json()
    assert detail["consent_owed"] is True
    assert {(c["kind"], c["state"]) for c in detail["consents"]} == {
        ("terms", "pending"),
        ("research", "pending"),
    }
    state = clinician_client.get(f"/api/v1/clinician/patients/{patient.pk}/consents/").json()
    assert state["owed"] is True


def test_the_fhir_export_carries_the_consents(patient_client, admin_client):
    from fhir.resources.R4B.consent import Consent

    terms = _publish(admin_client)
    research = _publish(admin_client, kind="research", required=False, title="Research")
    patient_client.post(f"{CONSENTS}{terms['id']}/", {"decision": "accepted"})
    patient_client.post(f"{CONSENTS}{research['id']}/", {"decision": "declined"})
    bundle = json.loads(patient_client.get("/api/v1/me/export/fhir/").content)
    consents = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Consent"
    ]
    for resource in consents:
        Consent.model_validate(resource)
    assert sorted(c["status"] for c in consents) == ["active", "rejected"]
    data = json.loads(patient_client.get("/api/v1/me/export/json/").content)
    assert [d["decision"] for d in data["consent_decisions"]] == ["accepted", "declined"]


def test_the_dashboard_patient_page_says_when_consent_is_owed(clinician, patient):
    from django.test import Client

    web = Client()
    web.force_login(clinician.user)
    url = f"/dashboard/patients/{patient.pk}/"
    assert "current required consent" not in web.get(url).content.decode()
    Patient.objects.filter(pk=patient.pk).update(consent_owed=True)
    assert "current required consent" in web.get(url).content.decode()


# ------------------------------------------------------------- optional sensitive questions


def _log(patient: Patient, days_ago: int, sexual_function: str | None) -> dict[str, Any]:
    from datetime import timedelta

    safety = {"saddle_numbness": "no"}
    if sexual_function is not None:
        safety["sexual_function_change"] = sexual_function
    day = patient.local_today() - timedelta(days=days_ago)
    return {"date": day.isoformat(), "pain": 4, "safety": safety}


def test_the_sensitive_questions_follow_the_patients_consent(patient_client, admin_client, patient):
    # A clinic without such a document asks them as before.
    assert patient_client.get(ME).json()["sensitive_questions"] is True
    sensitive = _publish(admin_client, kind="sensitive_questions", required=False, title="S")
    url = f"{CONSENTS}{sensitive['id']}/"
    # Not decided yet: not asked, and an answer is refused, nothing stored.
    assert patient_client.get(ME).json()["sensitive_questions"] is False
    refused = patient_client.post(
        "/api/v1/logs/", _log(patient, 3, "prefer_not_to_say"), format="json"
    )
    assert refused.status_code == 400
    assert refused.json()["code"] == "consent_sensitive_questions"
    assert refused.json()["fields"] == ["safety.sexual_function_change"]
    assert not DailyLog.objects.exists()
    # "no" is the stored default, not an answer: such a log goes in.
    assert (
        patient_client.post("/api/v1/logs/", _log(patient, 3, "no"), format="json").status_code
        == 201
    )

    assert patient_client.post(url, {"decision": "accepted"}).status_code == 200
    assert patient_client.get(ME).json()["sensitive_questions"] is True
    given = patient_client.post(
        "/api/v1/logs/", _log(patient, 2, "prefer_not_to_say"), format="json"
    )
    assert given.status_code == 201, given.json()

    # Withdrawn: stops from then on; what was answered before is kept.
    assert patient_client.post(url, {"decision": "withdrawn"}).status_code == 200
    assert patient_client.get(ME).json()["sensitive_questions"] is False
    later = patient_client.post("/api/v1/logs/", _log(patient, 1, "new_or_worse"), format="json")
    assert later.status_code == 400
    assert later.json()["code"] == "consent_sensitive_questions"
    kept = DailyLog.objects.get(pk=given.json()["id"])
    assert kept.safety["sexual_function_change"] == "prefer_not_to_say"
    # An edit may not add an answer either; an edit that leaves it alone keeps it.
    log_url = f"/api/v1/logs/{kept.pk}/"
    edit = patient_client.patch(
        log_url, {"safety": {"sexual_function_change": "new_or_worse"}}, format="json"
    )
    assert edit.status_code == 400
    assert patient_client.patch(log_url, {"pain": 5}, format="json").status_code == 200
    kept.refresh_from_db()
    assert (kept.pain, kept.safety["sexual_function_change"]) == (5, "prefer_not_to_say")
    assert DailyLog.objects.count() == 2


def test_the_dashboard_patient_page_shows_each_consents_state(
    patient_client, admin_client, clinician, patient
):
    from django.test import Client

    terms = _publish(admin_client)
    research = _publish(admin_client, kind="research", required=False, title="Research")
    patient_client.post(f"{CONSENTS}{terms['id']}/", {"decision": "accepted"})
    patient_client.post(f"{CONSENTS}{research['id']}/", {"decision": "accepted"})
    patient_client.post(f"{CONSENTS}{research['id']}/", {"decision": "withdrawn"})
    web = Client()
    web.force_login(clinician.user)
    page = web.get(f"/dashboard/patients/{patient.pk}/").content.decode()
    assert "Terms of use v1 accepted" in page
    assert "research and service audits v1 withdrawn" in page
