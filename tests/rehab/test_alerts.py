"""Safety engine, Django side: advice in the response, alerts, lifecycle, delivery, scope.

The background task's service is called directly here (the real worker is exercised in
test_worker_reliability.py); only email, which leaves the process, is captured.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.core import mail

from config import enqueue
from notifications import services as notification_services
from patients.models import AuditEvent
from rehab.models import Alert, AlertEvent, AlertOccurrence, DailyLog, Notification
from rehab.services import alerts as alert_services
from rehab.services import safety
from rehab.services import sweeps as sweep_services
from tests.factories import ClinicianFactory

pytestmark = pytest.mark.django_db

LOGS = "/api/v1/logs/"
ALERTS = "/api/v1/clinician/alerts/"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TODAY = date(2026, 11, 20)


@pytest.fixture(autouse=True)
def _frozen_time():
    with time_machine.travel(NOW, tick=False):
        yield


def post_log(client: Any, day: date = TODAY, **fields: Any) -> Any:
    payload = {"id": str(uuid.uuid4()), "date": day.isoformat(), "pain": 5, **fields}
    response = client.post(LOGS, payload)
    assert response.status_code == 201, response.json()
    return response.json()


def evaluate_all() -> None:
    for log_id in DailyLog.objects.filter(evaluated_at__isnull=True).values_list("pk", flat=True):
        safety.log_evaluate(log_id=log_id)


SADDLE: dict[str, Any] = {"safety": {"saddle_numbness": "new_or_worse"}}


# --------------------------------------------------------------------------- advice


def test_it_tells_the_patient_to_go_to_the_emergency_department_at_once(patient_client):
    log = post_log(patient_client, **SADDLE)
    advice = log["safety_advice"]
    assert advice["severity"] == "emergency"
    assert advice["rules"] == ["RF-CES-01"]
    assert "Emergency Department" in advice["message"]


def test_it_lists_every_fired_rule_most_severe_first(patient_client):
    log = post_log(
        patient_client,
        safety={"weakness": "one_leg_new", "bladder_change": "new_or_worse"},
        leg_pain_side="both",
    )
    advice = log["safety_advice"]
    assert advice["severity"] == "emergency"
    assert advice["rules"][0] == "RF-CES-02"
    assert set(advice["rules"]) == {"RF-CES-02", "RF-NEU-01", "RF-CES-06"}


def test_it_gives_no_advice_for_a_benign_log(patient_client):
    assert (
        post_log(patient_client, safety={"sexual_function_change": "prefer_not_to_say"})[
            "safety_advice"
        ]
        is None
    )


def test_it_reads_the_clinician_confirmed_history_inline(patient_client, patient):
    patient.history_immunosuppressed = True
    patient.save()
    log = post_log(patient_client, safety={"temperature_c": 38.0})
    assert log["safety_advice"]["rules"] == ["RF-INF-02"]
    assert log["safety_advice"]["severity"] == "emergency"


def test_it_recomputes_advice_when_a_log_is_edited(patient_client):
    log = post_log(patient_client)
    response = patient_client.patch(f"{LOGS}{log['id']}/", SADDLE)
    assert response.json()["safety_advice"]["rules"] == ["RF-CES-01"]


def _mark(patient: Any, symptom: str, until: date = TODAY + timedelta(days=30)) -> None:
    from tests.rehab.factories_record import AssessedMarkFactory

    AssessedMarkFactory.create(patient=patient, symptom=symptom, until=until)


def test_it_reminds_the_patient_when_an_assessed_mark_suppressed_a_rule(patient_client, patient):
    from rehab.safety import SUPPRESSED_REMINDER

    _mark(patient, "bladder_change")
    log = post_log(patient_client, safety={"bladder_change": "unchanged_assessed"})
    # Nothing fires (so no advice, as the contract says), yet §4's reminder is owed.
    assert log["safety_advice"] is None
    assert log["safety_reminder"] == SUPPRESSED_REMINDER
    assert "Emergency Department now" in log["safety_reminder"]
    # Stored with the log: reading it back tells the patient the same.
    again = patient_client.get(f"{LOGS}{log['id']}/").json()
    assert again["safety_reminder"] == SUPPRESSED_REMINDER


def test_it_reminds_the_patient_beside_the_advice_when_a_rule_also_fired(patient_client, patient):
    _mark(patient, "both_legs")
    log = post_log(patient_client, safety={"both_legs": "unchanged_assessed"})
    assert log["safety_advice"]["rules"] == ["RF-CES-06"]
    assert log["safety_reminder"] == log["safety_advice"]["note"]


def test_it_gives_no_reminder_without_a_current_mark(patient_client, patient):
    _mark(patient, "bladder_change", until=TODAY - timedelta(days=1))
    log = post_log(patient_client, safety={"bladder_change": "unchanged_assessed"})
    # An expired mark: unchanged_assessed counts as new, the full rule fires.
    assert log["safety_advice"]["rules"] == ["RF-CES-02"]
    assert log["safety_reminder"] is None
    assert post_log(patient_client, day=TODAY - timedelta(days=1))["safety_reminder"] is None


def test_it_evaluates_a_late_log_with_a_mark_revoked_after_it_was_submitted(
    patient_client, patient, clinician
):
    from rehab.models import AssessedMark
    from rehab.services import record

    _mark(patient, "bladder_change")
    log = post_log(patient_client, safety={"bladder_change": "unchanged_assessed"})
    assert log["safety_advice"] is None  # the patient answered under the mark
    with time_machine.travel(NOW + timedelta(minutes=5), tick=False):
        assert record.assessed_mark_revoke(mark=AssessedMark.objects.get(), clinician=clinician)
    # The worker (or the sweeper, after an outage) gets to the log only now.
    with time_machine.travel(NOW + timedelta(minutes=10), tick=False):
        assert safety.log_evaluate(log_id=log["id"]).status == "evaluated"
    assert not Alert.objects.exists()


def test_it_does_not_let_a_mark_made_after_a_log_hide_its_red_flag_when_evaluated_late(
    patient_client, patient
):
    log = post_log(patient_client, safety={"bladder_change": "unchanged_assessed"})
    assert log["safety_advice"]["rules"] == ["RF-CES-02"]  # no mark: counts as new
    with time_machine.travel(NOW + timedelta(minutes=5), tick=False):
        _mark(patient, "bladder_change")
    with time_machine.travel(NOW + timedelta(minutes=10), tick=False):
        safety.log_evaluate(log_id=log["id"])
    alert = Alert.objects.get()
    assert (alert.rule, alert.severity) == ("RF-CES-02", "emergency")


def test_it_evaluates_a_late_log_with_a_mark_that_ends_on_its_date(patient_client, patient):
    yesterday = TODAY - timedelta(days=1)
    _mark(patient, "bladder_change", until=yesterday)
    held = post_log(patient_client, day=yesterday, safety={"bladder_change": "unchanged_assessed"})
    ended = post_log(patient_client, safety={"bladder_change": "unchanged_assessed"})
    with time_machine.travel(NOW + timedelta(minutes=10), tick=False):
        evaluate_all()
    assert list(Alert.objects.values_list("rule", "log_id")) == [
        ("RF-CES-02", uuid.UUID(ended["id"]))
    ]
    assert held["safety_advice"] is None


def test_it_recomputes_the_reminder_when_a_log_is_edited(patient_client, patient):
    from rehab.safety import SUPPRESSED_REMINDER

    _mark(patient, "saddle_numbness")
    log = post_log(patient_client)
    assert log["safety_reminder"] is None
    url = f"{LOGS}{log['id']}/"
    edited = patient_client.patch(url, {"safety": {"saddle_numbness": "unchanged_assessed"}})
    assert edited.status_code == 200
    assert (edited.json()["safety_advice"], edited.json()["safety_reminder"]) == (
        None,
        SUPPRESSED_REMINDER,
    )
    cleared = patient_client.patch(url, {"safety": {"saddle_numbness": "no"}}).json()
    assert cleared["safety_reminder"] is None
    assert DailyLog.objects.get(pk=log["id"]).safety_reminder is None


# --------------------------------------------------------------------------- evaluation


def test_it_enqueues_the_evaluation_only_after_commit(
    patient_client, django_capture_on_commit_callbacks, monkeypatch
):
    sent: list[str] = []
    from rehab import tasks

    monkeypatch.setattr(tasks.log_evaluate_task, "delay", sent.append)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        log = post_log(patient_client, **SADDLE)
    assert sent == []
    for callback in callbacks:
        callback()
    assert sent == [log["id"]]


def test_it_raises_an_alert_with_rule_version_and_basis(patient_client, patient):
    log = post_log(patient_client, **SADDLE)
    evaluate_all()
    alert = Alert.objects.get()
    assert alert.patient == patient
    assert (alert.rule, alert.severity, alert.status) == ("RF-CES-01", "emergency", "open")
    assert alert.rule_version >= 1
    assert alert.basis == {"safety.saddle_numbness": "new_or_worse"}
    assert str(alert.log_id) == log["id"]
    assert alert.escalation_due_at == NOW + timedelta(minutes=60)
    assert DailyLog.objects.get().evaluated_at == NOW


def test_it_raises_one_alert_per_fired_rule(patient_client):
    post_log(patient_client, safety={"weakness": "foot_drop", "thoracic_or_band_pain": True})
    evaluate_all()
    assert sorted(Alert.objects.values_list("rule", flat=True)) == ["RF-NEU-01", "RF-TH-01"]


def test_it_is_idempotent_when_a_log_is_evaluated_twice(patient_client):
    log = post_log(patient_client, **SADDLE)
    assert safety.log_evaluate(log_id=log["id"]).status == "evaluated"
    # A redelivered message finds the log already evaluated.
    assert safety.log_evaluate(log_id=log["id"]).status == "already"
    # Even forced to run again (an operator reset), it adds nothing.
    DailyLog.objects.update(evaluated_at=None)
    safety.log_evaluate(log_id=log["id"])
    assert Alert.objects.count() == 1
    assert AlertOccurrence.objects.count() == 1


def test_it_records_a_new_firing_as_another_occurrence(patient_client):
    post_log(patient_client, day=TODAY - timedelta(days=1), **SADDLE)
    post_log(patient_client, **SADDLE)
    evaluate_all()
    alert = Alert.objects.get()
    assert alert.occurrence_count == 2
    assert alert.occurrences.count() == 2


def test_it_reopens_an_acknowledged_alert_on_a_new_firing(patient_client, clinician):
    post_log(patient_client, day=TODAY - timedelta(days=1), **SADDLE)
    evaluate_all()
    alert = alert_services.alert_acknowledge(
        alert=Alert.objects.get(), actor=clinician.user, note="rang"
    )
    assert alert.status == "acknowledged"
    post_log(patient_client, **SADDLE)
    evaluate_all()
    alert.refresh_from_db()
    assert alert.status == "open"
    assert alert.escalated_at is None
    assert list(alert.events.values_list("kind", flat=True)) == [
        "created",
        "acknowledged",
        "reopened",
    ]


def test_it_raises_a_new_alert_after_the_last_was_resolved(patient_client, clinician):
    post_log(patient_client, day=TODAY - timedelta(days=1), **SADDLE)
    evaluate_all()
    alert_services.alert_resolve(
        alert=Alert.objects.get(), actor=clinician.user, disposition="advised_ed"
    )
    post_log(patient_client, **SADDLE)
    evaluate_all()
    assert sorted(Alert.objects.values_list("status", flat=True)) == ["open", "resolved"]


def test_it_evaluates_an_edited_log_again(patient_client):
    log = post_log(patient_client)
    evaluate_all()
    assert not Alert.objects.exists()
    patient_client.patch(f"{LOGS}{log['id']}/", SADDLE)
    assert DailyLog.objects.get().evaluated_at is None
    evaluate_all()
    assert Alert.objects.get().rule == "RF-CES-01"


def test_it_leaves_a_log_edited_during_evaluation_owed(patient_client, monkeypatch):
    log = post_log(patient_client)
    original = safety.full_contexts

    def edit_meanwhile(logs: Any) -> Any:
        (log,) = logs
        DailyLog.objects.filter(pk=log.pk).update(version=log.version + 1)
        return original(logs)

    monkeypatch.setattr(safety, "full_contexts", edit_meanwhile)
    assert safety.log_evaluate(log_id=log["id"]).status == "stale"
    assert DailyLog.objects.get().evaluated_at is None


def test_it_gives_up_on_a_log_that_keeps_failing(patient_client, monkeypatch):
    log = post_log(patient_client)

    def boom(logs: Any) -> Any:
        raise RuntimeError("rule engine exploded")

    monkeypatch.setattr(safety, "full_contexts", boom)
    for _ in range(safety.MAX_EVALUATION_ATTEMPTS):
        with pytest.raises(RuntimeError):
            safety.log_evaluate(log_id=log["id"])
    assert safety.log_evaluate(log_id=log["id"]).status == "failed"
    stored = DailyLog.objects.get()
    assert stored.evaluation_failed_at is not None
    assert "exploded" in stored.evaluation_error
    assert sweep_services.safety_status()["failed_logs"] == 1
    # A failed log is surfaced, not retried forever.
    assert safety.log_evaluate(log_id=log["id"]).status == "already"


def test_it_sweeps_logs_whose_message_was_lost(patient_client, monkeypatch):
    from rehab import tasks

    sent: list[str] = []
    monkeypatch.setattr(tasks.log_evaluate_task, "delay", sent.append)
    log = post_log(patient_client, **SADDLE)
    assert sweep_services.unevaluated_logs_sweep() == 0  # within the grace period
    with time_machine.travel(NOW + timedelta(seconds=31), tick=False):
        assert sweep_services.unevaluated_logs_sweep() == 1
    assert sent == [log["id"]]


def test_it_answers_201_with_advice_when_the_broker_is_down(
    patient_client, monkeypatch, django_capture_on_commit_callbacks
):
    from rehab import tasks

    def broker_down(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("redis is down")

    monkeypatch.setattr(tasks.log_evaluate_task, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        log = post_log(patient_client, **SADDLE)
    assert len(callbacks) == 1
    assert log["safety_advice"]["severity"] == "emergency"
    assert DailyLog.objects.get().evaluated_at is None


def test_it_stops_waiting_on_a_failing_broker_for_a_while(
    patient_client, monkeypatch, django_capture_on_commit_callbacks
):
    from rehab import tasks

    calls: list[str] = []

    def broker_down(log_id: str) -> None:
        calls.append(log_id)
        raise ConnectionError("redis is down")

    monkeypatch.setattr(tasks.log_evaluate_task, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        post_log(patient_client, day=TODAY - timedelta(days=1), **SADDLE)
        post_log(patient_client, **SADDLE)
    # The second request did not pay for another broker timeout.
    assert len(calls) == 1
    # Once the pause is over, requests try the broker again.
    enqueue._publish_paused_until = 0.0
    with django_capture_on_commit_callbacks(execute=True):
        post_log(patient_client, day=TODAY - timedelta(days=2), **SADDLE)
    assert len(calls) == 2
    assert DailyLog.objects.filter(evaluated_at__isnull=True).count() == 3


@pytest.fixture
def quiet_messages(monkeypatch):
    """The quiet-logs task's messages, captured; its flag starts (and ends) unset."""
    from rehab import tasks

    sent: list[tuple[Any, ...]] = []
    monkeypatch.setattr(tasks.quiet_logs_evaluate_task, "delay", lambda *a: sent.append(a))
    broker = safety._broker_redis()
    broker.delete(safety.QUIET_FLAG)
    monkeypatch.setattr(safety, "QUIET_GATHER", 0.0)
    yield sent
    broker.delete(safety.QUIET_FLAG)


