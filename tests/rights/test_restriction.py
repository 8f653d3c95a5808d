"""Restriction (docs/data-rights.md § Restriction): once an erasure is approved, the
patient's record is kept but nobody works on it any more. It leaves the caseload (API
and dashboard), the clinic-wide lists, the reminders and every scheduled job; the safety
path keeps what it already owes; a clinician still opens the record by id."""

from __future__ import annotations

import csv
import datetime as dt
import io
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.utils import timezone

from patients.models import Clinician, Patient
from programs.models import ProgressionProposal
from rehab.models import Alert, DailyLog, QuestionnaireDue
from rehab.selectors.review import CHANGED_DAY_DETECTORS, REVIEW_DETECTORS, Changed
from rehab.services import record as record_services
from rehab.services import review
from rights import erasure
from tests.factories import ClinicianFactory, PatientFactory, UserFactory
from tests.rights.conftest import fill_record

pytestmark = pytest.mark.django_db

CASELOAD = "/api/v1/clinician/patients/"


@pytest.fixture
def admin(clinic) -> Clinician:
    return ClinicianFactory.create(
        clinic=clinic, role=Clinician.Role.CLINIC_ADMIN, user=UserFactory.create()
    )


def _approve(patient_client, admin_client) -> dict[str, Any]:
    asked = patient_client.post("/api/v1/me/erasure-request/", {"reason": "Moving on"})
    assert asked.status_code == 201, asked.json()
    decided = admin_client.post(
        f"/api/v1/clinician/erasure-requests/{asked.json()['id']}/decide/",
        {"decision": "approve"},
    )
    assert decided.status_code == 200, decided.json()
    body: dict[str, Any] = decided.json()
    return body


def _caseload_ids(client) -> set[str]:
    response = client.get(CASELOAD)
    assert response.status_code == 200
    return {row["id"] for row in response.json()["results"]}


def test_an_approved_erasure_under_a_hold_restricts_the_record(
    patient, other_patient, clinician, clinician_client, patient_client, admin, api_client_for
):
    fill_record(patient, clinician)
    colleague = PatientFactory.create(clinic=patient.clinic)
    assert _caseload_ids(clinician_client) == {str(patient.pk), str(colleague.pk)}

    assert _approve(patient_client, api_client_for(admin.user))["status"] == "restricted"
    patient.refresh_from_db()
    assert patient.restricted_at is not None
    assert list(Patient.objects.active().filter(clinic=patient.clinic)) == [colleague]

    # Off the caseload, the API's and the dashboard's, searched for or not.
    assert _caseload_ids(clinician_client) == {str(colleague.pk)}
    assert _caseload_ids_search(clinician_client, patient.last_name) == set()
    web = Client()
    web.force_login(clinician.user)
    page = web.get("/dashboard/")
    assert page.status_code == 200
    assert f"/dashboard/patients/{patient.pk}/" not in page.content.decode()
    assert f"/dashboard/patients/{colleague.pk}/" in page.content.decode()

    # Still reachable by id, with its state, and exportable.
    detail = clinician_client.get(f"{CASELOAD}{patient.pk}/")
    assert detail.status_code == 200
    assert detail.json()["restricted_at"] is not None
    assert clinician_client.get(f"{CASELOAD}{patient.pk}/export/json/").status_code == 200
    assert web.get(f"/dashboard/patients/{patient.pk}/").status_code == 200
    assert "restricted" in web.get(f"/dashboard/patients/{patient.pk}/").content.decode()


def _caseload_ids_search(client, search: str) -> set[str]:
    response = client.get(CASELOAD, {"search": search})
    assert response.status_code == 200
    return {row["id"] for row in response.json()["results"]}


def test_the_safety_path_keeps_what_it_already_owes(
    patient, clinician, clinician_client, patient_client, admin, api_client_for
):
    fill_record(patient, clinician)  # with an open emergency alert
    _approve(patient_client, api_client_for(admin.user))
    alert = Alert.objects.get(patient=patient)
    # The open alert stays in the clinic's inbox until a clinician closes it.
    listed = clinician_client.get("/api/v1/clinician/alerts/")
    assert listed.status_code == 200
    assert str(alert.pk) in {row["id"] for row in listed.json()["results"]}


NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TODAY = dt.date(2026, 11, 20)


def _restrict(patient: Patient) -> None:
    # As an approved erasure does (the account closed, the record restricted).
    erasure.account_close(patient=patient)
    patient.refresh_from_db()


