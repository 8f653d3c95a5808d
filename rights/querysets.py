"""Scoping of the rights app's rows, built on `patients.querysets` (docs/architecture.md)."""

from __future__ import annotations

from patients.querysets import ScopedQuerySet


class ExportJobQuerySet(ScopedQuerySet):
    patient_path = "patient"


class ErasureRequestQuerySet(ScopedQuerySet):
    patient_path = "patient"
