"""Writes of education cards: new cards and versions, giving a card to a patient (by hand
or with a program) and read receipts. Keyword-only, typed, never the HTTP request; every
write is audited in its own transaction (docs/clinical-record.md § Education cards)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext

from config.audit import AuditContext
from config.db import insert_unless_conflict
from patients.audit import audit_event, audit_record
from patients.models import AuditEvent, Clinician, Patient, User
from patients.restriction import patient_ensure_writable
from programs.models import (
    CARD_BODY_MAX,
    AssignedPhase,
    CardAssignment,
    CardRead,
    EducationCard,
    EducationCardVersion,
    Language,
    ProgramAssignment,
)

TITLE_MAX = 200
CONDITION_MAX = 200


def _text_errors(*, language: str, title: str, body: str) -> dict[str, str]:
    errors = {}
    if language not in Language.values:
        errors["language"] = f"One of {', '.join(Language.values)}."
    if not title.strip():
        errors["title"] = "A card needs a title."
    elif len(title) > TITLE_MAX:
        errors["title"] = f"At most {TITLE_MAX} characters."
    if not body.strip():
        errors["body"] = "A card needs some text."
    elif len(body) > CARD_BODY_MAX:
        errors["body"] = f"At most {CARD_BODY_MAX} characters."
    return errors


def _audit(
    *,
    actor: User | None,
    action: str,
    object_type: str,
    object_id: object,
    patient_id: UUID | None = None,
    changes: Mapping[str, Any] | None = None,
    context: AuditContext | None = None,
) -> None:
    audit_record(
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        patient_id=patient_id,
        changes=changes,
        context=context,
    )


@transaction.atomic
def card_create(
    *,
    clinician: Clinician,
    language: str,
    title: str,
    body: str,
    condition: str = "",
    context: AuditContext | None = None,
) -> EducationCard:
    """A clinic-owned card with its first version in `language`."""
    errors = _text_errors(language=language, title=title, body=body)
    if len(condition) > CONDITION_MAX:
        errors["condition"] = f"At most {CONDITION_MAX} characters."
    if errors:
        raise ValidationError(errors)
    card = EducationCard.objects.create(
        clinic=clinician.clinic, condition=condition.strip(), created_by=clinician
    )
    version = EducationCardVersion.objects.create(
        card=card, language=language, number=1, title=title.strip(), body=body,
        created_by=clinician,
    )  # fmt: skip
    _audit(
        actor=clinician.user,
        action=AuditEvent.Action.CREATE,
        object_type="education_card",
        object_id=card.pk,
        changes={"version_id": str(version.pk), "language": language, "title": version.title},
        context=context,
    )
    return card


@transaction.atomic
def card_version_create(
    *,
    card: EducationCard,
    clinician: Clinician,
    language: str,
    title: str,
    body: str,
    context: AuditContext | None = None,
) -> EducationCardVersion:
    """Edit a card in one language: a new version, numbered after the last one in that
    language. Earlier versions stay as they were: a read receipt names the words read.

    Only a clinic's own cards can be edited (the seeded ones are shared by every clinic).
    The same text as the latest version makes no new version.
    """
    card = EducationCard.objects.select_for_update().get(pk=card.pk)
    if card.clinic_id != clinician.clinic_id:
        raise ValidationError(
            {"card": "Seeded cards are shared by every clinic and cannot be edited here."}
        )
    if errors := _text_errors(language=language, title=title, body=body):
        raise ValidationError(errors)
    latest = (
        EducationCardVersion.objects.filter(card=card, language=language)
        .order_by("-number")
        .first()
    )
    if latest is not None and latest.title == title.strip() and latest.body == body:
        return latest
    number = (
        EducationCardVersion.objects.filter(card=card, language=language).aggregate(
            n=Max("number")
        )["n"]
        or 0
    ) + 1
    version = EducationCardVersion.objects.create(
        card=card, language=language, number=number, title=title.strip(), body=body,
        created_by=clinician,
    )  # fmt: skip
    _audit(
        actor=clinician.user,
        action=AuditEvent.Action.UPDATE,
        object_type="education_card",
        object_id=card.pk,
        changes={"version_id": str(version.pk), "language": language, "number": number},
        context=context,
    )
    return version


@transaction.atomic
def card_assign(
    *, patient: Patient, card: EducationCard, by: Clinician, context: AuditContext | None = None
) -> tuple[CardAssignment, bool]:
    """Give one patient a card by hand; returns (assignment, created). Giving it again
    (a retried request, or a card that came with the program) changes nothing."""
    patient_ensure_writable(patient_id=patient.pk)
    if card.clinic_id not in (None, patient.clinic_id) or by.clinic_id != patient.clinic_id:
        raise ValidationError({"card_id": "Unknown card."})
    if not EducationCardVersion.objects.filter(card=card).exists():
        raise ValidationError({"card_id": "This card has no text yet."})
    assignment = CardAssignment(
        patient=patient, card=card, assigned_by=by, assigned_at=timezone.now()
    )
    event = audit_event(
        actor=by.user,
        action=AuditEvent.Action.CREATE,
        object_type="card_assignment",
        object_id=assignment.pk,
        patient_id=patient.pk,
        changes={"card_id": str(card.pk)},
        context=context,
    )
    # ON CONFLICT DO NOTHING: a second assignment is a normal path, not an error in the
    # database server's log; the audit event goes in only with the row.
    if insert_unless_conflict(assignment, event):
        return assignment, True
    existing = CardAssignment.objects.select_related("card").get(patient=patient, card=card)
    return existing, False


def program_cards_assign(*, assignment: ProgramAssignment, by: Clinician | None) -> int:
    """Give the patient the cards of the template phases their program was copied from
    (called by `assignment_create`, inside its transaction and audit event). Cards the
    patient already has keep their assignment. Returns how many were added."""
    if assignment.template_id is None:
        return 0
    phases = {p.position: p for p in AssignedPhase.objects.filter(assignment=assignment)}
    through = EducationCard.template_phases.through
    rows = []
    for card_id, position in through.objects.filter(
        templatephase__template_id=assignment.template_id
    ).values_list("educationcard_id", "templatephase__position"):
        if position in phases:
            rows.append(
                CardAssignment(
                    patient_id=assignment.patient_id,
                    card_id=card_id,
                    program_phase=phases[position],
                    assigned_by=by,
                )
            )
    created = CardAssignment.objects.bulk_create(rows, ignore_conflicts=True)
    return len(created)


def card_mark_read(
    *, patient: Patient, version: EducationCardVersion, context: AuditContext | None = None
) -> tuple[CardRead, bool]:
    """A read receipt for this version; returns (receipt, created). Idempotent: marking
    it again answers the first receipt and its time."""
    if not CardAssignment.objects.filter(patient=patient, card_id=version.card_id).exists():
        raise ValidationError({"card": gettext("This card is not assigned to you.")})
    read = CardRead(patient=patient, version=version, read_at=timezone.now())
    event = audit_event(
        actor=patient.user,
        action=AuditEvent.Action.CREATE,
        object_type="card_read",
        object_id=read.pk,
        patient_id=patient.pk,
        changes={"card_id": str(version.card_id), "version_id": str(version.pk)},
        context=context,
    )
    with transaction.atomic():
        if insert_unless_conflict(read, event):
            return read, True
    existing = CardRead.objects.get(patient=patient, version=version)
    return existing, False
