"""Patient reminders: planned once per patient, kind and local date at the patient's
local time (DST-safe), skipped when no longer owed at send time, on the chosen channels,
outside quiet hours, with a signed unsubscribe link (docs/architecture.md, "Patient
reminders"). Email goes through Django's locmem backend: only what leaves the process
is faked."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from types import SimpleNamespace

import pytest
import time_machine
from django.core import mail
from django.core.mail import EmailMessage
from django.core.mail.backends.locmem import EmailBackend
from django.db import connection

from notifications import reminders, reminders_sweep, services
from notifications.models import Delivery, Device, FeedItem, Reminder, ReminderSettings
from patients.models import AuthToken
from programs.models import AssignedExercise, AssignedPhase, Exercise, ProgramAssignment
from rehab.models import DailyLog, QuestionnaireDue
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db

# Tuesday 1 June 2027, London on BST: 19:00 local is 18:00 UTC.
DAY = date(2027, 6, 1)
DUE = datetime(2027, 6, 1, 18, 0, tzinfo=UTC)


def at(moment: datetime) -> time_machine.travel:
    return time_machine.travel(moment, tick=False)


def plan_and_send(moment: datetime = DUE) -> int:
    with at(moment):
        return reminders_sweep.reminders_sweep()


def test_it_reminds_a_patient_of_the_daily_log_at_their_local_time(patient):
    with at(DUE - timedelta(minutes=30)):
        assert reminders.reminders_plan() == 0  # not yet within the planning horizon
    with at(DUE - timedelta(minutes=5)):
        assert reminders.reminders_plan() == 1
        assert reminders_sweep.reminders_send_due() == 0  # planned, not yet due
    reminder = Reminder.objects.get()
    assert (reminder.kind, reminder.local_date, reminder.due_at) == ("daily_log", DAY, DUE)
    assert plan_and_send(DUE) == 1
    (email,) = mail.outbox
    assert email.to == [patient.email]
    assert email.subject == "Time for today's log"
    assert "/unsubscribe/" in email.body
    delivery = Delivery.objects.get()
    assert (delivery.kind, delivery.status, delivery.object_id) == ("reminder", "sent", reminder.pk)
    assert email.extra_headers["Message-ID"].startswith(f"<{delivery.pk}@")
    # Planning again, later, makes nothing new.
    assert plan_and_send(DUE + timedelta(minutes=1)) == 0
    assert Reminder.objects.count() == 1
    assert len(mail.outbox) == 1


def test_it_carries_one_click_unsubscribe_headers(patient, client):
    plan_and_send()
    headers = mail.outbox[0].extra_headers
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = headers["List-Unsubscribe"].strip("<>")
    assert url in mail.outbox[0].body
    path = url.split("://", 1)[1].partition("/")[2]
    response = client.post(f"/{path}")
    assert response.status_code == 200
    assert ReminderSettings.objects.get(patient=patient).daily_log is False


def test_it_writes_the_reminder_in_the_patients_language(patient):
    patient.language = "es"
    patient.save()
    plan_and_send()
    assert mail.outbox[0].subject == "Es hora del registro de hoy"


def test_it_skips_the_reminder_when_today_is_already_logged(patient):
    with at(DUE - timedelta(minutes=5)):
        reminders.reminders_plan()
    # Logged after the reminder was planned: checked again at send time.
    DailyLog.objects.create(patient=patient, date=DAY, pain=3)
    assert plan_and_send() == 0
    assert mail.outbox == []
    assert Delivery.objects.get().status == "cancelled"


def test_it_plans_nothing_for_a_day_already_logged(patient):
    DailyLog.objects.create(patient=patient, date=DAY, pain=3)
    plan_and_send()
    assert not Reminder.objects.exists()


def test_it_plans_nothing_for_a_restricted_patient(patient):
    patient.restricted_at = DUE - timedelta(days=1)
    patient.save()
    plan_and_send()
    assert not Reminder.objects.exists()
    assert mail.outbox == []


def test_it_respects_an_opt_out(patient):
    ReminderSettings.objects.create(patient=patient, daily_log=False)
    plan_and_send()
    assert not Reminder.objects.exists()


def test_it_cancels_a_planned_reminder_switched_off_before_it_is_sent(patient):
    with at(DUE - timedelta(minutes=5)):
        reminders.reminders_plan()
        reminders.reminder_settings_update(
            patient=patient, actor=patient.user, data={"daily_log": False}
        )
    assert plan_and_send() == 0
    assert mail.outbox == []


def test_it_moves_a_reminder_to_its_new_time_when_the_schedule_changes(patient):
    with at(DUE - timedelta(minutes=5)):
        reminders.reminders_plan()
        reminders.reminder_settings_update(
            patient=patient, actor=patient.user, data={"remind_at": time(19, 3)}
        )
    assert plan_and_send(DUE) == 0
    assert plan_and_send(DUE + timedelta(minutes=3)) == 1
    assert len(mail.outbox) == 1
    assert Reminder.objects.get().due_at == DUE + timedelta(minutes=3)


def test_it_sends_on_the_chosen_channels(push_providers, patient, other_patient):
    auth_token, _ = AuthToken.objects.create(user=patient.user)
    device = Device.objects.create(
        user=patient.user, auth_token=auth_token, platform="android", token="fcm-token-1"
    )
    ReminderSettings.objects.create(patient=patient, channels="push")
    ReminderSettings.objects.create(patient=other_patient, channels="email")
    other_patient.timezone = patient.timezone
    other_patient.save()
    with at(DUE - timedelta(minutes=5)):
        reminders.reminders_plan()
    rows = {(d.patient_id, d.channel, d.address) for d in Delivery.objects.all()}
    assert rows == {
        (patient.pk, "fcm", device.token),
        (other_patient.pk, "email", other_patient.email),
    }


def test_it_sends_a_reminder_in_quiet_hours_when_they_end(patient):
    ReminderSettings.objects.create(patient=patient, quiet_start=time(18), quiet_end=time(20, 30))
    assert plan_and_send(DUE) == 0
    assert plan_and_send(DUE + timedelta(minutes=90)) == 1
    assert Reminder.objects.get().due_at == DUE + timedelta(minutes=90)


def test_it_skips_a_reminder_whose_quiet_hours_run_into_the_next_day(patient):
    ReminderSettings.objects.create(patient=patient, quiet_start=time(18), quiet_end=time(7))
    for hours in range(0, 14):
        plan_and_send(DUE + timedelta(hours=hours))
    assert not Reminder.objects.filter(local_date=DAY).exists()


@pytest.mark.parametrize(
    ("tz", "day", "local", "expected"),
    [
        # New York springs forward on 14 March 2027: 02:30 does not exist, 03:00 EDT.
        ("America/New_York", date(2027, 3, 14), time(2, 30), datetime(2027, 3, 14, 7, tzinfo=UTC)),
        ("America/New_York", date(2027, 3, 14), time(19), datetime(2027, 3, 14, 23, tzinfo=UTC)),
        # London falls back on 31 October 2027: 01:30 happens twice, reminded once.
        (
            "Europe/London",
            date(2027, 10, 31),
            time(1, 30),
            datetime(2027, 10, 31, 0, 30, tzinfo=UTC),
        ),
        ("Europe/London", date(2027, 10, 31), time(19), datetime(2027, 10, 31, 19, tzinfo=UTC)),
    ],
)
def test_it_reminds_once_at_the_right_instant_across_dst(patient, tz, day, local, expected):
    patient.timezone = tz
    patient.save()
    ReminderSettings.objects.create(patient=patient, remind_at=local)
    # Every 30 minutes across the whole local day and the next: one reminder that day.
    moment = datetime.combine(day, time(0), tzinfo=UTC) - timedelta(hours=6)
    while moment < datetime.combine(day, time(0), tzinfo=UTC) + timedelta(hours=36):
        plan_and_send(moment)
        moment += timedelta(minutes=30)
    reminder = Reminder.objects.get(local_date=day)
    assert reminder.due_at == expected
    sent = Delivery.objects.filter(object_id=reminder.pk, status="sent")
    assert sent.count() == 1
    assert sent.get().sent_at >= expected


def test_it_reminds_of_a_questionnaire_on_its_first_and_last_day(patient):
    ReminderSettings.objects.create(patient=patient, daily_log=False)
    QuestionnaireDue.objects.create(
        patient=patient,
        instrument="ODI",
        reason="baseline",
        due_from=datetime(2027, 6, 1, 8, tzinfo=UTC),
        expires_at=datetime(2027, 6, 8, 8, tzinfo=UTC),
    )
    for day in range(0, 9):
        plan_and_send(DUE + timedelta(days=day))
    days = sorted(r.local_date for r in Reminder.objects.filter(kind="questionnaire_due"))
    assert days == [date(2027, 6, 1), date(2027, 6, 8)]
    assert [m.subject for m in mail.outbox] == ["A questionnaire is waiting for you"] * 2


def test_it_reminds_of_exercises_on_a_day_of_the_program(patient):
    ReminderSettings.objects.create(patient=patient, daily_log=False)
    assignment = ProgramAssignment.objects.create(
        patient=patient, name="Back", start_date=DAY - timedelta(days=3)
    )
    phase = AssignedPhase.objects.create(
        assignment=assignment,
        position=1,
        name="One",
        length_weeks=2,
        started_on=assignment.start_date,
    )
    exercise = Exercise.objects.create(
        slug="reminder-test-bridge",
        name="Bridge",
        instructions="Lift.",
        body_region="lumbar_spine",
        category="strength",
        sets=2,
        reps=10,
        sessions_per_week=7,
    )
    AssignedExercise.objects.create(
        phase=phase,
        exercise=exercise,
        position=1,
        name="Bridge",
        instructions="Lift.",
        body_region=exercise.body_region,
        category=exercise.category,
    )
    plan_and_send()
    assert [r.kind for r in Reminder.objects.all()] == ["exercise_day"]
    assert mail.outbox[0].subject == "Today's exercises"


@pytest.mark.django_db(transaction=True)
def test_two_beats_at_once_send_each_reminder_once(patient, settings):
    settings.EMAIL_BACKEND = "tests.notifications.test_delivery.SlowBackend"
    patients = [patient, *(PatientFactory.create(clinic=patient.clinic) for _ in range(11))]
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def beat() -> None:
        try:
            barrier.wait()
            reminders_sweep.reminders_sweep()
        except BaseException as exc:  # noqa: BLE001 (reported below, in the test's thread)
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=beat) for _ in range(2)]
    with at(DUE):  # one frozen clock for both threads
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert errors == []
    assert Reminder.objects.count() == len(patients)
    assert Counter(tuple(m.to) for m in mail.outbox) == {(p.email,): 1 for p in patients}
    assert Counter(FeedItem.objects.values_list("patient_id", flat=True)) == {
        p.pk: 1 for p in patients
    }


def test_it_sends_again_what_a_worker_killed_mid_send_left_once(patient):
    with at(DUE):
        reminders.reminders_plan()
        # A worker claims the batch and dies before recording anything.
        (claimed,) = reminders_sweep._claim_batch(limit=10)
        assert claimed.attempts == 1
        assert reminders_sweep.reminders_send_due() == 0  # its lease holds
    assert plan_and_send(DUE + services.LEASE - timedelta(seconds=1)) == 0
    assert plan_and_send(DUE + services.LEASE) == 1
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    assert len(mail.outbox) == 1
    assert FeedItem.objects.count() == 1


def test_the_demo_reminders_fall_due_in_the_first_minutes():
    from notifications.demo import seed_demo_reminders
    from rehab.demo_record import DGS_EMAIL

    demo = PatientFactory.create(email=DGS_EMAIL, timezone="America/New_York")
    start = datetime(2027, 6, 1, 12, 0, 30, tzinfo=UTC)
    with at(start):
        assert seed_demo_reminders() == [(DGS_EMAIL, "08:02")]
    assert plan_and_send(start + timedelta(minutes=1)) == 0
    assert plan_and_send(start + timedelta(minutes=2)) == 1
    assert mail.outbox[0].to == [demo.email]


class SweepClock:
    """The reminder sweep's clock in the test below: it moves a second per message sent."""

    now = 0.0


