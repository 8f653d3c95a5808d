from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from patients.models import AuditEvent, Patient
from patients.throttling import cache_redis_client
from rehab.models import DailyLog, DailyLogRevision

pytestmark = pytest.mark.django_db

LOGS = "/api/v1/logs/"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TODAY = date(2026, 11, 20)


@pytest.fixture(autouse=True)
def _frozen_time():
    with time_machine.travel(NOW, tick=False):
        yield


def body(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "date": TODAY.isoformat(),
        "pain": 6,
        "leg_pain": 7,
        "back_pain": 3,
        "worst_pain": 8,
        "leg_pain_side": "left",
        "function": 4,
        "sleep": "disturbed",
        "notes": "Walked to the shop.",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not ...}


def detail(log_id: object) -> str:
    return f"{LOGS}{log_id}/"


# --------------------------------------------------------------------------- create


def test_it_stores_a_log_and_answers_201(patient_client, patient):
    log_id = str(uuid.uuid4())
    response = patient_client.post(LOGS, body(id=log_id))
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["id"] == log_id
    assert data["pain"] == 6
    assert data["leg_pain_side"] == "left"
    assert data["safety_advice"] is None
    assert data["safety"]["saddle_numbness"] == "no"
    assert data["safety"]["walking_unsteady_new"] is False
    assert data["version"] == 1
    log = DailyLog.objects.get(pk=log_id)
    assert log.patient == patient
    assert log.evaluated_at is None


