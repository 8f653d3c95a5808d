"""Push devices: registering, listing, deleting, and forgetting dead addresses
(docs/app-developers.md, "Push notifications"; docs/architecture.md, "Notifications")."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.http import Http404

from config.audit import AuditContext
from notifications.channels.httputil import host_allowed
from notifications.models import Device
from notifications.querysets import DeviceQuerySet
from patients.models import AuditEvent, AuthToken, User, validate_timezone
from patients.services import audit_record

OBJECT_TYPE = "push_device"

# APNs device tokens are hex (32 bytes today; Apple says not to rely on the length).
_APNS_TOKEN = re.compile(r"^[0-9a-fA-F]{64,200}$")
# FCM registration tokens: URL-safe characters and a colon, about 160 today.
_FCM_TOKEN = re.compile(r"^[A-Za-z0-9_:.\-]{20,1024}$")
# BCP 47, loosely: "en", "es-419", "pt_BR", "zh-Hant-TW".
_LOCALE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8}){0,3}$")
_PRINTABLE = re.compile(r"^[\x20-\x7e]*$")


@dataclass(frozen=True)
class SignIn:
    """Which sign-in a device registers from: the app's API token or a dashboard session.
    The device is deleted with it."""

    auth_token: AuthToken | None = None
    session_key: str | None = None


@dataclass(frozen=True)
class Registration:
    platform: str
    token: str
    p256dh: str = ""
    auth: str = ""
    app_version: str = ""
    locale: str = ""
    time_zone: str = ""


def _b64url(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _validate(reg: Registration) -> None:
    """Field errors of a registration, all at once, as the API shows them."""
    errors: dict[str, str] = {}
    token_field = "token"  # noqa: S105 - a field name, not a secret
    if reg.platform == Device.Platform.IOS and not _APNS_TOKEN.match(reg.token):
        errors[token_field] = "Not an APNs device token (hexadecimal)."
    elif reg.platform == Device.Platform.ANDROID and not _FCM_TOKEN.match(reg.token):
        errors[token_field] = "Not an FCM registration token."
    elif reg.platform == Device.Platform.WEB:
        # The server will POST to this URL: only the push services' own hosts, over
        # https, so that a registration cannot point the server at anything else
        # (docs/security.md, "Web Push endpoints").
        if len(reg.token) > 1024 or not host_allowed(reg.token, settings.WEBPUSH_ALLOWED_HOSTS):
            errors["subscription"] = "The endpoint is not the https URL of a known push service."
        try:
            key = _b64url(reg.p256dh)
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), key)
            if len(key) != 65:
                raise ValueError
        except (ValueError, binascii.Error):
            errors.setdefault("subscription", "keys.p256dh is not a P-256 public key (base64url).")
        try:
            if len(_b64url(reg.auth)) != 16:
                raise ValueError
        except (ValueError, binascii.Error):
            errors.setdefault("subscription", "keys.auth is not a 16-byte secret (base64url).")
    if reg.locale and not _LOCALE.match(reg.locale):
        errors["locale"] = "Not a language tag (e.g. en-GB)."
    if reg.app_version and not _PRINTABLE.match(reg.app_version):
        errors["app_version"] = "Printable characters only."
    if reg.time_zone:
        try:
            validate_timezone(reg.time_zone)
        except ValidationError as exc:
            errors["time_zone"] = exc.messages[0]
    if errors:
        raise ValidationError({field: [message] for field, message in errors.items()})


def _lock_token(platform: str, token: str) -> None:
    """Serialise every write of one token (until commit), so that the two unique
    constraints (per token, per sign-in) are settled in order instead of by a failed
    INSERT: a unique violation would put the statement into the database server's log."""
    key = int.from_bytes(hashlib.sha256(f"{platform}\0{token}".encode()).digest()[:8], "big")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key - (1 << 63)])


def _patient_id(user: User) -> UUID | None:
    patient = getattr(user, "patient", None)
    return patient.pk if patient is not None else None


