"""Clinician alerts raised by the safety rules, their history, and in-app notifications."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from patients.models import Clinician, Patient
from rehab.models.logs import DailyLog
from rehab.querysets import AlertQuerySet, NotificationQuerySet


class Severity(models.TextChoices):
    EMERGENCY = "emergency", "Emergency"
    URGENT = "urgent", "Urgent"
    ROUTINE = "routine", "Routine"


# Most severe first; used to order the caseload and the alert inbox in SQL.
SEVERITY_RANK = {Severity.EMERGENCY: 0, Severity.URGENT: 1, Severity.ROUTINE: 2}


class Alert(models.Model):
    """One rule firing for one patient, kept open until a clinician resolves it.

    At most one unresolved alert per patient and rule (a partial unique index): a new
    firing while one exists is another occurrence of it, never a second alert.
    """

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"

    class Disposition(models.TextChoices):
        ADVISED_ED = "advised_ed", "Advised to attend the Emergency Department"
        PHONED_PATIENT = "phoned_patient", "Phoned the patient"
        REFERRED = "referred", "Referred"
        SEEN_IN_CLINIC = "seen_in_clinic", "Seen in clinic"
        NO_ACTION_NEEDED = "no_action_needed", "No action needed"
        TRIGGER_CLEARED = "trigger_cleared", "Trigger cleared (resolved automatically)"
        # NR-PROG-03 ("consider discharge") never stands beside an open red flag.
        RED_FLAG_OPEN = "red_flag_open", "A red flag is open (resolved automatically)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="alerts")
    rule = models.CharField(max_length=20)
    rule_version = models.PositiveIntegerField()
    severity = models.CharField(max_length=10, choices=Severity.choices)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    title = models.CharField(max_length=200, blank=True)
    # The inputs that made the rule fire the first time (each occurrence keeps its own).
    basis = models.JSONField(default=dict)
    log = models.ForeignKey(
        DailyLog,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="alerts",
        db_constraint=False,
    )
    # What the patient was told for the answers that first fired it: the key of the
    # message shown (the most severe inline rule's) and its language; blank when the
    # patient was told nothing (a review rule, a rule only the background job decides).
    advice_message_key = models.CharField(max_length=40, blank=True)
    advice_language = models.CharField(max_length=8, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_fired_at = models.DateTimeField()
    occurrence_count = models.PositiveIntegerField(default=1)
    # When the alert (re)entered `open`: the triage order's "waited longest".
    opened_at = models.DateTimeField()

    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    acknowledged_note = models.TextField(blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    disposition = models.CharField(max_length=20, choices=Disposition.choices, blank=True)
    resolved_note = models.TextField(blank=True)

    # Delivery bookkeeping: each is a due/processed pair that a beat sweeper can find, so
    # a lost message or a crashed worker delays an email but never drops it.
    notify_due = models.BooleanField(default=False)
    notified_at = models.DateTimeField(null=True, blank=True)
    escalation_due_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    # A delivery that failed (SMTP error, nobody to send to) is tried again later with a
    # back-off, a bounded number of times, so that one bad alert can neither stall the
    # sweep for every other alert nor be retried forever; until it succeeds it shows in
    # /health/. `escalation_due_at` stays the clinical deadline shown to clinicians.
    notify_attempts = models.PositiveSmallIntegerField(default=0)
    notify_retry_at = models.DateTimeField(null=True, blank=True)
    escalation_attempts = models.PositiveSmallIntegerField(default=0)
    escalation_retry_at = models.DateTimeField(null=True, blank=True)
    delivery_error = models.TextField(blank=True)

    objects = AlertQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.UniqueConstraint(
                fields=("patient", "rule"),
                condition=~Q(status="resolved"),
                name="alert_one_unresolved_per_patient_rule",
            ),
        ]
        indexes = [
            models.Index(fields=("patient", "status"), name="alert_patient_status"),
            models.Index(fields=("status", "severity", "opened_at"), name="alert_inbox"),
            models.Index(
                fields=("escalation_due_at",),
                name="alert_escalation_due",
                condition=Q(escalated_at__isnull=True, status="open"),
            ),
            models.Index(
                fields=("created_at",),
                name="alert_notify_due",
                condition=Q(notify_due=True, notified_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rule} ({self.severity}) for {self.patient_id}: {self.status}"


class PatientAlertTriage(models.Model):
    """Per patient with an open alert, what the caseload sorts and shows of their open
    alerts: the most urgent one's tier (its severity's SEVERITY_RANK) and since when it
    has waited (the earliest `opened_at` among the open alerts of that tier), and how
    many are open of each severity.

    Written by the database, not by Django: a trigger on the alert table recomputes the
    patient's row in the same statement as any insert, deletion or change of an alert's
    patient, status, severity or opening (rehab/migrations/0016_caseload_sort_keys.py,
    docs/architecture.md § The caseload rollup). A row exists exactly when the patient
    has an open alert. `manage.py rebuild_log_rollups` recomputes it too.

    None of it moves with time, so the caseload's alert tiers are plain columns of a
    join instead of a look-up of every patient's alerts in the sort.
    """

    patient = models.OneToOneField(
        Patient, on_delete=models.CASCADE, primary_key=True, related_name="alert_triage"
    )
    tier = models.PositiveSmallIntegerField()
    since = models.DateTimeField()
    open_emergency = models.PositiveIntegerField()
    open_urgent = models.PositiveIntegerField()
    open_routine = models.PositiveIntegerField()

    class Meta:
        # Nothing but the trigger and the rebuild write it; Django only reads it.
        default_permissions = ("view",)

    def __str__(self) -> str:
        return f"{self.patient_id} alert triage"


class AlertOccurrence(models.Model):
    """Each time the rule fired while the alert was unresolved, with its log and inputs."""

    class Source(models.TextChoices):
        LOG = "log", "The log's current answers"
        SUPERSEDED = "superseded", "A version later replaced by an edit"
        REFUSED = "refused", "A submission answered 409"
        REVIEW = "review", "A review rule"

    id = models.BigAutoField(primary_key=True)
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="occurrences")
    log = models.ForeignKey(
        DailyLog,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
    )
    # Trend rules have no log; they fire at most once per patient-local day.
    fired_on = models.DateField()
    rule_version = models.PositiveIntegerField()
    basis = models.JSONField(default=dict)
    fired_at = models.DateTimeField(auto_now_add=True)
    # Which answers fired it: the log as stored, an earlier version of it, or a refused
    # submission naming it (then `basis.submission` holds the answers sent).
    source = models.CharField(max_length=12, choices=Source.choices, default=Source.LOG)
    log_version = models.PositiveIntegerField(null=True, blank=True)
    advice_message_key = models.CharField(max_length=40, blank=True)
    advice_language = models.CharField(max_length=8, blank=True)

    class Meta:
        ordering = ("alert", "fired_at")
        constraints = [
            # Re-evaluating the same log (a retried message, two workers) adds nothing.
            models.UniqueConstraint(
                fields=("alert", "log"),
                condition=Q(log__isnull=False),
                name="alertoccurrence_once_per_log",
            ),
            models.UniqueConstraint(
                fields=("alert", "fired_on"),
                condition=Q(log__isnull=True),
                name="alertoccurrence_trend_once_per_day",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.alert_id} on {self.fired_on}"


class AlertEvent(models.Model):
    """The alert's audit trail: created, re-fired, reopened, acknowledged, escalated..."""

    class Kind(models.TextChoices):
        CREATED = "created", "Created"
        REFIRED = "refired", "Fired again"
        REOPENED = "reopened", "Reopened by a new firing"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"
        AUTO_RESOLVED = "auto_resolved", "Resolved automatically"
        NOTIFIED = "notified", "Care team emailed"
        ESCALATED = "escalated", "Escalated (RF-META-01)"
        # The patient's answer to the safety follow-up ("were you seen?"), in `data`.
        FOLLOW_UP = "follow_up", "Patient answered the follow-up"

    id = models.BigAutoField(primary_key=True)
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    note = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("alert", "at", "id")

    def __str__(self) -> str:
        return f"{self.alert_id} {self.kind}"


class Notification(models.Model):
    """An in-app notification for one clinician."""

    class Kind(models.TextChoices):
        ALERT = "alert", "New alert"
        ESCALATION = "escalation", "Alert escalated"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    clinician = models.ForeignKey(Clinician, on_delete=models.CASCADE, related_name="notifications")
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    message = models.CharField(max_length=300)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    objects = NotificationQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at",)
        indexes = [models.Index(fields=("clinician", "read_at", "created_at"))]

    def __str__(self) -> str:
        return f"{self.kind} for {self.clinician_id}"