def test_it_stores_a_quiet_log_and_its_audit_event_in_one_statement(patient_client):
    with CaptureQueriesContext(connection) as ctx:
        response = patient_client.post(LOGS, body(safety={"weakness": "none", "fever": False}))
    assert response.status_code == 201, response.json()
    # The token with its user and patient, the patient's latest earlier logs (the rules
    # that need history, docs/safety-path.md § Decided in the request), then the log and
    # its audit row in one statement (in a savepoint here, inside the test's own
    # transaction): no record read for a check that cannot need it.
    assert [q["sql"].split()[0] for q in ctx.captured_queries] == [
        "SELECT",
        "SELECT",
        "SAVEPOINT",
        "WITH",
        "RELEASE",
    ]
    write = ctx.captured_queries[3]["sql"]
    assert 'INSERT INTO "rehab_dailylog"' in write
    assert 'INSERT INTO "patients_auditevent"' in write
    log = DailyLog.objects.get(pk=response.json()["id"])
    event = AuditEvent.objects.get(object_type="daily_log", object_id=str(log.pk))
    assert (event.action, event.patient_id, event.method) == ("create", log.patient_id, "POST")


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_log_costs_no_begin_or_commit(patient):
    from patients.models import AuthToken

    assert patient.user is not None
    _, token = AuthToken.objects.create(user=patient.user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    seen: list[tuple[str, bool]] = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        seen.append((sql.split()[0], connection.get_autocommit()))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        response = client.post(LOGS, body(safety={"weakness": "none", "fever": False}))
    assert response.status_code == 201, response.json()
    # In autocommit each statement is its own transaction: psycopg sends no BEGIN.
    assert seen == [("SELECT", True), ("SELECT", True), ("WITH", True)]
    assert AuditEvent.objects.filter(object_id=response.json()["id"]).count() == 1


def test_it_generates_an_id_when_the_app_sends_none(patient_client):
    response = patient_client.post(LOGS, {"date": TODAY.isoformat(), "pain": 2})
    assert response.status_code == 201
    assert uuid.UUID(response.json()["id"])
    assert response.json()["leg_pain"] is None


def test_it_answers_a_retry_with_the_same_representation_and_stores_nothing(patient_client):
    payload = body(id=str(uuid.uuid4()), safety={"saddle_numbness": "no"})
    first = patient_client.post(LOGS, payload)
    # The same body after defaults: absent answers, nulls and "no"/false are one thing.
    retry_payload = {
        **payload,
        "safety": {"weakness": "none", "fever": False},
        "notes": payload["notes"],
    }
    retry = patient_client.post(LOGS, retry_payload)
    assert first.status_code == 201
    assert retry.status_code == 200
    assert retry.json() == first.json()
    assert DailyLog.objects.count() == 1


def test_it_treats_null_and_absent_fields_alike_on_retry(patient_client):
    log_id = str(uuid.uuid4())
    first = patient_client.post(LOGS, {"id": log_id, "date": TODAY.isoformat(), "pain": 4})
    retry = patient_client.post(
        LOGS,
        {"id": log_id, "date": TODAY.isoformat(), "pain": 4, "leg_pain": None, "safety": None},
    )
    assert (first.status_code, retry.status_code) == (201, 200)


def test_it_answers_409_when_the_id_exists_with_a_different_body(patient_client):
    log_id = str(uuid.uuid4())
    patient_client.post(LOGS, body(id=log_id))
    response = patient_client.post(LOGS, body(id=log_id, pain=9))
    assert response.status_code == 409
    assert response.json()["existing_id"] == log_id
    assert DailyLog.objects.get().pain == 6


def test_it_answers_409_when_the_date_already_has_a_log(patient_client):
    first = patient_client.post(LOGS, body(id=str(uuid.uuid4()))).json()
    response = patient_client.post(LOGS, body(id=str(uuid.uuid4())))
    assert response.status_code == 409
    assert response.json()["existing_id"] == first["id"]
    assert DailyLog.objects.count() == 1


def test_it_answers_409_for_an_id_another_patient_used(patient_client, other_patient_client):
    log_id = str(uuid.uuid4())
    assert other_patient_client.post(LOGS, body(id=log_id)).status_code == 201
    response = patient_client.post(LOGS, body(id=log_id))
    assert response.status_code == 409
    assert DailyLog.objects.get().patient.email == "olly@example.com"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"pain": 11}, "pain"),
        ({"pain": -1}, "pain"),
        ({"pain": 6.5}, "pain"),
        ({"pain": "6"}, "pain"),
        ({"pain": True}, "pain"),
        ({"pain": None}, "pain"),
        ({"pain": ...}, "pain"),
        ({"leg_pain": 12}, "leg_pain"),
        ({"worst_pain": "high"}, "worst_pain"),
        ({"function": 10.5}, "function"),
        ({"leg_pain_side": "up"}, "leg_pain_side"),
        ({"sleep": "fine"}, "sleep"),
        ({"date": "2026-11-21"}, "date"),
        ({"date": "2026-11-05"}, "date"),
        ({"date": "20-11-2026"}, "date"),
        ({"date": ...}, "date"),
        ({"notes": "x" * 2001}, "notes"),
        ({"mood": "good"}, "mood"),
        ({"id": "not-a-uuid"}, "id"),
        ({"safety": {"saddle_numbness": "yes"}}, "safety"),
        ({"safety": {"weakness": "both"}}, "safety"),
        ({"safety": {"sexual_function_change": "maybe"}}, "safety"),
        ({"safety": {"fever": "yes"}}, "safety"),
        ({"safety": {"fever": 1}}, "safety"),
        ({"safety": {"temperature_c": 43.1}}, "safety"),
        ({"safety": {"temperature_c": 33.9}}, "safety"),
        ({"safety": {"temperature_c": "38.5"}}, "safety"),
        ({"safety": {"tingling": "no"}}, "safety"),
        ({"safety": "none"}, "safety"),
    ],
)
def test_it_rejects_invalid_input_with_400_and_stores_nothing(patient_client, overrides, field):
    response = patient_client.post(LOGS, body(**overrides))
    assert response.status_code == 400, response.json()
    assert field in response.json()
    assert not DailyLog.objects.exists()


BOOLEAN_SAFETY_FIELDS = (
    "walking_unsteady_new",
    "fever",
    "feel_very_unwell",
    "pain_new_or_rapidly_worse",
    "unexplained_weight_loss",
    "thoracic_or_band_pain",
)
# "prefer_not_to_say" belongs to sexual_function_change only.
NOT_SEXUAL_FUNCTION_FIELDS = (
    "saddle_numbness",
    "bladder_change",
    "bowel_change",
    "both_legs",
    "weakness",
    "numbness_spread",
    "injury",
)


