"""The §7 templates are on every install, seeded by a data migration that is idempotent."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps

from programs.models import Exercise, PrescribedExercise, ProgramTemplate, TemplatePhase

pytestmark = pytest.mark.django_db


def _shape(template: ProgramTemplate) -> list[tuple[str, int, list[int]]]:
    return [
        (
            phase.name,
            phase.length_weeks,
            [e.sessions_per_week for e in phase.exercises.order_by("position")],
        )
        for phase in template.phases.order_by("position")
    ]


def test_it_seeds_the_deep_gluteal_syndrome_program(seeded_templates):
    template = seeded_templates["deep-gluteal-syndrome"]
    assert template.clinic is None
    assert _shape(template) == [
        ("Calm and glide", 2, [7, 7, 7]),
        ("Recruit", 4, [4, 4, 4, 4]),
        ("Load in weight-bearing", 2, [3, 3, 3, 3]),
        ("Functional single-leg", 4, [3, 3, 3, 3]),
    ]
    glide = PrescribedExercise.objects.get(
        phase__template=template, exercise__slug="sciatic-nerve-glide"
    )
    assert (glide.sets, glide.reps) == (2, 10)


def test_it_seeds_the_sciatica_program(seeded_templates):
    template = seeded_templates["sciatica"]
    assert _shape(template) == [
        ("Settle and move", 2, [7, 7]),
        ("Load and mobilise", 4, [3, 3, 3, 3]),
        ("Function and return", 6, [3, 3, 3, 3]),
    ]
    aerobic = PrescribedExercise.objects.get(
        phase__template=template, exercise__slug="aerobic-exercise"
    )
    assert (aerobic.duration_minutes, aerobic.sessions_per_week) == (20, 3)
    # The shared bridge keeps the sciatica dosage (2 x 8), not the library default (3 x 15).
    bridge = PrescribedExercise.objects.get(phase__template=template, exercise__slug="bridge")
    assert (bridge.sets, bridge.reps) == (2, 8)


def test_it_seeds_every_category_of_the_library(seeded_templates):
    categories = set(
        Exercise.objects.filter(clinic__isnull=True).values_list("category", flat=True)
    )
    assert categories >= {"stretch", "nerve_glide", "strength", "aerobic", "functional"}


def test_it_can_seed_again_without_duplicating_or_overwriting(seeded_templates):
    counts = (
        Exercise.objects.count(),
        TemplatePhase.objects.count(),
        PrescribedExercise.objects.count(),
    )
    TemplatePhase.objects.filter(template=seeded_templates["sciatica"], position=1).update(
        name="Edited by the clinic"
    )
    importlib.import_module("programs.migrations.0002_seed_templates").seed(apps)
    assert (
        Exercise.objects.count(),
        TemplatePhase.objects.count(),
        PrescribedExercise.objects.count(),
    ) == counts
    assert seeded_templates["sciatica"].phases.get(position=1).name == "Edited by the clinic"
