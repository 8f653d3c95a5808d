"""Consent: reads and writes of the consent records (docs/data-rights.md).

Here rather than in `patients.services`/`selectors` because the gate on every patient
endpoint (`patients.permissions.IsPatient`) and registration need it, and patients imports
no other app; the endpoints are in the `rights` app.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import transaction
from django.db.models import Max
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext
from rest_framework.exceptions import PermissionDenied

from config.audit import AuditContext
from config.exceptions import ApplicationError
from patients.audit import audit_record
from patients.consent_models import ConsentDecision, ConsentDocument
from patients.models import AuditEvent, Clinic, Clinician, Patient, User

# --------------------------------------------------------------------------- reads


def current_documents(*, clinic_id: UUID | Any) -> list[ConsentDocument]:
    """The latest published version of each kind of the clinic's documents."""
    return list(
        ConsentDocument.objects.filter(clinic_id=clinic_id, published_at__isnull=False)
        .order_by("kind", "-version")
        .distinct("kind")
    )


def _latest_decisions(
    *, patient: Patient, documents: list[ConsentDocument]
) -> dict[UUID, ConsentDecision]:
    latest: dict[UUID, ConsentDecision] = {}
    for decision in ConsentDecision.objects.filter(
        patient=patient, document__in=[d.pk for d in documents]
    ).order_by("-at", "-id"):
        latest.setdefault(decision.document_id, decision)
    return latest


@dataclass(frozen=True)
class ConsentState:
    document: ConsentDocument
    state: str  # accepted, declined, withdrawn or pending
    decided_at: datetime | None


def consent_state_list(*, patient: Patient) -> list[ConsentState]:
    """Each current document of the patient's clinic with the patient's decision on it.

    A decision on an earlier version does not carry over to a new one: the patient agreed
    to the text they read (the history keeps it)."""
    documents = current_documents(clinic_id=patient.clinic_id)
    latest = _latest_decisions(patient=patient, documents=documents)
    return [
        ConsentState(
            document=doc,
            state=latest[doc.pk].decision if doc.pk in latest else "pending",
            decided_at=latest[doc.pk].at if doc.pk in latest else None,
        )
        for doc in documents
    ]


def consent_owed_compute(*, patient: Patient) -> bool:
    return any(
        s.document.required and s.state != ConsentDecision.Decision.ACCEPTED
        for s in consent_state_list(patient=patient)
    )


def consent_given(*, patient: Patient, kind: str) -> bool:
    """Whether the patient has accepted the current version of an optional purpose."""
    return any(
        s.document.kind == kind and s.state == ConsentDecision.Decision.ACCEPTED
        for s in consent_state_list(patient=patient)
    )


def consent_allows(*, patient: Patient, kind: str) -> bool:
    """Whether what depends on the optional purpose `kind` may be done for the patient:
    always when the clinic publishes no document of that kind (it does not make it a
    purpose of its own), else only while the patient's latest decision on the current
    version is `accepted`."""
    states = [s for s in consent_state_list(patient=patient) if s.document.kind == kind]
    return not states or states[0].state == ConsentDecision.Decision.ACCEPTED


def consent_history(*, user: User, patient: Patient) -> Any:
    return (
        ConsentDecision.objects.visible_to(user)
        .filter(patient=patient)
        .select_related("document")
        .order_by("-at", "-id")
    )


def consent_document_get(*, user: User, document_id: UUID | str) -> ConsentDocument:
    document: ConsentDocument = get_object_or_404(
        ConsentDocument.objects.visible_to(user), pk=document_id
    )
    return document


# --------------------------------------------------------------------------- writes


def consent_owed_refresh(*, patient: Patient) -> bool:
    """Recompute and store the patient's gate flag; returns it."""
    owed = consent_owed_compute(patient=patient)
    Patient.objects.filter(pk=patient.pk).update(consent_owed=owed)
    patient.consent_owed = owed
    return owed


@transaction.atomic
def consent_decide(
    *,
    patient: Patient,
    document: ConsentDocument,
    decision: str,
    actor: User,
    context: AuditContext | None = None,
) -> ConsentState:
    """Record the patient's decision on a current document of their clinic.

    A required document can only be accepted (declining or withdrawing it is closing the
    account); a withdrawal is of an optional purpose currently accepted.
    """
    # Serialise one patient's decisions: the state read below must not interleave.
    Patient.objects.select_for_update().filter(pk=patient.pk).first()
    states = {s.document.pk: s for s in consent_state_list(patient=patient)}
    current = states.get(document.pk)
    if current is None or document.clinic_id != patient.clinic_id:
        raise ApplicationError(
            gettext(
                "This is not a current version of your clinic's documents; read the current one."
            ),
            code="consent_document_superseded",
        )
    if document.required and decision != ConsentDecision.Decision.ACCEPTED:
        raise ApplicationError(
            gettext(
                "This document is required to use the app; to stop, ask your clinic to close "
                "your account."
            ),
            code="consent_required_document",
        )
    if (
        decision == ConsentDecision.Decision.WITHDRAWN
        and current.state != ConsentDecision.Decision.ACCEPTED
    ):
        raise ApplicationError(
            gettext("Only a consent you have given can be withdrawn."),
            code="consent_not_given",
        )
    row = ConsentDecision.objects.create(
        patient=patient, document=document, decision=decision, actor=actor
    )
    audit_record(
        actor=actor,
        action=AuditEvent.Action.CREATE,
        object_type="consent_decision",
        object_id=row.pk,
        patient=patient,
        changes={"document": str(document.pk), "kind": document.kind, "decision": decision},
        context=context,
    )
    consent_owed_refresh(patient=patient)
    return ConsentState(document=document, state=decision, decided_at=row.at)


