"""Patient reminders in the patient's feed: every reminder handed over (or that would have
been, for a patient with neither email nor a device) is one feed item, whichever channels
carried it and however often it is tried; one switched off, or no longer owed, is in no
feed (docs/architecture.md, "Patient reminders"). Email through Django's locmem backend,
push through the local FCM server: only what leaves the process is faked."""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar

import pytest
from django.core import mail
from django.utils import timezone

from notifications import reminders, reminders_sweep, services
from notifications.channels.base import Outcome, OutgoingMessage, SendResult
from notifications.models import Delivery, Device, FeedItem, Reminder, ReminderSettings
from patients.models import AuthToken
from rehab.models import DailyLog
from tests.notifications.test_fanout import ANDROID_TOKEN
from tests.notifications.test_reminders import DAY, DUE, at, plan_and_send

pytestmark = pytest.mark.django_db

FEED = "/api/v1/me/notifications/"


def phone(patient) -> Device:
    auth_token, _ = AuthToken.objects.create(user=patient.user)
    return Device.objects.create(
        user=patient.user, auth_token=auth_token, platform="android", token=ANDROID_TOKEN
    )


def test_it_puts_a_sent_reminder_in_the_feed_once(patient, patient_client):
    assert plan_and_send() == 1
    assert plan_and_send(DUE + timedelta(minutes=1)) == 0
    reminder = Reminder.objects.get()
    item = FeedItem.objects.get()
    assert (item.patient_id, item.kind, item.object_id) == (patient.pk, "reminder", reminder.pk)
    assert item.created_at == reminder.due_at
    assert item.pk == reminders.reminder_feed_item_id(reminder.pk)

    (shown,) = patient_client.get(FEED).json()["results"]
    assert shown["id"] == str(item.pk)
    assert (shown["kind"], shown["reminder"]) == ("reminder", "daily_log")
    assert shown["title"] == "Time for today's log"
    # The feed has no unsubscribe link: that belongs to the email.
    assert "/unsubscribe/" not in shown["body"]
    assert shown["read_at"] is None


def test_it_words_the_feed_item_in_the_patients_language(patient, patient_client):
    patient.language = "es"
    patient.save()
    plan_and_send()
    (shown,) = patient_client.get(FEED).json()["results"]
    assert shown["title"] == "Es hora del registro de hoy"


def test_a_patient_with_neither_email_nor_a_device_sees_the_reminder_in_the_feed(
    patient, patient_client
):
    # Push only, and no device registered (push turned off on every phone).
    ReminderSettings.objects.create(patient=patient, channels="push")
    with at(DUE - timedelta(minutes=5)):
        reminders.reminders_plan()
    (planned,) = Delivery.objects.all()
    assert (planned.channel, planned.address) == (reminders.FEED_CHANNEL, "")
    assert not FeedItem.objects.exists()  # not before it is due

    assert plan_and_send() == 1
    planned.refresh_from_db()
    assert planned.status == "sent"
    assert mail.outbox == []
    (shown,) = patient_client.get(FEED).json()["results"]
    assert shown["reminder"] == "daily_log"


def test_a_device_whose_channel_is_not_configured_leaves_the_reminder_to_the_feed(patient):
    # No FCM credentials here: the phone cannot be reached, and is not planned for.
    phone(patient)
    ReminderSettings.objects.create(patient=patient, channels="push")
    plan_and_send()
    assert list(Delivery.objects.values_list("channel", "status")) == [("feed", "sent")]
    assert FeedItem.objects.count() == 1


def test_a_reminder_pushed_and_emailed_is_one_feed_item_the_push_names(push_providers, patient):
    phone(patient)
    assert plan_and_send() == 2
    assert sorted(Delivery.objects.values_list("channel", flat=True)) == ["email", "fcm"]
    item = FeedItem.objects.get()
    (request,) = [r for r in push_providers.fcm.requests if r.path != "/token"]
    data = request.json()["message"]["data"]
    assert data["feed_item"] == str(item.pk)
    assert data["reminder"] == "daily_log"


class FeedSeeingChannel:
    """An email channel that notes, at each hand-over, whether the feed item the message
    names is already there (as a patient opening a push at once would find it)."""

    seen: ClassVar[list[bool]] = []

    def send(self, message: OutgoingMessage) -> SendResult:
        found = FeedItem.objects.filter(pk=message.data["feed_item"]).exists()
        FeedSeeingChannel.seen.append(found)
        return SendResult(Outcome.SENT, provider_id=str(message.delivery_id))