class ClockedBackend(EmailBackend):
    """locmem, each message taking a second of `SweepClock`."""

    def send_messages(self, messages: Sequence[EmailMessage]) -> int:
        SweepClock.now += len(messages)
        return super().send_messages(messages)


def test_a_sweep_out_of_time_hands_back_what_it_did_not_reach(patient, settings, monkeypatch):
    settings.EMAIL_BACKEND = "tests.notifications.test_reminders.ClockedBackend"
    for _ in range(9):
        PatientFactory.create(clinic=patient.clinic)
    with at(DUE):
        reminders.reminders_plan()
        # The sweep's budget is spent by the messages alone, not by however slow the
        # machine is (a wall-clock budget of 50 ms could run out before the first message
        # under a loaded parallel run): 2.5 s of this clock is three messages.
        SweepClock.now = 0.0
        with monkeypatch.context() as clocked:
            clocked.setattr(
                reminders_sweep, "time", SimpleNamespace(monotonic=lambda: SweepClock.now)
            )
            assert reminders_sweep.reminders_send_due(budget=2.5) == 3
        waiting = Delivery.objects.filter(status="queued")
        assert waiting.count() == 7
        assert set(waiting.values_list("attempts", flat=True)) == {0}
        assert reminders_sweep.reminders_send_due() == 7
    assert len(mail.outbox) == 10
    assert len({m.to[0] for m in mail.outbox}) == 10


