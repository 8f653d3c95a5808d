"""The safety path's reliability promises, with a real Celery worker on real Redis and
PostgreSQL (issue 6, "Done when"; test_alerts.py calls the same services in-process).

The worker is a subprocess (`celery -A config worker --pool prefork`), so every test is
transactional: the worker only sees committed rows, and `on_commit` runs at once, so a log
POST really publishes to the broker. To kill a worker *in the middle* of an evaluation
deterministically, a test holds some patients' rows locked: `log_evaluate` counts its
attempt, then waits for the patient's row lock inside its transaction, and the test sees
the pool processes waiting in `pg_stat_activity` before it pulls the trigger.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from django.core import mail
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from config import enqueue
from notifications import services as notification_services
from notifications import tasks as notification_tasks
from patients.models import AuditEvent, Clinician, Patient
from rehab import tasks
from rehab.models import Alert, AlertEvent, AlertOccurrence, DailyLog, Notification
from rehab.services import safety
from rehab.services import sweeps as sweep_services
from rehab.services.logs import log_create, log_update
from tests.factories import PatientFactory
from tests.rehab.worker_support import (
    SECRET_KEY,
    RedisServer,
    SmtpSink,
    Worker,
    producer_broker,
    start_worker,
    wait_until,
    worker_env,
)

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    # A backstop only: every wait below is bounded and says what it waited for.
    pytest.mark.timeout(120),
]

LOGS = "/api/v1/logs/"
RULE = "RF-CES-01"
RED_FLAG = {"saddle_numbness": "new_or_worse"}
QUEUE = "safety"  # the evaluations' queue (config/celery.py)
# "Within seconds" (issue 6); measured p99 is ~40 ms, the bound is for a loaded 2-core box.
# Only the test that measures it uses it, and runs `alone` (docs/testing.md).
ALERT_WITHIN = 5.0
# Every other wait: for something that must happen by itself (no beat runs here, so what
# is left to a sweep never happens unless the test sends the sweep), bounded generously so
# that a loaded machine only makes it slower; it fails only if the thing never happens.
EVENTUALLY = 30.0
# "Answers within a second" with Redis down; 2 s keeps a slow CI machine from flaking while
# still catching a publish that waits on broker timeouts or retries.
ANSWER_WITHIN = 2.0
# A slow but healthy SMTP relay: seconds to accept one message.
SLOW_SMTP = 1.5


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def broker_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """The broker of these tests: a Redis server of their own, not a database on the
    suite's, so no other test run on the machine takes (or leaves) a message here."""
    server = RedisServer(tmp_path_factory.mktemp("broker"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def broker_url(transactional_db: None, broker_server: RedisServer) -> Iterator[str]:
    """This process's producer, pointed at the tests' own broker, emptied before and after."""
    url = broker_server.url
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        with producer_broker(url):
            yield url
    finally:
        client.flushdb()
        client.close()


@pytest.fixture
def smtp(request: pytest.FixtureRequest) -> Iterator[SmtpSink]:
    """An SMTP server for the workers; `parametrize("smtp", [seconds], indirect=True)`
    makes it that slow to accept each message."""
    sink = SmtpSink(delay=getattr(request, "param", 0.0))
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def workers(broker_url: str, smtp: SmtpSink) -> Iterator[Callable[..., Worker]]:
    """Start workers (emailing the SMTP sink); all are stopped after the test, and their
    output is printed so that a failure shows what the worker saw."""
    started: list[Worker] = []

    def start(*, name: str, broker: str | None = None) -> Worker:
        env = worker_env(broker_url=broker or broker_url, email_url=smtp.url)
        worker = start_worker(env=env, name=f"{name}-{uuid.uuid4().hex[:6]}")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
        print(f"----- worker {worker.name} (last lines) -----\n{worker.output()}")


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis server this test may stop and start again."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


# --------------------------------------------------------------------------- helpers


def red_flag_patients(clinician: Clinician, count: int) -> list[Patient]:
    return [
        PatientFactory.create(clinic=clinician.clinic, care_team=[clinician]) for _ in range(count)
    ]


def log_red_flag(patient: Patient) -> DailyLog:
    """Store a red-flag log through the service, which publishes its evaluation on commit."""
    assert patient.user is not None
    data = {"date": patient.local_today(), "pain": 6, "safety": RED_FLAG}
    return log_create(patient=patient, actor=patient.user, data=data).log


def red_flag_body(patient: Patient) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "date": patient.local_today().isoformat(),
        "pain": 6,
        "safety": RED_FLAG,
    }


def evaluated(logs: Iterable[DailyLog]) -> int:
    ids = [log.pk for log in logs]
    return DailyLog.objects.filter(pk__in=ids, evaluated_at__isnull=False).count()


def lock_patients(patients: Iterable[Patient]) -> None:
    """Within the caller's transaction, hold these patients' rows as `log_evaluate` does."""
    ids = [p.pk for p in patients]
    assert len(list(Patient.objects.select_for_update().filter(pk__in=ids))) == len(ids)


def lock_waiters() -> int:
    """Other sessions of the test database waiting for a row lock: pool processes blocked
    inside `log_evaluate` on a patient this test holds."""
    with connection.cursor() as cursor:
        # pg_stat_activity is read once per transaction unless the snapshot is dropped.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def queued(url: str) -> int:
    client = redis.Redis.from_url(url)
    try:
        return int(client.llen(QUEUE))
    finally:
        client.close()


def sweep_after_grace() -> int:
    """The beat sweeper, after SWEEP_GRACE has passed for every log stored so far."""
    DailyLog.objects.update(updated_at=F("updated_at") - enqueue.SWEEP_GRACE - timedelta(seconds=1))
    return sweep_services.unevaluated_logs_sweep()


def beat_until(
    task: Any, done: Callable[[], bool], *, timeout: float, what: str, every: float = 1.0
) -> None:
    """Send a sweep task to the worker every `every` seconds (beat: every minute) until
    `done`."""
    deadline = time.monotonic() + timeout
    while True:
        task.delay()
        next_beat = time.monotonic() + every
        while time.monotonic() < next_beat:
            if done():
                return
            time.sleep(0.05)
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def emails_per_alert(bodies: Iterable[str]) -> Counter[str]:
    """Emails counted by the alert they link to (the only alert detail an email carries)."""
    counts: Counter[str] = Counter()
    for body in bodies:
        alert_ids = [a for a in Alert.objects.values_list("pk", flat=True) if f"/{a}/" in body]
        assert len(alert_ids) == 1, f"an email should link to exactly one alert:\n{body}"
        counts[str(alert_ids[0])] += 1
    return counts


def assert_one_alert_per_patient_and_occurrence_per_log(
    patients: list[Patient], logs: list[DailyLog]
) -> None:
    unevaluated = DailyLog.objects.filter(evaluated_at__isnull=True)
    assert not unevaluated.exists(), f"logs never evaluated: {list(unevaluated.values('pk'))}"
    per_patient = Counter(
        Alert.objects.filter(rule=RULE, status=Alert.Status.OPEN).values_list(
            "patient_id", flat=True
        )
    )
    assert per_patient == Counter({p.pk: 1 for p in patients}), "lost or doubled alerts"
    assert Alert.objects.count() == len(patients)
    per_log = Counter(AlertOccurrence.objects.values_list("log_id", flat=True))
    assert per_log == Counter({log.pk: 1 for log in logs}), "lost or doubled occurrences"


# --------------------------------------------------------------------------- tests


# It bounds the time from the log POST to the alert and its email: not beside the rest of
# a parallel run.
@pytest.mark.alone
def test_it_turns_a_red_flag_log_into_an_alert_and_an_email_within_seconds(
    patient, patient_client, workers, smtp
):
    workers(name="alerts")
    body = red_flag_body(patient)
    posted = time.monotonic()
    response = patient_client.post(LOGS, body)
    assert response.status_code == 201, response.json()
    assert response.json()["safety_advice"]["severity"] == "emergency"

    alert = wait_until(
        lambda: Alert.objects.filter(patient=patient, rule=RULE).first(),
        timeout=ALERT_WITHIN,
        what=f"the worker to raise {RULE}",
    )
    print(f"log POST -> alert row: {time.monotonic() - posted:.3f} s")
    assert (alert.status, alert.severity, str(alert.log_id)) == ("open", "emergency", body["id"])
    log = DailyLog.objects.get()
    assert log.evaluated_at is not None
    assert log.evaluation_attempts == 1

    # The care team is emailed by the worker, over SMTP, exactly once.
    wait_until(
        lambda: Alert.objects.filter(pk=alert.pk, notified_at__isnull=False).exists(),
        timeout=ALERT_WITHIN,
        what="the worker to email the care team",
    )
    assert len(smtp.received) == 1
    [sent] = smtp.received
    assert sent.recipients == ("alice@riverside.example",)
    assert RULE in sent.message["Subject"]
    assert f"/dashboard/alerts/{alert.pk}/" in sent.body
    assert "saddle" not in sent.body.lower()  # no clinical detail leaves by email
    assert AlertEvent.objects.filter(alert=alert, kind=AlertEvent.Kind.NOTIFIED).count() == 1
    assert Notification.objects.get().alert == alert


@pytest.mark.parametrize("smtp", [SLOW_SMTP], indirect=True)
def test_it_emails_at_once_about_two_alerts_of_one_clinic_raised_together(
    patient, patient_client, clinician, api_client_for, workers, smtp
):
    # Two pool processes each email a care team of the same clinic, through a relay that
    # takes its time: neither alert may wait for the next sweep (a minute) to be emailed.
    other = red_flag_patients(clinician, 1)[0]
    workers(name="notify")
    for p, client in ((patient, patient_client), (other, api_client_for(other.user))):
        assert client.post(LOGS, red_flag_body(p)).status_code == 201
    wait_until(
        lambda: Alert.objects.count() == 2, timeout=EVENTUALLY, what="both alerts to be raised"
    )
    wait_until(
        lambda: not Alert.objects.filter(notified_at__isnull=True).exists(),
        timeout=EVENTUALLY,
        what="both care-team emails (without a sweep)",
    )
    assert sorted(r.recipients for r in smtp.received) == [("alice@riverside.example",)] * 2
    assert AlertEvent.objects.filter(kind=AlertEvent.Kind.NOTIFIED).count() == 2


def test_it_loses_and_doubles_nothing_when_the_worker_is_killed_mid_burst(
    clinician, workers, broker_url, smtp
):
    burst, free = 40, 10
    patients = red_flag_patients(clinician, burst)
    logs = [log_red_flag(p) for p in patients]
    assert queued(broker_url) == burst, "every log's evaluation should be waiting in Redis"

    with transaction.atomic():
        # The worker evaluates the first `free` logs (the queue is FIFO), then both pool
        # processes block on locked patients, inside `log_evaluate`: kill it there.
        lock_patients(patients[free:])
        doomed = workers(name="doomed")
        wait_until(
            lambda: lock_waiters() == 2, timeout=EVENTUALLY, what="two evaluations in flight"
        )
        done_before_kill = evaluated(logs)
        in_flight = set(
            DailyLog.objects.filter(evaluated_at__isnull=True, evaluation_attempts=1).values_list(
                "pk", flat=True
            )
        )
        doomed.kill()
    assert done_before_kill == free, "the kill should land in the middle of the burst"
    assert len(in_flight) == 2

    survivor = workers(name="survivor")
    wait_until(
        lambda: evaluated(logs) >= burst - len(in_flight) and queued(broker_url) == 0,
        timeout=EVENTUALLY,
        what="the new worker to drain the queue",
    )
    owed = set(DailyLog.objects.filter(evaluated_at__isnull=True).values_list("pk", flat=True))
    # The killed worker's two messages sit in Redis until visibility_timeout (5 minutes):
    # only the database-side sweeper can deliver them in time.
    assert owed == in_flight, "only the evaluations the killed worker held should be owed"

    with transaction.atomic():
        # Two beat processes by mistake: both sweeps re-enqueue the same logs (the worker
        # cannot finish them meanwhile: their patients are held).
        lock_patients(Patient.objects.filter(daily_logs__in=in_flight))
        assert sweep_after_grace() == len(in_flight)
        assert sweep_services.unevaluated_logs_sweep() == len(in_flight)
    wait_until(
        lambda: evaluated(logs) == burst, timeout=EVENTUALLY, what="the swept logs' evaluation"
    )

    # Beat's notification sweep, run by the worker, delivers whatever email is still owed.
    beat_until(
        notification_tasks.alert_notifications_sweep_task,
        lambda: (
            not Alert.objects.filter(notified_at__isnull=True).exists()
            and len(smtp.received) >= burst
        ),
        timeout=EVENTUALLY,
        what="every alert's care-team email",
    )
    assert survivor.proc.poll() is None

    assert_one_alert_per_patient_and_occurrence_per_log(patients, logs)
    alert_ids = {str(pk) for pk in Alert.objects.values_list("pk", flat=True)}
    notified = Counter(
        str(pk) for pk in AlertEvent.objects.filter(kind="notified").values_list("alert", flat=True)
    )
    assert notified == Counter(dict.fromkeys(alert_ids, 1))
    assert emails_per_alert(r.body for r in smtp.received) == Counter(dict.fromkeys(alert_ids, 1))


def test_it_redelivers_the_evaluation_of_a_killed_pool_process(clinician, workers):
    patients = red_flag_patients(clinician, 4)
    logs = [log_red_flag(p) for p in patients]

    with transaction.atomic():
        lock_patients(patients)
        worker = workers(name="child-kill")
        wait_until(
            lambda: lock_waiters() == 2, timeout=EVENTUALLY, what="two evaluations in flight"
        )
        worker.children()[0].kill()  # SIGKILL one pool process mid-evaluation
        wait_until(
            lambda: "WorkerLostError" in "".join(worker.lines),
            timeout=EVENTUALLY,
            what="the worker to notice its lost pool process",
        )

    # No sweeper here: task_reject_on_worker_lost puts the message back at once.
    wait_until(
        lambda: evaluated(logs) == len(logs), timeout=EVENTUALLY, what="every log's evaluation"
    )
    assert worker.proc.poll() is None, "the worker should replace its pool process and go on"
    attempts = sorted(DailyLog.objects.values_list("evaluation_attempts", flat=True))
    assert attempts == [1, 1, 1, 2], "the killed evaluation should have run again, once"
    assert_one_alert_per_patient_and_occurrence_per_log(patients, logs)


def test_it_raises_one_alert_when_two_workers_evaluate_one_log_at_once(patient, workers):
    log = log_red_flag(patient)

    with transaction.atomic():
        lock_patients([patient])
        worker = workers(name="twice")
        tasks.log_evaluate_task.delay(str(log.pk))  # a duplicate message (redelivery, sweep)
        wait_until(
            lambda: lock_waiters() == 2, timeout=EVENTUALLY, what="both evaluations to start"
        )

    def succeeded() -> int:
        return sum(
            "log_evaluate_task[" in line and "succeeded" in line for line in list(worker.lines)
        )

    wait_until(lambda: succeeded() == 2, timeout=EVENTUALLY, what="both evaluations to finish")
    stored = DailyLog.objects.get()
    assert stored.evaluated_at is not None
    assert stored.evaluation_attempts == 2
    alert = Alert.objects.get()
    assert alert.occurrence_count == 1
    assert AlertOccurrence.objects.get().log_id == log.pk
    kinds = Counter(alert.events.values_list("kind", flat=True))
    assert (kinds["created"], kinds["refired"]) == (1, 0)


def test_it_evaluates_a_burst_of_quiet_logs_in_batches_and_leaves_none_behind(
    clinician, workers, broker_url
):
    """A morning burst of quiet logs: one message for the lot (not one each), evaluated
    in batches; a patient someone holds is left out of the batch, gets a message of its
    own, and is evaluated once the patient is free."""
    patients = red_flag_patients(clinician, 30)
    logs = []
    for p in patients:
        assert p.user is not None
        data = {"date": p.local_today(), "pain": 4}
        logs.append(log_create(patient=p, actor=p.user, data=data).log)
    assert all(log.safety_advice is None for log in logs)
    assert queued(broker_url) == 1, "the burst should wait for one quiet-logs task"

    with transaction.atomic():
        lock_patients(patients[:1])
        worker = workers(name="batches")
        wait_until(
            lambda: evaluated(logs) == len(logs) - 1 and lock_waiters() == 1,
            timeout=EVENTUALLY,
            what="the batch to evaluate every log but the held patient's, which waits",
        )
    wait_until(
        lambda: evaluated(logs) == len(logs), timeout=EVENTUALLY, what="the held patient's log"
    )

    def succeeded(task: str) -> list[str]:
        return [line for line in list(worker.lines) if f"{task}[" in line and "succeeded" in line]

    wait_until(
        lambda: len(succeeded("log_evaluate_task")) == 1,
        timeout=EVENTUALLY,
        what="the held patient's own message",
    )
    wait_until(
        lambda: len(succeeded("quiet_logs_evaluate_task")) == 1,
        timeout=EVENTUALLY,
        what="the quiet-logs task to finish (it waits QUIET_GATHER for more first)",
    )
    batches = succeeded("quiet_logs_evaluate_task")
    assert batches[0].rstrip().endswith(f": {len(logs) - 1}")
    attempts = Counter(DailyLog.objects.values_list("evaluation_attempts", flat=True))
    assert attempts == Counter({1: len(logs) - 1, 2: 1})
    assert not redis.Redis.from_url(broker_url).exists(safety.QUIET_FLAG), "flag left held"


# It bounds each POST's wall-clock time: not beside the rest of a parallel run.
@pytest.mark.alone
def test_it_answers_log_posts_promptly_while_redis_is_down_and_alerts_once_it_is_back(
    patient, clinician, api_client_for, workers, own_redis, settings
):
    # All of Redis goes down: the broker and the throttle cache.
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": own_redis.url}}
    patients = [patient, *red_flag_patients(clinician, 3)]
    clients = [api_client_for(p.user) for p in patients]

    with producer_broker(own_redis.url):
        worker = workers(name="outage", broker=own_redis.url)
        own_redis.stop()

        for p, client in zip(patients, clients, strict=True):
            started = time.monotonic()
            response = client.post(LOGS, red_flag_body(p))
            took = time.monotonic() - started
            assert response.status_code == 201, response.content
            assert response.json()["safety_advice"]["severity"] == "emergency"
            assert took < ANSWER_WITHIN, f"a log POST took {took:.2f} s with Redis down"
            print(f"log POST with Redis down: {took:.3f} s")

        # Nothing half-written: every log whole, with its advice and audit, and owed.
        logs = list(DailyLog.objects.all())
        assert sorted(log.patient_id for log in logs) == sorted(p.pk for p in patients)
        assert all(log.safety_advice["severity"] == "emergency" for log in logs)
        assert all(log.evaluated_at is None and log.evaluation_attempts == 0 for log in logs)
        audited = AuditEvent.objects.filter(object_type="daily_log", action="create")
        assert audited.count() == len(patients)
        assert not Alert.objects.exists()

        own_redis.start()  # same port, empty: whatever was queued before is gone too
        back = time.monotonic()
        assert sweep_after_grace() == len(logs)
        wait_until(
            lambda: evaluated(logs) == len(logs),
            timeout=60,
            what="every log's alert after Redis came back",
        )
        print(f"Redis back -> every alert: {time.monotonic() - back:.2f} s")
        assert worker.proc.poll() is None, "the worker should survive the outage"

    assert_one_alert_per_patient_and_occurrence_per_log(patients, logs)


def _twice_at_once(sweep: Callable[[], int]) -> list[int]:
    """Run `sweep` in two threads released together, as two beat processes would."""
    barrier = threading.Barrier(2)
    results: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait(timeout=EVENTUALLY)
            results.append(sweep())
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            errors.append(exc)
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(t.is_alive() for t in threads), "a sweep did not finish in 30 s"
    assert not errors, errors
    return results


def test_it_escalates_and_notifies_once_when_two_beats_sweep_at_once(clinician, broker_url):
    patients = red_flag_patients(clinician, 20)
    for p in patients:
        safety.log_evaluate(log_id=log_red_flag(p).pk)
    assert Alert.objects.filter(notified_at__isnull=True).count() == 20
    # An hour later, nobody has acknowledged them (RF-META-01).
    Alert.objects.update(escalation_due_at=timezone.now() - timedelta(minutes=1))

    # Whatever one sweep skipped because the other held it is the next beat's (a minute
    # later); after that, every alert must have been handled once, by one of them.
    notified = _twice_at_once(notification_services.alert_notifications_sweep)
    assert sum(notified) + notification_services.alert_notifications_sweep() == 20
    escalated = _twice_at_once(notification_services.escalations_sweep)
    assert sum(escalated) + notification_services.escalations_sweep() == 20
    print(f"notified per beat: {notified}, escalated per beat: {escalated}")

    alert_ids = {str(pk) for pk in Alert.objects.values_list("pk", flat=True)}
    once_each = Counter(dict.fromkeys(alert_ids, 1))
    for kind in ("notified", "escalated"):
        events = AlertEvent.objects.filter(kind=kind).values_list("alert", flat=True)
        assert Counter(str(pk) for pk in events) == once_each, kind
    escalations = [m for m in mail.outbox if "ESCALATED" in m.subject]
    notifications = [m for m in mail.outbox if "ESCALATED" not in m.subject]
    assert emails_per_alert(str(m.body) for m in escalations) == once_each
    assert emails_per_alert(str(m.body) for m in notifications) == once_each
    assert {tuple(m.to) for m in escalations} == {(clinician.clinic.escalation_email,)}
    assert Notification.objects.filter(kind=Notification.Kind.ESCALATION).count() == 20


# --------------------------------------------------------------------------- amendment 8.1
# A red flag the patient was shown, then edited away (or sent in a body answered 409),
# still reaches the care team as an alert, whatever the worker is doing.

BLADDER = {"bladder_change": "new_or_worse"}
# Enough tries that the race the fix closes (lost in 3 of 5 tries before it) shows.
RACES = 15


def _edit_away(patient: Patient) -> DailyLog:
    """The patient logs a bladder change, is told to go to the ED, and at once edits it back
    to "no" (a mis-tap): both through the services, each publishing on commit."""
    assert patient.user is not None
    data = {"date": patient.local_today(), "pain": 6, "safety": BLADDER}
    log = log_create(patient=patient, actor=patient.user, data=data).log
    assert log.safety_advice is not None
    return log_update(log=log, actor=patient.user, data={"safety": {"bladder_change": "no"}})


def _bladder_alerts(patients: Iterable[Patient]) -> int:
    return Alert.objects.filter(patient__in=list(patients), rule="RF-CES-02").count()


def test_it_raises_a_red_flag_edited_away_while_a_real_worker_races_the_edit(clinician, workers):
    workers(name="race")
    patients = red_flag_patients(clinician, RACES)
    logs = [_edit_away(p) for p in patients]

    wait_until(
        lambda: _bladder_alerts(patients) == RACES,
        timeout=EVENTUALLY,
        what=f"RF-CES-02 for each of the {RACES} patients who edited it away",
    )
    wait_until(lambda: evaluated(logs) == RACES, timeout=EVENTUALLY, what="the edited logs")
    assert Alert.objects.filter(rule="RF-CES-02").count() == RACES  # none doubled
    per_log = Counter(
        AlertOccurrence.objects.filter(alert__rule="RF-CES-02").values_list("log_id", flat=True)
    )
    assert per_log == Counter({log.pk: 1 for log in logs})


def test_it_raises_a_red_flag_edited_away_while_the_worker_was_stopped(patient, workers):
    log = _edit_away(patient)
    assert not Alert.objects.exists()

    workers(name="late")  # the worker comes back: the messages waited in Redis
    alert = wait_until(
        lambda: Alert.objects.filter(patient=patient, rule="RF-CES-02").first(),
        timeout=EVENTUALLY,
        what="RF-CES-02 from the version edited away",
    )
    assert (alert.log_id, alert.basis["submission"]["kind"]) == (log.pk, "superseded")
    wait_until(
        lambda: Alert.objects.filter(pk=alert.pk, notified_at__isnull=False).exists(),
        timeout=EVENTUALLY,
        what="the care team's email",
    )


def test_it_raises_a_red_flag_edited_away_when_the_worker_is_killed_before_evaluating_it(
    patient, workers, broker_url
):
    from rehab.models import SafetySubmission

    log = _edit_away(patient)
    with transaction.atomic():
        # The worker takes both messages (the log's and the superseded version's) and
        # blocks on the patient inside them: killed there, whole, by SIGKILL.
        lock_patients([patient])
        doomed = workers(name="doomed-edit")
        wait_until(
            lambda: lock_waiters() == 2, timeout=EVENTUALLY, what="both evaluations in flight"
        )
        doomed.kill()
    assert not Alert.objects.exists()

    workers(name="survivor-edit")
    # Beat's sweep (after its grace) re-sends what the dead worker held.
    SafetySubmission.objects.update(created_at=F("created_at") - timedelta(minutes=1))
    DailyLog.objects.update(updated_at=F("updated_at") - timedelta(minutes=1))
    beat_until(
        tasks.unevaluated_logs_sweep_task,
        lambda: _bladder_alerts([patient]) == 1 and evaluated([log]) == 1,
        timeout=EVENTUALLY,
        what="RF-CES-02 after the kill",
    )
    assert AlertOccurrence.objects.get().log_id == log.pk
    assert not SafetySubmission.objects.filter(evaluated_at__isnull=True).exists()


def test_it_raises_the_red_flag_of_a_body_answered_409(patient, patient_client, workers):
    workers(name="conflict")
    stored = patient_client.post(LOGS, {**red_flag_body(patient), "safety": {}})
    assert stored.status_code == 201
    refused = patient_client.post(LOGS, {**red_flag_body(patient), "safety": BLADDER})
    assert refused.status_code == 409
    assert refused.json()["safety_advice"]["rules"] == ["RF-CES-02"]

    alert = wait_until(
        lambda: Alert.objects.filter(patient=patient, rule="RF-CES-02").first(),
        timeout=EVENTUALLY,
        what="RF-CES-02 from the refused body",
    )
    assert str(alert.log_id) == stored.json()["id"]
    assert alert.basis["submission"]["kind"] == "refused"


# --------------------------------------------------------------------------- connections
# Issue 18 item 10 (docs/security.md): the worker keeps its database connection between
# tasks, checks it before each task, and a safety task whose connection drops mid-task is
# sent again at once.


@pytest.fixture
def connection_worker(broker_url: str, smtp: SmtpSink) -> Iterator[tuple[Worker, str]]:
    """One worker with one pool process, whose database sessions carry a name of their own
    (`application_name`), so that the test can find and terminate them."""
    name = f"rehab-worker-{uuid.uuid4().hex[:8]}"
    env = worker_env(broker_url=broker_url, email_url=smtp.url)
    separator = "&" if "?" in env["DATABASE_URL"] else "?"
    env["DATABASE_URL"] += f"{separator}application_name={name}"
    worker = start_worker(env=env, name=name, concurrency=1)
    try:
        yield worker, name
    finally:
        worker.stop()
        print(f"----- worker {worker.name} (last lines) -----\n{worker.output()}")


def worker_backends(application_name: str, *, waiting: bool = False) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
            + (" AND wait_event_type = 'Lock'" if waiting else ""),
            [application_name],
        )
        return [int(row[0]) for row in cursor.fetchall()]