@pytest.mark.parametrize(
    ("answer", "value"),
    [
        ("bladder_change", "yes"),
        ("bowel_change", "worse"),
        ("both_legs", "none"),  # "none" is weakness's word, not a symptom answer
        ("numbness_spread", "no"),  # and "no" is not numbness_spread's
        ("numbness_spread", "one_arm"),
        ("injury", "no"),
        ("injury", "severe"),
        *((name, "true") for name in BOOLEAN_SAFETY_FIELDS),
        *((name, 1) for name in BOOLEAN_SAFETY_FIELDS),
        *((name, "no") for name in BOOLEAN_SAFETY_FIELDS),
        *((name, "prefer_not_to_say") for name in NOT_SEXUAL_FUNCTION_FIELDS),
    ],
)
def test_it_rejects_an_invalid_safety_answer_naming_it(patient_client, answer, value):
    response = patient_client.post(LOGS, body(safety={answer: value}))
    assert response.status_code == 400, response.json()
    assert list(response.json()["safety"]) == [answer]
    assert not DailyLog.objects.exists()


def test_it_accepts_prefer_not_to_say_for_sexual_function(patient_client):
    response = patient_client.post(
        LOGS, body(safety={"sexual_function_change": "prefer_not_to_say"})
    )
    assert response.status_code == 201, response.json()
    assert response.json()["safety_advice"] is None


def test_it_accepts_the_edges_of_every_range(patient_client):
    response = patient_client.post(
        LOGS,
        body(
            date=(TODAY - timedelta(days=14)).isoformat(),
            pain=0,
            leg_pain=10,
            notes="x" * 2000,
            safety={"temperature_c": 43.0},
        ),
    )
    assert response.status_code == 201, response.json()
    response = patient_client.post(
        LOGS, body(date=TODAY.isoformat(), pain=10, safety={"temperature_c": 34})
    )
    assert response.status_code == 201, response.json()


# --------------------------------------------------------------------------- local dates


def _set_timezone(patient: Patient, zone: str) -> None:
    patient.timezone = zone
    patient.save(update_fields=["timezone"])


@pytest.mark.parametrize(
    ("zone", "utc_now", "accepted", "rejected"),
    [
        # UTC+14: already the next day at noon UTC.
        (
            "Pacific/Kiritimati",
            datetime(2026, 11, 20, 12, 0, tzinfo=UTC),
            "2026-11-21",
            "2026-11-22",
        ),
        # UTC-11: still the previous day until 11:00 UTC.
        (
            "Pacific/Pago_Pago",
            datetime(2026, 11, 20, 10, 59, tzinfo=UTC),
            "2026-11-19",
            "2026-11-20",
        ),
        (
            "Pacific/Pago_Pago",
            datetime(2026, 11, 20, 11, 0, tzinfo=UTC),
            "2026-11-20",
            "2026-11-21",
        ),
        # New York left daylight saving at 06:00 UTC on 1 November 2026: at 04:30 UTC on
        # 2 November it is 23:30 on 1 November there (a fixed UTC-4 would say 2 November).
        ("America/New_York", datetime(2026, 11, 2, 4, 30, tzinfo=UTC), "2026-11-01", "2026-11-02"),
        # London entered summer time at 01:00 UTC on 29 March 2026: 23:30 UTC on 28 March
        # is still the 28th there, 23:30 UTC on 29 March is already the 30th.
        ("Europe/London", datetime(2026, 3, 28, 23, 30, tzinfo=UTC), "2026-03-28", "2026-03-29"),
        ("Europe/London", datetime(2026, 3, 29, 23, 30, tzinfo=UTC), "2026-03-30", "2026-03-31"),
    ],
)
def test_it_uses_the_patients_local_today(
    patient_client, patient, zone, utc_now, accepted, rejected
):
    _set_timezone(patient, zone)
    with time_machine.travel(utc_now, tick=False):
        too_late = patient_client.post(LOGS, body(date=rejected))
        assert too_late.status_code == 400
        assert "date" in too_late.json()
        assert patient_client.post(LOGS, body(date=accepted)).status_code == 201


