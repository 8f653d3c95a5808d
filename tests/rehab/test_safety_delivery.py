"""Delivery of safety emails when things go wrong: a failing or hung SMTP server, a clinic
with nobody to send to, a re-fired alert, the escalation clock, the sweepers' limits.

Email is the only thing faked: a locmem backend that refuses some recipients.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

import pytest
import time_machine
from django.core import mail
from django.core.mail import EmailMessage
from django.core.mail.backends.locmem import EmailBackend

from config import enqueue
from notifications import services as notification_services
from notifications import tasks
from patients.models import Clinic, Clinician, Patient
from rehab import tasks as rehab_tasks
from rehab.models import Alert, DailyLog
from rehab.safety import Firing
from rehab.services import alerts as alert_services
from rehab.services import delivery as delivery_services
from rehab.services import safety
from rehab.services import sweeps as sweep_services
from tests.factories import ClinicFactory, ClinicianFactory, PatientFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TODAY = date(2026, 11, 20)
BACKEND = "tests.rehab.test_safety_delivery.RefusingBackend"


class RefusingBackend(EmailBackend):
    """locmem, except that a message to any address in `refused` raises as SMTP would for
    a mailbox unavailable for now (450: try again later)."""

    refused: ClassVar[set[str]] = set()

    def send_messages(self, messages: Sequence[EmailMessage]) -> int:
        for message in messages:
            if self.refused & set(message.recipients()):
                raise smtplib.SMTPRecipientsRefused({r: (450, b"try later") for r in self.refused})
        return super().send_messages(messages)


@pytest.fixture(autouse=True)
def _frozen_time() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def refusing(settings: Any) -> Iterator[set[str]]:
    settings.EMAIL_BACKEND = BACKEND
    RefusingBackend.refused = set()
    yield RefusingBackend.refused
    RefusingBackend.refused = set()


def emergency(patient: Patient, *, day: date = TODAY, rule: str = "RF-CES-01") -> Alert:
    # Evaluated: only the delivery is under test, not the evaluation queue.
    log = DailyLog.objects.filter(patient=patient, date=day).first() or (
        DailyLog.objects.create(patient=patient, date=day, pain=5, evaluated_at=NOW)
    )
    firing = Firing(rule_id=rule, version=1, severity="emergency", basis={}, message_key="x")
    return alert_services.alert_raise(patient=patient, firing=firing, log=log, fired_on=day).alert


def patient_of(clinic: Clinic, *team: Clinician) -> Patient:
    return PatientFactory.create(clinic=clinic, user=UserFactory.create(), care_team=list(team))


def clinician_of(clinic: Clinic, email: str, role: str = "physiotherapist") -> Clinician:
    return ClinicianFactory.create(clinic=clinic, role=role, user=UserFactory.create(email=email))


def later(minutes: float) -> Any:
    return time_machine.travel(NOW + timedelta(minutes=minutes), tick=False)


# --------------------------------------------------------------------------- failing SMTP


def test_it_escalates_the_other_alerts_when_one_escalation_email_fails(refusing, client):
    broken = ClinicFactory.create(escalation_email="oncall@broken.example")
    fine = ClinicFactory.create(escalation_email="oncall@fine.example")
    first = emergency(patient_of(broken))  # due first: it sorted first forever
    with later(1):
        second = emergency(patient_of(fine))
    refusing.add("oncall@broken.example")

    with later(62):
        assert notification_services.escalations_sweep() == 1
        # Waiting out its back-off, the failing alert does not come round again.
        assert notification_services.escalations_sweep() == 0
        health = client.get("/health/").json()

    first.refresh_from_db()
    second.refresh_from_db()
    assert second.escalated_at is not None
    assert [m.to for m in mail.outbox] == [["oncall@fine.example"]]
    assert first.escalated_at is None
    assert first.escalation_attempts == 1
    assert first.escalation_retry_at == NOW + timedelta(minutes=63)
    assert "recipient refused" in first.delivery_error
    assert not first.events.filter(kind="escalated").exists()
    assert (health["status"], health["safety"]["undelivered_alerts"]) == ("degraded", 1)

    refusing.clear()
    with later(63):
        assert notification_services.escalations_sweep() == 1
        # The safety line clears. (The notifications line still reports the care-team
        # emails owed: this test never ran their sweep.)
        health = client.get("/health/").json()
        assert health["safety"]["ok"] is True
        assert health["notifications"]["owed_safety_deliveries"] == 2
    first.refresh_from_db()
    assert first.escalated_at is not None
    assert first.delivery_error == ""


def test_it_gives_up_on_an_escalation_after_a_bounded_number_of_attempts(refusing, clinic):
    refusing.add(clinic.escalation_email)
    alert = emergency(patient_of(clinic))
    minutes = 61.0
    for _ in range(delivery_services.MAX_DELIVERY_ATTEMPTS + 3):
        with later(minutes):
            notification_services.escalations_sweep()
        minutes += 31  # past the longest back-off
    alert.refresh_from_db()
    assert alert.escalation_attempts == delivery_services.MAX_DELIVERY_ATTEMPTS
    assert alert.escalated_at is None
    # Given up on, never forgotten: operators still see it.
    with later(minutes):
        assert list(delivery_services.undelivered_alerts()) == [alert]


def test_it_notifies_the_other_care_teams_when_one_email_fails(refusing, clinic):
    bad = patient_of(clinic, clinician_of(clinic, "bad@riverside.example"))
    good = patient_of(clinic, clinician_of(clinic, "good@riverside.example"))
    failing = emergency(bad)
    with later(1):
        emergency(good)
        refusing.add("bad@riverside.example")
        assert notification_services.alert_notifications_sweep() == 1
        assert (
            notification_services.alert_notifications_sweep() == 0
        )  # the failing one waits its back-off
    assert [m.to for m in mail.outbox] == [["good@riverside.example"]]
    failing.refresh_from_db()
    assert (failing.notified_at, failing.notify_attempts) == (None, 1)

    refusing.clear()
    with later(3):
        assert notification_services.alert_notifications_sweep() == 1
    failing.refresh_from_db()
    assert failing.notified_at is not None


def test_it_counts_a_failed_direct_notification_instead_of_raising(refusing, patient):
    refusing.add("alice@riverside.example")
    alert = emergency(patient)
    assert tasks.alert_notify_task(str(alert.pk)) is False
    alert.refresh_from_db()
    assert (alert.notified_at, alert.notify_attempts) == (None, 1)
    assert alert.notify_retry_at == NOW + timedelta(minutes=1)


def test_it_bounds_how_long_email_may_block(settings):
    assert settings.EMAIL_TIMEOUT == 10
    for task in (
        tasks.alert_notify_task,
        tasks.alert_notifications_sweep_task,
        tasks.escalations_sweep_task,
        tasks.deliveries_sweep_task,
    ):
        assert task.soft_time_limit == tasks.SEND_SOFT_TIME_LIMIT
        assert task.time_limit == tasks.SEND_TIME_LIMIT
    # The sweeps stop taking work well before the soft limit ends them, and a delivery's
    # lease outlives the task that holds it.
    assert enqueue.SWEEP_TIME_BUDGET < tasks.SEND_SOFT_TIME_LIMIT
    assert notification_services.LEASE.total_seconds() > tasks.SEND_TIME_LIMIT


def test_it_stops_a_sweep_when_its_time_budget_is_spent(clinic):
    for _ in range(3):
        emergency(patient_of(clinic, clinician_of(clinic, f"{_}@riverside.example")))
    assert notification_services.alert_notifications_sweep(budget=0.0) == 1
    assert notification_services.alert_notifications_sweep() == 2


# --------------------------------------------------------------------------- nobody to tell


def test_it_escalates_to_the_clinic_admins_without_an_escalation_contact(clinic):
    clinic.escalation_email = ""
    clinic.save()
    clinician_of(clinic, "admin@riverside.example", role="clinic_admin")
    emergency(patient_of(clinic))
    with later(60):
        assert notification_services.escalations_sweep() == 1
    assert [m.to for m in mail.outbox] == [["admin@riverside.example"]]


def test_it_escalates_to_every_clinician_without_contact_or_admin(clinic, clinician):
    clinic.escalation_email = ""
    clinic.save()
    clinician_of(clinic, "bea@riverside.example")
    emergency(patient_of(clinic))
    with later(60):
        assert notification_services.escalations_sweep() == 1
    # One delivery (and one email) per clinician: each is retried on its own, and no
    # recipient sees the others' addresses.
    assert sorted(m.to for m in mail.outbox) == [
        ["alice@riverside.example"],
        ["bea@riverside.example"],
    ]
    events = Alert.objects.get().events.filter(kind="escalated")
    assert [e.data["recipients"] for e in events] == [
        ["alice@riverside.example", "bea@riverside.example"]
    ]


def test_it_never_records_an_escalation_to_nobody(client, caplog):
    empty = ClinicFactory.create(escalation_email="")
    alert = emergency(patient_of(empty))
    with later(60), caplog.at_level(logging.ERROR, logger="rehab.services.delivery"):
        assert notification_services.escalations_sweep() == 0
        health = client.get("/health/")
    alert.refresh_from_db()
    assert alert.escalated_at is None
    assert alert.escalation_attempts == 1
    assert not alert.events.filter(kind="escalated").exists()
    assert "no care team, escalation contact or clinician" in alert.delivery_error
    assert any("escalation of alert" in r.getMessage() for r in caplog.records)
    assert health.status_code == 200
    assert health.json()["status"] == "degraded"
    assert health.json()["safety"]["undelivered_alerts"] == 1


def test_it_never_records_a_notification_to_nobody(caplog):
    empty = ClinicFactory.create(escalation_email="")
    alert = emergency(patient_of(empty))
    with caplog.at_level(logging.ERROR, logger="rehab.services.delivery"):
        assert notification_services.alert_notify(alert_id=alert.pk) is False
    alert.refresh_from_db()
    assert alert.notified_at is None
    assert alert.notify_attempts == 1
    assert not alert.events.filter(kind="notified").exists()
    assert list(delivery_services.undelivered_alerts()) == [alert]
    # A clinician joins the clinic: the next try after the back-off reaches them.
    clinician_of(empty, "new@empty.example")
    with later(1):
        assert notification_services.alert_notifications_sweep() == 1
    assert [m.to for m in mail.outbox] == [["new@empty.example"]]


# --------------------------------------------------------------------------- re-fired alerts


def test_it_emails_the_care_team_again_when_an_acknowledged_alert_fires_again(
    patient, clinician, django_capture_on_commit_callbacks, run_published
):
    with django_capture_on_commit_callbacks(execute=True):
        alert = emergency(patient)
    alert_services.alert_acknowledge(alert=alert, actor=clinician.user, note="phoned, going to ED")
    assert len(mail.outbox) == 1

    with later(24 * 60), django_capture_on_commit_callbacks(execute=True) as callbacks:
        reopened = emergency(patient, day=TODAY + timedelta(days=1))
    assert len(callbacks) == 1
    reopened.refresh_from_db()
    assert reopened.pk == alert.pk
    assert reopened.status == "open"
    assert reopened.notified_at == NOW + timedelta(days=1)
    assert [m.to for m in mail.outbox] == [["alice@riverside.example"]] * 2
    assert list(reopened.events.values_list("kind", flat=True)) == [
        "created",
        "notified",
        "acknowledged",
        "reopened",
        "notified",
    ]


def test_it_sweeps_a_reopened_alert_whose_message_was_lost(patient, clinician):
    alert = emergency(patient)
    assert notification_services.alert_notifications_sweep() == 1
    alert_services.alert_acknowledge(alert=alert, actor=clinician.user)
    with later(60):
        emergency(patient, day=TODAY - timedelta(days=1))  # on_commit not run: "lost"
        assert notification_services.alert_notifications_sweep() == 1
    assert len(mail.outbox) == 2


# --------------------------------------------------------------------------- escalation clock


def _red_flag_log(patient: Patient, day: date = TODAY) -> DailyLog:
    return DailyLog.objects.create(
        patient=patient, date=day, pain=5, safety={"saddle_numbness": "new_or_worse"}
    )


def test_it_starts_the_escalation_clock_when_the_patient_submitted(patient):
    log = _red_flag_log(patient)
    # The broker was down for 45 minutes: the worker evaluates the log late.
    with later(45):
        safety.log_evaluate(log_id=log.pk)
    alert = Alert.objects.get(rule="RF-CES-01")
    assert alert.escalation_due_at == NOW + timedelta(minutes=60)
    with later(60):
        assert notification_services.escalations_sweep() == 1


def test_it_starts_the_clock_at_the_edit_that_brought_the_red_flag(patient):
    log = DailyLog.objects.create(patient=patient, date=TODAY, pain=5)
    with later(180):
        log.safety = {"saddle_numbness": "new_or_worse"}
        log.save()
    with later(190):
        safety.log_evaluate(log_id=log.pk)
    assert Alert.objects.get().escalation_due_at == NOW + timedelta(minutes=240)


def test_it_restarts_the_clock_of_a_reopened_alert_at_the_new_submission(patient, clinician):
    alert = emergency(patient)
    alert_services.alert_acknowledge(alert=alert, actor=clinician.user)
    with later(600):
        tomorrow = _red_flag_log(patient, day=TODAY + timedelta(days=1))
    with later(630):
        safety.log_evaluate(log_id=tomorrow.pk)
    alert.refresh_from_db()
    assert alert.status == "open"
    assert alert.escalation_due_at == NOW + timedelta(minutes=660)


# --------------------------------------------------------------------------- RF-NP-01


def _night_pain_nights(patient: Patient) -> DailyLog:
    for n in (3, 2):
        DailyLog.objects.create(
            patient=patient,
            date=TODAY - timedelta(days=n),
            pain=4,
            sleep="constant_any_position",
            evaluated_at=NOW,
        )
    return DailyLog.objects.create(
        patient=patient, date=TODAY, pain=4, sleep="constant_any_position"
    )


@pytest.mark.parametrize(
    ("status", "fires"), [("open", False), ("acknowledged", False), ("resolved", True)]
)
def test_it_counts_an_acknowledged_red_flag_as_open_for_night_pain(patient, status, fires):
    Alert.objects.create(
        patient=patient,
        rule="RF-TH-01",
        rule_version=1,
        severity="urgent",
        status=status,
        last_fired_at=NOW,
        opened_at=NOW,
    )
    log = _night_pain_nights(patient)
    safety.log_evaluate(log_id=log.pk)
    assert Alert.objects.filter(rule="RF-NP-01").exists() is fires


# --------------------------------------------------------------------------- the log sweeper


def test_it_sweeps_every_owed_log_in_batches(clinic, monkeypatch):
    sent: list[str] = []
    monkeypatch.setattr(rehab_tasks.log_evaluate_task, "delay", sent.append)
    owed = []
    for i in range(7):
        p = patient_of(clinic)
        with later(-10 - i // 2):  # pairs share an updated_at: no skip, no repeat
            owed.append(str(DailyLog.objects.create(patient=p, date=TODAY, pain=3).pk))
            DailyLog.objects.create(patient=p, date=TODAY - timedelta(days=1), pain=3)
    DailyLog.objects.filter(date=TODAY - timedelta(days=1)).update(evaluated_at=NOW)
    assert sweep_services.unevaluated_logs_sweep(batch=3) == 7
    assert sorted(sent) == sorted(owed)


def test_it_stops_sweeping_logs_when_its_time_budget_is_spent(clinic, monkeypatch):
    sent: list[str] = []
    monkeypatch.setattr(rehab_tasks.log_evaluate_task, "delay", sent.append)
    with later(-10):
        for _ in range(5):
            DailyLog.objects.create(patient=patient_of(clinic), date=TODAY, pain=3)
    assert sweep_services.unevaluated_logs_sweep(batch=2, budget=0.0) == 2
