from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q

from patients.models import Patient
from rehab.querysets import DailyLogQuerySet


def _score_check(field: str, nullable: bool = True) -> models.CheckConstraint:
    condition = Q(**{f"{field}__gte": 0, f"{field}__lte": 10})
    if nullable:
        condition |= Q(**{f"{field}__isnull": True})
    return models.CheckConstraint(condition=condition, name=f"dailylog_{field}_0_10")


# The daily logs are partitioned by month of `date` in the database (migration 0012,
# docs/clinical-record.md § Where the daily logs are stored): the database's primary key
# is (id, date), Django's is `id`. "One id, one log" is kept by `DailyLogId`, and the
# tables pointing at a log reference that table, not this one: their ForeignKeys say
# `db_constraint=False` (Django cannot manage a key onto a partitioned table), and the
# migration adds each one's constraint onto DailyLogId's table itself. A new
# ForeignKey to DailyLog needs the same (`db_constraint=False`, and a RunSQL like 0012's).


class DailyLogId(models.Model):
    """The ids of the daily logs in use, one row each: what keeps a log's id unique
    across the partitions, and what foreign keys to a log reference.

    Written only by the log table's triggers: an insert of a log claims its id
    here (a claimed id makes the insert a no-op, as ON CONFLICT DO NOTHING), a delete
    releases it, an edit of the log's date moves `date` with it (migration 0014).
    """

    id = models.UUIDField(primary_key=True)
    # The log's date, so that a read by id finds its month's partition first
    # (`DailyLogQuerySet.by_id`). For a claim a refused POST left behind, the date that
    # POST sent.
    date = models.DateField()

    def __str__(self) -> str:
        return str(self.id)