def test_every_feed_item_a_batch_names_is_there_before_its_hand_over(patient, settings):
    from tests.factories import PatientFactory

    for _ in range(2):
        PatientFactory.create(clinic=patient.clinic)
    settings.NOTIFICATION_CHANNELS = {
        **settings.NOTIFICATION_CHANNELS,
        "seeing": "tests.notifications.test_reminders_feed.FeedSeeingChannel",
    }
    settings.NOTIFICATION_EMAIL_CHANNEL = "seeing"
    FeedSeeingChannel.seen.clear()
    assert plan_and_send() == 3
    assert FeedSeeingChannel.seen == [True, True, True]
    assert FeedItem.objects.count() == 3


def test_an_opted_out_kind_never_reaches_the_feed(patient):
    with at(DUE - timedelta(minutes=5)):
        reminders.reminders_plan()
        reminders.reminder_settings_update(
            patient=patient, actor=patient.user, data={"daily_log": False}
        )
    plan_and_send()
    ReminderSettings.objects.filter(patient=patient).update(daily_log=True, channels="push")
    # Switched off after it was planned and before its turn: cancelled everywhere.
    Reminder.objects.all().delete()
    with at(DUE - timedelta(minutes=5)):
        reminders.reminders_plan()
    ReminderSettings.objects.filter(patient=patient).update(daily_log=False)
    plan_and_send()
    assert Delivery.objects.filter(channel="feed").get().status == "cancelled"
    assert not FeedItem.objects.exists()
    assert mail.outbox == []


def test_a_day_logged_before_its_reminder_is_in_no_feed(patient):
    with at(DUE - timedelta(minutes=5)):
        reminders.reminders_plan()
    DailyLog.objects.create(patient=patient, date=DAY, pain=3)
    plan_and_send()
    assert not FeedItem.objects.exists()


def test_a_failing_email_puts_the_reminder_in_the_feed_once_across_its_retries(patient, settings):
    settings.EMAIL_BACKEND = "tests.notifications.test_delivery.DownBackend"
    assert plan_and_send() == 0
    delivery = Delivery.objects.get()
    assert delivery.status == "retrying"
    assert FeedItem.objects.count() == 1  # the patient sees it while the email waits

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert plan_and_send(DUE + timedelta(minutes=5)) == 1
    assert FeedItem.objects.count() == 1
    assert len(mail.outbox) == 1


def test_the_generic_sweep_leaves_reminders_to_their_batch_sweep(patient):
    # The generic sweep runs on the safety queue: a reminder burst is not its work.
    with at(DUE):
        reminders.reminders_plan()
        assert services.deliveries_sweep() == 0
        delivery = Delivery.objects.get()
        assert (delivery.status, delivery.attempts) == ("queued", 0)
        assert not FeedItem.objects.exists()
        assert reminders_sweep.reminders_send_due() == 1
    assert Delivery.objects.get().status == "sent"
    assert FeedItem.objects.get().object_id == Reminder.objects.get().pk


def test_the_per_delivery_send_puts_a_reminder_in_the_feed_as_well(patient):
    with at(DUE):
        reminders.reminders_plan()
        assert services.delivery_send(delivery_id=Delivery.objects.get().pk) is True
    assert FeedItem.objects.get().object_id == Reminder.objects.get().pk


def test_a_batch_writes_its_feed_items_in_one_statement(patient, django_assert_num_queries):
    from tests.factories import PatientFactory

    for _ in range(4):
        PatientFactory.create(clinic=patient.clinic)
    with at(DUE):
        reminders.reminders_plan()
        batch = reminders_sweep._claim_batch(limit=100)
        signer = reminders.UnsubscribeSigner()
        owed = [
            f.reminder_id
            for f in batch
            if f.reminder_id is not None and reminders.reminder_compose_facts(f, signer=signer)
        ]
        assert len(owed) == 5
        with django_assert_num_queries(1):
            assert reminders.reminders_feed(owed) == 5
        with django_assert_num_queries(1):
            assert reminders.reminders_feed(owed) == 0


