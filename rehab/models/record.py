"""Clinical record: interventions, provocative tests, imaging, diagnoses, questionnaires, marks.

Everything here is written by clinicians (or, for questionnaire answers, by the patient)
through `rehab.services.record`, which audits every write; nothing is ever hard-deleted
through the API (an assessed mark is revoked, a diagnosis is ended).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from patients.models import Clinician, Patient
from rehab import scoring
from rehab.querysets import (
    AssessedMarkQuerySet,
    ClinicalRecordQuerySet,
    QuestionnaireDueQuerySet,
)


class Intervention(models.Model):
    """A procedure done to the patient (docs/clinical-record.md § Interventions).

    Read by the safety engine: a prolotherapy, injection or surgery dated within the 42 days
    before a log's date is a recent procedure for RF-INF-02; NR-POST-01 compares pain
    before and after it.
    """

    class Kind(models.TextChoices):
        PROLOTHERAPY = "prolotherapy", "Prolotherapy"
        INJECTION = "injection", "Injection"
        SURGERY = "surgery", "Surgery"
        OTHER = "other", "Other"

    class Side(models.TextChoices):
        LEFT = "left", "Left"
        RIGHT = "right", "Right"
        BILATERAL = "bilateral", "Bilateral"
        MIDLINE = "midline", "Midline"

    class Guidance(models.TextChoices):
        ULTRASOUND = "ultrasound", "Ultrasound"
        FLUOROSCOPY = "fluoroscopy", "Fluoroscopy"
        CT = "ct", "CT"
        LANDMARK = "landmark", "Landmark (no imaging)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="interventions")
    date = models.DateField()
    kind = models.CharField(max_length=12, choices=Kind.choices)
    description = models.TextField(blank=True, max_length=2000)
    agent = models.CharField(max_length=200, blank=True, help_text="e.g. dextrose 10% + lidocaine")
    target = models.CharField(max_length=200, blank=True, help_text="e.g. sacrospinous ligament")
    side = models.CharField(max_length=9, choices=Side.choices, blank=True)
    guidance = models.CharField(max_length=11, choices=Guidance.choices, blank=True)
    # Free text: procedures are often done by a doctor who has no account here.
    performed_by = models.CharField(max_length=200, blank=True)
    # A course (e.g. three prolotherapy sessions) is identified by its first session's id.
    course_id = models.UUIDField()
    session_number = models.PositiveSmallIntegerField(default=1)
    created_by = models.ForeignKey(
        Clinician, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    # RF-INF-02's re-check of the fevers logged since a procedure recorded after the fact
    # (`intervention_fever_recheck`): a procedure is owed one until `fever_rechecked_at` is
    # set, and a beat sweeper re-enqueues owed ones, so a lost message is never a lost
    # emergency. Bounded like a log's evaluation: given up on (and shown in /health/)
    # after too many attempts. Other kinds are never owed one (the sweeper's filter).
    fever_rechecked_at = models.DateTimeField(null=True, blank=True)
    fever_recheck_attempts = models.PositiveSmallIntegerField(default=0)
    fever_recheck_failed_at = models.DateTimeField(null=True, blank=True)

    objects = ClinicalRecordQuerySet.as_manager()

    class Meta:
        ordering = ("-date", "-created_at")
        constraints = [
            models.UniqueConstraint(
                fields=("course_id", "session_number"), name="intervention_unique_session"
            ),
            models.CheckConstraint(
                condition=Q(session_number__gte=1), name="intervention_session_from_1"
            ),
        ]
        indexes = [
            models.Index(fields=("patient", "date"), name="intervention_patient_date"),
            # The sweeper's question: which procedures are still owed a fever re-check?
            models.Index(
                fields=("created_at",),
                name="intervention_recheck_owed",
                condition=Q(fever_rechecked_at__isnull=True, fever_recheck_failed_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.date} {self.kind} {self.target}".strip()


# Kinds that count as a recent procedure for RF-INF-02 (docs/clinical-record.md).
PROCEDURE_KINDS: tuple[str, ...] = (
    Intervention.Kind.PROLOTHERAPY,
    Intervention.Kind.INJECTION,
    Intervention.Kind.SURGERY,
)
# RF-INF-02's window: a procedure dated within this many days before a log's date.
RECENT_PROCEDURE_DAYS = 42


class ProvocativeTest(models.Model):
    """One provocative test on one side at one examination (docs/clinical-record.md)."""

    class Test(models.TextChoices):
        FAIR = "fair", "FAIR (flexion, adduction, internal rotation)"
        PACE = "pace", "Pace"
        FREIBERG = "freiberg", "Freiberg"
        SEATED_PIRIFORMIS_STRETCH = "seated_piriformis_stretch", "Seated piriformis stretch"
        ACTIVE_PIRIFORMIS = "active_piriformis", "Active piriformis"
        SLR = "slr", "Straight leg raise"
        CROSSED_SLR = "crossed_slr", "Crossed straight leg raise"
        SLUMP = "slump", "Slump"
        FADIR = "fadir", "FADIR"
        SCIATIC_NOTCH_TENDERNESS = "sciatic_notch_tenderness", "Sciatic notch tenderness"
        OTHER = "other", "Other (see notes)"

    class Side(models.TextChoices):
        LEFT = "left", "Left"
        RIGHT = "right", "Right"

    class Result(models.TextChoices):
        POSITIVE = "positive", "Positive"
        NEGATIVE = "negative", "Negative"
        EQUIVOCAL = "equivocal", "Equivocal"
        NOT_TESTED = "not_tested", "Not tested"
        UNABLE = "unable", "Unable to perform"

    # Only a straight leg raise has an angle (§6: "optional angle_deg (SLR)").
    ANGLE_TESTS: tuple[str, ...] = (Test.SLR, Test.CROSSED_SLR)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="provocative_tests")
    test = models.CharField(max_length=32, choices=Test.choices)
    side = models.CharField(max_length=5, choices=Side.choices)
    result = models.CharField(max_length=10, choices=Result.choices)
    # Did it reproduce the patient's familiar pain? Null: not recorded or not applicable.
    concordant = models.BooleanField(null=True, blank=True)
    symptom_location = models.CharField(max_length=200, blank=True)
    provoked_pain = models.PositiveSmallIntegerField(null=True, blank=True)
    angle_deg = models.PositiveSmallIntegerField(null=True, blank=True)
    notes = models.TextField(blank=True, max_length=2000)
    examiner = models.ForeignKey(
        Clinician, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    performed_at = models.DateTimeField()
    created_by = models.ForeignKey(
        Clinician, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ClinicalRecordQuerySet.as_manager()

    class Meta:
        ordering = ("-performed_at", "test", "side")
        constraints = [
            models.UniqueConstraint(
                fields=("patient", "performed_at", "test", "side"),
                name="provocativetest_one_per_test_side",
            ),
            models.CheckConstraint(
                condition=Q(provoked_pain__isnull=True)
                | Q(provoked_pain__gte=0, provoked_pain__lte=10),
                name="provocativetest_provoked_pain_0_10",
            ),
            models.CheckConstraint(
                condition=Q(angle_deg__isnull=True)
                | Q(angle_deg__lte=120, test__in=("slr", "crossed_slr")),
                name="provocativetest_angle_slr_only",
            ),
        ]
        indexes = [
            models.Index(fields=("patient", "performed_at"), name="provtest_patient_performed")
        ]

    def __str__(self) -> str:
        return f"{self.performed_at:%Y-%m-%d} {self.test} {self.side}: {self.result}"


class ImagingFinding(models.Model):
    class Modality(models.TextChoices):
        RADIOGRAPH = "radiograph", "Radiograph"
        MRI = "mri", "MRI"
        ULTRASOUND = "ultrasound", "Ultrasound"
        CT = "ct", "CT"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="imaging_findings")
    modality = models.CharField(max_length=10, choices=Modality.choices)
    date = models.DateField()
    body_region = models.CharField(max_length=200)
    finding = models.TextField(max_length=4000)
    created_by = models.ForeignKey(
        Clinician, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ClinicalRecordQuerySet.as_manager()

    class Meta:
        ordering = ("-date", "-created_at")
        indexes = [models.Index(fields=("patient", "date"), name="imaging_patient_date")]

    def __str__(self) -> str:
        return f"{self.date} {self.modality} {self.body_region}"


class Diagnosis(models.Model):
    """A working diagnosis, held from one date until it is ended (or still current)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="diagnoses")
    name = models.CharField(max_length=200)
    date_from = models.DateField()
    date_to = models.DateField(null=True, blank=True)
    notes = models.TextField(blank=True, max_length=4000)
    created_by = models.ForeignKey(
        Clinician, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ClinicalRecordQuerySet.as_manager()

    class Meta:
        ordering = ("-date_from", "-created_at")
        verbose_name_plural = "diagnoses"
        constraints = [
            models.CheckConstraint(
                condition=Q(date_to__isnull=True) | Q(date_to__gte=models.F("date_from")),
                name="diagnosis_ends_after_it_starts",
            ),
        ]
        indexes = [models.Index(fields=("patient", "date_from"), name="diagnosis_patient_from")]

    def __str__(self) -> str:
        return f"{self.name} from {self.date_from}"


class AssessedMark(models.Model):
    """A clinician's "assessed and stable until" for one safety symptom (docs/clinical-record.md).

    Never deleted: revoking keeps the row (and an audit event) so that an alert's reasoning
    can be replayed later.
    """

    class Symptom(models.TextChoices):
        # The `safety` fields that have the `unchanged_assessed` value (docs/clinical-record.md).
        SADDLE_NUMBNESS = "saddle_numbness", "Saddle numbness"
        BLADDER_CHANGE = "bladder_change", "Bladder change"
        BOWEL_CHANGE = "bowel_change", "Bowel change"
        SEXUAL_FUNCTION_CHANGE = "sexual_function_change", "Sexual function change"
        BOTH_LEGS = "both_legs", "Symptoms in both legs"

    MAX_DAYS_AHEAD = 90

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="assessed_marks")
    symptom = models.CharField(max_length=24, choices=Symptom.choices)
    until = models.DateField(help_text="Last date (the patient's local date) the mark holds.")
    note = models.TextField(blank=True, max_length=2000)
    created_by = models.ForeignKey(
        Clinician, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        Clinician, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    objects = AssessedMarkQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            # A new mark for a symptom replaces the old one: never two in force at once.
            models.UniqueConstraint(
                fields=("patient", "symptom"),
                condition=Q(revoked_at__isnull=True),
                name="assessedmark_one_unrevoked_per_symptom",
            ),
        ]
        indexes = [models.Index(fields=("patient", "until"), name="assessedmark_patient_until")]

    def __str__(self) -> str:
        return f"{self.symptom} until {self.until}"