def test_quiet_logs_send_one_message_while_a_task_is_on_them(
    patient_client, quiet_messages, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        for days_ago in range(3):
            post_log(patient_client, day=TODAY - timedelta(days=days_ago))
    assert quiet_messages == [()]
    # The task takes them all in one batch and lets go of the flag on its way out...
    assert safety.quiet_logs_evaluate() == 3
    assert not DailyLog.objects.filter(evaluated_at__isnull=True).exists()
    assert not safety._broker_redis().exists(safety.QUIET_FLAG)
    # ... so the next quiet log sends a message again.
    with django_capture_on_commit_callbacks(execute=True):
        post_log(patient_client, day=TODAY - timedelta(days=3))
    assert quiet_messages == [(), ()]


def test_the_quiet_logs_task_waits_for_more_to_gather_after_a_round_that_was_not_full(
    patient_client, quiet_messages, monkeypatch
):
    import time as time_module

    post_log(patient_client)
    rounds: list[int] = []
    original = safety._evaluate_and_raise

    def counted(log: Any, *, others: Any) -> Any:
        rounds.append(len(others))
        return original(log, others=others)

    def gather(seconds: float) -> None:
        assert seconds in (safety.QUIET_GATHER, safety.QUIET_LAST_LOOK_AFTER)
        if len(rounds) == 1 and seconds == safety.QUIET_GATHER:  # logs come in meanwhile
            for days_ago in (1, 2, 3):
                post_log(patient_client, day=TODAY - timedelta(days=days_ago))

    monkeypatch.setattr(safety, "_evaluate_and_raise", counted)
    monkeypatch.setattr(time_module, "sleep", gather)
    assert safety.quiet_logs_evaluate() == 4
    assert rounds == [1, 3]
    assert not DailyLog.objects.filter(evaluated_at__isnull=True).exists()


def test_a_process_trusts_a_held_flag_for_a_moment_without_asking_again(
    patient_client, quiet_messages, django_capture_on_commit_callbacks, monkeypatch
):
    broker = safety._broker_redis()
    asks: list[tuple[Any, ...]] = []
    real_set = broker.set

    def counted_set(*args: Any, **kwargs: Any) -> Any:
        asks.append(args)
        return real_set(*args, **kwargs)

    monkeypatch.setattr(broker, "set", counted_set)
    broker.set(safety.QUIET_FLAG, "1", px=safety.QUIET_FLAG_TTL_MS)  # a task is on them
    asks.clear()
    clock = [1000.0]
    monkeypatch.setattr(safety.time, "monotonic", lambda: clock[0])
    with django_capture_on_commit_callbacks(execute=True):
        post_log(patient_client)
    with django_capture_on_commit_callbacks(execute=True):
        post_log(patient_client, day=TODAY - timedelta(days=1))
    assert len(asks) == 1  # the second log trusted what the first one found
    clock[0] += safety.QUIET_FLAG_TRUST
    with django_capture_on_commit_callbacks(execute=True):
        post_log(patient_client, day=TODAY - timedelta(days=2))
    assert len(asks) == 2  # trust runs out: it asks again
    assert quiet_messages == []  # held all along: no message


def test_the_quiet_logs_task_takes_its_last_look_after_every_trust_has_run_out(
    patient_client, quiet_messages, django_capture_on_commit_callbacks, monkeypatch
):
    import time as time_module

    assert safety.QUIET_LAST_LOOK_AFTER > safety.QUIET_FLAG_TRUST
    with django_capture_on_commit_callbacks(execute=True):
        post_log(patient_client)  # sets the flag, trusted by this process from now
    assert quiet_messages == [()]
    slept: list[tuple[float, bool]] = []

    def sleep(seconds: float) -> None:
        held = bool(safety._broker_redis().exists(safety.QUIET_FLAG))
        slept.append((seconds, held))
        if seconds == safety.QUIET_LAST_LOOK_AFTER:
            # The flag is gone, but a log committed now by a process still trusting it
            # sends nothing: the last look, still to come, must take it. The trust is
            # pinned rather than left to the clock: on a loaded machine more than
            # QUIET_FLAG_TRUST can pass between the first post and this one.
            safety._quiet_flag_trusted_until = time_module.monotonic() + 60
            with django_capture_on_commit_callbacks(execute=True):
                post_log(patient_client, day=TODAY - timedelta(days=1))

    monkeypatch.setattr(time_module, "sleep", sleep)
    assert safety.quiet_logs_evaluate() == 2
    assert slept[-1] == (safety.QUIET_LAST_LOOK_AFTER, False)
    assert quiet_messages == [()]
    assert not DailyLog.objects.filter(evaluated_at__isnull=True).exists()


def test_a_quiet_log_is_left_to_the_sweeper_when_the_broker_is_down(
    patient_client, quiet_messages, django_capture_on_commit_callbacks, monkeypatch
):
    class DownRedis:
        def set(self, *args: Any, **kwargs: Any) -> None:
            raise ConnectionError("redis is down")

    monkeypatch.setattr(safety, "_broker_redis", DownRedis)
    with django_capture_on_commit_callbacks(execute=True):
        log = post_log(patient_client)
    assert quiet_messages == []
    assert enqueue._publish_paused_until > 0
    stored = DailyLog.objects.get(pk=log["id"])
    assert (stored.evaluated_at, stored.evaluation_attempts) == (None, 0)
    enqueue._publish_paused_until = 0.0


def test_a_lost_quiet_logs_message_holds_nothing_up_past_the_flag(
    patient_client, quiet_messages, django_capture_on_commit_callbacks, monkeypatch
):
    from rehab import tasks

    with django_capture_on_commit_callbacks(execute=True):
        post_log(patient_client)  # its message is lost: the flag stays held
    # The flag expires, so a later quiet log sends a message of its own.
    assert 0 < safety._broker_redis().pttl(safety.QUIET_FLAG) <= safety.QUIET_FLAG_TTL_MS
    # As if QUIET_FLAG_TTL_MS had passed (and this process's far shorter trust with it).
    safety._broker_redis().delete(safety.QUIET_FLAG)
    safety._quiet_flag_trusted_until = 0.0
    with django_capture_on_commit_callbacks(execute=True):
        post_log(patient_client, day=TODAY - timedelta(days=1))
    assert quiet_messages == [(), ()]
    # And the sweeper, which does not look at the flag, has every owed log anyway.
    sent: list[str] = []
    monkeypatch.setattr(tasks.log_evaluate_task, "delay", sent.append)
    with time_machine.travel(NOW + enqueue.SWEEP_GRACE + timedelta(seconds=1), tick=False):
        assert sweep_services.unevaluated_logs_sweep() == 2
    assert len(sent) == 2


# --------------------------------------------------------------------------- delivery


def test_it_notifies_the_care_team_of_an_emergency_in_app_and_by_email(
    patient_client, clinician, django_capture_on_commit_callbacks, monkeypatch, run_published
):
    from rehab import tasks

    monkeypatch.setattr(tasks.log_evaluate_task, "delay", lambda log_id: None)
    post_log(patient_client, **SADDLE)
    with django_capture_on_commit_callbacks(execute=True):
        evaluate_all()
    alert = Alert.objects.get()
    assert Notification.objects.get().clinician == clinician
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["alice@riverside.example"]
    assert "RF-CES-01" in mail.outbox[0].subject
    # No clinical detail leaves by email beyond the rule id: the link leads to it.
    assert "saddle" not in mail.outbox[0].body.lower()
    assert alert.events.filter(kind="notified").exists()
    # Exactly once: a second delivery (redelivered message, sweeper) sends nothing.
    assert notification_services.alert_notify(alert_id=alert.pk) is False
    assert notification_services.alert_notifications_sweep() == 0
    assert len(mail.outbox) == 1


def test_it_sends_owed_notifications_from_the_sweeper(patient_client):
    post_log(patient_client, safety={"weakness": "foot_drop"})
    evaluate_all()  # on_commit callbacks are not run: the message is "lost"
    assert len(mail.outbox) == 0
    assert notification_services.alert_notifications_sweep() == 1
    assert len(mail.outbox) == 1


def test_it_does_not_email_about_routine_alerts(patient, clinician):
    log = DailyLog.objects.create(patient=patient, date=TODAY, pain=1)
    from rehab.safety import Firing

    firing = Firing(
        rule_id="RF-NP-01", version=1, severity="routine", basis={}, message_key="routine"
    )
    alert_services.alert_raise(patient=patient, firing=firing, log=log, fired_on=TODAY)
    assert notification_services.alert_notifications_sweep() == 0
    assert not Notification.objects.exists()


def test_it_escalates_an_unacknowledged_emergency_after_an_hour_once(patient_client, clinic):
    post_log(patient_client, **SADDLE)
    evaluate_all()
    notification_services.alert_notifications_sweep()
    mail.outbox.clear()
    with time_machine.travel(NOW + timedelta(minutes=59), tick=False):
        assert notification_services.escalations_sweep() == 0
    with time_machine.travel(NOW + timedelta(minutes=60), tick=False):
        assert notification_services.escalations_sweep() == 1
        assert notification_services.escalations_sweep() == 0
    assert [m.to for m in mail.outbox] == [[clinic.escalation_email]]
    alert = Alert.objects.get()
    assert alert.escalated_at is not None
    assert alert.events.filter(kind="escalated").count() == 1
    assert Notification.objects.filter(kind="escalation").count() == 1


def test_it_escalates_an_urgent_alert_after_four_hours(patient_client):
    post_log(patient_client, safety={"weakness": "foot_drop"})
    evaluate_all()
    with time_machine.travel(NOW + timedelta(hours=3, minutes=59), tick=False):
        assert notification_services.escalations_sweep() == 0
    with time_machine.travel(NOW + timedelta(hours=4), tick=False):
        assert notification_services.escalations_sweep() == 1


def test_it_does_not_escalate_an_acknowledged_alert(patient_client, clinician):
    post_log(patient_client, **SADDLE)
    evaluate_all()
    alert_services.alert_acknowledge(alert=Alert.objects.get(), actor=clinician.user)
    with time_machine.travel(NOW + timedelta(hours=2), tick=False):
        assert notification_services.escalations_sweep() == 0


# --------------------------------------------------------------------------- API


@pytest.fixture
def alert(patient_client) -> Alert:
    post_log(patient_client, **SADDLE)
    evaluate_all()
    return Alert.objects.get()


def test_it_lists_alerts_with_the_contract_fields(clinician_client, alert, patient):
    response = clinician_client.get(ALERTS)
    assert response.status_code == 200
    row = response.json()["results"][0]
    for field in (
        "id",
        "patient_id",
        "severity",
        "rule",
        "rule_version",
        "status",
        "created_at",
        "log_id",
        "basis",
    ):
        assert field in row
    assert row["patient_id"] == str(patient.pk)
    assert row["status"] == "open"


def test_it_orders_alerts_most_severe_then_oldest_first(clinician_client, patient_client, patient):
    with time_machine.travel(NOW - timedelta(days=2), tick=False):
        post_log(patient_client, day=TODAY - timedelta(days=2), safety={"weakness": "foot_drop"})
        evaluate_all()
    with time_machine.travel(NOW - timedelta(days=1), tick=False):
        post_log(
            patient_client, day=TODAY - timedelta(days=1), safety={"thoracic_or_band_pain": True}
        )
        evaluate_all()
    post_log(patient_client, **SADDLE)
    evaluate_all()
    rules = [r["rule"] for r in clinician_client.get(ALERTS).json()["results"]]
    assert rules[0] == "RF-CES-01"
    assert rules[1:] == ["RF-NEU-01", "RF-TH-01"]


@pytest.mark.parametrize(
    ("params", "count"),
    [({"status": "open"}, 1), ({"status": "resolved"}, 0), ({"severity": "urgent"}, 0)],
)
def test_it_filters_alerts(clinician_client, alert, params, count):
    assert clinician_client.get(ALERTS, params).json()["count"] == count


def test_it_filters_alerts_by_patient(clinician_client, alert, patient):
    assert clinician_client.get(ALERTS, {"patient": str(patient.pk)}).json()["count"] == 1
    assert clinician_client.get(ALERTS, {"patient": str(uuid.uuid4())}).json()["count"] == 0


@pytest.mark.parametrize("params", [{"status": "closed"}, {"severity": "high"}, {"patient": "x"}])
def test_it_rejects_bad_alert_filters(clinician_client, params):
    response = clinician_client.get(ALERTS, params)
    assert response.status_code == 400
    assert set(params) <= set(response.json())


def test_it_acknowledges_and_resolves_an_alert(clinician_client, alert, clinician):
    url = f"{ALERTS}{alert.pk}/"
    response = clinician_client.post(f"{url}acknowledge/", {"note": "Phoned, going to ED"})
    assert response.status_code == 200
    assert response.json()["status"] == "acknowledged"
    assert response.json()["acknowledged_note"] == "Phoned, going to ED"
    response = clinician_client.post(
        f"{url}resolve/", {"disposition": "advised_ed", "note": "Attended ED"}
    )
    assert response.status_code == 200
    data = response.json()
    assert data["status"] == "resolved"
    assert data["disposition"] == "advised_ed"
    assert [e["kind"] for e in data["events"]] == ["created", "acknowledged", "resolved"]
    assert data["events"][1]["actor"] == "Alice Physio"
    audit = AuditEvent.objects.filter(object_type="alert", action="update")
    assert audit.count() == 2


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"disposition": "shrugged"},
        {"disposition": "trigger_cleared"},
        {"disposition": "referred", "x": 1},
    ],
)
def test_it_rejects_a_bad_resolution_and_changes_nothing(clinician_client, alert, body):
    response = clinician_client.post(f"{ALERTS}{alert.pk}/resolve/", body)
    assert response.status_code == 400
    alert.refresh_from_db()
    assert alert.status == "open"


