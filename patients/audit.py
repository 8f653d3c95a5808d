"""The audit writer: every read and change of patient data, every sign-in and refusal,
appended to the audit trail (docs/security.md § Audit trail).

Its own module, below `patients.services`, because every service of every app writes
through it, `patients.two_factor` and `patients.consent` included, which the sign-in and
registration services call in turn: in `services` it closed a cycle. It takes the
request's facts as an `AuditContext` (config/audit.py), never the request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Required, TypedDict, Unpack
from uuid import UUID

from config.audit import AuditContext
from patients.models import AuditEvent, Patient, User


def _context_facts(context: AuditContext | None) -> dict[str, Any]:
    if context is None:
        return {}
    return {
        "request_id": context.request_id,
        "method": context.method,
        "path": context.path,
        "ip": context.ip,
        "user_agent": context.user_agent,
    }


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
    return AuditEvent(
        actor=actor if actor is not None and actor.is_authenticated else None,
        actor_email=getattr(actor, "email", "") or "",
        patient_id=patient.pk if patient is not None else fields.get("patient_id"),
        action=fields["action"],
        object_type=fields["object_type"],
        object_id=str(fields.get("object_id") or ""),
        changes=dict(fields.get("changes") or {}),
        **_context_facts(fields.get("context")),
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
    """One read event per patient shown, written in a single INSERT (list pages)."""
    facts = _context_facts(context)
    AuditEvent.objects.bulk_create(
        AuditEvent(
            actor=actor,
            actor_email=actor.email,
            patient_id=pid,
            action=AuditEvent.Action.READ,
            object_type=object_type,
            **facts,
        )
        for pid in dict.fromkeys(patient_ids)
    )


def audit_sign_in_failed(
    *, email: str, door: str, throttled: bool = False, context: AuditContext | None = None
) -> AuditEvent:
    """Record a failed sign-in (a wrong password, or refused by the throttle).

    The email is recorded only when it names an account: what was typed into the email
    field of a failed sign-in is sometimes a password.
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
    event.actor_email = account.email if account is not None else ""
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
