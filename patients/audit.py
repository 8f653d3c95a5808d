"""The audit writer: every read and change of patient data, every sign-in and refusal,
appended to the audit trail (docs/security.md § Audit trail).

Its own module, below `patients.services`, because every service of every app writes
through it, `patients.two_factor` and `patients.consent` included, which the sign-in and
registration services call in turn: in `services` it closed a cycle. It takes the
request's facts as an `AuditContext` (config/audit.py), never the request.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any, Required, TypedDict, Unpack
from uuid import UUID

from django.db import connection
from django.utils import timezone

from config.audit import AuditContext
from config.db import column, table
from config.django_private import relation_cached
from patients.models import AuditEvent, Patient, User

# The audit trail records who did what to which record, never the patient's data: it is
# append-only (no UPDATE, even at erasure), so what it holds stays for good. Values of
# these keys in `changes` (at any depth) are replaced by REDACTED: names, birth date,
# email, free texts; the event still says which fields changed (docs/security.md § What
# the audit trail stores, docs/data-rights.md § Erasure and retention).
AUDIT_REDACTED_KEYS = frozenset(
    {"first_name", "last_name", "email", "date_of_birth", "note", "notes", "reason_text"}
)
REDACTED = "changed (value not recorded)"


def _redacted(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            key: REDACTED if key in AUDIT_REDACTED_KEYS else _redacted(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redacted(item) for item in value]
    return value


def _is_patient_account(user: User | None) -> bool:
    """Whether `user` signs in as a patient, without a query where the request's
    authentication already loaded the relations (tokens, dashboard sessions)."""
    if user is None or not user.is_authenticated:
        return False
    if relation_cached(user, "patient", model=User):
        return getattr(user, "patient", None) is not None
    if (
        relation_cached(user, "clinician", model=User)
        and getattr(user, "clinician", None) is not None
    ):
        return False
    if user.is_staff:
        return False  # operators' accounts (the admin's) are never a patient's
    return Patient.objects.filter(user_id=user.pk).exists()


def _network(ip: str | None) -> str | None:
    """A patient's address cut to its network (IPv4 /24, IPv6 /48): enough to tell a
    stolen token's use from elsewhere, not to single out a household."""
    if not ip:
        return ip
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None  # not an address: nothing of it is worth keeping
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


def _context_facts(context: AuditContext | None, *, patient_actor: bool = False) -> dict[str, Any]:
    if context is None:
        return {}
    return {
        "request_id": context.request_id,
        "method": context.method,
        "path": context.path,
        "ip": _network(context.ip) if patient_actor else context.ip,
        "user_agent": context.user_agent,
    }


def _actor_email(actor: User | None, *, patient_actor: bool) -> str:
    # A clinician's or an operator's sign-in names who acted, for good; a patient's
    # email is their data (their user id stays, and says it was them).
    if actor is None or patient_actor:
        return ""
    return getattr(actor, "email", "") or ""


class AuditFields(TypedDict, total=False):
    """What an audit event records: who did what to which object of which patient."""

    actor: Required[User | None]
    action: Required[str]
    object_type: Required[str]
    object_id: object
    patient: Patient | None
    patient_id: UUID | str | None
    changes: Mapping[str, Any] | None
    context: AuditContext | None


def audit_event(**fields: Unpack[AuditFields]) -> AuditEvent:
    """The audit event `audit_record` appends, not yet saved (for a caller that writes it
    in the same statement as what it records, `config.db.insert_together`)."""
    actor, patient = fields["actor"], fields.get("patient")
    patient_actor = _is_patient_account(actor)
    return AuditEvent(
        actor=actor if actor is not None and actor.is_authenticated else None,
        actor_email=_actor_email(actor, patient_actor=patient_actor),
        patient_id=patient.pk if patient is not None else fields.get("patient_id"),
        action=fields["action"],
        object_type=fields["object_type"],
        object_id=str(fields.get("object_id") or ""),
        changes=_redacted(dict(fields.get("changes") or {})),
        **_context_facts(fields.get("context"), patient_actor=patient_actor),
    )