class Instrument(models.TextChoices):
    """Outcome questionnaires (docs/clinical-record.md); versions live in `rehab.scoring`."""

    PSFS = scoring.PSFS, "Patient-Specific Functional Scale"
    SBI = scoring.SBI, "Sciatica Bothersomeness Index"
    RMDQ = scoring.RMDQ, "Roland-Morris Disability Questionnaire"


class QuestionnaireResponse(models.Model):
    """A patient's answers to one instrument, scored on the server when submitted."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(
        Patient, on_delete=models.CASCADE, related_name="questionnaire_responses"
    )
    instrument = models.CharField(max_length=8, choices=Instrument.choices)
    # The item set we rendered and the scoring rules used: a score is only meaningful
    # together with both (rehab/scoring.py).
    instrument_version = models.CharField(max_length=20)
    scoring_version = models.CharField(max_length=20)
    answers = models.JSONField()
    score = models.DecimalField(max_digits=5, decimal_places=2)
    items_missing = models.PositiveSmallIntegerField(default=0)
    date = models.DateField(help_text="The patient's local date of submission.")
    submitted_at = models.DateTimeField(default=timezone.now)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )

    objects = ClinicalRecordQuerySet.as_manager()

    class Meta:
        ordering = ("-submitted_at",)
        indexes = [
            models.Index(
                fields=("patient", "instrument", "submitted_at"), name="response_patient_instr"
            )
        ]

    def __str__(self) -> str:
        return f"{self.instrument} {self.score} on {self.date}"


class QuestionnaireDue(models.Model):
    """One questionnaire the patient is asked to fill in within a window.

    Open from `due_from` until `expires_at`; completed when `response` is set; the expiry
    sweeper stamps `expired_at` on what was never answered, so the schedule's history shows
    what was missed.
    """

    class Reason(models.TextChoices):
        BASELINE = "baseline", "Baseline"
        PROGRAM_FORTNIGHTLY = "program_fortnightly", "Every 2 weeks of a program"
        PRE_INTERVENTION = "pre_intervention", "Before an intervention"
        POST_INTERVENTION_1W = "post_intervention_1w", "1 week after an intervention"
        POST_INTERVENTION_6W = "post_intervention_6w", "6 weeks after an intervention"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(
        Patient, on_delete=models.CASCADE, related_name="questionnaires_due"
    )
    instrument = models.CharField(max_length=8, choices=Instrument.choices)
    reason = models.CharField(max_length=24, choices=Reason.choices)
    intervention = models.ForeignKey(
        Intervention,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="questionnaires_due",
    )
    due_from = models.DateTimeField()
    expires_at = models.DateTimeField()
    # One response may complete several due items of its instrument whose windows overlap
    # (say a fortnightly one and a pre-intervention one): the patient answers once.
    response = models.ForeignKey(
        QuestionnaireResponse,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="dues",
    )
    expired_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = QuestionnaireDueQuerySet.as_manager()

    class Meta:
        ordering = ("due_from", "instrument")
        verbose_name = "questionnaire due"
        verbose_name_plural = "questionnaires due"
        constraints = [
            # Scheduling is idempotent: the same occasion twice is one row (so two
            # procedures on one day share their follow-ups, which one answer covers anyway).
            models.UniqueConstraint(
                fields=("patient", "instrument", "reason", "due_from"),
                name="questionnairedue_unique_occasion",
            ),
            models.UniqueConstraint(
                fields=("patient", "instrument"),
                condition=Q(reason="baseline"),
                name="questionnairedue_one_baseline",
            ),
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("due_from")),
                name="questionnairedue_window_not_empty",
            ),
            models.CheckConstraint(
                condition=Q(response__isnull=True) | Q(expired_at__isnull=True),
                name="questionnairedue_completed_or_expired",
            ),
        ]
        indexes = [
            # The sweeper's and the app's question: what is still waiting for an answer?
            models.Index(
                fields=("expires_at",),
                name="questionnairedue_waiting",
                condition=Q(response__isnull=True, expired_at__isnull=True),
            ),
            models.Index(fields=("patient", "due_from"), name="questionnairedue_patient"),
        ]

    def __str__(self) -> str:
        return f"{self.instrument} ({self.reason}) from {self.due_from:%Y-%m-%d}"

    def state(self, now: datetime | None = None) -> str:
        """`completed`, `expired`, `upcoming` or `open` at `now`."""
        now = now or timezone.now()
        if self.response_id is not None:
            return "completed"
        if self.expired_at is not None or self.expires_at <= now:
            return "expired"
        return "upcoming" if self.due_from > now else "open"