def terminate(pids: list[int]) -> None:
    with connection.cursor() as cursor:
        for pid in pids:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])


def test_it_keeps_the_worker_connection_and_survives_its_termination_between_tasks(
    patient, patient_client, clinician, api_client_for, connection_worker
):
    worker, name = connection_worker
    assert patient_client.post(LOGS, red_flag_body(patient)).status_code == 201
    wait_until(
        lambda: Alert.objects.filter(notified_at__isnull=False).count() == 1,
        timeout=EVENTUALLY,
        what="the first alert and its email",
    )
    # Reused, not closed after the task (CELERY_DB_REUSE_MAX, read from the app's config).
    kept = wait_until(
        lambda: worker_backends(name), timeout=EVENTUALLY, what="the worker's idle database session"
    )
    terminate(kept)
    wait_until(lambda: not worker_backends(name), timeout=EVENTUALLY, what="the session to end")

    other = red_flag_patients(clinician, 1)[0]
    posted = time.monotonic()
    assert api_client_for(other.user).post(LOGS, red_flag_body(other)).status_code == 201
    wait_until(
        lambda: Alert.objects.filter(patient=other, notified_at__isnull=False).exists(),
        timeout=EVENTUALLY,
        what="the second alert and its email, on a new connection",
    )
    print(f"log POST -> alert after a terminated connection: {time.monotonic() - posted:.3f} s")
    # The dead connection was noticed before the task used it: nothing failed or retried.
    assert DailyLog.objects.get(patient=other).evaluation_attempts == 1
    output = "".join(worker.lines)
    assert "OperationalError" not in output
    assert "InterfaceError" not in output


