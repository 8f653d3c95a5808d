from __future__ import annotations

import functools
import uuid
import zoneinfo
from datetime import date, datetime
from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from knox.models import AbstractAuthToken

# Registered as this app's models by being imported here (and re-exported).
from patients.consent_models import ConsentDecision, ConsentDocument, ConsentKind  # noqa: F401
from patients.querysets import (
    AuditEventQuerySet,
    ClinicianQuerySet,
    InvitationQuerySet,
    PatientQuerySet,
)

HISTORY_FLAGS: tuple[str, ...] = (
    "cancer",
    "immunosuppressed",
    "iv_drug_use",
    "osteoporosis",
    "long_term_steroids",
    "previous_spine_surgery",
)


@functools.cache
def _known_timezones() -> frozenset[str]:
    # Scanning the tz database takes ~150 ms; it does not change while the process runs.
    return frozenset(zoneinfo.available_timezones())


def validate_timezone(value: str) -> None:
    if value not in _known_timezones():
        raise ValidationError(f"'{value}' is not a known IANA time zone (e.g. Europe/London).")


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create(self, email: str, password: str | None, **extra: Any) -> User:
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self._create(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):  # type: ignore[django-manager-missing]
    """A person who signs in: a patient, a clinician or an operator. Keyed by email."""

    email = models.EmailField(unique=True)
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)

    objects: ClassVar[UserManager] = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    def __str__(self) -> str:
        return self.email

    def get_full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip() or self.email

    def get_short_name(self) -> str:
        return self.first_name or self.email

    @property
    def role(self) -> str | None:
        """`"clinician"`, `"patient"` or None (an operator without a clinical role)."""
        if hasattr(self, "clinician"):
            return "clinician"
        if hasattr(self, "patient"):
            return "patient"
        return None


class AuthToken(AbstractAuthToken):
    """A hashed, expiring API token (django-rest-knox), one per signed-in device."""

    device: models.CharField[str, str] = models.CharField(max_length=200, blank=True)
    # What the devices endpoints call it: the primary key is the token's digest, which is
    # no business of a client's (nor of a log line's).
    public_id: models.UUIDField[uuid.UUID, uuid.UUID] = models.UUIDField(
        default=uuid.uuid4, unique=True, editable=False
    )

    class Meta:
        verbose_name = "API token"


def two_factor_required_default() -> bool:
    """A new clinic's "two-factor required": MFA_REQUIRED_DEFAULT, on in production."""
    return bool(settings.MFA_REQUIRED_DEFAULT)


class Clinic(models.Model):
    """The tenant: every patient and clinician belongs to exactly one clinic."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    escalation_email = models.EmailField(
        blank=True, help_text="Who is told when an emergency or urgent alert waits too long."
    )
    two_factor_required = models.BooleanField(
        "two-factor sign-in required",
        default=two_factor_required_default,
        help_text=(
            "Clinicians of this clinic must set up two-factor sign-in before they can use "
            "the dashboard."
        ),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("name",)
        constraints = [
            # "Riverside Physio" and "riverside physio" are one clinic (create_clinician
            # matches names so): the database decides it, also between concurrent runs.
            # It replaces the case-sensitive unique=True, which it implies.
            models.UniqueConstraint(
                Lower("name"),
                name="clinic_unique_name_ci",
                violation_error_message="A clinic with this name exists (whatever its case).",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Clinician(models.Model):
    class Role(models.TextChoices):
        PHYSIOTHERAPIST = "physiotherapist", "Physiotherapist"
        CLINIC_ADMIN = "clinic_admin", "Clinic admin"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="clinician")
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="clinicians")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.PHYSIOTHERAPIST)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ClinicianQuerySet.as_manager()

    class Meta:
        ordering = ("user__last_name", "user__first_name")

    def __str__(self) -> str:
        return f"{self.user.get_full_name()} ({self.clinic})"


class Patient(models.Model):
    class Side(models.TextChoices):
        LEFT = "left", "Left"
        RIGHT = "right", "Right"
        BOTH = "both", "Both"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Null until the patient accepts the invitation and creates their sign-in.
    user = models.OneToOneField(
        User, on_delete=models.PROTECT, related_name="patient", null=True, blank=True
    )
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="patients")
    care_team = models.ManyToManyField(Clinician, related_name="patients", blank=True)
    email = models.EmailField()
    first_name = models.CharField(max_length=150)
    last_name = models.CharField(max_length=150)
    date_of_birth = models.DateField()
    timezone = models.CharField(max_length=64, validators=[validate_timezone])
    condition = models.CharField(max_length=200, blank=True)
    affected_side = models.CharField(max_length=5, choices=Side.choices, blank=True)
    # What the patient reads the app and their emails in (docs/app-developers.md §
    # Languages); blank: their phone's Accept-Language, else English.
    language = models.CharField(
        max_length=8, choices=settings.LANGUAGES, blank=True, default="", db_default=""
    )

    # Clinician-confirmed history read by the safety rules (docs/clinical-record.md).
    # Columns rather than JSON so that set-based rule jobs can filter on them in SQL.
    history_cancer = models.BooleanField(default=False)
    history_immunosuppressed = models.BooleanField(default=False)
    history_iv_drug_use = models.BooleanField(default=False)
    history_osteoporosis = models.BooleanField(default=False)
    history_long_term_steroids = models.BooleanField(default=False)
    history_previous_spine_surgery = models.BooleanField(default=False)

    # True while the patient owes an acceptance of a required consent document of their
    # clinic: every patient endpoint answers 403 `consent_required` until it is given. A
    # column, kept by the consent services, because the token look-up loads this row
    # anyway: the gate costs the log write no query (docs/data-rights.md).
    consent_owed = models.BooleanField(default=False)

    # Set when the patient's account is closed by an approved erasure (the records kept
    # under the clinic's retention hold, or pseudonymised): the record is only stored
    # from then on. Lists, reminders and scheduled work leave it out
    # (`PatientQuerySet.active`); a clinician still opens it by id (docs/data-rights.md).
    restricted_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PatientQuerySet.as_manager()

    class Meta:
        ordering = ("last_name", "first_name")
        constraints = [
            # One patient record per email within a clinic; a re-invite reuses it.
            models.UniqueConstraint(fields=("clinic", "email"), name="patient_unique_email"),
        ]
        indexes = [models.Index(fields=("clinic", "last_name", "first_name"))]

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def is_restricted(self) -> bool:
        return self.restricted_at is not None

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    @property
    def history(self) -> dict[str, bool]:
        return {flag: bool(getattr(self, f"history_{flag}")) for flag in HISTORY_FLAGS}

    def local_today(self, now: datetime | None = None) -> date:
        """The patient's own calendar date: what "today" means for their logs."""
        return (now or timezone.now()).astimezone(self.tz).date()

    def age_on(self, day: date) -> int:
        born = self.date_of_birth
        return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