def device_register(
    *, user: User, sign_in: SignIn, registration: Registration, context: AuditContext | None = None
) -> tuple[Device, bool]:
    """Register the push address of the device signed in with `sign_in`; returns the
    device and whether it is new. Registering again (a refreshed token, the same token
    after a reinstall, the same token from another sign-in on a phone handed on) replaces
    the earlier row instead of failing: a token reaches one sign-in, a sign-in has one
    token."""
    _validate(registration)
    if sign_in.auth_token is not None:
        credential: dict[str, object] = {"auth_token": sign_in.auth_token}
        conflict_field = "auth_token"
    else:
        assert sign_in.session_key
        credential = {"session_id": sign_in.session_key}
        conflict_field = "session"
    device = Device(user=user, **credential, **registration.__dict__)
    with transaction.atomic():
        _lock_token(registration.platform, registration.token)
        # The same token under another sign-in: that sign-in's phone is this one now.
        taken = list(
            Device.objects.filter(platform=registration.platform, token=registration.token)
            .exclude(**credential)
            .values_list("id", "user_id")
        )
        if taken:
            Device.objects.filter(id__in=[device_id for device_id, _ in taken]).delete()
            for device_id, owner_id in taken:
                audit_record(
                    actor=user,
                    action=AuditEvent.Action.DELETE,
                    object_type=OBJECT_TYPE,
                    object_id=device_id,
                    changes={"reason": "token registered by another sign-in", "user": owner_id},
                    context=context,
                )
        existed = Device.objects.filter(**credential).exists()
        # INSERT ... ON CONFLICT (sign-in) DO UPDATE: the row of this sign-in, new or
        # replaced, without an error for PostgreSQL to log.
        Device.objects.bulk_create(
            [device],
            update_conflicts=True,
            unique_fields=[conflict_field],
            update_fields=[
                "user",
                "platform",
                "token",
                "p256dh",
                "auth",
                "app_version",
                "locale",
                "time_zone",
                "updated_at",
            ],
        )
        # The row's own id (an update keeps the first registration's).
        device = Device.objects.get(**credential)
        audit_record(
            actor=user,
            action=AuditEvent.Action.UPDATE if existed else AuditEvent.Action.CREATE,
            object_type=OBJECT_TYPE,
            object_id=device.pk,
            patient_id=_patient_id(user),
            changes={
                "platform": registration.platform,
                "app_version": registration.app_version,
                "locale": registration.locale,
                "time_zone": registration.time_zone,
            },
            context=context,
        )
    return device, not existed


def device_list(*, user: User | AnonymousUser) -> DeviceQuerySet:
    return Device.objects.visible_to(user).order_by("-updated_at", "id")


def device_get(*, user: User | AnonymousUser, device_id: UUID) -> Device:
    device: Device | None = Device.objects.visible_to(user).filter(pk=device_id).first()
    if device is None:
        raise Http404
    return device


def device_delete(*, user: User, device: Device, context: AuditContext | None = None) -> None:
    """The user turns push off on one of their devices (or removes a lost one)."""
    with transaction.atomic():
        Device.objects.filter(pk=device.pk, user=user).delete()
        audit_record(
            actor=user,
            action=AuditEvent.Action.DELETE,
            object_type=OBJECT_TYPE,
            object_id=device.pk,
            patient_id=_patient_id(user),
            changes={"platform": device.platform},
            context=context,
        )


def _token_of(channel: str, address: str) -> tuple[str, str] | None:
    """The (platform, token) a channel's address names, None if it names none."""
    platform = {channel_name: platform for platform, channel_name in Device.CHANNELS.items()}.get(
        channel
    )
    if platform is None:
        return None
    if platform == Device.Platform.WEB:
        try:
            endpoint = json.loads(address)["endpoint"]
        except (ValueError, KeyError, TypeError):
            return None
        return (platform, endpoint) if isinstance(endpoint, str) else None
    return platform, address


def device_forget_dead(*, channel: str, address: str, detail: str = "") -> int:
    """Drop the device at `address` after its provider said it is gone for good
    (`Outcome.DEAD_ADDRESS`: FCM UNREGISTERED, APNs 410, Web Push 404/410). The delivery
    machinery calls it; returns how many devices were deleted (0 when it was already
    gone, e.g. after a sign-out)."""
    key = _token_of(channel, address)
    if key is None:
        return 0
    platform, token = key
    with transaction.atomic():
        gone = list(
            Device.objects.filter(platform=platform, token=token).values_list(
                "id", "user_id", "user__patient__id"
            )
        )
        Device.objects.filter(id__in=[device_id for device_id, _, _ in gone]).delete()
        for device_id, _user_id, patient_id in gone:
            audit_record(
                actor=None,
                action=AuditEvent.Action.DELETE,
                object_type=OBJECT_TYPE,
                object_id=device_id,
                patient_id=patient_id,
                # The provider's status and reason only: never the token itself.
                changes={"reason": "dead address", "channel": channel, "detail": detail[:200]},
            )
    return len(gone)
