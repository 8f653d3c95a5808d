"""The §7 templates are on every install, seeded by a data migration that is idempotent."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from django.apps import apps

from programs.models import Exercise, PrescribedExercise, ProgramTemplate, TemplatePhase

pytestmark = pytest.mark.django_db


def _shape(template: ProgramTemplate) -> list[tuple[str, int, list[tuple[Any, ...]]]]:
    """Each phase: name, weeks, and its exercises as (slug, sets, reps, hold seconds,
    minutes, sessions a week, notes)."""
    return [
        (
            phase.name,
            phase.length_weeks,
            [
                (
                    e.exercise.slug,
                    e.sets,
                    e.reps,
                    e.hold_seconds,
                    e.duration_minutes,
                    e.sessions_per_week,
                    e.notes,
                )
                for e in phase.exercises.order_by("position").select_related("exercise")
            ],
        )
        for phase in template.phases.order_by("position")
    ]


def test_it_seeds_the_deep_gluteal_syndrome_program_as_in_section_7(seeded_templates):
    # §7: (1) weeks 1-2 daily: figure-4 and knee-to-opposite-shoulder 30 s x 3, nerve
    # glides 10-15 x 2-3; (2) 4-5 x/week: clamshells, side-lying abduction, bridges 3 x 15,
    # seated piriformis 30 s x 3; (3) 3-4 x/week: banded squats, side steps, single-leg
    # sit-to-stand, step-downs 3 x 8-12; (4) 3 x/week: lunges, 45-degree lunges, hops for
    # active patients, sitting tolerance + 10 min/week. Prescribed at each range's low end.
    template = seeded_templates["deep-gluteal-syndrome"]
    assert template.clinic is None
    assert _shape(template) == [
        (
            "Calm and glide",
            2,
            [
                ("figure-four-stretch", 3, None, 30, None, 7, ""),
                ("knee-to-opposite-shoulder-stretch", 3, None, 30, None, 7, ""),
                ("sciatic-nerve-glide", 2, 10, None, None, 7, "10-15 reps, 2-3 sets."),
            ],
        ),
        (
            "Recruit",
            4,
            [
                ("clamshell", 3, 15, None, None, 4, "4-5 x/week."),
                ("side-lying-hip-abduction", 3, 15, None, None, 4, "4-5 x/week."),
                ("bridge", 3, 15, None, None, 4, "4-5 x/week."),
                ("seated-piriformis-stretch", 3, None, 30, None, 4, "4-5 x/week."),
            ],
        ),
        (
            "Load in weight-bearing",
            2,
            [
                ("banded-squat", 3, 8, None, None, 3, "8-12 reps, 3-4 x/week."),
                ("banded-side-step", 3, 8, None, None, 3, "8-12 steps each way, 3-4 x/week."),
                ("single-leg-sit-to-stand", 3, 8, None, None, 3, "8-12 reps, 3-4 x/week."),
                ("step-down", 3, 8, None, None, 3, "8-12 reps, 3-4 x/week."),
            ],
        ),
        (
            "Functional single-leg",
            4,
            [
                ("lunge", 3, 8, None, None, 3, "[D] 8-12 each leg."),
                ("lunge-45-degree", 3, 8, None, None, 3, "[D] 8-12 each leg."),
                ("sitting-tolerance", 1, None, None, 15, 3, "+10 min a week."),
            ],
        ),
    ]
    # Hops are for active patients: not prescribed to everyone, but named in the goals
    # and kept in the library for a clinic template.
    functional = template.phases.get(position=4)
    assert "Hops are for active patients only" in functional.goals
    assert Exercise.objects.filter(slug="hop", clinic__isnull=True).exists()


def test_it_seeds_the_sciatica_program_as_in_section_7(seeded_templates):
    # §7: (1) weeks 1-2: walking 5-10 min 2-3 x/day, neural sliders 10-15 x 2-3; (2) weeks
    # 3-6, 3-5 x/week: bridges, bird-dog, side bridge, sit-to-stand 2-3 x 8-12; (3) weeks
    # 7-12: loaded squats, step-ups, lifting practice, 20-30 min aerobic 3 x/week.
    template = seeded_templates["sciatica"]
    assert _shape(template) == [
        (
            "Settle and move",
            2,
            [
                ("walking", 2, None, None, 5, 7, "5-10 min, 2-3 x/day."),
                ("sciatic-nerve-glide", 2, 10, None, None, 7, "10-15 reps, 2-3 sets."),
            ],
        ),
        (
            "Load and mobilise",
            4,
            [
                ("bridge", 2, 8, None, None, 3, "8-12 reps, 2-3 sets, 3-5 x/week."),
                ("bird-dog", 2, 8, None, None, 3, "8-12 each side, 2-3 sets, 3-5 x/week."),
                ("side-bridge", 2, 8, None, None, 3, "8-12 each side, 2-3 sets, 3-5 x/week."),
                ("sit-to-stand", 2, 8, None, None, 3, "8-12 reps, 2-3 sets, 3-5 x/week."),
            ],
        ),
        (
            "Function and return",
            6,
            [
                ("loaded-squat", 3, 8, None, None, 3, "8-12 reps."),
                ("step-up", 3, 8, None, None, 3, "[D] 8-12 each leg."),
                ("lifting-practice", 3, 8, None, None, 3, "[D] Start light."),
                ("aerobic-exercise", 1, None, None, 20, 3, "20-30 minutes."),
            ],
        ),
    ]
    # The neural sliders are the library's nerve glide.
    glide = Exercise.objects.get(slug="sciatic-nerve-glide")
    assert glide.category == "nerve_glide"


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
    importlib.import_module("programs.migrations.0003_seed_templates_source_ranges").apply(apps)
    assert (
        Exercise.objects.count(),
        TemplatePhase.objects.count(),
        PrescribedExercise.objects.count(),
    ) == counts
    assert seeded_templates["sciatica"].phases.get(position=1).name == "Edited by the clinic"


def test_it_updates_only_the_seeded_templates_not_patients_copies(
    seeded_templates, patient, clinician, clinic
):
    from programs import services
    from programs.models import AssignedExercise, DosageVersion

    # The templates as 0002 left them, and a patient assigned then.
    TemplatePhase.objects.filter(template__clinic__isnull=True).delete()
    importlib.import_module("programs.migrations.0002_seed_templates").seed(apps)
    template = seeded_templates["deep-gluteal-syndrome"]
    assert PrescribedExercise.objects.filter(phase__template=template, exercise__slug="hop")
    assignment = services.assignment_create(patient=patient, template=template, by=clinician)
    copies = list(
        DosageVersion.objects.filter(assigned_exercise__phase__assignment=assignment)
        .order_by("assigned_exercise__phase__position", "assigned_exercise__position")
        .values_list("assigned_exercise__exercise__slug", "notes", "updated_at")
    )
    # A clinic's own template with the same slug and hops is the clinic's.
    clinic_copy = ProgramTemplate.objects.create(
        clinic=clinic, slug="deep-gluteal-syndrome", name="Our DGS"
    )
    phase = TemplatePhase.objects.create(
        template=clinic_copy, position=4, name="Ours", goals="", length_weeks=2
    )
    PrescribedExercise.objects.create(
        phase=phase,
        exercise=Exercise.objects.get(slug="hop"),
        position=1,
        sets=3,
        reps=10,
        sessions_per_week=3,
        notes="8-12 reps.",
    )

    importlib.import_module("programs.migrations.0003_seed_templates_source_ranges").apply(apps)

    assert not PrescribedExercise.objects.filter(phase__template=template, exercise__slug="hop")
    assert [e.position for e in template.phases.get(position=4).exercises.all()] == [1, 2, 3]
    assert ("hop", "[D] Active patients only.") in {(slug, notes) for slug, notes, _ in copies}
    assert (
        list(
            DosageVersion.objects.filter(assigned_exercise__phase__assignment=assignment)
            .order_by("assigned_exercise__phase__position", "assigned_exercise__position")
            .values_list("assigned_exercise__exercise__slug", "notes", "updated_at")
        )
        == copies
    )
    assert AssignedExercise.objects.filter(phase__assignment=assignment, exercise__slug="hop")
    assert PrescribedExercise.objects.get(phase__template=clinic_copy).notes == "8-12 reps."


def test_it_leaves_a_seeded_row_edited_since_alone(seeded_templates):
    ranges = importlib.import_module("programs.migrations.0003_seed_templates_source_ranges")
    walking = PrescribedExercise.objects.get(
        phase__template=seeded_templates["sciatica"], exercise__slug="walking"
    )
    walking.notes = "Old seeded text"
    walking.save()
    ranges.apply(apps)
    walking.refresh_from_db()
    assert walking.notes == "Old seeded text"