class Invitation(models.Model):
    """A one-time code that lets an invited patient create their sign-in."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="invitations")
    # Only a hash is stored: a database leak must not hand out working codes.
    code_hash = models.CharField(max_length=64, unique=True)
    email = models.EmailField()
    created_by = models.ForeignKey(
        Clinician, on_delete=models.SET_NULL, null=True, related_name="invitations_sent"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"Invitation for {self.email}"

    @property
    def is_usable(self) -> bool:
        return self.used_at is None and self.revoked_at is None and self.expires_at > timezone.now()


class SignInFailure(models.Model):
    """One failed sign-in, for the login throttle (counted per client address, and per
    email from that address)."""

    email = models.CharField(max_length=254)
    ip = models.GenericIPAddressField(null=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=("email", "at")),
            models.Index(fields=("ip", "at")),
        ]

    def __str__(self) -> str:
        return f"{self.email} from {self.ip} at {self.at:%Y-%m-%d %H:%M}"


class AuditEvent(models.Model):
    """Append-only record of who read or changed which patient's data, when and from where.

    The table refuses UPDATE and DELETE at the database level (see the migration), and
    the application's database role holds neither privilege nor owns the table, so not even
    a bug or an admin can rewrite history; a hash chain makes tampering by a database
    superuser detectable (docs/security.md § Database roles and audit trail).
    """

    class Action(models.TextChoices):
        READ = "read", "Read"
        CREATE = "create", "Create"
        UPDATE = "update", "Update"
        DELETE = "delete", "Delete"
        LOGIN = "login", "Sign-in"
        LOGOUT = "logout", "Sign-out"
        # A wrong password or a throttled attempt, at any door (API, dashboard, admin).
        LOGIN_FAILED = "login_fail", "Failed sign-in"
        # A request for a patient's data that was answered 403 or 404 (out of scope).
        DENIED = "denied", "Denied"

    id = models.BigAutoField(primary_key=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        User, on_delete=models.DO_NOTHING, null=True, related_name="+", db_constraint=False
    )
    actor_email = models.CharField(max_length=254, blank=True)
    # Indexed by (patient, at) below, which serves look-ups by patient alone too.
    patient = models.ForeignKey(
        Patient,
        on_delete=models.DO_NOTHING,
        null=True,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    action = models.CharField(max_length=10, choices=Action.choices)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    method = models.CharField(max_length=10, blank=True)
    path = models.CharField(max_length=500, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    # The request's id (config/audit.py), also in its X-Request-ID response header.
    request_id = models.CharField(max_length=64, blank=True, default="", db_default="")
    # The hash chains, filled by the database's insert trigger whatever the INSERT says:
    # the event's chain (one of CHAINS, by connection), its position there and
    # sha256(previous hash || this event's content), so that an edited, deleted or
    # reordered event shows (`manage.py verify_audit`, docs/security.md).
    CHAINS = 16
    chain_key = models.SmallIntegerField(null=True, editable=False)
    chain_seq = models.BigIntegerField(null=True, editable=False)
    # NULL, not "": an event the chain never saw (the trigger disabled) is told apart.
    chain_hash = models.CharField(  # noqa: DJ001
        max_length=64, blank=True, null=True, editable=False
    )

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ("-at", "-id")
        indexes = [models.Index(fields=("patient", "at"))]
        constraints = [
            # Also the index the insert trigger reads its chain's last event from.
            models.UniqueConstraint(
                fields=("chain_key", "chain_seq"), name="auditevent_chain_position"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_email} {self.action} {self.object_type}"
