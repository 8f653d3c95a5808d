"""Rehab programs: the exercise library, program templates, and each patient's own copy.

A template is what a clinic prescribes in general; an assignment is what one patient was
prescribed. Assigning copies the template's phases and exercises into the assignment, so
that editing (or deleting) a template later never rewrites what a patient was told to do.
Dosage changes for one patient are new `DosageVersion` rows effective from a date, so the
dosage in force on any past day can always be answered.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from patients.models import Clinic, Clinician, Patient
from programs.querysets import (
    AssignedExerciseQuerySet,
    AssignedPhaseQuerySet,
    AssignmentQuerySet,
    CardAssignmentQuerySet,
    CardReadQuerySet,
    ExerciseLogQuerySet,
    ExerciseMediaQuerySet,
    LibraryQuerySet,
    ProposalQuerySet,
)

MAX_SETS = 20
MAX_REPS = 100
MAX_HOLD_SECONDS = 600
MAX_DURATION_MINUTES = 240
DEFAULT_PAIN_CEILING = 3


class Category(models.TextChoices):
    STRETCH = "stretch", "Stretch"
    NERVE_GLIDE = "nerve_glide", "Nerve glide"
    STRENGTH = "strength", "Strength"
    MOBILITY = "mobility", "Mobility"
    AEROBIC = "aerobic", "Aerobic"
    FUNCTIONAL = "functional", "Functional"


class BodyRegion(models.TextChoices):
    LUMBAR_SPINE = "lumbar_spine", "Lumbar spine"
    TRUNK = "trunk", "Trunk and core"
    HIP_GLUTEAL = "hip_gluteal", "Hip and gluteal"
    SCIATIC_NERVE = "sciatic_nerve", "Sciatic nerve pathway"
    LOWER_LIMB = "lower_limb", "Lower limb"
    WHOLE_BODY = "whole_body", "Whole body"


class Dosage(models.Model):
    """How much of an exercise: sets of reps, of holds, or of minutes, n sessions a week.

    A "session" is one day's dose of one exercise, so at most 7 a week: walking "2-3 times
    a day" is one daily session of 2-3 bouts (`sets`), which keeps "done today" a yes/no
    and adherence a count of days.
    """

    sets = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(MAX_SETS)]
    )
    reps = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(MAX_REPS)]
    )
    hold_seconds = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_HOLD_SECONDS)],
    )
    duration_minutes = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_DURATION_MINUTES)],
    )
    sessions_per_week = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(7)]
    )
    notes = models.CharField(max_length=500, blank=True)

    DOSAGE_FIELDS = (
        "sets",
        "reps",
        "hold_seconds",
        "duration_minutes",
        "sessions_per_week",
        "notes",
    )

    class Meta:
        abstract = True
        constraints = [
            # Exactly one unit: reps, a hold, or minutes.
            models.CheckConstraint(
                condition=(
                    Q(reps__isnull=False, hold_seconds__isnull=True, duration_minutes__isnull=True)
                    | Q(
                        reps__isnull=True, hold_seconds__isnull=False, duration_minutes__isnull=True
                    )
                    | Q(
                        reps__isnull=True, hold_seconds__isnull=True, duration_minutes__isnull=False
                    )
                ),
                name="%(app_label)s_%(class)s_one_unit",
            ),
            models.CheckConstraint(
                condition=Q(sessions_per_week__gte=1, sessions_per_week__lte=7),
                name="%(app_label)s_%(class)s_sessions_per_week",
            ),
            models.CheckConstraint(
                condition=Q(sets__gte=1, sets__lte=MAX_SETS), name="%(app_label)s_%(class)s_sets"
            ),
        ]

    def dosage_dict(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.DOSAGE_FIELDS}


class Exercise(Dosage):
    """A library entry. Global when `clinic` is null (seeded), else owned by one clinic.

    The dosage fields are the default a clinician starts from when prescribing it.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    clinic = models.ForeignKey(
        Clinic, on_delete=models.CASCADE, null=True, blank=True, related_name="exercises"
    )
    # A stable key for seeded rows, so the seeding migration can be re-run safely.
    slug = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=120)
    instructions = models.TextField()
    body_region = models.CharField(max_length=20, choices=BodyRegion.choices)
    category = models.CharField(max_length=20, choices=Category.choices)
    media_url = models.URLField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = LibraryQuerySet.as_manager()

    class Meta(Dosage.Meta):
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class ExerciseMedia(models.Model):
    """An image or a short video demonstrating a library exercise (docs/architecture.md §
    Exercise media).

    Scoped like the library: `clinic` null is shared media (seeded, or added by operators),
    seen by every clinic; otherwise only that clinic's staff and patients see it, whether
    the exercise is the clinic's own or a global one. The file is never replaced: a new
    version is a new row, so a link handed out always names the bytes it was signed for.
    """

    class Kind(models.TextChoices):
        IMAGE = "image", "Image"
        VIDEO = "video", "Video"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    exercise = models.ForeignKey(Exercise, on_delete=models.CASCADE, related_name="media")
    clinic = models.ForeignKey(
        Clinic, on_delete=models.CASCADE, null=True, blank=True, related_name="exercise_media"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    # Names in the "media" storage (settings.STORAGES), chosen by the server, never by the
    # uploader: `exercise-media/<exercise>/<media id>.<ext>`.
    file_name = models.CharField(max_length=300)
    content_type = models.CharField(max_length=100)
    size_bytes = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64, help_text="Of the stored bytes.")
    width = models.PositiveIntegerField(null=True, blank=True, help_text="Images and posters.")
    height = models.PositiveIntegerField(null=True, blank=True)
    # Videos only: the still shown before playing (always a re-encoded JPEG).
    poster_name = models.CharField(max_length=300, blank=True)
    alt_text = models.CharField(
        max_length=300, blank=True, help_text="What it shows, for screen readers."
    )
    position = models.PositiveSmallIntegerField(default=1, help_text="Order within the exercise.")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ExerciseMediaQuerySet.as_manager()

    class Meta:
        ordering = ("exercise", "position", "created_at")
        verbose_name_plural = "exercise media"
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["image", "video"]), name="exercisemedia_kind"
            ),
            models.CheckConstraint(
                condition=Q(kind="video") | Q(poster_name=""), name="exercisemedia_poster_video"
            ),
        ]
        indexes = [models.Index(fields=("exercise", "position"))]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.exercise_id}"


