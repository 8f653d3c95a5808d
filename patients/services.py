"""Writes of the patients app: sign-in and tokens, invitations and registration, the
patient's own details, clinicians.

One module, though over 500 lines: every write here is about one person's account (who
they are, how they sign in, how they were invited), and they share the sign-in throttle,
the invitation codes and the audit writer's names; two-factor sign-in and consent, each
one feature with one model, have modules of their own (two_factor.py, consent.py), and
the audit writer sits below all of them (audit.py).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Value
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext
from rest_framework.exceptions import AuthenticationFailed, Throttled

from config.audit import AuditContext
from config.db import insert_unless_conflict
from config.enqueue import publish_on_commit
from config.exceptions import ApplicationError
from patients import throttling, two_factor

# The audit writer lives below the services (patients/audit.py); imported here under its
# old names too, since every app's services reach it as `patients.services.audit_*`.
from patients.audit import audit_denied as audit_denied
from patients.audit import audit_event as audit_event
from patients.audit import audit_reads as audit_reads
from patients.audit import audit_record as audit_record
from patients.audit import audit_sign_in_failed as audit_sign_in_failed
from patients.consent import (
    consent_accept_at_registration,
    consent_owed_refresh,
    consent_registration_documents,
)
from patients.models import (
    HISTORY_FLAGS,
    AuditEvent,
    AuthToken,
    Clinic,
    Clinician,
    Invitation,
    Patient,
    User,
)
from patients.restriction import patient_ensure_writable

logger = logging.getLogger(__name__)

# The longest password any sign-in door reads. Hashing is the expensive step of a sign-in,
# so a multi-megabyte password must be refused before it (a 400 naming the field), and
# no password longer than this can be set (registration allows fewer still).
PASSWORD_MAX_LENGTH = 1024

# --------------------------------------------------------------------------- sign-in


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: datetime | None
    role: str


def _issue_token(*, user: User, device: str) -> IssuedToken:
    instance, token = AuthToken.objects.create(user=user, device=device.replace("\x00", "")[:200])
    role = user.role
    assert role is not None
    return IssuedToken(token=token, expires_at=instance.expiry, role=role)


def auth_login(
    *,
    email: str,
    password: str,
    ip: str | None,
    device: str = "",
    context: AuditContext | None = None,
    otp: str = "",
) -> IssuedToken:
    """Sign in with email and password, and `otp` (a TOTP or recovery code) when the user
    has two-factor sign-in set up; raises 401 on bad credentials or a missing or wrong
    code (`mfa_required`), 429 when throttled.

    Only failures count towards the throttle (docs/app-developers.md), per client address and
    per (email, address): never per email alone, so nobody can lock the account's owner out.
    A wrong second-factor code is one, as a wrong password is.
    """
    email = email.strip().lower()
    wait = throttling.sign_in_blocked(email=email, ip=ip)
    if wait is not None:
        audit_sign_in_failed(email=email, door="api", throttled=True, context=context)
        raise Throttled(wait=wait, detail="Too many failed sign-ins. Try again later.")
    user = authenticate(username=email, password=password)
    if user is None or not isinstance(user, User):
        throttling.sign_in_failed(email=email, ip=ip)
        audit_sign_in_failed(email=email, door="api", context=context)
        raise AuthenticationFailed("Email or password is incorrect.")
    if user.role is None:
        # Operators sign in to the admin with a session, not to the API.
        raise AuthenticationFailed("This account has no access to the API.")
    second = two_factor.login_second_factor(user=user, otp=otp, ip=ip)
    issued = _issue_token(user=user, device=device)
    user.last_login = timezone.now()
    user.save(update_fields=["last_login"])
    audit_record(
        actor=user,
        action=AuditEvent.Action.LOGIN,
        object_type="auth_token",
        changes={"second_factor": two_factor.device_kind(second)} if second else None,
        context=context,
    )
    return issued


def auth_logout(*, user: User, token: AuthToken, context: AuditContext | None = None) -> None:
    token.delete()
    audit_record(
        actor=user, action=AuditEvent.Action.LOGOUT, object_type="auth_token", context=context
    )


def auth_logout_all(*, user: User, context: AuditContext | None = None) -> int:
    deleted: int
    deleted, _ = AuthToken.objects.filter(user=user).delete()
    audit_record(
        actor=user,
        action=AuditEvent.Action.LOGOUT,
        object_type="auth_token",
        changes={"all_devices": True, "tokens": deleted},
        context=context,
    )
    return deleted


def auth_sign_out_everywhere(*, user: User, reason: str) -> int:
    """Delete every API token of the user, e.g. when their password changed
    (patients/passwords.py); audited when there was any. Returns how many."""
    deleted, _ = AuthToken.objects.filter(user=user).delete()
    if deleted:
        audit_record(
            actor=None,
            action=AuditEvent.Action.LOGOUT,
            object_type="auth_token",
            object_id=user.pk,
            changes={"all_devices": True, "tokens": deleted, "reason": reason},
        )
    return int(deleted)


def auth_token_revoke(*, user: User, token: AuthToken, context: AuditContext | None = None) -> None:
    """Sign one of the user's devices out (a lost phone): its token stops working."""
    public_id, device = token.public_id, token.device
    AuthToken.objects.filter(pk=token.pk, user=user).delete()
    audit_record(
        actor=user,
        action=AuditEvent.Action.LOGOUT,
        object_type="auth_token",
        object_id=public_id,
        changes={"device": device},
        context=context,
    )