def test_it_allows_exactly_fourteen_days_back_in_local_time(patient_client, patient):
    _set_timezone(patient, "Pacific/Kiritimati")  # local today is 2026-11-21
    assert patient_client.post(LOGS, body(date="2026-11-06")).status_code == 400
    assert patient_client.post(LOGS, body(date="2026-11-07")).status_code == 201


def test_it_throttles_log_writes_per_patient(patient_client, other_patient_client, settings):
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "logs": "3/hour"}
    for back in range(3):
        day = (TODAY - timedelta(days=back)).isoformat()
        assert patient_client.post(LOGS, body(date=day)).status_code == 201

    refused = patient_client.post(LOGS, body(date=(TODAY - timedelta(days=3)).isoformat()))

    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    assert DailyLog.objects.count() == 3
    # Per patient: another one's writes are counted apart, and reads are not limited.
    assert other_patient_client.post(LOGS, body()).status_code == 201
    assert patient_client.get(LOGS).status_code == 200


def test_it_stores_the_log_when_the_throttle_cache_is_down(patient_client, settings):
    # Nothing listens there (Django drops its cache connections on the change).
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}
    }
    from django.core.cache import cache
    from redis.exceptions import ConnectionError as RedisConnectionError

    # The cache API answers as a miss (IGNORE_EXCEPTIONS); the throttle's own script, on
    # the cache's client, meets the error and lets the request through.
    assert cache.get("anything", "miss") == "miss"
    client = cache_redis_client(cache)
    assert client is not None
    with pytest.raises(RedisConnectionError):
        client.ping()

    response = patient_client.post(LOGS, body())

    assert response.status_code == 201, response.json()
    assert DailyLog.objects.filter(pk=response.json()["id"]).exists()


# --------------------------------------------------------------------------- races


# How long a thread of a race is waited for: generous, as a loaded parallel run makes
# each step seconds slower; it only runs out when a thread never gets there.
WAIT = 30


def _transaction_waiters() -> int:
    """Sessions of this database waiting on another's transaction (or advisory lock). pg_locks,
    not pg_stat_activity: the test runs as the application role, which does not see other
    roles' sessions' wait events there. Only this database's sessions count: other test
    workers run beside this one (docs/testing.md)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks"
            " WHERE NOT granted AND locktype IN ('transactionid', 'advisory') AND pid IN"
            " (SELECT pid FROM pg_stat_activity WHERE datname = current_database())"
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def _race(
    patient: Patient, monkeypatch: pytest.MonkeyPatch, first: Any, second: Any
) -> dict[str, tuple[int, dict[str, Any]]]:
    """POST `first` in thread A, inside a transaction held open just after its INSERT,
    POST `second` in thread B, prove B is waiting on A's uncommitted row, then let A
    commit. Returns each thread's (status, body)."""
    from django.db import transaction

    from patients.models import AuthToken
    from rehab.services import safety as safety_services

    assert patient.user is not None
    _, token = AuthToken.objects.create(user=patient.user)
    inserted, release = threading.Event(), threading.Event()
    real_enqueue = safety_services.log_evaluation_enqueue

    def enqueue_holding_a(**kwargs: Any) -> Any:
        if threading.current_thread().name == "A":
            inserted.set()
            assert release.wait(timeout=WAIT), "the test never released thread A"
        return real_enqueue(**kwargs)

    monkeypatch.setattr(safety_services, "log_evaluation_enqueue", enqueue_holding_a)
    results: dict[str, tuple[int, dict[str, Any]]] = {}

    def post(name: str, payload: dict[str, Any]) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        try:
            if name == "A":
                # The request's one statement commits at once on its own; A's is held
                # open in a transaction around it, as by a slow commit.
                with transaction.atomic():
                    response = client.post(LOGS, payload, format="json")
            else:
                response = client.post(LOGS, payload, format="json")
            results[name] = (response.status_code, response.json())
        finally:
            connection.close()

    a = threading.Thread(target=post, args=("A", first), name="A")
    b = threading.Thread(target=post, args=("B", second), name="B")
    try:
        a.start()
        assert inserted.wait(timeout=WAIT), "thread A never got past its INSERT"
        b.start()
        # B's INSERT waits for A's transaction to end: on the unique index entry, or on
        # the audit chain's lock A holds until it commits (docs/security.md). Polled, not
        # given a fixed time: under a loaded parallel run B may take seconds to get there.
        deadline = time.monotonic() + WAIT
        while not _transaction_waiters() and b.is_alive():
            assert time.monotonic() < deadline, "B neither finished nor waited on A"
            time.sleep(0.02)
        assert b.is_alive(), "B finished while A's transaction was still open"
        assert _transaction_waiters() == 1
    finally:
        release.set()
        a.join(timeout=WAIT)
        b.join(timeout=WAIT)
    assert not a.is_alive()
    assert not b.is_alive()
    return results


