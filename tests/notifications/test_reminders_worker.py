"""A real worker SIGKILLed in the middle of sending a reminder: the reminder is neither
lost nor doubled (docs/architecture.md, "Patient reminders"). Real Celery workers, real
Redis, a real SMTP server (tests/rehab/worker_support.py)."""

from __future__ import annotations

from datetime import time as local_time

import pytest
from django.utils import timezone

from notifications import tasks as notification_tasks
from notifications.models import Delivery, FeedItem, Reminder, ReminderSettings
from tests.rehab.test_worker_reliability import (  # noqa: F401 - fixtures
    beat_until,
    broker_server,
    broker_url,
    smtp,
    workers,
)
from tests.rehab.worker_support import wait_until

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(120),
]


@pytest.mark.parametrize("smtp", [30.0], indirect=True)
def test_a_reminder_a_killed_worker_held_is_sent_once_by_another(patient, workers, smtp):  # noqa: F811
    patient.timezone = "UTC"
    patient.save()
    now = timezone.now()
    ReminderSettings.objects.create(
        patient=patient, remind_at=local_time(now.hour, now.minute), channels="email"
    )
    doomed = workers(name="doomed")
    notification_tasks.reminders_sweep_task.delay()
    # The mail server holds the message (30 s): the worker is mid-send.
    wait_until(
        lambda: Delivery.objects.filter(status="sending").exists(),
        timeout=30,
        what="the worker to claim the reminder's delivery",
    )
    # Into the SMTP conversation: the server has the whole message and holds its answer.
    wait_until(lambda: smtp.taken, timeout=30, what="the mail server to get the message")
    doomed.kill()
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("sending", 1)
    # In the patient's feed before the hand-over began.
    assert FeedItem.objects.filter(object_id=Reminder.objects.get().pk).count() == 1

    # Its lease has run out (two minutes, brought forward here): a sweep claims it again.
    Delivery.objects.update(sending_until=timezone.now())
    smtp.delay = 0.0
    workers(name="survivor")
    beat_until(
        notification_tasks.reminders_sweep_task,
        lambda: Delivery.objects.filter(status="sent").exists(),
        timeout=30,
        what="the sweep to send the abandoned reminder",
    )
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    assert Reminder.objects.count() == 1
    assert Delivery.objects.count() == 1
    # Sent twice over, in the feed once.
    assert FeedItem.objects.count() == 1
    # Whatever reached the server is one message: the delivery's id is its Message-ID.
    assert smtp.received
    assert {str(r.message["Message-ID"]) for r in smtp.received} == {delivery.provider_id}
    assert {str(r.message["List-Unsubscribe-Post"]) for r in smtp.received} == {
        "List-Unsubscribe=One-Click"
    }