# --------------------------------------------------------------------------- invitations

# No 0/O or 1/I/L: the code is read from an email and typed on a phone.
_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def _normalise_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def _hash_code(code: str) -> str:
    return hashlib.sha256(_normalise_code(code).encode()).hexdigest()


def _invitation_code(invitation_id: UUID | str, *, secret: str | bytes | None = None) -> str:
    """The code of an invitation: a keyed hash (the secret key) of its random id.

    Only the code's hash is stored, and the worker that emails it is handed the
    invitation's id alone, so the code appears in no row, no queue message and no log
    (docs/security.md § Secrets); the worker derives it again. 12 symbols of 31: ~59 bits.
    """
    digest = salted_hmac(
        "patients.invitation-code", str(invitation_id), secret=secret, algorithm="sha256"
    )
    number = int.from_bytes(digest.digest(), "big")
    symbols = []
    for _ in range(12):
        number, index = divmod(number, len(_CODE_ALPHABET))
        symbols.append(_CODE_ALPHABET[index])
    raw = "".join(symbols)
    return "-".join(raw[i : i + 4] for i in range(0, 12, 4))


@dataclass(frozen=True)
class IssuedInvitation:
    invitation: Invitation
    code: str


# The notifications app's task that emails an invitation (published by name: `patients`
# imports no other app).
INVITATION_SEND_TASK = "notifications.tasks.invitation_send_task"


@dataclass(frozen=True)
class InvitationMessage:
    """What an invitation's email says; `code` None when the address already has an
    account (then the email says how to go on, without a code)."""

    invitation: Invitation
    clinic: str
    first_name: str
    code: str | None
    # The patient's language ("" for English).
    language: str = ""