def test_a_reminder_queued_for_a_phone_found_dead_still_reaches_the_feed(
    push_providers, patient, patient_client
):
    # Push only: the phone is the reminder's one channel, and the provider says it is
    # gone (FCM UNREGISTERED) when another message is sent to it before the reminder's turn.
    ReminderSettings.objects.create(patient=patient, channels="push")
    device = phone(patient)
    with at(DUE - timedelta(minutes=5)):
        reminders.reminders_plan()
    (planned,) = Delivery.objects.all()
    assert planned.channel == "fcm"
    push_providers.fcm.unregistered.add(ANDROID_TOKEN)
    # Yesterday's reminder, still owed, is pushed first and finds the phone gone.
    yesterday = Reminder.objects.create(
        patient=patient, kind="daily_log", local_date=DAY - timedelta(days=1), due_at=DUE
    )
    with at(DUE - timedelta(minutes=4)):
        other = Delivery.objects.create(
            kind=Delivery.Kind.REMINDER,
            channel="fcm",
            recipient=patient.user,
            address=device.address,
            patient=patient,
            object_id=yesterday.pk,
            idempotency_key="test:yesterday",
            due_at=timezone.now(),
            next_attempt_at=timezone.now(),
        )
        services.delivery_send(delivery_id=other.pk)
    assert not Device.objects.exists()
    planned.refresh_from_db()
    assert (planned.channel, planned.address, planned.status) == (
        reminders.FEED_CHANNEL,
        "",
        "queued",
    )

    assert plan_and_send() == 1
    shown = patient_client.get(FEED).json()["results"]
    assert sorted(item["id"] for item in shown) == sorted(
        str(reminders.reminder_feed_item_id(r.pk)) for r in Reminder.objects.all()
    )
    # Yesterday's one attempt: the reminder was not pushed to the dead phone.
    assert len([r for r in push_providers.fcm.requests if r.path != "/token"]) == 1


def test_a_handed_back_reminder_cancelled_later_leaves_the_feed(patient, patient_client):
    with at(DUE):
        reminders.reminders_plan()
        # Out of time before the first hand-over: the batch's items are written, every row
        # handed back (queued again, the attempt not counted).
        assert reminders_sweep.reminders_send_due(budget=-1.0) == 0
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("queued", 0)
    assert FeedItem.objects.count() == 1

    # The patient logs the day before the reminder's turn comes again: it is cancelled,
    # never sent, and the feed no longer shows it.
    DailyLog.objects.create(patient=patient, date=DAY, pain=3)
    assert plan_and_send(DUE + timedelta(minutes=1)) == 0
    delivery.refresh_from_db()
    assert delivery.status == "cancelled"
    assert mail.outbox == []
    assert not FeedItem.objects.exists()
    assert patient_client.get(FEED).json()["results"] == []


def test_a_handed_back_reminder_cancelled_by_the_per_delivery_send_leaves_the_feed(patient):
    with at(DUE):
        reminders.reminders_plan()
        assert reminders_sweep.reminders_send_due(budget=-1.0) == 0
    assert FeedItem.objects.count() == 1
    DailyLog.objects.create(patient=patient, date=DAY, pain=3)
    delivery = Delivery.objects.get()
    with at(DUE + timedelta(minutes=1)):
        services.delivery_send(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == "cancelled"
    assert not FeedItem.objects.exists()


def test_a_handed_back_reminder_withdrawn_by_new_settings_leaves_the_feed(patient, patient_client):
    with at(DUE):
        reminders.reminders_plan()
        assert reminders_sweep.reminders_send_due(budget=-1.0) == 0
    assert FeedItem.objects.count() == 1
    # The patient changes their reminder time before the row's turn comes again.
    response = patient_client.patch("/api/v1/me/reminders/", {"remind_at": "20:00"}, format="json")
    assert response.status_code == 200, response.content
    assert Delivery.objects.get().status == "cancelled"
    assert not FeedItem.objects.exists()


def test_a_reminder_sent_or_still_owed_on_another_channel_keeps_its_item(patient):
    with at(DUE):
        reminders.reminders_plan()
        assert reminders_sweep.reminders_send_due(budget=-1.0) == 0
    first = Delivery.objects.get()
    # A second channel of the same reminder (as email and push are).
    other = Delivery.objects.create(
        kind=first.kind,
        channel="fcm",
        address="token",
        object_id=first.object_id,
        patient_id=first.patient_id,
        idempotency_key=f"{first.idempotency_key}:other",
        due_at=first.due_at,
        next_attempt_at=first.next_attempt_at,
    )
    for status in ("queued", "sending", "sent", "given_up"):
        Delivery.objects.filter(pk=other.pk).update(status=status)
        assert reminders.reminder_deliveries_cancel([first.pk]) == 0
        assert FeedItem.objects.count() == 1
    # Both cancelled in one statement: the item goes.
    Delivery.objects.filter(pk=first.pk).update(status="queued")
    Delivery.objects.filter(pk=other.pk).update(status="queued")
    assert reminders.reminder_deliveries_cancel([first.pk, other.pk]) == 1
    assert set(Delivery.objects.values_list("status", flat=True)) == {"cancelled"}
    assert not FeedItem.objects.exists()