class ProgramTemplate(models.Model):
    """A phased program a clinic prescribes. Global when `clinic` is null (seeded)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    clinic = models.ForeignKey(
        Clinic, on_delete=models.CASCADE, null=True, blank=True, related_name="program_templates"
    )
    slug = models.SlugField(max_length=80, blank=True)
    name = models.CharField(max_length=200)
    condition = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    source = models.CharField(max_length=300, blank=True, help_text="Where the shape comes from.")
    # The progression ceiling a patient's copy starts with (ProgramAssignment.pain_ceiling).
    pain_ceiling = models.PositiveSmallIntegerField(
        default=DEFAULT_PAIN_CEILING,
        validators=[MaxValueValidator(10)],
        help_text="Highest pain during exercise (0-10) that still counts towards progression.",
    )
    created_by = models.ForeignKey(
        Clinician, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = LibraryQuerySet.as_manager()

    class Meta:
        ordering = ("name",)
        constraints = [
            models.UniqueConstraint(
                fields=("slug",),
                condition=Q(clinic__isnull=True) & ~Q(slug=""),
                name="programtemplate_unique_global_slug",
            ),
            models.UniqueConstraint(
                fields=("name",),
                condition=Q(clinic__isnull=True),
                name="programtemplate_unique_global_name",
            ),
            models.UniqueConstraint(
                fields=("clinic", "name"),
                condition=Q(clinic__isnull=False),
                name="programtemplate_unique_clinic_name",
            ),
            models.CheckConstraint(
                condition=Q(pain_ceiling__lte=10), name="programtemplate_pain_ceiling"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class TemplatePhase(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    template = models.ForeignKey(ProgramTemplate, on_delete=models.CASCADE, related_name="phases")
    position = models.PositiveSmallIntegerField(help_text="1 for the first phase.")
    name = models.CharField(max_length=120)
    goals = models.TextField(blank=True)
    length_weeks = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(52)]
    )

    class Meta:
        ordering = ("template", "position")
        constraints = [
            models.UniqueConstraint(
                fields=("template", "position"), name="templatephase_unique_position"
            ),
            models.CheckConstraint(
                condition=Q(length_weeks__gte=1, length_weeks__lte=52),
                name="templatephase_length_weeks",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.position}. {self.name}"


class PrescribedExercise(Dosage):
    """One exercise of a template phase, with its dosage."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    phase = models.ForeignKey(TemplatePhase, on_delete=models.CASCADE, related_name="exercises")
    exercise = models.ForeignKey(Exercise, on_delete=models.PROTECT, related_name="+")
    position = models.PositiveSmallIntegerField()

    class Meta(Dosage.Meta):
        ordering = ("phase", "position")
        constraints = [
            *Dosage.Meta.constraints,
            models.UniqueConstraint(
                fields=("phase", "position"), name="prescribedexercise_unique_position"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.exercise} in {self.phase}"


# --------------------------------------------------------------------------- per patient


class ProgramAssignment(models.Model):
    """A patient's own copy of a template, from `start_date` until `ended_on` (exclusive)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, related_name="program_assignments"
    )
    # Provenance only: the copy below is what counts.
    template = models.ForeignKey(
        ProgramTemplate, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    name = models.CharField(max_length=200)
    condition = models.CharField(max_length=200, blank=True)
    start_date = models.DateField()
    ended_on = models.DateField(
        null=True, blank=True, help_text="First day no longer on the program; empty if active."
    )
    pain_ceiling = models.PositiveSmallIntegerField(
        default=DEFAULT_PAIN_CEILING,
        validators=[MaxValueValidator(10)],
        help_text="Highest pain during exercise (0-10) that still counts towards progression.",
    )
    assigned_by = models.ForeignKey(
        Clinician, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = AssignmentQuerySet.as_manager()

    class Meta:
        ordering = ("-start_date", "-created_at")
        constraints = [
            # One active program per patient; a concurrent second assignment fails here.
            models.UniqueConstraint(
                fields=("patient",),
                condition=Q(ended_on__isnull=True),
                name="programassignment_one_active_per_patient",
            ),
            models.CheckConstraint(
                condition=Q(ended_on__isnull=True) | Q(ended_on__gte=models.F("start_date")),
                name="programassignment_ends_after_start",
            ),
            models.CheckConstraint(
                condition=Q(pain_ceiling__lte=10), name="programassignment_pain_ceiling"
            ),
        ]
        indexes = [models.Index(fields=("patient", "start_date"))]

    def __str__(self) -> str:
        return f"{self.name} for {self.patient}"

    @property
    def is_active(self) -> bool:
        return self.ended_on is None

    @property
    def status(self) -> str:
        return "active" if self.ended_on is None else "ended"


class AssignedPhase(models.Model):
    """A copied phase. `started_on` is set for the first phase at assignment, and for each
    later phase only when a clinician accepts a progression: phases never move by the
    calendar alone (`length_weeks` is the plan, not a timer)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    assignment = models.ForeignKey(
        ProgramAssignment, on_delete=models.CASCADE, related_name="phases"
    )
    position = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=120)
    goals = models.TextField(blank=True)
    length_weeks = models.PositiveSmallIntegerField()
    started_on = models.DateField(null=True, blank=True)

    objects = AssignedPhaseQuerySet.as_manager()

    class Meta:
        ordering = ("assignment", "position")
        constraints = [
            models.UniqueConstraint(
                fields=("assignment", "position"), name="assignedphase_unique_position"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.position}. {self.name}"


class AssignedExercise(models.Model):
    """A copied exercise of a patient's phase; its dosage lives in `DosageVersion` rows.

    Name and instructions are copied too: the library text may be reworded later, but the
    patient's record keeps what they were shown.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    phase = models.ForeignKey(AssignedPhase, on_delete=models.CASCADE, related_name="exercises")
    exercise = models.ForeignKey(Exercise, on_delete=models.PROTECT, related_name="+")
    position = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=120)
    instructions = models.TextField()
    body_region = models.CharField(max_length=20, choices=BodyRegion.choices)
    category = models.CharField(max_length=20, choices=Category.choices)
    media_url = models.URLField(blank=True)

    objects = AssignedExerciseQuerySet.as_manager()

    class Meta:
        ordering = ("phase", "position")
        constraints = [
            models.UniqueConstraint(
                fields=("phase", "position"), name="assignedexercise_unique_position"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class DosageVersion(Dosage):
    """The dosage of one patient's exercise from `effective_from` until the next version."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    assigned_exercise = models.ForeignKey(
        AssignedExercise, on_delete=models.CASCADE, related_name="dosage_versions"
    )
    effective_from = models.DateField()
    created_by = models.ForeignKey(
        Clinician, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(Dosage.Meta):
        ordering = ("assigned_exercise", "effective_from")
        constraints = [
            *Dosage.Meta.constraints,
            models.UniqueConstraint(
                fields=("assigned_exercise", "effective_from"),
                name="dosageversion_unique_effective_from",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.assigned_exercise} from {self.effective_from}"


class ExerciseLog(models.Model):
    """One session of one exercise, sent by the app. The id is the app's own UUID, so the
    primary key is what makes a retried upload harmless."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="exercise_logs")
    assigned_exercise = models.ForeignKey(
        AssignedExercise, on_delete=models.PROTECT, related_name="logs"
    )
    date = models.DateField()
    sets_done = models.PositiveSmallIntegerField()
    reps_done = models.PositiveSmallIntegerField(null=True, blank=True)
    hold_seconds_done = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_minutes_done = models.PositiveSmallIntegerField(null=True, blank=True)
    pain_during = models.PositiveSmallIntegerField(validators=[MaxValueValidator(10)])
    difficulty = models.PositiveSmallIntegerField(validators=[MaxValueValidator(10)])
    stopped_for_pain = models.BooleanField(default=False)
    notes = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ExerciseLogQuerySet.as_manager()

    class Meta:
        ordering = ("-date", "-created_at")
        constraints = [
            models.CheckConstraint(
                condition=Q(pain_during__lte=10), name="exerciselog_pain_during_0_10"
            ),
            models.CheckConstraint(
                condition=Q(difficulty__lte=10), name="exerciselog_difficulty_0_10"
            ),
        ]
        indexes = [
            models.Index(fields=("patient", "date")),
            models.Index(fields=("assigned_exercise", "date")),
        ]

    def __str__(self) -> str:
        return f"{self.assigned_exercise} on {self.date}"


class ProgressionProposal(models.Model):
    """A suggestion to move an assignment to its next phase. Nothing moves until a clinician
    accepts; `basis` keeps the inputs that made the rule fire, for review and audit."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        DECLINED = "declined", "Declined"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    assignment = models.ForeignKey(
        ProgramAssignment, on_delete=models.CASCADE, related_name="proposals"
    )
    from_phase = models.ForeignKey(AssignedPhase, on_delete=models.CASCADE, related_name="+")
    to_phase = models.ForeignKey(AssignedPhase, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    evaluated_on = models.DateField(help_text="The day the rule was evaluated for.")
    basis = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    effective_from = models.DateField(
        null=True, blank=True, help_text="When accepted: the first day of the next phase."
    )
    decided_by = models.ForeignKey(
        Clinician, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)

    objects = ProposalQuerySet.as_manager()

    class Meta:
        ordering = ("created_at",)
        constraints = [
            # Generation is idempotent: a second run (or a second worker) cannot add another.
            models.UniqueConstraint(
                fields=("assignment", "from_phase"),
                condition=Q(status="pending"),
                name="progressionproposal_one_pending_per_phase",
            ),
            models.UniqueConstraint(
                fields=("from_phase",),
                condition=Q(status="accepted"),
                name="progressionproposal_one_accepted_per_phase",
            ),
            models.CheckConstraint(
                condition=Q(status="pending", decided_at__isnull=True)
                | (~Q(status="pending") & Q(decided_at__isnull=False)),
                name="progressionproposal_decided_at_matches_status",
            ),
        ]
        indexes = [models.Index(fields=("status", "created_at"))]

    def __str__(self) -> str:
        return f"{self.assignment}: phase {self.from_phase.position} -> {self.to_phase.position}"


# --------------------------------------------------------------------------- education
# Short Markdown cards for patients (docs/clinical-record.md § Education cards). A card's
# text lives in versions, one series per language: an edit adds a version and never
# rewrites one, so a read receipt always names the exact words the patient read.


class Language(models.TextChoices):
    # The languages the product ships; a card may have versions in any of them.
    ENGLISH = "en", "English"
    SPANISH = "es", "Spanish"


CARD_BODY_MAX = 20_000


class EducationCard(models.Model):
    """A topic (e.g. "pacing and flare-ups"). Global when `clinic` is null (seeded)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    clinic = models.ForeignKey(
        Clinic, on_delete=models.CASCADE, null=True, blank=True, related_name="education_cards"
    )
    # A stable key for seeded cards, so seeding can be re-run safely.
    slug = models.SlugField(max_length=80, blank=True)
    condition = models.CharField(
        max_length=200, blank=True, help_text="The condition it is about; empty for any."
    )
    # Cards given with a program: a patient assigned a template gets the cards of its phases.
    template_phases = models.ManyToManyField(
        TemplatePhase, blank=True, related_name="education_cards"
    )
    created_by = models.ForeignKey(
        Clinician, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = LibraryQuerySet.as_manager()

    class Meta:
        ordering = ("slug", "created_at")
        constraints = [
            models.UniqueConstraint(
                fields=("slug",),
                condition=Q(clinic__isnull=True) & ~Q(slug=""),
                name="educationcard_unique_global_slug",
            ),
        ]

    def __str__(self) -> str:
        return self.slug or str(self.pk)


class EducationCardVersion(models.Model):
    """One language's text of a card as it stood from `created_at`; never edited."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    card = models.ForeignKey(EducationCard, on_delete=models.CASCADE, related_name="versions")
    language = models.CharField(max_length=8, choices=Language.choices)
    number = models.PositiveIntegerField(help_text="1 for the first version in this language.")
    title = models.CharField(max_length=200)
    body = models.TextField(help_text="Markdown; rendered to sanitised HTML for the app.")
    created_by = models.ForeignKey(
        Clinician, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("card", "language", "number")
        constraints = [
            models.UniqueConstraint(
                fields=("card", "language", "number"), name="educationcardversion_unique_number"
            ),
            models.CheckConstraint(
                condition=Q(language__in=["en", "es"]), name="educationcardversion_language"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.language} v{self.number})"


class CardAssignment(models.Model):
    """A card given to one patient: with a program (`program_phase` set) or by hand."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="card_assignments")
    card = models.ForeignKey(EducationCard, on_delete=models.PROTECT, related_name="+")
    program_phase = models.ForeignKey(
        AssignedPhase, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    assigned_by = models.ForeignKey(
        Clinician, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    assigned_at = models.DateTimeField(auto_now_add=True)

    objects = CardAssignmentQuerySet.as_manager()

    class Meta:
        ordering = ("assigned_at",)
        constraints = [
            # Giving a card twice (by hand and with a program, or a retried request) is
            # one assignment.
            models.UniqueConstraint(
                fields=("patient", "card"), name="cardassignment_unique_patient_card"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.card} for {self.patient}"


class CardRead(models.Model):
    """A read receipt: this patient marked this version read."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="card_reads")
    version = models.ForeignKey(EducationCardVersion, on_delete=models.PROTECT, related_name="+")
    read_at = models.DateTimeField(auto_now_add=True)

    objects = CardReadQuerySet.as_manager()

    class Meta:
        ordering = ("read_at",)
        constraints = [
            models.UniqueConstraint(
                fields=("patient", "version"), name="cardread_unique_patient_version"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.version} read by {self.patient}"
