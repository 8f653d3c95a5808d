"""Two clinicians writing the same course at once, with real threads and real transactions."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import pytest
from django.db import connection, transaction

from rehab.models import Intervention
from rehab.selectors import safety_inputs
from rehab.services import record as services

pytestmark = pytest.mark.django_db(transaction=True)

# How long a thread is waited for: generous, as a loaded parallel run makes each step
# seconds slower; it only runs out when a thread never gets there (docs/testing.md).
WAIT = 30


def _waiting_on_a_lock() -> int:
    with connection.cursor() as cursor:
        # pg_locks, not pg_stat_activity: the test runs as the application role, which
        # does not see other roles' sessions' wait events there. pg_locks is the whole
        # server's: only this database's sessions count (the suite runs in parallel, each
        # worker on a database of its own: docs/testing.md).
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND pid IN"
            " (SELECT pid FROM pg_stat_activity WHERE datname = current_database())"
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def test_it_numbers_the_next_session_after_a_concurrent_one(patient, clinician):
    first = services.intervention_create(
        patient=patient, clinician=clinician, date=patient.local_today(), kind="prolotherapy"
    )
    inserted, release = threading.Event(), threading.Event()
    results: dict[str, Any] = {}

    def add_session(name: str, *, hold: bool) -> None:
        try:
            with transaction.atomic():
                if not hold:
                    inserted.wait(WAIT)
                made = services.intervention_create(
                    patient=patient,
                    clinician=clinician,
                    date=patient.local_today(),
                    kind="prolotherapy",
                    course_id=first.course_id,
                )
                results[name] = made.session_number
                if hold:
                    # Keep the transaction open until the other request waits on the lock.
                    inserted.set()
                    release.wait(WAIT)
        except Exception as exc:  # noqa: BLE001 - the test reports it
            results[name] = exc
        finally:
            connection.close()

    a = threading.Thread(target=add_session, args=("a",), kwargs={"hold": True})
    b = threading.Thread(target=add_session, args=("b",), kwargs={"hold": False})
    a.start()
    b.start()
    assert inserted.wait(WAIT)
    deadline = time.monotonic() + WAIT
    while not _waiting_on_a_lock() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _waiting_on_a_lock(), "the second request should wait for the first"
    release.set()
    a.join(WAIT)
    b.join(WAIT)

    assert results == {"a": 2, "b": 3}
    assert sorted(
        Intervention.objects.filter(course_id=first.course_id).values_list(
            "session_number", flat=True
        )
    ) == [1, 2, 3]


def test_it_rechecks_a_procedure_once_when_two_workers_run_it_at_once(patient, monkeypatch):
    from rehab.models import AlertOccurrence
    from tests.rehab.factories_record import DailyLogFactory, InterventionFactory

    today = patient.local_today()
    DailyLogFactory.create(patient=patient, date=today, safety={"fever": True})
    injection = InterventionFactory.create(
        patient=patient, kind="injection", date=today - dt.timedelta(days=3)
    )
    inside, release = threading.Event(), threading.Event()
    original = safety_inputs.full_context

    def slow_first_run(*, log: Any) -> Any:
        if not inside.is_set():
            # Hold the patient's lock until the second worker waits for it.
            inside.set()
            release.wait(WAIT)
        return original(log=log)

    monkeypatch.setattr(safety_inputs, "full_context", slow_first_run)
    results: dict[str, Any] = {}

    def recheck(name: str) -> None:
        try:
            if name == "b":
                inside.wait(WAIT)
            results[name] = services.intervention_fever_recheck(intervention_id=injection.pk)
        except Exception as exc:  # noqa: BLE001 - the test reports it
            results[name] = exc
        finally:
            connection.close()

    a = threading.Thread(target=recheck, args=("a",))
    b = threading.Thread(target=recheck, args=("b",))
    a.start()
    b.start()
    assert inside.wait(WAIT)
    deadline = time.monotonic() + WAIT
    while not _waiting_on_a_lock() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _waiting_on_a_lock(), "the second worker should wait for the first"
    release.set()
    a.join(WAIT)
    b.join(WAIT)

    # The second found the first's stamp: it re-ran nothing.
    assert results == {"a": 1, "b": 0}
    injection.refresh_from_db()
    assert injection.fever_rechecked_at is not None
    assert AlertOccurrence.objects.filter(alert__rule="RF-INF-02").count() == 1
