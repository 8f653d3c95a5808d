"""A restricted record is kept, not worked on (docs/data-rights.md § Restriction).

The one rule every clinician- or operator-facing write on a patient's data obeys: it calls
`patient_ensure_writable` first, inside its transaction, and a restricted record refuses
it with `RecordRestricted` (409, `code: record_restricted`), nothing changed. Reads and
exports do not call it; neither do the writes the documentation keeps on a restricted
record: the safety path (an open alert acknowledged, resolved or escalated; a submitted
log evaluated) and the erasure workflow itself (`rights.erasure`).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db import connection, transaction
from django.utils.translation import gettext
from drf_spectacular.utils import OpenApiResponse

from config.exceptions import ConflictError
from patients.models import Patient

RECORD_RESTRICTED = "record_restricted"

_RESTRICTED_409 = (
    f"The patient's record is restricted (`code: {RECORD_RESTRICTED}`): it is kept, read "
    "and exported, no longer changed. Nothing was changed."
)

# The 409 of every endpoint whose write calls `patient_ensure_writable`, as its schema
# declares it (`extend_schema(responses={409: RECORD_RESTRICTED_RESPONSE})`). The error
# shape is added by config.schema.
RECORD_RESTRICTED_RESPONSE = OpenApiResponse(description=_RESTRICTED_409)


def record_restricted_or(other: str) -> OpenApiResponse:
    """The 409 of an endpoint that also answers 409 for a reason of its own (`other`): one
    status, one declaration, both reasons."""
    return OpenApiResponse(description=f"{other}; or: {_RESTRICTED_409}")


class RecordRestricted(ConflictError):
    """A write on a restricted record: answered 409, audited as denied
    (`patients.middleware.DeniedRequestAuditMiddleware`)."""

    default_code = RECORD_RESTRICTED

    def __init__(self, *, patient_id: UUID | str) -> None:
        super().__init__(
            gettext(
                "This patient's record is restricted after an approved erasure request: "
                "it is kept, and can be read and exported, but no longer changed."
            )
        )
        self.patient_id = str(patient_id)


def patient_ensure_writable(*, patient_id: UUID | str | None, for_update: bool = False) -> None:
    """Refuse a write on the record of `patient_id` if it is restricted.

    Read under a KEY SHARE lock on the patient's row, held to the end of the caller's
    transaction: closing the account takes the row FOR UPDATE first
    (`rights.erasure.account_close`), so a restriction and a write never interleave, either
    the write commits before the record is restricted or it sees the restriction. KEY SHARE
    is what a foreign-key insert takes anyway, so concurrent writes on one patient do not
    queue behind each other. A caller that locks the patient's row FOR UPDATE itself passes
    `for_update`: taking KEY SHARE first and FOR UPDATE after would let two such writes
    deadlock, each waiting for the other's KEY SHARE. A patient that does not exist is the
    caller's to report.
    """
    if patient_id is None:
        return
    if for_update:
        found = list(
            Patient.objects.select_for_update()
            .filter(pk=patient_id)
            .values_list("restricted_at", flat=True)
        )
        restricted = bool(found) and found[0] is not None
    elif not transaction.get_connection().in_atomic_block:
        # Outside a transaction a lock would be gone at once: the read still refuses.
        restricted = Patient.objects.filter(pk=patient_id, restricted_at__isnull=False).exists()
    else:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT restricted_at IS NOT NULL FROM {Patient._meta.db_table} "  # noqa: S608
                "WHERE id = %s FOR KEY SHARE",
                [str(patient_id)],
            )
            row: Any = cursor.fetchone()
        restricted = bool(row and row[0])
    if restricted:
        raise RecordRestricted(patient_id=patient_id)