@pytest.mark.django_db(transaction=True)
def test_it_stores_one_log_when_two_identical_posts_race(patient, monkeypatch):
    payload = body(id=str(uuid.uuid4()))
    results = _race(patient, monkeypatch, payload, payload)
    assert (results["A"][0], results["B"][0]) == (201, 200)
    assert results["B"][1] == results["A"][1]
    assert DailyLog.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_it_answers_409_to_the_loser_of_a_race_for_the_same_date(patient, monkeypatch):
    first, second = body(id=str(uuid.uuid4()), pain=3), body(id=str(uuid.uuid4()), pain=4)
    results = _race(patient, monkeypatch, first, second)
    assert (results["A"][0], results["B"][0]) == (201, 409)
    assert results["B"][1]["existing_id"] == first["id"]
    assert DailyLog.objects.get().pain == 3


# --------------------------------------------------------------------------- read, list


def _make_logs(client: APIClient, days: int) -> list[dict[str, Any]]:
    return [
        client.post(LOGS, body(date=(TODAY - timedelta(days=i)).isoformat(), pain=i % 11)).json()
        for i in range(days)
    ]


def test_it_lists_own_logs_newest_first_and_paginated(patient_client, other_patient_client):
    _make_logs(patient_client, 5)
    _make_logs(other_patient_client, 2)
    response = patient_client.get(LOGS, {"page_size": 2})
    assert response.status_code == 200
    data = response.json()
    assert data["count"] == 5
    assert [r["date"] for r in data["results"]] == ["2026-11-20", "2026-11-19"]
    assert data["next"] is not None
    assert data["previous"] is None


def test_it_filters_the_list_by_date_range(patient_client):
    _make_logs(patient_client, 6)
    response = patient_client.get(LOGS, {"from": "2026-11-16", "to": "2026-11-18"})
    assert [r["date"] for r in response.json()["results"]] == [
        "2026-11-18",
        "2026-11-17",
        "2026-11-16",
    ]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-01"}, "to"),
        ({"from": "2026-11-20", "to": "2026-11-01"}, "from"),
    ],
)
def test_it_rejects_a_bad_date_range(patient_client, params, field):
    response = patient_client.get(LOGS, params)
    assert response.status_code == 400
    assert field in response.json()


def test_it_reads_one_log(patient_client):
    created = patient_client.post(LOGS, body()).json()
    response = patient_client.get(detail(created["id"]))
    assert response.status_code == 200
    assert response.json() == created


# --------------------------------------------------------------------------- edit


