"""Two-factor sign-in for clinicians and operators: the reads and writes of their TOTP
devices and recovery codes (django-otp), and the second-factor check of every sign-in
door (the API, the dashboard, the admin). docs/security.md § Two-factor sign-in.

A module of its own rather than more of services.py: it is one feature with one model
family, and both doors (API and web pages) call it. Every function takes the user whose
devices it reads or changes and touches no one else's: there are no device ids in any
URL or form, so another clinician's devices cannot even be named.
"""

from __future__ import annotations

import re
from base64 import b32encode
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework import status
from rest_framework.exceptions import AuthenticationFailed, Throttled

from config.audit import AuditContext
from config.exceptions import ApplicationError
from patients import throttling
from patients.audit import audit_record
from patients.models import AuditEvent, Clinician, User

RECOVERY_CODE_COUNT = 10
TOTP_DEVICE_NAME = "Authenticator app"
RECOVERY_DEVICE_NAME = "Recovery codes"
# Longest code read: a recovery code is 8 characters, a TOTP code 6; spaces and dashes
# people type between groups are dropped first.
CODE_MAX_LENGTH = 64
MFA_REQUIRED_CODE = "mfa_required"


class MfaRequired(AuthenticationFailed):
    """401 `{"detail", "code": "mfa_required"}` (docs/app-developers.md, sign-in): the password was
    right, and a second factor is needed, or the one sent was wrong or used up.

    A DRF AuthenticationFailed, so that the answer carries `WWW-Authenticate` like every
    other 401; its code becomes the error body's `code` (docs/errors.md).
    """

    status_code = status.HTTP_401_UNAUTHORIZED

    def __init__(self, message: str = "Enter the code from your authenticator app.") -> None:
        super().__init__(detail=message, code=MFA_REQUIRED_CODE)


def normalise_code(code: str) -> str:
    """What was typed, without the spaces or dashes people add, lower case (recovery codes
    are lower-case base32; TOTP codes are digits)."""
    return re.sub(r"[\s-]", "", code).lower()


def _is_totp_code(code: str) -> bool:
    return len(code) == 6 and code.isascii() and code.isdigit()


# --------------------------------------------------------------------------- selectors


@dataclass(frozen=True)
class SecondFactorState:
    enrolled: bool  # a confirmed device: every sign-in asks for a code
    required: bool  # the clinic requires two-factor sign-in


def second_factor_state(*, user: User) -> SecondFactorState:
    """Enrolled, and required by the clinic: one query, as every dashboard page asks."""
    devices = [
        model.objects.filter(user_id=OuterRef("user_id"), confirmed=True)
        for model in (TOTPDevice, StaticDevice)
    ]
    row = (
        Clinician.objects.filter(user_id=user.pk)
        .annotate(has_totp=Exists(devices[0]), has_static=Exists(devices[1]))
        .values_list("clinic__two_factor_required", "has_totp", "has_static")
        .first()
    )
    if row is None:  # an operator: the admin decides (patients/admin_site.py)
        return SecondFactorState(enrolled=two_factor_enrolled(user=user), required=False)
    required, has_totp, has_static = row
    return SecondFactorState(enrolled=has_totp or has_static, required=required)


def two_factor_enrolled(*, user: User) -> bool:
    """Whether the user has a confirmed device (an authenticator app, or recovery codes
    only, as an operator given a code with `manage.py addstatictoken` has)."""
    # django-otp ships no types: its querysets are Any to mypy.
    return bool(
        TOTPDevice.objects.filter(user_id=user.pk, confirmed=True).exists()
        or StaticDevice.objects.filter(user_id=user.pk, confirmed=True).exists()
    )


def totp_device_get(*, user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user_id=user.pk, confirmed=True).first()


def recovery_codes_left(*, user: User) -> int:
    return int(StaticToken.objects.filter(device__user_id=user.pk, device__confirmed=True).count())


def totp_secret(device: TOTPDevice) -> str:
    """The key as an authenticator app takes it typed in: base32, in groups of four."""
    raw = b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(raw[i : i + 4] for i in range(0, len(raw), 4))


# --------------------------------------------------------------------------- sign-in


def two_factor_verify(*, user: User, code: str) -> Device | None:
    """The user's device that accepts `code`, or None; a recovery code is used up.

    The code's shape picks the device (6 digits: the app; otherwise: a recovery code), so
    a wrong code counts against that device's throttle only (django-otp doubles its wait
    after each failure), never against the other. The device row is locked while it is
    checked: two requests with one recovery code, or one TOTP code, cannot both pass.
    """
    code = normalise_code(code)[:CODE_MAX_LENGTH]
    if not code:
        return None
    model: Any = TOTPDevice if _is_totp_code(code) else StaticDevice
    with transaction.atomic():
        for device in model.objects.filter(user_id=user.pk, confirmed=True).select_for_update():
            if device.verify_token(code):
                return device
    return None


