"""Recompute the caseload's per-patient rows: the log rollup from the daily logs, the
alert triage from the open alerts.

    python manage.py rebuild_log_rollups                    # every patient
    python manage.py rebuild_log_rollups --clinic <uuid>    # one clinic's patients
    python manage.py rebuild_log_rollups --patient <uuid>   # one patient

The database keeps both on every log and alert write; run this after writes it did not
see (a load with triggers off, a restore of the log or alert table) or to repair them.
Safe beside live traffic: it takes the same per-patient locks as a log or alert write
(docs/deployment.md).
"""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

from django.core.management.base import BaseCommand, CommandParser

from rehab.services.rollup import log_rollups_rebuild


class Command(BaseCommand):
    help = (
        "Recompute the per-patient log rollup and alert triage (all patients, a clinic's, or one)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        scope = parser.add_mutually_exclusive_group()
        scope.add_argument("--clinic", type=UUID, help="only this clinic's patients")
        scope.add_argument("--patient", type=UUID, help="only this patient")

    def handle(
        self, *args: Any, clinic: UUID | None = None, patient: UUID | None = None, **options: Any
    ) -> None:
        started = time.monotonic()
        done = log_rollups_rebuild(clinic_id=clinic, patient_id=patient)
        took = time.monotonic() - started
        self.stdout.write(
            f"Rebuilt the log rollup and alert triage of {done} patients in {took:.1f}s."
        )