def test_it_edits_a_log_and_keeps_the_previous_version(patient_client, patient):
    created = patient_client.post(LOGS, body(safety={"fever": True})).json()
    response = patient_client.patch(
        detail(created["id"]), {"pain": 3, "safety": {"injury": "minor"}}
    )
    assert response.status_code == 200, response.json()
    data = response.json()
    assert data["pain"] == 3
    assert data["version"] == 2
    # Answers not sent keep their stored values.
    assert data["safety"]["fever"] is True
    assert data["safety"]["injury"] == "minor"
    revision = DailyLogRevision.objects.get()
    assert revision.version == 1
    assert revision.data["pain"] == 6
    assert revision.data["safety"]["injury"] == "none"
    assert revision.changed_by == patient.user
    assert sorted(revision.changed_fields) == ["pain", "safety"]
    log = DailyLog.objects.get()
    assert log.evaluated_at is None


def test_it_keeps_no_revision_for_an_edit_that_changes_nothing(patient_client):
    created = patient_client.post(LOGS, body()).json()
    response = patient_client.patch(detail(created["id"]), {"pain": 6})
    assert response.json()["version"] == 1
    assert not DailyLogRevision.objects.exists()


@pytest.mark.parametrize(
    "patch",
    [
        {"pain": 11},
        {"sleep": "bad"},
        {"colour": "red"},
        {"safety": {"fever": "no"}},
        {"date": "2026-11-21"},
        {"date": "2026-11-05"},  # 15 days back
        {"id": str(uuid.uuid4())},  # a log's id is not editable
        {"pain": None},
        {"notes": "x" * 2001},
        {"safety": {"injury": "prefer_not_to_say"}},
    ],
)
def test_it_rejects_an_invalid_edit_and_changes_nothing(patient_client, patch):
    created = patient_client.post(LOGS, body()).json()
    response = patient_client.patch(detail(created["id"]), patch)
    assert response.status_code == 400, response.json()
    errors = response.json()
    assert set(errors) - {"code", "detail", "errors"} == set(patch)
    assert {error["field"].split(".")[0] for error in errors["errors"]} == set(patch)
    assert patient_client.get(detail(created["id"])).json() == created
    assert not DailyLogRevision.objects.exists()
    assert not AuditEvent.objects.filter(action="update").exists()


def test_it_answers_409_when_an_edit_moves_a_log_onto_a_taken_date(patient_client):
    first = patient_client.post(LOGS, body(date="2026-11-19")).json()
    second = patient_client.post(LOGS, body(date="2026-11-20")).json()
    response = patient_client.patch(detail(second["id"]), {"date": "2026-11-19"})
    assert response.status_code == 409
    assert response.json()["existing_id"] == first["id"]


# --------------------------------------------------------------------------- scope, audit


def test_it_hides_other_patients_logs(patient_client, other_patient_client):
    created = patient_client.post(LOGS, body()).json()
    assert other_patient_client.get(detail(created["id"])).status_code == 404
    assert other_patient_client.patch(detail(created["id"]), {"pain": 1}).status_code == 404
    assert other_patient_client.get(LOGS).json()["count"] == 0
    assert DailyLog.objects.get().pain == 6


def test_it_refuses_clinicians_and_anonymous_callers(clinician_client, anon_client, patient_client):
    created = patient_client.post(LOGS, body()).json()
    assert clinician_client.post(LOGS, body()).status_code == 403
    assert clinician_client.get(detail(created["id"])).status_code == 403
    assert anon_client.post(LOGS, body()).status_code == 401
    assert anon_client.get(LOGS).status_code == 401


def test_it_audits_log_writes_and_reads(patient_client, patient):
    created = patient_client.post(LOGS, body()).json()
    patient_client.patch(detail(created["id"]), {"pain": 2})
    patient_client.get(detail(created["id"]))
    events = AuditEvent.objects.filter(patient=patient, object_type="daily_log").order_by("id")
    assert [e.action for e in events] == ["create", "update", "read"]
    assert all(e.actor == patient.user for e in events)
    assert events[1].changes["fields"] == ["pain"]


def _daily_log_events(patient: Patient) -> list[tuple[str, str, dict[str, Any]]]:
    events = AuditEvent.objects.filter(patient=patient, object_type="daily_log").order_by("id")
    return [(e.action, e.object_id, e.changes) for e in events]


