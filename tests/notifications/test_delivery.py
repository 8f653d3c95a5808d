"""The delivery table: planned once per key, claimed with SKIP LOCKED, leased, retried with
a back-off, given up, failed for good, surfaced on /health/ and in the admin.

Only what leaves the process is faked: email backends (Django's real backend API) that
are slow, down, or refuse an address; a real SMTP server is in test_email_smtp.py.
"""

from __future__ import annotations

import smtplib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

import pytest
import time_machine
from django.core import mail
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.locmem import EmailBackend
from django.db import connection, transaction

from config.celery import app as celery_app
from notifications import services
from notifications.models import Delivery
from patients import services as patient_services
from patients.models import Clinician, Invitation
from rehab.models import Alert, DailyLog
from rehab.safety import Firing
from rehab.services import alerts as alert_services
from tests.factories import PatientFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


class SlowBackend(EmailBackend):
    """locmem, as slow as a distant mail server: two sweeps overlap for real."""

    def send_messages(self, messages: Sequence[EmailMessage]) -> int:
        time.sleep(0.02)
        return super().send_messages(messages)


class DownBackend(BaseEmailBackend):
    """A mail server that is down."""

    attempts: ClassVar[int] = 0

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        DownBackend.attempts += 1
        raise smtplib.SMTPServerDisconnected("mail server down")


class BouncingBackend(EmailBackend):
    """A mail server that refuses every recipient for good (550)."""

    def send_messages(self, messages: Sequence[EmailMessage]) -> int:
        recipients = [r for m in messages for r in m.recipients()]
        raise smtplib.SMTPRecipientsRefused({r: (550, b"no such user") for r in recipients})


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[Any, ...]]]:
    """The broker: tasks published by name are recorded, not run."""
    sent: list[tuple[str, tuple[Any, ...]]] = []

    def send_task(name: str, args: Any = (), kwargs: Any = None, **options: Any) -> None:
        sent.append((name, tuple(args)))

    monkeypatch.setattr(celery_app, "send_task", send_task)
    return sent


def invite(clinician: Clinician, n: int) -> Invitation:
    issued = patient_services.invitation_create(
        clinician=clinician,
        email=f"new{n}@example.com",
        first_name="Sam",
        last_name=f"New{n}",
        date_of_birth=date(1980, 3, 14),
        timezone_name="Europe/London",
    )
    return issued.invitation


def emergency(clinician: Clinician) -> Alert:
    patient = PatientFactory.create(
        clinic=clinician.clinic, user=UserFactory.create(), care_team=[clinician]
    )
    log = DailyLog.objects.create(patient=patient, date=date(2026, 11, 20), pain=5)
    firing = Firing(rule_id="RF-CES-01", version=1, severity="emergency", basis={}, message_key="x")
    return alert_services.alert_raise(
        patient=patient, firing=firing, log=log, fired_on=log.date
    ).alert


def later(minutes: float) -> Any:
    return time_machine.travel(NOW + timedelta(minutes=minutes), tick=False)


@pytest.fixture
def frozen_now() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


# --------------------------------------------------------------------------- planning


def test_it_plans_a_message_once_per_key(clinician, published, frozen_now):
    invitation = invite(clinician, 1)
    first = services.delivery_plan(
        kind=Delivery.Kind.INVITATION,
        key=f"invitation:{invitation.pk}",
        address=invitation.email,
        invitation_id=invitation.pk,
    )
    again = services.delivery_plan(
        kind=Delivery.Kind.INVITATION,
        key=f"invitation:{invitation.pk}",
        address=invitation.email,
        invitation_id=invitation.pk,
    )
    assert first is not None
    assert again is None
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.channel) == ("queued", 0, "email")
    assert delivery.due_at == delivery.next_attempt_at == NOW


def test_it_sends_an_invitation_whose_message_was_lost_from_the_sweep(
    clinician, published, django_capture_on_commit_callbacks
):
    with time_machine.travel(NOW, tick=False):
        invitation = invite(clinician, 1)
    assert mail.outbox == []  # the task message was "lost" (never published)
    with later(1), django_capture_on_commit_callbacks(execute=True):
        assert services.deliveries_sweep() == 1
    with later(1):
        # Planned by the sweep and sent at once; its own per-delivery task finds it sent.
        (name, (delivery_id,)) = published[-1]
        assert name == "notifications.tasks.delivery_send_task"
        assert services.delivery_send(delivery_id=delivery_id) is False
        assert services.deliveries_sweep() == 0
    assert [m.to for m in mail.outbox] == [[invitation.email]]
    invitation.refresh_from_db()
    assert invitation.last_sent_at == NOW + timedelta(minutes=1)
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.sent_at) == (
        "sent",
        1,
        NOW + timedelta(minutes=1),
    )
    # The delivery id is the message's id: a copy re-sent after a crash is the same message.
    assert mail.outbox[0].extra_headers["Message-ID"].startswith(f"<{delivery.pk}@")
    assert delivery.provider_id == mail.outbox[0].extra_headers["Message-ID"]