def test_it_rejects_acknowledging_a_resolved_alert(clinician_client, alert):
    clinician_client.post(f"{ALERTS}{alert.pk}/resolve/", {"disposition": "referred"})
    response = clinician_client.post(f"{ALERTS}{alert.pk}/acknowledge/", {})
    assert response.status_code == 400
    assert Alert.objects.get().status == "resolved"


def test_it_rejects_unknown_fields_on_acknowledge(clinician_client, alert):
    assert clinician_client.post(f"{ALERTS}{alert.pk}/acknowledge/", {"nope": 1}).status_code == 400


def test_it_scopes_alerts(
    other_clinic_clinician_client, patient_client, anon_client, clinician_client, alert
):
    url = f"{ALERTS}{alert.pk}/"
    assert other_clinic_clinician_client.get(ALERTS).json()["count"] == 0
    assert other_clinic_clinician_client.get(url).status_code == 404
    assert other_clinic_clinician_client.post(f"{url}acknowledge/", {}).status_code == 404
    assert (
        other_clinic_clinician_client.post(
            f"{url}resolve/", {"disposition": "referred"}
        ).status_code
        == 404
    )
    assert patient_client.get(ALERTS).status_code == 403
    assert patient_client.get(url).status_code == 403
    assert anon_client.get(ALERTS).status_code == 401
    assert clinician_client.get(f"{ALERTS}{uuid.uuid4()}/").status_code == 404
    assert Alert.objects.get().status == "open"