class DailyLog(models.Model):
    """One patient's pain, function and safety check for one of their local dates."""

    class LegPainSide(models.TextChoices):
        NONE = "none", "None"
        LEFT = "left", "Left"
        RIGHT = "right", "Right"
        BOTH = "both", "Both"

    class Sleep(models.TextChoices):
        UNDISTURBED = "undisturbed", "Undisturbed"
        DISTURBED = "disturbed", "Disturbed"
        CONSTANT_ANY_POSITION = "constant_any_position", "Constant pain in any position"

    # What the patient answers: what a retry is compared on, an edit may change, and a
    # revision keeps. All of it but the free-text notes is what the safety rules read.
    CONTENT_FIELDS: tuple[str, ...] = (
        "date",
        "pain",
        "leg_pain",
        "back_pain",
        "worst_pain",
        "leg_pain_side",
        "function",
        "sleep",
        "notes",
        "safety",
    )

    # The app may generate the id offline: a retry with the same id stores nothing new.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    # No index of its own: the one-per-day constraint's (patient, date) index serves every
    # look-up by patient, and a second index cost every insert and evaluation update.
    patient = models.ForeignKey(
        Patient, on_delete=models.CASCADE, related_name="daily_logs", db_index=False
    )
    date = models.DateField(help_text="The patient's local date.")
    pain = models.PositiveSmallIntegerField()
    leg_pain = models.PositiveSmallIntegerField(null=True, blank=True)
    back_pain = models.PositiveSmallIntegerField(null=True, blank=True)
    worst_pain = models.PositiveSmallIntegerField(null=True, blank=True)
    # NULL, not "", for "not answered": the API gives back null, distinct from "none".
    leg_pain_side = models.CharField(  # noqa: DJ001
        max_length=5, choices=LegPainSide.choices, null=True, blank=True
    )
    function = models.PositiveSmallIntegerField(null=True, blank=True)
    sleep = models.CharField(  # noqa: DJ001
        max_length=24, choices=Sleep.choices, null=True, blank=True
    )
    notes = models.TextField(blank=True, max_length=2000)
    # Every answer of the daily safety check, defaults applied (absent == "no"/"none"/false).
    safety = models.JSONField(default=dict)
    # What the patient was told at submit time, computed in the request from the rules.
    safety_advice = models.JSONField(null=True, blank=True)
    # docs/clinical-record.md: a symptom answered `unchanged_assessed` under a clinician's mark
    # fires nothing, yet the patient must still be told "if this gets worse, go to the
    # Emergency Department now". `safety_advice` is null when nothing fired (contract), so
    # the reminder travels here; stored, like the advice, as it was said at submit time.
    safety_reminder = models.TextField(null=True, blank=True)  # noqa: DJ001 - null: none owed
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Background evaluation bookkeeping (the safety engine): a log is "owed" an evaluation
    # until evaluated_at is set; the sweeper re-enqueues owed logs, so a lost message is
    # never a lost red flag.
    evaluated_at = models.DateTimeField(null=True, blank=True)
    evaluated_version = models.PositiveIntegerField(null=True, blank=True)
    evaluation_attempts = models.PositiveSmallIntegerField(default=0)
    evaluation_failed_at = models.DateTimeField(null=True, blank=True)
    evaluation_error = models.TextField(blank=True)

    objects = DailyLogQuerySet.as_manager()

    class Meta:
        ordering = ("-date",)
        constraints = [
            models.UniqueConstraint(fields=("patient", "date"), name="dailylog_one_per_day"),
            _score_check("pain", nullable=False),
            _score_check("leg_pain"),
            _score_check("back_pain"),
            _score_check("worst_pain"),
            _score_check("function"),
        ]
        indexes = [
            # The sweeper's question: which logs are still owed an evaluation?
            models.Index(
                fields=("updated_at",),
                name="dailylog_unevaluated",
                condition=Q(evaluated_at__isnull=True, evaluation_failed_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.patient_id} {self.date} pain {self.pain}"

    def snapshot(self) -> dict[str, Any]:
        """The patient-entered content, as kept in the edit history."""
        return {
            "date": self.date.isoformat(),
            "pain": self.pain,
            "leg_pain": self.leg_pain,
            "back_pain": self.back_pain,
            "worst_pain": self.worst_pain,
            "leg_pain_side": self.leg_pain_side,
            "function": self.function,
            "sleep": self.sleep,
            "notes": self.notes,
            "safety": self.safety,
            "safety_advice": self.safety_advice,
        }


class DailyLogRevision(models.Model):
    """A log's content before an edit: who changed what, when."""

    id = models.BigAutoField(primary_key=True)
    log = models.ForeignKey(
        DailyLog, on_delete=models.CASCADE, related_name="revisions", db_constraint=False
    )
    version = models.PositiveIntegerField()
    data = models.JSONField()
    changed_fields = models.JSONField(default=list)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    changed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("log", "version")
        constraints = [
            models.UniqueConstraint(fields=("log", "version"), name="dailylogrevision_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.log_id} v{self.version}"


class SafetySubmission(models.Model):
    """A set of answers the patient sent, and was shown advice for, that is not a stored
    log's current version: owed a red-flag evaluation all the same (docs/safety-path.md,
    "Nothing a patient tells us is dropped").

    - `superseded`: a log's version replaced by an edit before any worker evaluated it.
      Written in the edit's own transaction, so the old answers cannot be lost between
      the edit and the evaluation, whatever happens to the worker or the broker.
    - `refused`: the body of a POST answered 409 (its id exists with another body, or
      another log exists for its date). Only the urgent and emergency rules it fires
      raise alerts, on the stored log the 409 named.

    Like a log, it is owed until `evaluated_at` is set; a message evaluates it at once and
    the beat sweeper finds any the message left behind.
    """

    class Kind(models.TextChoices):
        SUPERSEDED = "superseded", "Version replaced by an edit before evaluation"
        REFUSED = "refused", "Submission answered 409"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="+")
    # The stored log the answers belong to (superseded) or that the 409 named (refused);
    # null only when the 409 named no log of this patient.
    log = models.ForeignKey(
        DailyLog,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="submissions",
        db_constraint=False,
    )
    kind = models.CharField(max_length=12, choices=Kind.choices)
    # The log's version these answers were (superseded); null for a refused submission.
    version = models.PositiveIntegerField(null=True, blank=True)
    # The answers as the rules read them (DailyLog.CONTENT_FIELDS but the notes), JSON.
    content = models.JSONField()
    # A refused body sent again (a phone retrying its 409) is the same submission.
    content_hash = models.CharField(max_length=64)
    # What the patient was shown for these answers, as stored on a log.
    safety_advice = models.JSONField(null=True, blank=True)
    # When the patient sent these answers: the escalation clock starts here.
    submitted_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    evaluated_at = models.DateTimeField(null=True, blank=True)
    evaluation_attempts = models.PositiveSmallIntegerField(default=0)
    evaluation_failed_at = models.DateTimeField(null=True, blank=True)
    evaluation_error = models.TextField(blank=True)

    class Meta:
        ordering = ("created_at",)
        constraints = [
            models.UniqueConstraint(
                fields=("patient", "kind", "content_hash"), name="safetysubmission_once"
            ),
        ]
        indexes = [
            models.Index(
                fields=("created_at",),
                name="safetysubmission_unevaluated",
                condition=Q(evaluated_at__isnull=True, evaluation_failed_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} answers for {self.log_id}"


class MissedLogReminder(models.Model):
    """NR-LOG-01's patient step: one reminder per streak of days without a log.

    A streak is named by its first missed day, so the unique constraint makes a second
    run (or a second beat) find the row and send nothing; `sent_at` NULL is a reminder
    still owed, retried by the next run while the streak lasts.
    """

    id = models.BigAutoField(primary_key=True)
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="+")
    streak_from = models.DateField(help_text="The first day without a log (patient-local).")
    missed_days = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("patient", "streak_from")
        constraints = [
            models.UniqueConstraint(
                fields=("patient", "streak_from"), name="missedlogreminder_once_per_streak"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.patient_id} from {self.streak_from}"


# The rollup keeps this many of a patient's latest logs: enough for the current window
# (progress.CURRENT_DAYS days, at most one log a day) whenever no log is dated after the
# patient's local today.
ROLLUP_RECENT_LOGS = 7


class PatientLogRollup(models.Model):
    """Per patient, the log figures the caseload sorts and shows, so that a caseload of
    thousands reads one row per patient instead of searching each patient's logs.

    Written by the database, not by Django: a trigger on the daily log table keeps a
    patient's row (updated in place, or recomputed from their logs) in the same
    statement as any insert, delete or change of a log's patient, date or pain
    (rehab/migrations/0013_patientlogrollup.py and 0015_rollup_backfill_in_place.py,
    docs/architecture.md § Caseload rollup). A row exists exactly when the patient has a
    log. `manage.py rebuild_log_rollups` recomputes rows the trigger did not see (a load
    with triggers off, a restore).

    The current window is not stored: it moves with the patient's today. What is kept is
    what it is computed from, the ROLLUP_RECENT_LOGS latest logs (`recent_*`);
    rehab.selectors.logs reads the window from them, and from the logs themselves
    in the rare case they may not hold all of it (a log dated after the patient's today).
    """

    patient = models.OneToOneField(
        Patient, on_delete=models.CASCADE, primary_key=True, related_name="log_rollup"
    )
    first_log_date = models.DateField()
    last_log_date = models.DateField()
    latest_pain = models.PositiveSmallIntegerField()
    # The baseline window's logs (progress.BASELINE_DAYS days from the first log), all of
    # them: the MIN_LOGS test is the reader's, as for the current window.
    baseline_sum = models.PositiveIntegerField()
    baseline_n = models.PositiveSmallIntegerField()
    # The latest logs' dates, oldest first, and their running pain totals, one more than
    # the dates, from a base before the oldest (0 after a recomputation, more after
    # the trigger's appends: only differences are read). The logs dated in any span of
    # them are counted by two binary searches (PostgreSQL's width_bucket) and their
    # pains summed by two look-ups: no per-log work in the caseload's sort.
    recent_dates = ArrayField(models.DateField())
    recent_pain_sums = ArrayField(models.PositiveIntegerField())

    class Meta:
        # Nothing but the trigger and the rebuild write it; Django only reads it.
        default_permissions = ("view",)

    def __str__(self) -> str:
        return f"{self.patient_id} log rollup"