def test_it_audits_a_retry_as_a_read_of_the_stored_log(patient_client, patient):
    payload = body(id=str(uuid.uuid4()))
    assert patient_client.post(LOGS, payload).status_code == 201
    assert patient_client.post(LOGS, payload).status_code == 200
    assert _daily_log_events(patient) == [
        ("create", payload["id"], {}),
        ("read", payload["id"], {"retry": True}),
    ]
    event = AuditEvent.objects.filter(object_type="daily_log").latest("id")
    assert event.actor == patient.user


def test_it_audits_an_edit_that_changes_nothing_as_a_read(patient_client, patient):
    created = patient_client.post(LOGS, body()).json()
    response = patient_client.patch(detail(created["id"]), {"pain": 6, "safety": {}})
    assert response.status_code == 200
    assert _daily_log_events(patient) == [
        ("create", created["id"], {}),
        ("read", created["id"], {"unchanged_edit": True}),
    ]


def test_it_audits_the_patients_log_list(patient_client, patient):
    patient_client.post(LOGS, body())
    assert patient_client.get(LOGS).status_code == 200
    event = AuditEvent.objects.get(object_type="daily_log_list")
    assert (event.action, event.actor, event.patient_id) == ("read", patient.user, patient.pk)


def test_it_audits_the_patients_profile_read(patient_client, patient):
    assert patient_client.get("/api/v1/me/").status_code == 200
    event = AuditEvent.objects.get(object_type="profile")
    assert (event.action, event.actor, event.patient_id) == ("read", patient.user, patient.pk)


def test_it_audits_the_clinicians_log_list(clinician_client, clinician, patient):
    response = clinician_client.get(f"/api/v1/clinician/patients/{patient.pk}/logs/")
    assert response.status_code == 200
    event = AuditEvent.objects.get(object_type="daily_log_list")
    assert (event.action, event.actor, event.patient_id) == ("read", clinician.user, patient.pk)


def test_it_audits_nothing_for_another_clinics_log_list(other_clinic_clinician_client, patient):
    url = f"/api/v1/clinician/patients/{patient.pk}/logs/"
    assert other_clinic_clinician_client.get(url).status_code == 404
    assert not AuditEvent.objects.filter(object_type="daily_log_list").exists()


# --------------------------------------------------------------------------- late retries


def test_it_answers_a_retry_that_arrives_after_the_window_with_the_stored_log(
    patient_client, patient
):
    payload = body(id=str(uuid.uuid4()), date="2026-11-06")  # 14 days back: allowed
    first = patient_client.post(LOGS, payload)
    assert first.status_code == 201, first.json()
    with time_machine.travel(NOW + timedelta(days=3), tick=False):
        retry = patient_client.post(LOGS, payload)
    assert retry.status_code == 200, retry.json()
    assert retry.json() == first.json()
    assert DailyLog.objects.count() == 1
    event = AuditEvent.objects.filter(object_type="daily_log").latest("id")
    assert (event.action, event.changes) == ("read", {"retry": True})


def test_it_answers_409_to_a_late_retry_with_a_different_body(patient_client):
    payload = body(id=str(uuid.uuid4()), date="2026-11-06")
    assert patient_client.post(LOGS, payload).status_code == 201
    with time_machine.travel(NOW + timedelta(days=3), tick=False):
        response = patient_client.post(LOGS, {**payload, "pain": 2})
    assert response.status_code == 409
    assert response.json()["existing_id"] == payload["id"]
    assert DailyLog.objects.get().pain == 6


def test_it_still_refuses_a_new_log_outside_the_window_on_a_stored_date(patient_client):
    stored = patient_client.post(LOGS, body(id=str(uuid.uuid4()), date="2026-11-06"))
    assert stored.status_code == 201
    with time_machine.travel(NOW + timedelta(days=3), tick=False):
        response = patient_client.post(LOGS, body(id=str(uuid.uuid4()), date="2026-11-06"))
    assert response.status_code == 400
    assert "date" in response.json()
    assert DailyLog.objects.count() == 1
