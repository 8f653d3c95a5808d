"""`make run`'s notifications: the demo patients' daily-log reminders fall due in the first
minutes after start-up, and the demo patients and physiotherapist have a signed-in demo
phone each, so the console shows the reminders and the alert pushes as they go out
(docs/architecture.md, "Patient reminders"; docs/deployment.md, "Push notifications":
with DJANGO_DEBUG and no push provider configured, `PUSH_CONSOLE` prints every push).
Development only: it rewrites the demo patients' reminder times."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.utils import timezone

from notifications.devices import Registration, SignIn, device_register
from notifications.models import Device, Reminder, ReminderSettings
from patients.models import AuthToken, Patient, User
from rehab.demo import PHYSIO_EMAIL, STORIES
from rehab.demo_record import DGS_EMAIL, POST_OP_EMAIL

# What the demo phones' sign-ins are called in the devices list (`/me/devices/`).
DEMO_DEVICE = "Demo phone (make run)"


def _demo_emails() -> list[str]:
    return [*(story.email for story in STORIES), DGS_EMAIL, POST_OP_EMAIL]


def seed_demo_reminders() -> list[tuple[str, str]]:
    """Each demo patient's reminder 2, 3, 4 ... minutes from now (their local time, email
    and push), today's earlier ones forgotten; returns (email, local time) pairs."""
    now = timezone.now()
    shown = []
    for n, patient in enumerate(Patient.objects.active().filter(email__in=_demo_emails())):
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


def _demo_token(platform: str, email: str) -> str:
    """A made-up push token of the platform's shape, the same on every start."""
    digest = hashlib.sha256(f"demo device {email}".encode()).hexdigest()
    if platform == Device.Platform.IOS:
        return digest  # APNs tokens are hex
    return f"demo-fcm:{digest}"


def seed_demo_devices() -> list[tuple[str, Device]]:
    """A signed-in phone for each demo patient and for the demo physiotherapist, registered
    as the app registers one (an API token of its own, `devices.device_register`, audited);
    a user who already has a device keeps theirs. Returns (email, device) pairs."""
    patients = {p.email: p for p in Patient.objects.active().filter(email__in=_demo_emails())}
    users = User.objects.filter(email__in=[*patients, PHYSIO_EMAIL]).order_by("email")
    shown = []
    for n, user in enumerate(users):
        device = Device.objects.filter(user=user).first()
        if device is None:
            patient = patients.get(user.email)
            platform = Device.Platform.IOS if n % 2 == 0 else Device.Platform.ANDROID
            language = patient.language if patient is not None else ""
            auth_token, _ = AuthToken.objects.create(user=user, device=DEMO_DEVICE)
            device, _ = device_register(
                user=user,
                sign_in=SignIn(auth_token=auth_token),
                registration=Registration(
                    platform=platform,
                    token=_demo_token(platform, user.email),
                    app_version="demo",
                    locale=language or "en",
                    time_zone=patient.timezone if patient is not None else "",
                ),
            )
        shown.append((user.email, device))
    return shown