def _document_facts(document: ConsentDocument) -> dict[str, Any]:
    return {
        "id": str(document.pk),
        "kind": document.kind,
        "version": document.version,
        "title": document.title,
        "body": document.body,
        "required": document.required,
    }


def consent_registration_documents(
    *, clinic_id: UUID | Any, accepted: list[tuple[str, int]]
) -> list[ConsentDocument]:
    """The clinic's current documents named by `accepted` (`(kind, version)` pairs), or a
    400 that lists the current documents: one of them not a current version
    (`consent_document_superseded`), or a required one missing (`consent_required`).

    What registration checks before it creates the account (docs/app-developers.md): the
    app learns the documents to show from the first 400 and sends the acceptances again.
    """
    documents = current_documents(clinic_id=clinic_id)
    by_kind = {d.kind: d for d in documents}
    listed = {"documents": [_document_facts(d) for d in documents]}
    chosen: list[ConsentDocument] = []
    for kind, version in accepted:
        document = by_kind.get(kind)
        if document is None or document.version != version:
            raise ApplicationError(
                gettext(
                    "Version %(version)s of '%(kind)s' is not a current document of your "
                    "clinic; read the current one."
                )
                % {"version": version, "kind": kind},
                code="consent_document_superseded",
                extra=listed,
            )
        chosen.append(document)
    missing = [d for d in documents if d.required and d not in chosen]
    if missing:
        raise ApplicationError(
            gettext("Your clinic's required documents must be accepted to register: %(documents)s.")
            % {"documents": ", ".join(f"{d.kind} v{d.version}" for d in missing)},
            code="consent_required",
            extra=listed,
        )
    return chosen


def consent_accept_at_registration(
    *,
    patient: Patient,
    documents: list[ConsentDocument],
    actor: User,
    context: AuditContext | None = None,
) -> None:
    """Record the acceptances given with the registration, in its transaction: the account
    and its consents exist together or not at all."""
    rows = ConsentDecision.objects.bulk_create(
        ConsentDecision(
            patient=patient,
            document=document,
            decision=ConsentDecision.Decision.ACCEPTED,
            actor=actor,
        )
        for document in documents
    )
    for row, document in zip(rows, documents, strict=True):
        audit_record(
            actor=actor,
            action=AuditEvent.Action.CREATE,
            object_type="consent_decision",
            object_id=row.pk,
            patient=patient,
            changes={
                "document": str(document.pk),
                "kind": document.kind,
                "decision": ConsentDecision.Decision.ACCEPTED,
                "at_registration": True,
            },
            context=context,
        )


def _require_admin(clinician: Clinician) -> None:
    if clinician.role != Clinician.Role.CLINIC_ADMIN:
        raise PermissionDenied("Only a clinic admin can manage consent documents.")


@transaction.atomic
def consent_document_create(
    *,
    clinician: Clinician,
    kind: str,
    title: str,
    body: str,
    required: bool,
) -> ConsentDocument:
    """A draft of the next version of one of the clinic's documents."""
    _require_admin(clinician)
    clinic = Clinic.objects.select_for_update().get(pk=clinician.clinic_id)
    latest = ConsentDocument.objects.filter(clinic=clinic, kind=kind).aggregate(v=Max("version"))
    return ConsentDocument.objects.create(
        clinic=clinic,
        kind=kind,
        version=(latest["v"] or 0) + 1,
        title=title,
        body=body,
        required=required,
        created_by=clinician.user,
    )


@transaction.atomic
def consent_document_publish(
    *, clinician: Clinician, document: ConsentDocument, context: AuditContext | None = None
) -> ConsentDocument:
    """Publish a draft: it becomes the current version of its kind. A required one makes
    every patient of the clinic owe an acceptance (their next call answers 403)."""
    _require_admin(clinician)
    document = ConsentDocument.objects.select_for_update().get(pk=document.pk)
    if document.published_at is not None:
        raise ApplicationError("This version is already published.")
    newer = ConsentDocument.objects.filter(
        clinic_id=document.clinic_id,
        kind=document.kind,
        version__gt=document.version,
        published_at__isnull=False,
    ).exists()
    if newer:
        raise ApplicationError("A later version of this document is already published.")
    document.published_at = timezone.now()
    document.save(update_fields=["published_at"])
    if document.required:
        # Nobody has accepted a version published this instant: one UPDATE for the clinic.
        Patient.objects.filter(clinic_id=document.clinic_id).update(consent_owed=True)
    audit_record(
        actor=clinician.user,
        action=AuditEvent.Action.UPDATE,
        object_type="consent_document",
        object_id=document.pk,
        changes={"published": True, "kind": document.kind, "version": document.version},
        context=context,
    )
    return document