def invitation_message(*, invitation_id: UUID | str) -> InvitationMessage | None:
    """The email an invitation still owes, or None: already sent, or no longer usable (a
    newer code replaced it, it was used or it expired: its code would not work), or its
    code cannot be derived again (the secret key changed since: the clinician resends).
    The notifications app sends it and calls `invitation_sent` in the same transaction
    as its delivery record (docs/architecture.md, "Notifications")."""
    invitation = (
        Invitation.objects.select_related("patient__clinic")
        .filter(pk=invitation_id, last_sent_at__isnull=True)
        .first()
    )
    if invitation is None or not invitation.is_usable:
        return None
    # A key rotated since the invitation (the old one kept in SECRET_KEY_FALLBACKS).
    candidates = (
        _invitation_code(invitation.pk, secret=key)
        for key in [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
    )
    code = next(
        (c for c in candidates if secrets.compare_digest(_hash_code(c), invitation.code_hash)),
        None,
    )
    if code is None:
        logger.warning(
            "invitation %s not emailed: its code no longer derives from the secret key "
            "(rotated?); resend it",
            invitation.pk,
        )
        return None
    patient = invitation.patient
    # Registration makes a new account, which this address cannot have: no code, but
    # the way forward, told only to the address's owner (see `invitation_create`).
    registered = User.objects.filter(email__iexact=invitation.email).exists()
    return InvitationMessage(
        invitation=invitation,
        clinic=patient.clinic.name,
        first_name=patient.first_name,
        code=None if registered else code,
        language=patient.language,
    )


def invitation_sent(*, invitation_id: UUID | str) -> bool:
    """Stamp the invitation emailed, once; in the caller's transaction."""
    return bool(
        Invitation.objects.filter(pk=invitation_id, last_sent_at__isnull=True).update(
            last_sent_at=timezone.now()
        )
    )


def _issue_invitation(
    *,
    patient: Patient,
    created_by: Clinician | None,
    actor: User | None,
    context: AuditContext | None,
) -> IssuedInvitation:
    # A new invitation replaces any earlier one still usable: only the latest code works.
    patient.invitations.filter(used_at__isnull=True, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    invitation_id = uuid4()
    code = _invitation_code(invitation_id)
    invitation = Invitation.objects.create(
        id=invitation_id,
        patient=patient,
        code_hash=_hash_code(code),
        email=patient.email,
        created_by=created_by,
        expires_at=timezone.now() + timedelta(days=settings.INVITATION_TTL_DAYS),
    )
    audit_record(
        actor=actor,
        action=AuditEvent.Action.CREATE,
        object_type="invitation",
        object_id=invitation.pk,
        patient=patient,
        context=context,
    )
    # Emailed by a worker after commit: a rolled-back invitation sends no working-looking
    # code, and a slow or failing mail server never fails (or half-writes) the request.
    # The message carries the id only; the worker derives the code again. A lost message
    # leaves `last_sent_at` NULL, which the notifications sweep finds.
    publish_on_commit(INVITATION_SEND_TASK, str(invitation.pk))
    return IssuedInvitation(invitation=invitation, code=code)


def _invited_patient_save(*, clinic: Clinic, email: str, fields: Mapping[str, Any]) -> Patient:
    """Create or refresh the unregistered patient `email` of `clinic`, in a savepoint."""
    with transaction.atomic():
        patient: Patient | None = (
            Patient.objects.select_for_update().filter(clinic=clinic, email=email).first()
        )
        if patient is not None and patient.user_id is not None:
            raise ValidationError({"email": "This patient already has an account at this clinic."})
        if patient is not None:
            # A record kept after an erasure is not refreshed by a new invitation.
            patient_ensure_writable(patient_id=patient.pk)
        if patient is None:
            new = Patient(clinic=clinic, email=email, **fields)
            new.full_clean(validate_unique=False, validate_constraints=False)
            # Uniqueness is the database's to decide, atomically: a second invitation of
            # the same new email at the same instant (a double tap) inserts nothing and
            # refreshes the first one's record below, rather than failing an INSERT that
            # PostgreSQL would log with the patient's name and birth date in it.
            if insert_unless_conflict(new):
                return new
            patient = Patient.objects.select_for_update().get(clinic=clinic, email=email)
            if patient.user_id is not None:
                raise ValidationError(
                    {"email": "This patient already has an account at this clinic."}
                )
        for name, value in fields.items():
            setattr(patient, name, value)
        patient.full_clean(validate_unique=False, validate_constraints=False)
        patient.save()
        return patient


@transaction.atomic
def invitation_create(
    *,
    clinician: Clinician,
    email: str,
    first_name: str,
    last_name: str,
    date_of_birth: date,
    timezone_name: str,
    condition: str = "",
    affected_side: str = "",
    language: str = "",
    context: AuditContext | None = None,
) -> IssuedInvitation:
    """Invite a patient to the clinician's clinic, creating (or refreshing) their record."""
    email = email.strip().lower()
    # An email with an account elsewhere (a patient at another clinic, a clinician) is
    # invited like any other: refusing it would tell the clinician that the address has an
    # account somewhere. Its owner is told by email instead (`invitation_message`), and the
    # code cannot register a second account (`patient_register`). docs/security.md.
    fields = {
        "first_name": first_name,
        "last_name": last_name,
        "date_of_birth": date_of_birth,
        "timezone": timezone_name,
        "condition": condition,
        "affected_side": affected_side,
        "language": language,
    }
    patient = _invited_patient_save(clinic=clinician.clinic, email=email, fields=fields)
    patient.care_team.add(clinician)
    return _issue_invitation(
        patient=patient, created_by=clinician, actor=clinician.user, context=context
    )


@transaction.atomic
def invitation_resend(
    *,
    invitation: Invitation,
    by: Clinician | None = None,
    actor: User | None = None,
    context: AuditContext | None = None,
) -> IssuedInvitation:
    """Send a fresh code (only hashes are stored, so the old code cannot be re-sent)."""
    patient_ensure_writable(patient_id=invitation.patient_id)
    if invitation.patient.user_id is not None:
        raise ApplicationError("The patient has already registered.", code="already_registered")
    return _issue_invitation(
        patient=invitation.patient,
        created_by=by or invitation.created_by,
        actor=actor if actor is not None else (by.user if by is not None else None),
        context=context,
    )


@transaction.atomic
def invitation_revoke(
    *,
    invitation_ids: Iterable[UUID | str],
    actor: User | None,
    context: AuditContext | None = None,
) -> int:
    """Revoke the still-unused codes among `invitation_ids` (one audit event each); a code
    already used or revoked is left as it is. Returns how many were revoked. Refused,
    nothing revoked, if any of them is of a restricted record (docs/data-rights.md §
    Restriction)."""
    ids = list(invitation_ids)
    patient_ids = set(Invitation.objects.filter(pk__in=ids).values_list("patient_id", flat=True))
    for patient_id in sorted(patient_ids, key=str):  # one order: no two calls deadlock
        patient_ensure_writable(patient_id=patient_id)
    revoked = list(
        Invitation.objects.select_for_update()
        .filter(pk__in=ids, used_at__isnull=True, revoked_at__isnull=True)
        .values_list("pk", "patient_id")
    )
    Invitation.objects.filter(pk__in=[pk for pk, _ in revoked]).update(revoked_at=timezone.now())
    for pk, patient_id in revoked:
        audit_record(
            actor=actor,
            action=AuditEvent.Action.UPDATE,
            object_type="invitation",
            object_id=pk,
            patient_id=patient_id,
            changes={"revoked": True},
            context=context,
        )
    return len(revoked)


@transaction.atomic
def patient_register(
    *,
    code: str,
    email: str,
    password: str,
    consents: Iterable[Mapping[str, Any]] = (),
    device: str = "",
    context: AuditContext | None = None,
) -> IssuedToken:
    """Create the patient's sign-in from an invitation code; the code works once.

    `consents` are the clinic's documents the patient accepted (`{"kind", "version"}`),
    recorded with the account: every required one must be among them, each a current
    version (docs/data-rights.md § Consent at registration)."""
    email = email.strip().lower()
    invitation = (
        Invitation.objects.select_for_update()
        .select_related("patient")
        .filter(code_hash=_hash_code(code))
        .first()
    )
    if invitation is None or not invitation.is_usable:
        raise ValidationError({"code": gettext("This code is unknown, expired or already used.")})
    if invitation.email.lower() != email:
        raise ValidationError(
            {"email": gettext("This is not the email address the code was sent to.")}
        )
    patient = invitation.patient
    if patient.user_id is not None:
        raise ValidationError({"code": gettext("This code is unknown, expired or already used.")})
    if User.objects.filter(email=email).exists():
        # Worded as an unusable code: whoever holds the code (the inviting clinician too)
        # must not learn that this address has an account elsewhere (docs/security.md).
        raise ValidationError({"code": gettext("This code is unknown, expired or already used.")})
    # Checked once the code and email are known good: only an invited patient sees the
    # clinic's documents in the answer.
    accepted = consent_registration_documents(
        clinic_id=patient.clinic_id,
        accepted=[(str(c["kind"]), int(c["version"])) for c in consents],
    )
    user = User(email=email, first_name=patient.first_name, last_name=patient.last_name)
    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from exc
    user.set_password(password)
    # A concurrent registration of the same email (another clinic's invitation) inserts
    # nothing rather than failing an INSERT that PostgreSQL would log, email included.
    if not insert_unless_conflict(user):
        raise ValidationError({"code": gettext("This code is unknown, expired or already used.")})
    patient.user = user
    patient.save(update_fields=["user", "updated_at"])
    invitation.used_at = timezone.now()
    invitation.save(update_fields=["used_at"])
    audit_record(
        actor=user,
        action=AuditEvent.Action.CREATE,
        object_type="account",
        patient=patient,
        object_id=user.pk,
        context=context,
    )
    consent_accept_at_registration(patient=patient, documents=accepted, actor=user, context=context)
    # Read after the acceptances: nothing is owed unless a required version was published
    # meanwhile (its UPDATE of `consent_owed` waits for this transaction's row lock).
    consent_owed_refresh(patient=patient)
    return _issue_token(user=user, device=device)


# --------------------------------------------------------------------------- patients

PATIENT_EDITABLE = (
    "first_name",
    "last_name",
    "date_of_birth",
    "timezone",
    "condition",
    "affected_side",
    "language",
)


@transaction.atomic
def patient_update(
    *, patient: Patient, actor: User, data: Mapping[str, Any], context: AuditContext | None = None
) -> Patient:
    """Merge `data` into the patient: fields not sent keep their values, also in `history`."""
    patient_ensure_writable(patient_id=patient.pk, for_update=True)
    patient = Patient.objects.select_for_update().get(pk=patient.pk)
    changes: dict[str, Any] = {}
    for name in PATIENT_EDITABLE:
        if name in data and getattr(patient, name) != data[name]:
            changes[name] = {"from": str(getattr(patient, name)), "to": str(data[name])}
            setattr(patient, name, data[name])
    for flag, value in (data.get("history") or {}).items():
        if flag not in HISTORY_FLAGS:
            raise ValidationError({"history": f"Unknown history flag '{flag}'."})
        field = f"history_{flag}"
        if getattr(patient, field) != value:
            changes[f"history.{flag}"] = {"from": getattr(patient, field), "to": value}
            setattr(patient, field, value)
    patient.full_clean()
    patient.save()
    audit_record(
        actor=actor,
        action=AuditEvent.Action.UPDATE,
        object_type="patient",
        object_id=patient.pk,
        patient=patient,
        changes=changes,
        context=context,
    )
    return patient


# What a patient may change of their own record (GET/PATCH /api/v1/me/settings/).
PATIENT_SETTINGS = ("language",)


def patient_settings_update(
    *, patient: Patient, actor: User, data: Mapping[str, Any], context: AuditContext | None = None
) -> Patient:
    """The patient's own settings (their language); fields not sent keep their values."""
    with transaction.atomic():
        patient = Patient.objects.select_for_update().get(pk=patient.pk)
        changes: dict[str, Any] = {}
        for name in PATIENT_SETTINGS:
            if name in data and getattr(patient, name) != data[name]:
                changes[name] = {"from": getattr(patient, name), "to": data[name]}
                setattr(patient, name, data[name])
        if changes:
            patient.full_clean()
            patient.save(update_fields=[*changes])
        audit_record(
            actor=actor,
            action=AuditEvent.Action.UPDATE if changes else AuditEvent.Action.READ,
            object_type="patient_settings",
            object_id=patient.pk,
            patient=patient,
            changes=changes,
            context=context,
        )
    return patient


# --------------------------------------------------------------------------- operators


def _clinic_by_name(*, name: str) -> Clinic | None:
    # LOWER() on both sides, as in the constraint `clinic_unique_name_ci`: the database's
    # case folding, not Python's, decides what counts as the same name.
    return Clinic.objects.alias(lowered=Lower("name")).filter(lowered=Lower(Value(name))).first()


def _clinic_get_or_create(*, name: str) -> Clinic:
    clinic = _clinic_by_name(name=name)
    if clinic is not None:
        return clinic
    try:
        with transaction.atomic():  # a savepoint: the caller's transaction goes on
            return Clinic.objects.create(name=name)
    except IntegrityError:
        # A concurrent run created it (in any case) between our read and our insert; the
        # unique index made us wait for its commit, so it is visible now.
        clinic = _clinic_by_name(name=name)
        if clinic is None:
            raise
        return clinic


@transaction.atomic
def clinician_create_or_update(
    *,
    email: str,
    password: str,
    clinic_name: str,
    first_name: str = "",
    last_name: str = "",
    role: str = Clinician.Role.PHYSIOTHERAPIST,
) -> Clinician:
    """Operator bootstrap: create the clinic if needed and a clinician who can sign in.

    Idempotent for the same email: the password (and names, when given) are updated. The
    clinic is matched by name whatever its case, so "riverside physio" is not a second
    Riverside Physio. The password passes Django's validators, as a patient's must.
    """
    email = email.strip().lower()
    clinic = _clinic_get_or_create(name=clinic_name.strip())
    user = User.objects.filter(email=email).first()
    if user is None:
        user = User(email=email)
    elif hasattr(user, "patient"):
        raise ApplicationError(f"{email} belongs to a patient; use another email.")
    if first_name:
        user.first_name = first_name
    if last_name:
        user.last_name = last_name
    if len(password) > PASSWORD_MAX_LENGTH:
        # Longer than sign-in accepts: the clinician could never use it.
        raise ValidationError(
            {"password": f"This password is too long (at most {PASSWORD_MAX_LENGTH} characters)."}
        )
    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from exc
    user.set_password(password)
    user.save()
    clinician, created = Clinician.objects.get_or_create(
        user=user, defaults={"clinic": clinic, "role": role}
    )
    if not created and clinician.clinic_id != clinic.pk:
        raise ApplicationError(
            f"{email} is a clinician at {clinician.clinic.name}, not {clinic.name}."
        )
    return clinician


def auth_tokens_purge_expired() -> int:
    """Delete every expired API token; the beat runs it (sign-in no longer does it)."""
    deleted: int
    deleted, _ = AuthToken.objects.filter(expiry__lt=timezone.now()).delete()
    return deleted
