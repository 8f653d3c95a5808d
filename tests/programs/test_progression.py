"""Phase progression: proposals from logs and an explicit daily-pain series, and the
clinician's decision. Nothing moves by itself."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from patients.models import AuditEvent
from programs import selectors, services
from programs.models import ExerciseLog, ProgressionProposal
from tests.programs.conftest import START, exercises_of

pytestmark = pytest.mark.django_db

PROPOSALS = "/api/v1/clinician/progression-proposals/"
ON = date(2026, 3, 16)  # phase 1 (2 weeks from 2 March) has run its planned length
# Daily pain 4, easing to 3: the 15th's 3 is not above the 8th-14th mean.
PAIN = {START + timedelta(days=n): 4 for n in range(11)} | {
    date(2026, 3, 13): 3,
    date(2026, 3, 14): 3,
    date(2026, 3, 15): 3,
}


def _log_good_week(patient, assignment, *, pain_during: int = 2) -> None:
    a, b = exercises_of(assignment, 1)
    for n in range(9, 16):
        ExerciseLog.objects.create(
            patient=patient,
            assigned_exercise=a,
            date=date(2026, 3, n),
            sets_done=3,
            pain_during=pain_during,
            difficulty=3,
        )
    for n in (9, 11, 13):
        ExerciseLog.objects.create(
            patient=patient,
            assigned_exercise=b,
            date=date(2026, 3, n),
            sets_done=3,
            pain_during=pain_during,
            difficulty=3,
        )


@pytest.fixture
def proposal(patient, assignment) -> ProgressionProposal:
    _log_good_week(patient, assignment)
    assert services.progression_proposals_generate(on=ON, daily_pain={patient.pk: PAIN}) == 1
    return ProgressionProposal.objects.get()


def test_it_proposes_the_next_phase_and_moves_nothing(patient, assignment, proposal):
    assert proposal.status == "pending"
    assert (proposal.from_phase.position, proposal.to_phase.position) == (1, 2)
    assert proposal.evaluated_on == ON
    assert proposal.basis["next_day_pain"] == 3
    assert proposal.basis["max_pain_during"] == 2
    assert proposal.to_phase.started_on is None
    later = selectors.current_phase_for_patients([patient.pk], on=ON + timedelta(days=7))
    current = later[patient.pk]
    assert current is not None
    assert current["phase_index"] == 1
    assert (
        AuditEvent.objects.filter(object_type="progression_proposal", action="create").count() == 1
    )


def test_it_generates_idempotently(patient, proposal):
    assert services.progression_proposals_generate(on=ON, daily_pain={patient.pk: PAIN}) == 0
    assert (
        services.progression_proposals_generate(
            on=ON + timedelta(days=1), daily_pain={patient.pk: PAIN}
        )
        == 0
    )
    assert ProgressionProposal.objects.count() == 1


def test_it_enforces_one_pending_proposal_per_phase_in_the_database(proposal):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        ProgressionProposal.objects.create(
            assignment=proposal.assignment,
            from_phase=proposal.from_phase,
            to_phase=proposal.to_phase,
            evaluated_on=ON,
        )


def test_it_honours_the_per_assignment_pain_ceiling(patient, assignment, clinician):
    _log_good_week(patient, assignment, pain_during=4)
    assert services.progression_proposals_generate(on=ON, daily_pain={patient.pk: PAIN}) == 0
    services.assignment_update(assignment=assignment, by=clinician, pain_ceiling=4)
    assert services.progression_proposals_generate(on=ON, daily_pain={patient.pk: PAIN}) == 1


def test_it_needs_the_patients_daily_pain(patient, assignment):
    _log_good_week(patient, assignment)
    assert services.progression_proposals_generate(on=ON, daily_pain={}) == 0
    flare = PAIN | {date(2026, 3, 15): 6}
    assert services.progression_proposals_generate(on=ON, daily_pain={patient.pk: flare}) == 0


def _log_every_due_session(patient, assignment, first: date, last: date) -> None:
    assignment = selectors.assignment_on(patient=patient, day=first)
    assert assignment is not None
    plan = selectors.plan_of(assignment)
    day = first
    while day <= last:
        for item in plan.due_on(day):
            ExerciseLog.objects.get_or_create(
                patient=patient,
                assigned_exercise_id=item.exercise.id,
                date=day,
                defaults={"sets_done": 3, "pain_during": 2, "difficulty": 3},
            )
        day += timedelta(days=1)


def test_it_waits_a_week_before_proposing_a_declined_phase_again(
    patient, assignment, proposal, clinician, freeze
):
    freeze(datetime(2026, 3, 16, 12, tzinfo=UTC))
    services.proposal_decline(proposal=proposal, by=clinician, note="Not yet.")
    _log_every_due_session(patient, assignment, date(2026, 3, 16), date(2026, 3, 23))
    pain = PAIN | {date(2026, 3, 16) + timedelta(days=n): 3 for n in range(8)}
    # The rule holds again the next day, but the decline is fresh.
    freeze(datetime(2026, 3, 17, 12, tzinfo=UTC))
    on = date(2026, 3, 17)
    assert rules_ready(patient, on, pain)
    assert services.progression_proposals_generate(on=on, daily_pain={patient.pk: pain}) == 0
    # Eight days after the decline it may be proposed again.
    freeze(datetime(2026, 3, 24, 12, tzinfo=UTC))
    on = date(2026, 3, 24)
    assert services.progression_proposals_generate(on=on, daily_pain={patient.pk: pain}) == 1
    assert ProgressionProposal.objects.filter(status="pending").count() == 1


def rules_ready(patient, on: date, pain) -> bool:
    from programs import rules

    assignment = selectors.assignment_on(patient=patient, day=on)
    assert assignment is not None
    logs = selectors.session_logs_between([patient.pk], start=on - timedelta(days=7), end=on)
    return rules.progression_check(
        plan=selectors.plan_of(assignment), on=on, logs=logs[patient.pk], daily_pain=pain
    ).ready


# --------------------------------------------------------------------------- endpoints


def test_it_lists_pending_proposals_for_the_clinic(clinician_client, proposal, patient):
    response = clinician_client.get(PROPOSALS)
    assert response.status_code == 200
    data = response.json()
    assert data["count"] == 1
    row = data["results"][0]
    assert row["id"] == str(proposal.pk)
    assert row["patient_id"] == str(patient.pk)
    assert row["from_phase"]["index"] == 1
    assert row["to_phase"]["index"] == 2
    assert row["basis"]["window"] == ["2026-03-09", "2026-03-15"]
    assert AuditEvent.objects.filter(object_type="progression_proposal", action="read").count() == 1


def test_it_filters_proposals_by_patient_and_status(
    clinician_client, proposal, patient, other_patient
):
    assert clinician_client.get(PROPOSALS, {"patient": str(patient.pk)}).json()["count"] == 1
    assert clinician_client.get(PROPOSALS, {"patient": str(other_patient.pk)}).json()["count"] == 0
    assert clinician_client.get(PROPOSALS, {"status": "declined"}).json()["count"] == 0
    assert clinician_client.get(PROPOSALS, {"status": "all"}).json()["count"] == 1


@pytest.mark.parametrize("query", [{"status": "maybe"}, {"patient": "pat"}])
def test_it_rejects_bad_proposal_filters(clinician_client, query):
    response = clinician_client.get(PROPOSALS, query)
    assert response.status_code == 400
    assert set(response.json()) & {"status", "patient"}


def test_it_moves_the_program_when_a_clinician_accepts(
    clinician_client, clinician, proposal, patient, patient_client, freeze
):
    freeze(datetime(2026, 3, 16, 12, tzinfo=UTC))
    response = clinician_client.post(
        f"{PROPOSALS}{proposal.pk}/accept/", {"on": "2026-03-18", "note": "Good progress."}
    )
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["status"] == "accepted"
    assert data["effective_from"] == "2026-03-18"
    assert data["decided_by_id"] == str(clinician.pk)
    assert data["note"] == "Good progress."
    # A retried accept changes nothing.
    again = clinician_client.post(f"{PROPOSALS}{proposal.pk}/accept/", {"on": "2026-03-19"})
    assert again.status_code == 200
    assert again.json()["effective_from"] == "2026-03-18"

    plan = lambda day: patient_client.get("/api/v1/me/plan/", {"date": day}).json()  # noqa: E731
    assert plan("2026-03-17")["phase"]["index"] == 1
    assert plan("2026-03-18")["phase"]["index"] == 2
    event = AuditEvent.objects.get(object_type="progression_proposal", action="update")
    assert event.changes["status"] == "accepted"
    assert event.actor == clinician.user


def test_it_starts_the_next_phase_today_by_default(clinician_client, proposal, freeze):
    freeze(datetime(2026, 3, 16, 12, tzinfo=UTC))
    response = clinician_client.post(f"{PROPOSALS}{proposal.pk}/accept/", {})
    assert response.json()["effective_from"] == "2026-03-16"


def test_it_keeps_the_phase_when_a_clinician_declines(clinician_client, proposal, patient):
    response = clinician_client.post(f"{PROPOSALS}{proposal.pk}/decline/", {"note": "Flare risk."})
    assert response.status_code == 200
    assert response.json()["status"] == "declined"
    assert response.json()["decided_at"] is not None
    proposal.to_phase.refresh_from_db()
    assert proposal.to_phase.started_on is None
    assert clinician_client.post(f"{PROPOSALS}{proposal.pk}/decline/", {}).status_code == 200
    assert clinician_client.post(f"{PROPOSALS}{proposal.pk}/accept/", {}).status_code == 409


def test_it_audits_a_declined_proposal(clinician_client, clinician, proposal):
    response = clinician_client.post(f"{PROPOSALS}{proposal.pk}/decline/", {"note": "Flare risk."})
    assert response.status_code == 200
    event = AuditEvent.objects.get(object_type="progression_proposal", action="update")
    assert event.object_id == str(proposal.pk)
    assert event.patient_id == proposal.assignment.patient_id
    assert event.actor == clinician.user
    # The note is kept on the proposal; the append-only trail says only that one was
    # written (docs/security.md § What the audit trail stores).
    assert event.changes == {"status": "declined", "note": "changed (value not recorded)"}


def test_it_refuses_to_decline_an_accepted_proposal(clinician_client, proposal, freeze):
    freeze(datetime(2026, 3, 16, 12, tzinfo=UTC))
    clinician_client.post(f"{PROPOSALS}{proposal.pk}/accept/", {})
    response = clinician_client.post(f"{PROPOSALS}{proposal.pk}/decline/", {})
    assert response.status_code == 409
    assert response.json()["code"] == "already_decided"  # docs/errors.md


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"on": "2026-03-15"}, "on"),  # the past
        ({"on": "2026-08-01"}, "on"),  # too far ahead
        ({"on": "tomorrow"}, "on"),
        ({"note": "x" * 2001}, "note"),
        ({"force": True}, "force"),
    ],
)
def test_it_rejects_a_bad_accept(clinician_client, proposal, freeze, body, field):
    freeze(datetime(2026, 3, 16, 12, tzinfo=UTC))
    response = clinician_client.post(f"{PROPOSALS}{proposal.pk}/accept/", body)
    assert response.status_code == 400
    assert field in response.json()
    proposal.refresh_from_db()
    assert proposal.status == "pending"


def test_it_declines_pending_proposals_when_the_program_ends(proposal, clinician, freeze):
    freeze(datetime(2026, 3, 16, 12, tzinfo=UTC))
    services.assignment_end(assignment=proposal.assignment, by=clinician)
    proposal.refresh_from_db()
    assert proposal.status == "declined"
