"""`make run`'s notifications: its seed (`seed_demo`, then `seed_demo_reminders`, as the
Makefile runs them) gives each demo patient, the Spanish-speaking one included, and the
demo physiotherapist a signed-in phone; with development's `PUSH_CONSOLE` their reminders
and the alert pushes are printed by the console, in the patient's language."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from notifications import messages, reminders_sweep, services
from notifications.demo import DEMO_DEVICE
from notifications.models import CONSOLE_PUSH_CHANNEL, Delivery, Device, Reminder
from patients.models import AuditEvent, AuthToken, Patient, User
from rehab.demo import PHYSIO_EMAIL
from rehab.demo_record import DGS_EMAIL, POST_OP_EMAIL

pytestmark = pytest.mark.django_db


@pytest.fixture
def push_console(settings):
    """Development's settings (DJANGO_DEBUG, no push provider): pushes go to the console."""
    settings.PUSH_CONSOLE = True
    settings.NOTIFICATION_CHANNELS = {
        **settings.NOTIFICATION_CHANNELS,
        CONSOLE_PUSH_CHANNEL: "notifications.channels.console.ConsolePushChannel",
    }


def test_make_runs_seed_gives_every_demo_user_one_signed_in_phone(capsys):
    call_command("seed_demo")
    call_command("seed_demo_reminders")
    out = capsys.readouterr().out

    patients = list(Patient.objects.filter(email__endswith=".demo").order_by("email"))
    patients += list(Patient.objects.filter(email__in=[DGS_EMAIL, POST_OP_EMAIL]))
    users = [p.user for p in patients] + [User.objects.get(email=PHYSIO_EMAIL)]
    assert len(users) >= 8
    for user in users:
        (device,) = Device.objects.filter(user=user)
        # Registered from a sign-in of its own, as the app registers: signing it out (or
        # revoking the token) forgets the phone.
        assert AuthToken.objects.get(pk=device.auth_token_id).device == DEMO_DEVICE
        assert f"phone of {user.email}" in out
    assert {d.platform for d in Device.objects.all()} == {"ios", "android"}
    lucia = Patient.objects.get(email="lucia@patient.demo")
    assert lucia.language == "es"
    assert Device.objects.get(user=lucia.user).locale == "es"
    assert AuditEvent.objects.filter(object_type="push_device", action="create").count() == len(
        users
    )

    # Again (`make run` restarted): nobody gets a second phone.
    call_command("seed_demo")
    call_command("seed_demo_reminders")
    assert Device.objects.count() == len(users)


def test_make_run_prints_the_demo_reminders_and_alert_pushes(push_console, capsys):
    call_command("seed_demo")
    call_command("seed_demo_reminders")
    capsys.readouterr()
    lucia = Patient.objects.get(email="lucia@patient.demo")

    # The demo's open alerts are overdue for RF-META-01 on the first start: the
    # escalation reaches the physiotherapist's demo phone.
    assert services.escalations_sweep() >= 1
    physio_phone = Device.objects.get(user__email=PHYSIO_EMAIL)
    escalated = Delivery.objects.filter(kind="escalation", channel=CONSOLE_PUSH_CHANNEL)
    assert escalated.filter(address=physio_phone.address, status="sent").exists()
    assert "[ESCALATED " in capsys.readouterr().out

    # Every demo reminder falls due in the first minutes after start-up.
    with time_machine.travel(timezone.now() + timedelta(minutes=15), tick=False):
        reminders_sweep.reminders_sweep()
    pushed = Delivery.objects.filter(kind="reminder", channel=CONSOLE_PUSH_CHANNEL)
    assert pushed.filter(patient=lucia, status="sent").exists()
    printed = capsys.readouterr().out
    for delivery in pushed:
        assert delivery.status == "sent"
        assert delivery.object_id is not None
        reminder = Reminder.objects.select_related("patient").get(pk=delivery.object_id)
        patient = reminder.patient
        text = messages.reminder_text(
            kind=reminder.kind, first_name=patient.first_name, language=patient.language
        )
        assert f"--- push {delivery.pk}" in printed
        assert text.subject in printed
    # Lucía's in Spanish.
    # One or two: which kinds fall due depends on her local date (from 23:00 UTC it is
    # already tomorrow in Madrid, a day she has not logged yet) and on her program's days.
    hers = list(Reminder.objects.filter(patient=lucia, pk__in=pushed.values("object_id")))
    assert hers
    for reminder in hers:
        spanish = messages.reminder_text(kind=reminder.kind, first_name="Lucía", language="es")
        assert spanish.subject in printed
        assert spanish.subject != messages.reminder_text(kind=reminder.kind, first_name="").subject
    assert not Delivery.objects.filter(channel__in=("apns", "fcm", "webpush")).exists()
