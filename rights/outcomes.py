"""The clinic's de-identified outcomes, streamed as CSV in constant memory
(docs/data-rights.md).

Two server-side cursors are read side by side, both ordered by patient id: the clinic's
patients (with their program) and their logs' (date, pain). Each patient's figures are
computed by `rehab.progress.progress`, the same code as the progress API, and written
out before the next patient is read: memory does not grow with the clinic.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from uuid import UUID

from django.db.models import OuterRef, Q, Subquery

from patients.consent import current_documents
from patients.models import ConsentDecision, ConsentKind, Patient
from patients.querysets import active_patients
from programs.models import ProgramAssignment
from rehab import progress
from rehab.models import DailyLog
from rights.models import Erasure

CHUNK = 2000

PATIENT_COLUMNS = (
    "row",
    "age_band",
    "condition",
    "program",
    "days_logged",
    "baseline_pain",
    "current_pain_7d",
    "change",
    "percent_change",
    "responder_mcid",
)
SUMMARY_COLUMNS = (
    "condition",
    "program",
    "patients",
    "with_baseline_and_current",
    "responders_mcid",
    "responder_rate_percent",
)


def _age_band(born: date, today: date) -> str:
    # Ten-year bands, 80 and over together: an exact age narrows a small clinic's patient
    # down too far to call the file de-identified.
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    low = min(age // 10 * 10, 80)
    return "80+" if low == 80 else f"{low}-{low + 9}"


def _patients(clinic_id: UUID) -> Any:  # annotated with `program`
    program = (
        ProgramAssignment.objects.filter(patient=OuterRef("pk"))
        .order_by("-start_date", "-created_at")
        .values("name")[:1]
    )
    # A restricted record (account closed under a retention hold) is only stored, not
    # counted; once pseudonymised, its numbers are the clinic's again (docs/data-rights.md).
    patients = Patient.objects.filter(clinic_id=clinic_id).filter(
        active_patients() | Q(pk__in=Erasure.objects.values("patient_id"))
    )
    research = [d for d in current_documents(clinic_id=clinic_id) if d.kind == ConsentKind.RESEARCH]
    if research:
        # The clinic asks for research consent: only those who gave it (and have not
        # withdrawn it) are in the file.
        latest = (
            ConsentDecision.objects.filter(patient=OuterRef("pk"), document=research[0])
            .order_by("-at", "-id")
            .values("decision")[:1]
        )
        patients = patients.alias(research=Subquery(latest)).filter(
            research=ConsentDecision.Decision.ACCEPTED
        )
    return patients.annotate(program=Subquery(program)).order_by("pk")


@dataclass
class _Group:
    patients: int = 0
    measured: int = 0
    responders: int = 0


@dataclass
class OutcomeRows:
    """The rows of one clinic's outcomes file, produced lazily."""

    clinic_id: UUID
    today: date
    groups: dict[tuple[str, str], _Group] = field(default_factory=dict)

    def patient_rows(self) -> Iterator[tuple[Any, ...]]:
        patients = _patients(self.clinic_id)
        logs = (
            DailyLog.objects.filter(patient__in=patients.values("pk"))
            .order_by("patient_id", "date")
            .values_list("patient_id", "date", "pain")
            .iterator(chunk_size=CHUNK)
        )
        by_patient = itertools.groupby(logs, key=lambda row: row[0])
        pending = next(by_patient, None)
        rows = patients.values_list(
            "pk", "date_of_birth", "timezone", "condition", "program"
        ).iterator(chunk_size=CHUNK)
        for number, (pk, born, tz, condition, program) in enumerate(rows, start=1):
            pains: list[tuple[date, int]] = []
            if pending is not None and pending[0] == pk:
                pains = [(day, pain) for _, day, pain in pending[1]]
                pending = next(by_patient, None)
            patient = Patient(timezone=tz)
            figures = progress.progress(pains, today=patient.local_today())
            group = self.groups.setdefault((condition or "", program or ""), _Group())
            group.patients += 1
            if figures.change is not None:
                group.measured += 1
                group.responders += int(figures.mcid_reached)
            yield (
                number,
                _age_band(born, self.today),
                condition,
                program or "",
                figures.days_logged,
                figures.baseline_pain,
                figures.current_pain_7d,
                figures.change,
                figures.percent_change,
                "yes" if figures.mcid_reached else ("no" if figures.change is not None else ""),
            )

    def summary_rows(self) -> Iterator[tuple[Any, ...]]:
        """Responders by condition and program; reads every patient (groups are few)."""
        for _ in self.patient_rows():
            pass
        for (condition, program), g in sorted(self.groups.items()):
            rate = round(100 * g.responders / g.measured, 1) if g.measured else ""
            yield (condition, program, g.patients, g.measured, g.responders, rate)
