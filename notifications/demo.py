"""`make run`'s reminders: the demo patients' daily-log reminders fall due in the first
minutes after start-up, so the console shows them (docs/architecture.md, "Patient
reminders"). Development only: it rewrites the demo patients' reminder times."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from notifications.models import Reminder, ReminderSettings
from patients.models import Patient
from rehab.demo import STORIES
from rehab.demo_record import DGS_EMAIL, POST_OP_EMAIL


def seed_demo_reminders() -> list[tuple[str, str]]:
    """Each demo patient's reminder 2, 3, 4 ... minutes from now (their local time, email
    and push), today's earlier ones forgotten; returns (email, local time) pairs."""
    emails = [*(story.email for story in STORIES), DGS_EMAIL, POST_OP_EMAIL]
    now = timezone.now()
    shown = []
    for n, patient in enumerate(Patient.objects.active().filter(email__in=emails)):
        local = (now + timedelta(minutes=2 + n)).astimezone(patient.tz)
        at = local.time().replace(second=0, microsecond=0)
        ReminderSettings.objects.update_or_create(
            patient=patient,
            defaults={"remind_at": at, "channels": ReminderSettings.Channels.BOTH},
        )
        # A demo restarted the same day gets today's reminders again.
        Reminder.objects.filter(patient=patient, local_date=local.date()).delete()
        shown.append((patient.email, at.strftime("%H:%M")))
    return shown