# --------------------------------------------------------------------------- claiming


def _run_at_once(*functions: Callable[[], int]) -> list[int]:
    """Run each function in its own thread (its own database connection), released
    together, as two beat processes would."""
    barrier = threading.Barrier(len(functions))
    results: list[int] = []
    errors: list[BaseException] = []

    def run(function: Callable[[], int]) -> None:
        try:
            barrier.wait(timeout=30)
            results.append(function())
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(f,)) for f in functions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(t.is_alive() for t in threads), "a sweep did not finish in 30 s"
    assert not errors, errors
    return results


@pytest.mark.django_db(transaction=True)
def test_it_never_sends_twice_when_two_sweeps_claim_at_once(clinician, published, settings):
    settings.EMAIL_BACKEND = "tests.notifications.test_delivery.SlowBackend"
    invitations = [invite(clinician, n) for n in range(20)]
    for invitation in invitations:
        services.delivery_plan(
            kind=Delivery.Kind.INVITATION,
            key=f"invitation:{invitation.pk}",
            address=invitation.email,
            invitation_id=invitation.pk,
        )

    sent = _run_at_once(services.deliveries_sweep, services.deliveries_sweep)

    # Both took part, neither sent what the other had claimed.
    assert sum(sent) == 20, sent
    assert all(n > 0 for n in sent), sent
    assert Counter(m.to[0] for m in mail.outbox) == Counter(i.email for i in invitations)
    assert set(Delivery.objects.values_list("status", "attempts")) == {("sent", 1)}


# It bounds the sweep's wall-clock time: not beside the rest of a parallel run.
@pytest.mark.alone
@pytest.mark.django_db(transaction=True)
def test_it_skips_a_delivery_another_worker_holds_without_waiting(clinician, published):
    first, second = invite(clinician, 1), invite(clinician, 2)
    for invitation in (first, second):
        services.delivery_plan(
            kind=Delivery.Kind.INVITATION,
            key=f"invitation:{invitation.pk}",
            address=invitation.email,
            invitation_id=invitation.pk,
        )
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                Delivery.objects.select_for_update().get(invitation=first)
                held.set()
                release.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(5)
        started = time.monotonic()
        assert services.deliveries_sweep() == 1
        assert time.monotonic() - started < 2  # it did not wait for the lock
    finally:
        release.set()
        holder.join(10)
    assert [m.to for m in mail.outbox] == [[second.email]]
    assert Delivery.objects.get(invitation=first).status == "queued"
    assert services.deliveries_sweep() == 1  # the next run has it


def test_it_sends_again_what_a_worker_killed_mid_send_left(clinician, published, frozen_now):
    invitation = invite(clinician, 1)
    services.delivery_plan(
        kind=Delivery.Kind.INVITATION,
        key=f"invitation:{invitation.pk}",
        address=invitation.email,
        invitation_id=invitation.pk,
    )
    # A worker claims it and dies before it can record anything.
    (claimed,) = services._claim(Delivery.objects.all(), limit=1)
    assert (claimed.status, claimed.attempts) == ("sending", 1)

    # Its lease holds: nobody else sends it meanwhile.
    assert services.deliveries_sweep() == 0
    with later(services.LEASE.total_seconds() / 60 - 0.1):
        assert services.deliveries_sweep() == 0
    with later(services.LEASE.total_seconds() / 60):
        assert services.deliveries_sweep() == 1
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    assert len(mail.outbox) == 1
    assert mail.outbox[0].extra_headers["Message-ID"].startswith(f"<{delivery.pk}@")


# --------------------------------------------------------------------------- failures


def test_it_backs_off_and_gives_up_after_the_last_attempt(clinician, published, settings, client):
    settings.EMAIL_BACKEND = "tests.notifications.test_delivery.DownBackend"
    DownBackend.attempts = 0
    with time_machine.travel(NOW, tick=False):
        invitation = invite(clinician, 1)
        assert services.invitation_send(invitation_id=invitation.pk) is False
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("retrying", 1)
    assert delivery.next_attempt_at == NOW + timedelta(minutes=1)
    assert delivery.last_outcome == "retry"
    assert delivery.last_error == "SMTPServerDisconnected"
    # Waiting out its back-off, it is not tried again.
    with later(0.9):
        assert services.deliveries_sweep() == 0
    assert DownBackend.attempts == 1

    minutes = 0.0
    waits = []
    for _ in range(services.MAX_ATTEMPTS + 2):
        delivery.refresh_from_db()
        if delivery.status != "retrying":
            break
        waits.append((delivery.next_attempt_at - NOW).total_seconds() / 60 - minutes)
        minutes = (delivery.next_attempt_at - NOW).total_seconds() / 60
        with later(minutes):
            services.deliveries_sweep()
    assert waits == [1, 2, 4, 8, 16, 30, 30]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("given_up", services.MAX_ATTEMPTS)
    assert DownBackend.attempts == services.MAX_ATTEMPTS
    invitation.refresh_from_db()
    assert invitation.last_sent_at is None

    with later(minutes + 60):
        assert services.deliveries_sweep() == 0
        health = client.get("/health/").json()
    assert health["status"] == "degraded"
    assert health["notifications"]["given_up_deliveries"] == 1