def test_no_review_rule_judges_a_restricted_patient(clinic):
    with time_machine.travel(NOW, tick=False):
        restricted, active = (PatientFactory.create(clinic=clinic) for _ in range(2))
        for p in (restricted, active):
            # A spike today (NR-PAIN-01) after a quiet week, on a changed earlier day too.
            for n, pain in enumerate([3, 3, 3, 3, 3, 3, 9, 3, 9]):
                DailyLog.objects.create(
                    patient=p, date=TODAY - dt.timedelta(days=8 - n), pain=pain, worst_pain=9
                )
        Patient.objects.filter(pk=restricted.pk).update(restricted_at=timezone.now())
        fired: set[UUID] = set()
        for rule_id, detect in REVIEW_DETECTORS.items():
            found = detect(now=NOW)
            assert restricted.pk not in found, rule_id
            fired |= set(found)
        changed = Changed(since=NOW - dt.timedelta(days=2), backfill_days=7)
        for rule_id, detect_changed in CHANGED_DAY_DETECTORS.items():
            pairs = detect_changed(now=NOW, changed=changed)
            assert restricted.pk not in {pid for pid, _ in pairs}, rule_id
        assert active.pk in fired  # the same history fires for an active patient
        review.review_rules_run(now=NOW)
        assert not Alert.objects.filter(patient=restricted).exists()
        assert Alert.objects.filter(patient=active).exists()


def test_a_restricted_patient_gets_no_missed_log_reminder(clinic, run_published):
    with time_machine.travel(NOW, tick=False):
        restricted, active = (PatientFactory.create(clinic=clinic) for _ in range(2))
        for p in (restricted, active):
            DailyLog.objects.create(patient=p, date=TODAY - dt.timedelta(days=4), pain=3)
        # The column alone: even an account somehow still active is not chased.
        Patient.objects.filter(pk=restricted.pk).update(restricted_at=timezone.now())
        assert review.missed_log_reminders_send() == 1
        assert active.user is not None
        assert [m.to for m in mail.outbox] == [[active.user.email]]


def test_no_questionnaire_is_scheduled_for_a_restricted_patient(patient, clinician, other_patient):
    fill_record(patient, clinician)  # logs and a program
    QuestionnaireDue.objects.filter(patient=patient).delete()
    _restrict(patient)
    record_services.questionnaires_schedule_baselines()
    record_services.questionnaires_schedule_programs()
    assert not QuestionnaireDue.objects.filter(patient=patient).exists()


def test_no_progression_is_proposed_for_a_restricted_patient():
    from rehab.demo import seed_demo
    from rehab.services.progression import progression_proposals_run

    with time_machine.travel(datetime(2026, 11, 20, 12, tzinfo=UTC), tick=False):
        seed_demo()
        ProgressionProposal.objects.all().delete()
        Patient.objects.update(restricted_at=timezone.now())
        assert progression_proposals_run() == 0
        assert not ProgressionProposal.objects.exists()


def test_the_clinics_proposal_inbox_leaves_a_restricted_patient_out():
    from programs import selectors as program_selectors
    from rehab.demo import seed_demo
    from rehab.services.progression import progression_proposals_run

    with time_machine.travel(datetime(2026, 11, 20, 12, tzinfo=UTC), tick=False):
        seed_demo()
        progression_proposals_run()
    proposal = ProgressionProposal.objects.filter(status="pending").select_related(
        "assignment__patient"
    )[0]
    patient = proposal.assignment.patient
    clinician = Clinician.objects.filter(clinic=patient.clinic)[0]
    assert proposal in program_selectors.proposal_list(user=clinician.user)
    _restrict(patient)
    assert proposal not in program_selectors.proposal_list(user=clinician.user)
    # The patient's own page still shows it.
    assert proposal in program_selectors.proposal_list(user=clinician.user, patient_id=patient.pk)


def test_the_outcomes_file_leaves_out_a_restricted_record_but_counts_an_erased_one(
    clinic, admin, api_client_for
):
    restricted, erased, active = (PatientFactory.create(clinic=clinic) for _ in range(3))
    for p in (restricted, erased, active):
        DailyLog.objects.create(patient=p, date=p.local_today(), pain=4)
    _restrict(restricted)
    erasure.patient_pseudonymise(patient_id=erased.pk, reason="request")
    response = api_client_for(admin.user).get("/api/v1/clinician/outcomes/csv/")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 2
