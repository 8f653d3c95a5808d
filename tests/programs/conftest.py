"""Programs fixtures: a small template with hand-countable sessions, and a patient on it."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import UTC, date, datetime

import pytest
from django.utils import timezone

from patients.models import Clinician, Patient
from programs import services
from programs.models import AssignedExercise, ProgramAssignment, ProgramTemplate
from tests.programs.factories import make_template
from tests.programs.media_support import media_root  # noqa: F401  (a fixture)

# A Monday. Phase 1 runs 2 weeks (2026-03-02..15), so phase 2 may start 2026-03-16.
START = date(2026, 3, 2)


@pytest.fixture
def freeze(monkeypatch: pytest.MonkeyPatch) -> Callable[[datetime], None]:
    """Fix "now" (what `Patient.local_today()` and the services read)."""

    def _freeze(at: datetime) -> None:
        monkeypatch.setattr(timezone, "now", lambda: at)

    return _freeze


@pytest.fixture
def frozen_at_start(freeze: Callable[[datetime], None]) -> datetime:
    # Noon UTC on START: the same local date in London.
    at = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    freeze(at)
    return at


@pytest.fixture
def seeded_templates(db) -> dict[str, ProgramTemplate]:
    """The §7 templates. The migrations seed them; seeding again is a no-op, and restores
    them if a transactional test elsewhere flushed the tables."""
    from django.apps import apps

    importlib.import_module("programs.migrations.0002_seed_templates").seed(apps)
    importlib.import_module("programs.migrations.0003_seed_templates_source_ranges").apply(apps)
    return {t.slug: t for t in ProgramTemplate.objects.filter(clinic__isnull=True)}


@pytest.fixture
def template(clinic) -> ProgramTemplate:
    """Phase 1 (2 weeks): A daily, B 3x/week. Phase 2 (1 week): C daily. Phase 3: D daily."""
    return make_template(
        clinic=clinic, name="Clinic test program", phases=[(2, [7, 3]), (1, [7]), (1, [7])]
    )


@pytest.fixture
def assignment(patient: Patient, clinician: Clinician, template) -> ProgramAssignment:
    return services.assignment_create(
        patient=patient, template=template, by=clinician, start_date=START, today=START
    )


def exercises_of(assignment: ProgramAssignment, phase: int) -> list[AssignedExercise]:
    return list(
        AssignedExercise.objects.filter(
            phase__assignment=assignment, phase__position=phase
        ).order_by("position")
    )