def test_it_fails_a_dead_address_at_once_and_keeps_the_alert_owed(
    clinician, published, settings, client, frozen_now
):
    settings.EMAIL_BACKEND = "tests.notifications.test_delivery.BouncingBackend"
    alert = emergency(clinician)
    assert services.alert_notify(alert_id=alert.pk) is False
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.last_outcome) == ("failed", "dead_address")
    assert delivery.last_error == "SMTP 550: recipient refused"
    alert.refresh_from_db()
    assert alert.notified_at is None
    assert alert.notify_attempts == 1
    assert "dead_address" in alert.delivery_error

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    with later(60):
        # Never retried: the address is gone. The alert stays owed, in front of operators.
        assert services.deliveries_sweep() == 0
        assert services.alert_notifications_sweep() == 0
        health = client.get("/health/").json()
    assert mail.outbox == []
    assert health["safety"]["undelivered_alerts"] == 1
    assert health["notifications"]["failed_deliveries"] == 1
    assert health["notifications"]["owed_safety_deliveries"] == 1


def test_it_cancels_an_escalation_acknowledged_before_its_turn(clinician, published, frozen_now):
    alert = emergency(clinician)
    with later(60):
        assert services._alert_plan(
            alert.pk, kind=Delivery.Kind.ESCALATION, now=NOW + timedelta(minutes=60)
        )
    alert_services.alert_acknowledge(alert=alert, actor=clinician.user)
    with later(61):
        (delivery,) = services._claim(Delivery.objects.filter(kind="escalation"), limit=1)
        assert services._send(delivery).sent is False
    delivery.refresh_from_db()
    assert delivery.status == "cancelled"
    alert.refresh_from_db()
    assert alert.escalated_at is None
    assert not [m for m in mail.outbox if "ESCALATED" in m.subject]


def test_it_logs_a_failure_without_the_address_or_the_text(clinician, published, settings, caplog):
    settings.EMAIL_BACKEND = "tests.notifications.test_delivery.BouncingBackend"
    alert = emergency(clinician)
    services.alert_notify(alert_id=alert.pk)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert str(Delivery.objects.get().pk) in logged
    assert clinician.user.email not in logged
    assert alert.patient.first_name not in logged
    assert "needs review" not in logged


# --------------------------------------------------------------------------- admin


@pytest.mark.db_owner
def test_it_lists_deliveries_read_only_in_the_admin_with_filters(clinician, published):
    from django.test import Client

    invitation = invite(clinician, 1)
    services.invitation_send(invitation_id=invitation.pk)
    operator = UserFactory.create(email="ops@example.com", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(operator)
    listed = client.get("/admin/notifications/delivery/?status__exact=sent&kind__exact=invitation")
    assert listed.status_code == 200
    assert "invitation" in listed.content.decode()
    empty = client.get("/admin/notifications/delivery/?status__exact=failed")
    assert empty.status_code == 200
    assert "0 deliveries" in empty.content.decode()
    assert client.get("/admin/notifications/delivery/add/").status_code == 403
    delivery = Delivery.objects.get()
    change = client.post(
        f"/admin/notifications/delivery/{delivery.pk}/change/", {"status": "queued"}
    )
    assert change.status_code == 403
    delivery.refresh_from_db()
    assert delivery.status == "sent"


# --------------------------------------------------------------------------- hand-over


def test_it_is_handed_an_alert_by_task_name_after_the_commit(
    clinician, published, django_capture_on_commit_callbacks
):
    # rehab imports nothing of notifications: it publishes the task by name, on commit.
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        alert = emergency(clinician)
    assert published == []
    for callback in callbacks:
        callback()
    assert published == [("notifications.tasks.alert_notify_task", (str(alert.pk),))]
    # Running it (as the worker would) emails the care team once.
    assert services.alert_notify(alert_id=alert.pk) is True
    assert services.alert_notify(alert_id=alert.pk) is False
    assert [m.to for m in mail.outbox] == [[clinician.user.email]]
