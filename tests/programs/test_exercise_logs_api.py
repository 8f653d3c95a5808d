"""Exercise logs from the app: retry-safe by the app's UUID, validated, scoped, audited."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from patients.models import AuditEvent
from programs import services
from programs.models import ExerciseLog
from tests.programs.conftest import START, exercises_of

pytestmark = pytest.mark.django_db

LOGS = "/api/v1/exercise-logs/"


@pytest.fixture
def exercise(assignment):
    return exercises_of(assignment, 1)[0]


@pytest.fixture
def body(exercise) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "exercise": str(exercise.pk),
        "date": "2026-03-02",
        "sets_done": 3,
        "reps_done": 10,
        "pain_during": 2,
        "difficulty": 4,
        "stopped_for_pain": False,
    }


def test_it_stores_an_exercise_log(patient_client, patient, frozen_at_start, body, exercise):
    response = patient_client.post(LOGS, body)
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["id"] == body["id"]
    assert data["exercise"] == str(exercise.pk)
    assert data["exercise_name"] == "P1 exercise 1"
    assert (data["sets_done"], data["reps_done"], data["hold_seconds_done"]) == (3, 10, None)
    assert (data["pain_during"], data["difficulty"], data["stopped_for_pain"]) == (2, 4, False)
    log = ExerciseLog.objects.get()
    assert log.patient == patient
    assert str(log.pk) == body["id"]


def test_it_generates_an_id_when_the_app_sends_none(patient_client, frozen_at_start, body):
    del body["id"]
    response = patient_client.post(LOGS, body)
    assert response.status_code == 201
    assert ExerciseLog.objects.get().pk == uuid.UUID(response.json()["id"])


def test_it_answers_a_retry_with_the_stored_log_and_stores_nothing(
    patient_client, frozen_at_start, body
):
    first = patient_client.post(LOGS, body)
    again = patient_client.post(LOGS, body)
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json() == first.json()
    assert ExerciseLog.objects.count() == 1
    actions = list(
        AuditEvent.objects.filter(object_type="exercise_log").values_list("action", flat=True)
    )
    assert sorted(actions) == ["create", "read"]


def test_it_treats_absent_and_default_fields_as_the_same_body(
    patient_client, frozen_at_start, body
):
    assert patient_client.post(LOGS, body).status_code == 201
    retry = {k: v for k, v in body.items() if k != "stopped_for_pain"} | {"notes": None}
    assert patient_client.post(LOGS, retry).status_code == 200


def test_it_answers_409_when_the_id_exists_with_another_body(patient_client, frozen_at_start, body):
    assert patient_client.post(LOGS, body).status_code == 201
    response = patient_client.post(LOGS, {**body, "pain_during": 7})
    assert response.status_code == 409
    assert response.json()["existing_id"] == body["id"]
    assert ExerciseLog.objects.get().pain_during == 2


def test_it_answers_409_when_another_patient_used_the_id(
    patient_client, other_patient, frozen_at_start, body, clinician, seeded_templates
):
    # The other patient's log with the same id (only possible on purpose).
    other_template_assignment = services.assignment_create(
        patient=other_patient,
        template=seeded_templates["sciatica"],
        by=clinician,
        start_date=START,
        today=START,
    )
    other_exercise = exercises_of(other_template_assignment, 1)[0]
    ExerciseLog.objects.create(
        id=body["id"],
        patient=other_patient,
        assigned_exercise=other_exercise,
        date=START,
        sets_done=1,
        pain_during=0,
        difficulty=0,
    )
    response = patient_client.post(LOGS, body)
    assert response.status_code == 409
    assert ExerciseLog.objects.count() == 1


def test_it_relies_on_the_primary_key_when_two_uploads_race(patient, exercise, body):
    # Another request inserted the same id between our validation and our insert: the
    # service does not look first, so its INSERT hits the primary key and it then answers
    # with the stored row.
    data = {k: body[k] for k in ("sets_done", "reps_done", "pain_during", "difficulty")}
    ExerciseLog.objects.create(
        id=body["id"], patient=patient, assigned_exercise=exercise, date=START, **data
    )
    with CaptureQueriesContext(connection) as queries:
        log, created = services.exercise_log_create(
            patient=patient,
            assigned_exercise=exercise,
            day=START,
            data=data,
            log_id=uuid.UUID(body["id"]),
            today=START,
        )
    assert created is False
    assert str(log.pk) == body["id"]
    # The insert is tried (and inserts nothing: ON CONFLICT DO NOTHING, so no failed
    # statement with the patient's values reaches the server log).
    inserts = [q["sql"] for q in queries.captured_queries if "INSERT" in q["sql"]]
    assert len(inserts) == 1
    assert "ON CONFLICT DO NOTHING" in inserts[0]
    assert ExerciseLog.objects.count() == 1


def test_it_answers_a_late_retry_even_when_the_date_left_the_window(
    patient_client, patient, exercise, body, freeze, frozen_at_start
):
    from datetime import UTC, datetime

    assert patient_client.post(LOGS, body).status_code == 201
    freeze(datetime(2026, 3, 30, 12, tzinfo=UTC))  # 28 days later
    assert patient_client.post(LOGS, body).status_code == 200


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"pain_during": 11}, "pain_during"),
        ({"pain_during": -1}, "pain_during"),
        ({"pain_during": 2.5}, "pain_during"),
        ({"pain_during": "2"}, "pain_during"),
        ({"difficulty": 11}, "difficulty"),
        ({"difficulty": None}, "difficulty"),
        ({"sets_done": 51}, "sets_done"),
        ({"stopped_for_pain": "yes"}, "stopped_for_pain"),
        ({"exercise": "not-a-uuid"}, "exercise"),
        ({"exercise": str(uuid.uuid4())}, "exercise"),
        ({"date": "2026-03-03"}, "date"),  # tomorrow for the patient
        ({"date": "2026-03-01"}, "date"),  # before the program started
        ({"date": "02/03/2026"}, "date"),
        ({"id": "nope"}, "id"),
        ({"notes": "x" * 501}, "notes"),
        ({"mood": "great"}, "mood"),
    ],
)
def test_it_rejects_bad_input_naming_the_field(
    patient_client, frozen_at_start, body, change, field
):
    response = patient_client.post(LOGS, {**body, **change})
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not ExerciseLog.objects.exists()


def test_it_rejects_missing_required_fields(patient_client, frozen_at_start):
    response = patient_client.post(LOGS, {})
    assert response.status_code == 400
    assert set(response.json()) >= {"exercise", "date", "sets_done", "pain_during", "difficulty"}


def test_it_rejects_a_log_more_than_14_days_back(patient_client, freeze, body):
    from datetime import UTC, datetime

    freeze(datetime(2026, 3, 17, 12, tzinfo=UTC))
    response = patient_client.post(LOGS, {**body, "date": "2026-03-02"})
    assert response.status_code == 400
    assert "date" in response.json()
    assert patient_client.post(LOGS, {**body, "date": "2026-03-03"}).status_code == 201


def test_it_uses_the_patients_local_date_for_future(
    api_client_for, patient, freeze, body, exercise
):
    from datetime import UTC, datetime

    # 2026-03-02 10:30 UTC is already 00:30 on the 3rd in Kiritimati (UTC+14) and still
    # 23:30 on the 1st in Pago Pago (UTC-11).
    freeze(datetime(2026, 3, 2, 10, 30, tzinfo=UTC))
    patient.timezone = "Pacific/Kiritimati"
    patient.save()
    client = api_client_for(patient.user)
    assert client.post(LOGS, {**body, "date": "2026-03-03"}).status_code == 201
    patient.timezone = "Pacific/Pago_Pago"
    patient.save()
    response = client.post(LOGS, {**body, "id": str(uuid.uuid4()), "date": "2026-03-02"})
    assert response.status_code == 400  # still the 1st in Pago Pago
    assert "date" in response.json()


def test_it_rejects_an_exercise_of_another_patient(
    other_patient_client, other_patient, frozen_at_start, body
):
    response = other_patient_client.post(LOGS, body)
    assert response.status_code == 400
    assert response.json()["exercise"] == ["Unknown exercise."]


def test_it_lists_own_logs_by_date_range_paginated(patient_client, patient, exercise):
    for day in range(5):
        ExerciseLog.objects.create(
            patient=patient,
            assigned_exercise=exercise,
            date=START + timedelta(days=day),
            sets_done=3,
            pain_during=1,
            difficulty=2,
        )
    response = patient_client.get(LOGS, {"from": "2026-03-03", "to": "2026-03-05", "page_size": 2})
    assert response.status_code == 200
    data = response.json()
    assert data["count"] == 3
    assert data["next"] is not None
    assert [row["date"] for row in data["results"]] == ["2026-03-05", "2026-03-04"]


@pytest.mark.parametrize(
    "query",
    [{"from": "yesterday"}, {"to": "2026-13-01"}, {"from": "2026-03-05", "to": "2026-03-01"}],
)
def test_it_rejects_a_bad_date_range(patient_client, query):
    response = patient_client.get(LOGS, query)
    assert response.status_code == 400
    assert set(response.json()) & {"from", "to"}


def test_it_reads_one_own_log(patient_client, patient, exercise):
    log = ExerciseLog.objects.create(
        patient=patient,
        assigned_exercise=exercise,
        date=START,
        sets_done=3,
        pain_during=1,
        difficulty=2,
    )
    response = patient_client.get(f"{LOGS}{log.pk}/")
    assert response.status_code == 200
    assert response.json()["id"] == str(log.pk)


def test_it_hides_other_patients_logs(other_patient_client, clinician_client, patient, exercise):
    log = ExerciseLog.objects.create(
        patient=patient,
        assigned_exercise=exercise,
        date=START,
        sets_done=3,
        pain_during=1,
        difficulty=2,
    )
    assert other_patient_client.get(f"{LOGS}{log.pk}/").status_code == 404
    assert other_patient_client.get(LOGS).json()["count"] == 0
    # The patient endpoints are the app's; clinicians read logs through their own.
    assert clinician_client.get(f"{LOGS}{log.pk}/").status_code == 403
    assert clinician_client.get(LOGS).status_code == 403


def test_it_refuses_anonymous_callers(anon_client):
    assert anon_client.get(LOGS).status_code == 401
    assert anon_client.post(LOGS, {}).status_code == 401
    assert anon_client.get(f"{LOGS}{uuid.uuid4()}/").status_code == 401


def test_it_audits_writes_and_reads(patient_client, patient, frozen_at_start, body):
    patient_client.post(LOGS, body)
    patient_client.get(LOGS)
    patient_client.get(f"{LOGS}{body['id']}/")
    events = list(
        AuditEvent.objects.filter(object_type="exercise_log")
        .order_by("id")
        .values_list("action", "patient_id", "actor_id")
    )
    assert events == [
        ("create", patient.pk, patient.user.pk),
        ("read", patient.pk, patient.user.pk),
        ("read", patient.pk, patient.user.pk),
    ]


# --------------------------------------------------------------------------- what was prescribed


def _rejected(response, field: str) -> None:
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not ExerciseLog.objects.exists()


def test_it_rejects_an_exercise_of_a_phase_not_in_force_that_day(
    patient_client, assignment, frozen_at_start, body
):
    later = exercises_of(assignment, 2)[0]  # phase 2 has not started
    _rejected(patient_client.post(LOGS, {**body, "exercise": str(later.pk)}), "exercise")


def test_it_takes_the_phase_in_force_on_the_logs_date(
    patient_client, assignment, freeze, body, exercise
):
    from datetime import UTC, datetime

    from programs.models import AssignedPhase

    AssignedPhase.objects.filter(assignment=assignment, position=2).update(
        started_on=START + timedelta(days=14)
    )
    freeze(datetime(2026, 3, 17, 12, tzinfo=UTC))
    next_phase = exercises_of(assignment, 2)[0]
    # On the 16th phase 2 is in force: phase 1's exercise is not prescribed any more...
    _rejected(patient_client.post(LOGS, {**body, "date": "2026-03-16"}), "exercise")
    # ...but it was on the 15th, and phase 2's is from the 16th.
    assert patient_client.post(LOGS, {**body, "date": "2026-03-15"}).status_code == 201
    response = patient_client.post(
        LOGS,
        {**body, "id": str(uuid.uuid4()), "exercise": str(next_phase.pk), "date": "2026-03-16"},
    )
    assert response.status_code == 201, response.content
    assert ExerciseLog.objects.count() == 2


def _prescribe(exercise, **unit) -> None:
    exercise.dosage_versions.update(
        **{"reps": None, "hold_seconds": None, "duration_minutes": None, **unit}
    )


@pytest.mark.parametrize(
    ("unit", "change", "field"),
    [
        ({"reps": 10}, {"reps_done": None}, "reps_done"),
        ({"reps": 10}, {"hold_seconds_done": 30}, "hold_seconds_done"),
        ({"reps": 10}, {"duration_minutes_done": 5}, "duration_minutes_done"),
        ({"hold_seconds": 30}, {"reps_done": None}, "hold_seconds_done"),
        ({"hold_seconds": 30}, {"hold_seconds_done": 30}, "reps_done"),
        ({"duration_minutes": 5}, {"reps_done": None}, "duration_minutes_done"),
        ({"duration_minutes": 5}, {"duration_minutes_done": 5}, "reps_done"),
    ],
)
def test_it_requires_the_amount_in_the_unit_prescribed(
    patient_client, frozen_at_start, body, exercise, unit, change, field
):
    _prescribe(exercise, **unit)
    _rejected(patient_client.post(LOGS, {**body, **change}), field)


@pytest.mark.parametrize(
    ("unit", "done"),
    [
        ({"hold_seconds": 30}, {"hold_seconds_done": 30}),
        ({"duration_minutes": 5}, {"duration_minutes_done": 6}),
    ],
)
def test_it_stores_a_hold_or_a_timed_session(
    patient_client, frozen_at_start, body, exercise, unit, done
):
    _prescribe(exercise, **unit)
    response = patient_client.post(LOGS, {**body, "reps_done": None, **done})
    assert response.status_code == 201, response.content
    assert ExerciseLog.objects.get().reps_done is None


def test_it_counts_in_the_unit_of_the_dosage_in_force_that_day(
    patient_client, clinician, freeze, body, exercise
):
    from datetime import UTC, datetime

    freeze(datetime(2026, 3, 4, 12, tzinfo=UTC))
    services.dosage_change(
        assigned_exercise=exercise,
        by=clinician,
        effective_from=START + timedelta(days=2),
        changes={"reps": None, "hold_seconds": 45},
    )
    # Reps on the 3rd, a hold from the 4th.
    assert patient_client.post(LOGS, {**body, "date": "2026-03-03"}).status_code == 201
    response = patient_client.post(LOGS, {**body, "id": str(uuid.uuid4()), "date": "2026-03-04"})
    assert response.status_code == 400
    assert "hold_seconds_done" in response.json()
    assert ExerciseLog.objects.count() == 1


@pytest.mark.parametrize("day", ["2026-03-09", "2026-03-10"])
def test_it_rejects_a_date_on_or_after_the_programs_end(
    patient_client, assignment, freeze, body, day
):
    from datetime import UTC, datetime

    assignment.ended_on = START + timedelta(days=7)  # 2026-03-09 is the first day off it
    assignment.save()
    freeze(datetime(2026, 3, 10, 12, tzinfo=UTC))
    _rejected(patient_client.post(LOGS, {**body, "date": day}), "date")
    assert patient_client.post(LOGS, {**body, "date": "2026-03-08"}).status_code == 201


@pytest.mark.parametrize("day", ["0001-01-01", "1999-12-31", "9999-12-31", "2026-02-28"])
def test_it_rejects_a_date_outside_sane_bounds(patient_client, frozen_at_start, body, day):
    _rejected(patient_client.post(LOGS, {**body, "date": day}), "date")