def test_a_delivery_lost_mid_send_too_often_is_given_up_not_sent(patient):
    with at(DUE):
        reminders.reminders_plan()
    Delivery.objects.update(
        status="sending", attempts=services.MAX_ATTEMPTS, sending_until=DUE + timedelta(minutes=1)
    )
    assert plan_and_send(DUE + timedelta(minutes=2)) == 0
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.last_error) == ("given_up", "worker lost mid-send")
    assert delivery.sending_until is None
    assert mail.outbox == []


def test_a_batch_costs_the_same_statements_however_many_it_sends(patient):
    from django.test.utils import CaptureQueriesContext

    with at(DUE):
        reminders.reminders_plan()
        with CaptureQueriesContext(connection) as one:
            assert reminders_sweep.reminders_send_due() == 1
    for _ in range(12):
        PatientFactory.create(clinic=patient.clinic)
    # A day later: fourteen reminders, one cancelled (the day logged since planning).
    later = DUE + timedelta(days=1)
    cancelled = PatientFactory.create(clinic=patient.clinic)
    with at(later):
        reminders.reminders_plan()
        DailyLog.objects.create(patient=cancelled, date=DAY + timedelta(days=1), pain=3)
        with CaptureQueriesContext(connection) as many:
            assert reminders_sweep.reminders_send_due() == 13
    # claim, feed items, record (+ the cancelled rows' update), and the empty claim that ends
    # the sweep
    assert len(many.captured_queries) == len(one.captured_queries) + 1
    assert Delivery.objects.filter(status="cancelled").count() == 1


def test_the_unsubscribe_link_signs_as_django_signs_and_reads_back(patient):
    from django.core import signing

    with at(DUE):
        token = reminders.unsubscribe_token(patient_id=patient.pk, what="daily_log")
        expected = signing.dumps(
            {"p": str(patient.pk), "k": "daily_log"},
            salt=reminders.UNSUBSCRIBE_SALT,
            compress=True,
        )
    assert token == expected
    assert reminders.unsubscribe_read(token) == (patient.pk, "daily_log")
    with pytest.raises(reminders.BadToken):
        reminders.unsubscribe_read(token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1])