def test_it_retries_at_once_a_safety_task_whose_connection_dropped_mid_task(
    patient, connection_worker
):
    worker, name = connection_worker
    log = log_red_flag(patient)

    with transaction.atomic():
        lock_patients([patient])
        # The evaluation is inside its transaction, waiting for the patient's row.
        evaluating = wait_until(
            lambda: worker_backends(name, waiting=True), timeout=EVENTUALLY, what="the evaluation"
        )
        terminate(evaluating)
        wait_until(
            lambda: "retry: Retry in 0s" in "".join(worker.lines),
            timeout=EVENTUALLY,
            what="the task to be sent again at once",
        )
        wait_until(
            lambda: worker_backends(name, waiting=True),
            timeout=EVENTUALLY,
            what="the retried evaluation, on a new connection",
        )
        released = time.monotonic()

    wait_until(
        lambda: Alert.objects.filter(patient=patient, rule=RULE).exists(),
        timeout=EVENTUALLY,
        what=f"{RULE} without a sweep",
    )
    print(
        f"lock released -> alert after a mid-task termination: {time.monotonic() - released:.3f} s"
    )
    stored = DailyLog.objects.get(pk=log.pk)
    assert stored.evaluated_at is not None
    assert stored.evaluation_failed_at is None


# --------------------------------------------------------------------------- notifications


