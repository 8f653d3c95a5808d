"""Outgoing messages, their delivery records, and the devices they reach.

`Delivery` is one message to one address through one channel, whatever it is about
(docs/architecture.md, "Notifications"). It holds no message text: the text is composed
from the row it is about when it is sent, so a delivery record carries no patient data
beyond the address it goes to.
"""

from __future__ import annotations

import json
import uuid
from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from notifications.querysets import DeviceQuerySet
from patients.models import Invitation, Patient, validate_timezone
from rehab.models import Alert


class Delivery(models.Model):
    class Kind(models.TextChoices):
        ALERT = "alert", "Alert to the care team"
        ESCALATION = "escalation", "Escalation (RF-META-01)"
        INVITATION = "invitation", "Invitation"
        MISSED_LOG_REMINDER = "missed_log_reminder", "Missed-log reminder (NR-LOG-01)"
        SAFETY_FOLLOW_UP = "safety_follow_up", "Safety follow-up: were you seen?"
        # A `Reminder` (its id in `object_id`): notifications/reminders.py.
        REMINDER = "reminder", "Patient reminder"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        # Claimed by a worker until `sending_until`; past it, claimable again (the worker
        # died mid-send).
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        RETRYING = "retrying", "Failed, to be retried"
        # Refused for good (a dead address, a malformed request): never retried.
        FAILED = "failed", "Failed"
        GIVEN_UP = "given_up", "Given up after the last attempt"
        # No longer owed when its turn came (the alert was acknowledged before its
        # escalation went out, the invitation was replaced).
        CANCELLED = "cancelled", "No longer owed"

    # Handed to the channel as the provider's idempotency or collapse key.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=24, choices=Kind.choices)
    channel = models.CharField(max_length=20)
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    address = models.TextField()
    # What it is about; the one that matches `kind` is set.
    alert = models.ForeignKey(
        Alert, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    invitation = models.ForeignKey(
        Invitation, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    patient = models.ForeignKey(
        Patient, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    # The patient's feed item this delivery carries (a message to a patient: one feed
    # item, one delivery per channel and address).
    feed_item = models.ForeignKey(
        "FeedItem", on_delete=models.CASCADE, null=True, blank=True, related_name="deliveries"
    )
    # The missed-log reminder's id (rehab.MissedLogReminder), or another owner without a
    # foreign key here.
    object_id = models.BigIntegerField(null=True, blank=True)
    # What makes this message this one: two sweeps, two beats or a redelivered task that
    # plan the same message meet on this key and only one row exists (docs/architecture.md).
    idempotency_key = models.CharField(max_length=200, unique=True)

    due_at = models.DateTimeField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    sending_until = models.DateTimeField(null=True, blank=True)
    # The last failure's outcome (`channels.base.Outcome`) and the provider's reason: status
    # codes and exception names, never the message's text.
    last_outcome = models.CharField(max_length=16, blank=True)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    provider_id = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created_at",)
        verbose_name_plural = "deliveries"
        indexes = [
            # The sweep's claim: what may be sent now, oldest first.
            models.Index(
                fields=("next_attempt_at",),
                name="delivery_claimable",
                condition=Q(status__in=("queued", "retrying", "sending")),
            ),
            models.Index(fields=("status", "updated_at"), name="delivery_status"),
            # A reminder's deliveries (a settings change withdraws the unsent ones).
            models.Index(
                fields=("object_id",), name="delivery_reminder", condition=Q(kind="reminder")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} via {self.channel}: {self.status}"


# --------------------------------------------------------------------------- feed


class FeedItem(models.Model):
    """One message to a patient, as their in-app feed shows it (`GET /api/v1/me/
    notifications/`), whichever channels carried it, if any: a patient with push turned
    off still sees everything. Like a delivery it holds no text: the text is composed
    from what it is about when the feed is read."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=24, choices=Delivery.Kind.choices)
    alert = models.ForeignKey(
        Alert, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    # What it is about besides an alert: the safety follow-up it asks, or the id of a
    # reminder row of another app (the missed-log reminder's).
    follow_up = models.ForeignKey(
        "SafetyFollowUp", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    object_id = models.BigIntegerField(null=True, blank=True)
    # The message's own key (as a delivery's, without the address): planned once.
    idempotency_key = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [models.Index(fields=("patient", "-created_at"), name="feeditem_patient_newest")]

    def __str__(self) -> str:
        return f"{self.kind} for {self.patient_id}"


class SafetyFollowUp(models.Model):
    """ "Were you seen?": asked a few hours after the app showed emergency or urgent advice
    (docs/safety-path.md, "Safety follow-up"); the answer goes on the alert's timeline.

    One per alert episode (`opened_at`): a reopened alert is a new episode and may be
    followed up again. `due_at` is claimed by the beat sweep with SKIP LOCKED."""

    class Status(models.TextChoices):
        DUE = "due", "Due"
        ASKED = "asked", "Asked"
        ANSWERED = "answered", "Answered"
        # The record was restricted, or the alert resolved as no action needed before it
        # was due: nothing is asked.
        SKIPPED = "skipped", "Not asked"

    class SeenBy(models.TextChoices):
        EMERGENCY_DEPARTMENT = "emergency_department", _("Emergency Department")
        GP = "gp", _("My GP or an urgent care clinic")
        PHYSIO = "physio", _("My physiotherapist or care team")
        NOT_YET = "not_yet", _("Not yet")
        NOT_GOING = "not_going", _("I decided not to go")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="+")
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="+")
    # The alert episode, and what the patient was told then (docs/safety-path.md § 8.6).
    opened_at = models.DateTimeField()
    severity = models.CharField(max_length=10)
    advice_message_key = models.CharField(max_length=40)
    advised_at = models.DateTimeField()
    due_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DUE)
    asked_at = models.DateTimeField(null=True, blank=True)
    seen_by = models.CharField(max_length=24, choices=SeenBy.choices, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-due_at",)
        constraints = [
            models.UniqueConstraint(
                fields=("alert", "opened_at"), name="safetyfollowup_once_per_episode"
            ),
        ]
        indexes = [
            models.Index(fields=("due_at",), name="safetyfollowup_due", condition=Q(status="due")),
        ]

    def __str__(self) -> str:
        return f"follow-up of {self.alert_id}: {self.status}"


# --------------------------------------------------------------------------- devices
# The push addresses of signed-in devices (docs/architecture.md, "Notifications";
# docs/app-developers.md, "Push notifications"). Each belongs to exactly one sign-in, an
# API token (the app) or a dashboard session (a clinician's browser), and goes with it.


# Development's push channel (`PUSH_CONSOLE`): prints what would go to a device.
CONSOLE_PUSH_CHANNEL = "console_push"


class Device(models.Model):
    """One signed-in device's push address: an FCM or APNs token, or a browser's Web Push
    subscription."""

    class Platform(models.TextChoices):
        IOS = "ios", "iOS (APNs)"
        ANDROID = "android", "Android (FCM)"
        WEB = "web", "Web browser (Web Push)"

    # Which channel adapter (notifications/channels/) reaches each platform.
    CHANNELS: ClassVar[dict[str, str]] = {
        Platform.IOS: "apns",
        Platform.ANDROID: "fcm",
        Platform.WEB: "webpush",
    }

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="push_devices"
    )
    # The sign-in the device registered from: revoking it (sign-out, "sign out everywhere",
    # a password change, expiry) deletes the device with it, so a phone handed on never
    # receives the previous user's messages.
    auth_token = models.ForeignKey(
        "patients.AuthToken", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    session = models.ForeignKey(
        "sessions.Session", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    platform = models.CharField(max_length=7, choices=Platform.choices)
    # The FCM registration token, the APNs device token (hex), or the Web Push endpoint.
    token = models.CharField(max_length=1024)
    # Web Push only: the browser's ECDH public key and auth secret (base64url).
    p256dh = models.CharField(max_length=100, blank=True)
    auth = models.CharField(max_length=50, blank=True)
    app_version = models.CharField(max_length=50, blank=True)
    locale = models.CharField(max_length=35, blank=True)
    time_zone = models.CharField(max_length=64, blank=True, validators=[validate_timezone])
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = DeviceQuerySet.as_manager()

    class Meta:
        verbose_name = "push device"
        ordering = ("-updated_at",)
        constraints = [
            # A token reaches one device: registering it again (maybe after another user
            # signed in on the same phone) replaces the old row.
            models.UniqueConstraint(
                fields=["platform", "token"], name="notifications_device_one_per_token"
            ),
            # One push address per sign-in: a new token from the same sign-in replaces it.
            models.UniqueConstraint(
                fields=["auth_token"], name="notifications_device_one_per_auth_token"
            ),
            models.UniqueConstraint(
                fields=["session"], name="notifications_device_one_per_session"
            ),
            models.CheckConstraint(
                condition=Q(auth_token__isnull=False, session__isnull=True)
                | Q(auth_token__isnull=True, session__isnull=False),
                name="notifications_device_one_sign_in",
            ),
            models.CheckConstraint(
                condition=Q(platform="web", p256dh__gt="", auth__gt="")
                | (~Q(platform="web") & Q(p256dh="", auth="")),
                name="notifications_device_web_keys",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_platform_display()} device {self.id}"

    @classmethod
    def channel_of(cls, platform: str) -> str:
        """The name of the channel adapter that reaches a device of `platform`: its
        provider's, or in development with `PUSH_CONSOLE` the console's (docs/deployment.md,
        "Push notifications")."""
        return CONSOLE_PUSH_CHANNEL if settings.PUSH_CONSOLE else cls.CHANNELS[platform]

    @property
    def channel(self) -> str:
        """The name of the channel adapter that reaches this device."""
        return self.channel_of(self.platform)

    @property
    def address(self) -> str:
        """`OutgoingMessage.address` for this device: the token, or for Web Push the
        subscription as the browser gave it (JSON)."""
        if self.platform == self.Platform.WEB:
            return json.dumps(
                {"endpoint": self.token, "keys": {"p256dh": self.p256dh, "auth": self.auth}},
                separators=(",", ":"),
            )
        return self.token


# --------------------------------------------------------------------------- reminders
# The patient's reminders (docs/architecture.md, "Patient reminders"): what they want
# (`ReminderSettings`, defaults when no row) and what is owed (`Reminder`, one per
# patient, kind and local date; each sent through `Delivery` rows).


class ReminderSettings(models.Model):
    """One patient's reminder choices; a patient without a row has the defaults."""

    class Channels(models.TextChoices):
        PUSH = "push", "Push to the patient's devices"
        EMAIL = "email", "Email"
        BOTH = "both", "Push and email"

    patient = models.OneToOneField(
        Patient, on_delete=models.CASCADE, primary_key=True, related_name="reminder_settings"
    )
    # The patient's local wall-clock time of the day's reminders.
    remind_at = models.TimeField(default="19:00")
    daily_log = models.BooleanField(default=True)
    questionnaire_due = models.BooleanField(default=True)
    exercise_days = models.BooleanField(default=True)
    missed_log_email = models.BooleanField(default=True)
    channels = models.CharField(max_length=5, choices=Channels.choices, default=Channels.BOTH)
    # Local times; both set or both empty. A reminder falling inside is moved to
    # `quiet_end` when that is the same local day, else skipped.
    quiet_start = models.TimeField(null=True, blank=True)
    quiet_end = models.TimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "reminder settings"
        constraints = [
            models.CheckConstraint(
                condition=Q(quiet_start__isnull=True, quiet_end__isnull=True)
                | Q(quiet_start__isnull=False, quiet_end__isnull=False),
                name="remindersettings_quiet_both_or_neither",
            ),
        ]

    def __str__(self) -> str:
        return f"reminder settings of patient {self.patient_id}"


class Reminder(models.Model):
    """One reminder owed to one patient for one of their local dates. The unique key is
    what makes planning safe to run twice at once, or after the schedule was edited."""

    class Kind(models.TextChoices):
        DAILY_LOG = "daily_log", "Daily log"
        QUESTIONNAIRE_DUE = "questionnaire_due", "Questionnaire due"
        EXERCISE_DAY = "exercise_day", "Exercise day"

    id = models.BigAutoField(primary_key=True)
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    local_date = models.DateField()
    due_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=("patient", "kind", "local_date"), name="reminder_one_per_kind_and_day"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} reminder for {self.local_date}"