def second_factor_check(*, user: User, code: str, ip: str | None) -> Device:
    """A signed-in-by-password user's second factor, for the dashboard's second step.

    Under the sign-in limits of every door (patients/throttling.py): refused while the
    email or client is blocked, and a wrong code counts as a failed sign-in, as a wrong
    password does, so codes cannot be guessed faster than passwords.
    """
    wait = throttling.sign_in_blocked(email=user.email, ip=ip)
    if wait is not None:
        raise Throttled(wait=wait, detail="Too many failed sign-ins. Try again later.")
    device = two_factor_verify(user=user, code=code)
    if device is None:
        throttling.sign_in_failed(email=user.email, ip=ip)
        raise MfaRequired("That code is not right, or it has been used already.")
    return device


def login_second_factor(*, user: User, otp: str, ip: str | None) -> Device | None:
    """The API sign-in's second factor, once the password was right (docs/app-developers.md,
    login): nothing to check for a user with no device; otherwise a valid `otp`, or 401
    mfa_required. An `otp` that was sent and is wrong counts as a failed sign-in; none at
    all does not (it is how a client learns it must ask for a code)."""
    if not two_factor_enrolled(user=user):
        return None
    device = two_factor_verify(user=user, code=otp)
    if device is None:
        if normalise_code(otp):
            throttling.sign_in_failed(email=user.email, ip=ip)
        raise MfaRequired()
    return device


def device_kind(device: Device) -> str:
    """How the user signed in, for the audit trail: a recovery code's use is notable."""
    return "recovery_code" if isinstance(device, StaticDevice) else "totp"


# --------------------------------------------------------------------------- enrolment


def totp_enrolment_start(*, user: User) -> TOTPDevice:
    """The unconfirmed device whose secret the enrolment page shows, made on first visit
    and shown again until confirmed (a reload must not change the QR code being scanned).
    """
    if TOTPDevice.objects.filter(user_id=user.pk, confirmed=True).exists():
        raise ApplicationError("Two-factor sign-in is already set up.")
    device = TOTPDevice.objects.filter(user_id=user.pk, confirmed=False).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=TOTP_DEVICE_NAME, confirmed=False)
    return device


def totp_enrolment_confirm(
    *, user: User, code: str, context: AuditContext | None = None
) -> tuple[TOTPDevice, list[str]]:
    """Confirm the pending device with a first code from the app; returns it and a fresh
    set of recovery codes, shown once (only django-otp's table keeps them)."""
    with transaction.atomic():
        device = (
            TOTPDevice.objects.select_for_update()
            .filter(user_id=user.pk, confirmed=False)
            .order_by("pk")
            .first()
        )
        if device is None:
            raise ApplicationError("Start the set-up again: no pending authenticator app.")
        if not device.verify_token(normalise_code(code)[:CODE_MAX_LENGTH]):
            raise ApplicationError(
                "That code is not right. Check the time on your phone and try the next code."
            )
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        codes = _recovery_codes_replace(user=user)
        audit_record(
            actor=user,
            action=AuditEvent.Action.CREATE,
            object_type="two_factor",
            object_id=device.pk,
            changes={"device": "totp", "recovery_codes": len(codes)},
            context=context,
        )
    return device, codes


def _recovery_codes_replace(*, user: User) -> list[str]:
    # One device kept across regenerations: a session verified by a recovery code stays
    # verified (the session names the device), while the old codes all stop working.
    device, _ = StaticDevice.objects.get_or_create(
        user=user, name=RECOVERY_DEVICE_NAME, defaults={"confirmed": True}
    )
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


def recovery_codes_regenerate(*, user: User, context: AuditContext | None = None) -> list[str]:
    """New recovery codes for an enrolled user; every earlier one stops working."""
    with transaction.atomic():
        if not TOTPDevice.objects.filter(user_id=user.pk, confirmed=True).exists():
            raise ApplicationError("Set up two-factor sign-in first.")
        codes = _recovery_codes_replace(user=user)
        audit_record(
            actor=user,
            action=AuditEvent.Action.UPDATE,
            object_type="two_factor",
            changes={"recovery_codes": len(codes)},
            context=context,
        )
    return codes


def two_factor_disable(*, user: User, code: str, context: AuditContext | None = None) -> None:
    """Remove the user's app and recovery codes, given a current code (a session left open
    on a shared computer must not be enough). A clinic that requires two-factor sign-in
    sends them straight back to set it up again (a new phone)."""
    if two_factor_verify(user=user, code=code) is None:
        raise ApplicationError("That code is not right, or it has been used already.")
    with transaction.atomic():
        TOTPDevice.objects.filter(user_id=user.pk).delete()
        StaticDevice.objects.filter(user_id=user.pk).delete()
        audit_record(
            actor=user,
            action=AuditEvent.Action.DELETE,
            object_type="two_factor",
            context=context,
        )