def test_it_lists_and_marks_read_the_callers_notifications(clinician_client, alert, clinician):
    data = clinician_client.get("/api/v1/clinician/notifications/", {"unread": "true"}).json()
    assert data["count"] == 1
    note_id = data["results"][0]["id"]
    response = clinician_client.post(f"/api/v1/clinician/notifications/{note_id}/read/")
    assert response.status_code == 200
    assert response.json()["read_at"] is not None
    assert (
        clinician_client.get("/api/v1/clinician/notifications/", {"unread": "true"}).json()["count"]
        == 0
    )


def test_it_scopes_notifications_to_their_clinician(alert, clinician, api_client_for):
    colleague = ClinicianFactory.create(clinic=clinician.clinic)
    client = api_client_for(colleague.user)
    assert client.get("/api/v1/clinician/notifications/").json()["count"] == 0
    note = Notification.objects.get()
    assert client.post(f"/api/v1/clinician/notifications/{note.pk}/read/").status_code == 404


# --------------------------------------------------------------------------- rules


def test_it_publishes_the_inline_rules_with_an_etag(anon_client):
    response = anon_client.get("/api/v1/safety/rules/")
    assert response.status_code == 200
    etag = response["ETag"]
    body = response.json()
    assert body["version"]
    ids = {rule["id"] for rule in body["rules"]}
    assert {"RF-CES-01", "RF-INF-02", "RF-NEU-01"} <= ids
    again = anon_client.get("/api/v1/safety/rules/", HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304


@pytest.mark.parametrize(
    ("header", "status"),
    [
        ("{etag}", 304),
        ("W/{etag}", 304),  # weak comparison, as RFC 9110 asks for If-None-Match
        ('"other", W/{etag}', 304),
        ('"other",{etag}', 304),
        ("*", 304),
        ('"other"', 200),
        ('W/"other", "more"', 200),
        ("not an etag", 200),
    ],
)
def test_it_compares_the_rules_etag_weakly_and_in_lists(anon_client, header, status):
    etag = anon_client.get("/api/v1/safety/rules/")["ETag"]
    response = anon_client.get("/api/v1/safety/rules/", HTTP_IF_NONE_MATCH=header.format(etag=etag))
    assert response.status_code == status
    assert response["ETag"] == etag


def test_it_counts_alert_events_for_the_audit_trail(alert):
    assert AlertEvent.objects.filter(alert=alert, kind="created").count() == 1


@pytest.mark.django_db(transaction=True)
def test_it_does_not_block_a_patients_new_log_while_evaluating_one(patient, monkeypatch):
    """The evaluation's patient lock serialises evaluations, not the patient's own writes:
    while it is held, the patient can still store a log (an insert's foreign-key check
    takes KEY SHARE, which FOR NO KEY UPDATE allows and FOR UPDATE would block)."""
    import threading

    from django.db import connection

    log = DailyLog.objects.create(patient=patient, date=TODAY - timedelta(days=1), pain=2)
    inserted: list[bool] = []
    original = safety.full_contexts

    def insert_log() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = '2s'")
            DailyLog.objects.create(patient_id=patient.pk, date=TODAY, pain=3)
            inserted.append(True)
        finally:
            connection.close()

    def context_while_locked(logs: Any) -> Any:
        if not inserted:  # the new log is then evaluated as one that arrived meanwhile
            thread = threading.Thread(target=insert_log)
            thread.start()
            # Generous: a blocked insert gives up after its lock_timeout (2 s) anyway.
            thread.join(30)
        return original(logs)

    monkeypatch.setattr(safety, "full_contexts", context_while_locked)
    assert safety.log_evaluate(log_id=log.pk).status == "evaluated"
    assert inserted == [True]