def audit_record(**fields: Unpack[AuditFields]) -> AuditEvent:
    """Append one audit event. Every patient-data endpoint calls this (or `audit_reads`)."""
    event = audit_event(**fields)
    event.save(force_insert=True)
    return event


def audit_reads(
    *,
    actor: User,
    object_type: str,
    patient_ids: Iterable[UUID | str],
    context: AuditContext | None = None,
) -> None:
    """One read event per patient shown, written in a single INSERT (list pages).

    The events differ only in their patient: the statement takes the patients as one
    array and every other value once, in the order given, instead of a model instance per
    event (50 of them cost a caseload page ~3-7 ms of Python, BENCHMARKS.md § Caseload
    sort keys). The chain columns are the insert trigger's, as for any event."""
    ids = [str(pid) for pid in dict.fromkeys(patient_ids)]
    if not ids:
        return
    patient_actor = _is_patient_account(actor)
    facts = {
        "method": "",
        "path": "",
        "ip": None,
        "user_agent": "",
        "request_id": "",
        **_context_facts(context, patient_actor=patient_actor),
    }
    values = {
        "at": timezone.now(),
        "actor": actor.pk,
        "actor_email": _actor_email(actor, patient_actor=patient_actor),
        "action": str(AuditEvent.Action.READ),
        "object_type": object_type,
        "object_id": "",
        "changes": "{}",
        **facts,
    }
    names = [column(AuditEvent, name) for name in values]
    casts = {"changes": "::jsonb", "ip": "::inet"}
    scalars = ", ".join(f"%s{casts.get(name, '')}" for name in values)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table(AuditEvent)} ({', '.join(names)}, {column(AuditEvent, 'patient')})"  # noqa: S608 - the model's own names
            f" SELECT {scalars}, p.id FROM unnest(%s::uuid[]) WITH ORDINALITY AS p(id, n)"
            " ORDER BY p.n",
            [*values.values(), ids],
        )


def audit_sign_in_failed(
    *, email: str, door: str, throttled: bool = False, context: AuditContext | None = None
) -> AuditEvent:
    """Record a failed sign-in (a wrong password, or refused by the throttle).

    The email is recorded only when it names a clinician's or an operator's account:
    what was typed into the email field of a failed sign-in is sometimes a password, and
    a patient's email is their data (the account's id says whose it was).
    """
    account = User.objects.filter(email=email.strip().lower()).only("pk", "email").first()
    patient_id = (
        Patient.objects.filter(user=account).values_list("pk", flat=True).first()
        if account is not None
        else None
    )
    event = audit_event(
        actor=None,
        action=AuditEvent.Action.LOGIN_FAILED,
        object_type="sign_in",
        object_id=account.pk if account is not None else "",
        patient_id=patient_id,
        changes={"door": door, "throttled": throttled, "known_account": account is not None},
        context=context,
    )
    event.actor_email = account.email if account is not None and patient_id is None else ""
    if patient_id is not None:
        # As for the patient's own requests: whoever typed, the address is cut to its
        # network (the sign-in throttle keeps full addresses, briefly, in its own table).
        event.ip = _network(event.ip)
    event.save(force_insert=True)
    return event


def audit_denied(
    *,
    actor: User,
    view: str,
    status: int,
    object_id: str = "",
    patient_id: str | None = None,
    context: AuditContext | None = None,
) -> AuditEvent:
    """Record a request for patient data refused with 403 or 404 (out of the caller's
    scope, or no such object: the answer does not say which, the trail does not either)."""
    if patient_id is not None and not Patient.objects.filter(pk=patient_id).exists():
        patient_id = None
    return audit_record(
        actor=actor,
        action=AuditEvent.Action.DENIED,
        object_type=view[:64],
        object_id=object_id[:64],
        patient_id=patient_id,
        changes={"status": status},
        context=context,
    )