@pytest.mark.parametrize("smtp", [30.0], indirect=True)
def test_it_sends_again_what_a_worker_killed_mid_send_held_as_the_same_message(
    clinician, workers, smtp, settings
):
    # Invitations ride the same delivery machinery as the safety emails (notifications/):
    # one delivery row, claimed under a lease, its id the email's Message-ID.
    from datetime import date

    from notifications.models import Delivery
    from patients import services as patient_services
    from patients.models import Invitation

    # The worker derives the invitation's code from its own secret key.
    settings.SECRET_KEY = SECRET_KEY
    # The worker derives the invitation's code from its own secret key.
    settings.SECRET_KEY = SECRET_KEY
    doomed = workers(name="doomed")
    # Committed at once (transactional test): the task is published by name to the broker.
    patient_services.invitation_create(
        clinician=clinician,
        email="sam.new@example.com",
        first_name="Sam",
        last_name="New",
        date_of_birth=date(1980, 3, 14),
        timezone_name="Europe/London",
    )
    # The mail server holds the message (30 s): the worker is mid-send.
    wait_until(
        lambda: Delivery.objects.filter(status="sending").exists(),
        timeout=EVENTUALLY,
        what="the worker to claim the invitation's delivery",
    )
    # Into the SMTP conversation: the server has the whole message and holds its answer.
    wait_until(lambda: smtp.taken, timeout=EVENTUALLY, what="the mail server to get the message")
    doomed.kill()
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("sending", 1)
    assert Invitation.objects.get().last_sent_at is None

    # Its lease has run out (two minutes, brought forward here): a sweep claims it again.
    Delivery.objects.update(sending_until=timezone.now())
    smtp.delay = 0.0
    workers(name="survivor")
    beat_until(
        notification_tasks.deliveries_sweep_task,
        lambda: Delivery.objects.filter(status="sent").exists(),
        timeout=EVENTUALLY,
        what="the sweep to send the abandoned delivery",
    )
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    assert Invitation.objects.get().last_sent_at is not None
    # Whatever reached the server is one message: the delivery's id is its Message-ID.
    assert smtp.received
    assert {str(r.message["Message-ID"]) for r in smtp.received} == {delivery.provider_id}
    assert delivery.provider_id.startswith(f"<{delivery.pk}@")
