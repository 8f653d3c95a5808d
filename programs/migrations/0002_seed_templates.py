"""Seed the global exercise library and the two program templates (docs/clinical-record.md § Exercise programs).

Idempotent: rows are keyed by slug and only created when missing, so running `seed()`
again (tests do, after a flush) never duplicates anything or overwrites a clinic's edits.

Where the source gives a range ("10-15 x 2-3", "4-5 x/week") the prescription starts at the
low end and the notes carry the range to progress within. The source's deep gluteal
syndrome phases overlap (weeks 3-6, 5-8, 8-12) because moving on is criteria-based; here
they are laid end to end (2 + 4 + 2 + 4 = 12 weeks, the upper end of "8-12 weeks"), and a
clinician moves a patient on earlier by accepting a progression proposal. Dosages the
source leaves open (lunges, hops, step-ups, lifting practice) are ours, marked [D].
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

# slug: (name, category, body_region, instructions, default dosage)
EXERCISES: dict[str, tuple[str, str, str, str, dict[str, Any]]] = {
    "figure-four-stretch": (
        "Figure-4 stretch",
        "stretch",
        "hip_gluteal",
        "Lie on your back, cross the ankle of the affected leg over the opposite knee and "
        "gently pull that thigh towards you until you feel a stretch in the buttock.",
        {"sets": 3, "hold_seconds": 30, "sessions_per_week": 7},
    ),
    "knee-to-opposite-shoulder-stretch": (
        "Knee-to-opposite-shoulder stretch",
        "stretch",
        "hip_gluteal",
        "Lie on your back, hold the knee of the affected leg with both hands and draw it "
        "towards the opposite shoulder until you feel a stretch deep in the buttock.",
        {"sets": 3, "hold_seconds": 30, "sessions_per_week": 7},
    ),
    "sciatic-nerve-glide": (
        "Sciatic nerve glide (slider)",
        "nerve_glide",
        "sciatic_nerve",
        "Sit tall. Straighten the knee while tipping your head back, then bend the knee while "
        "bringing your chin down. Smooth and gentle: it should not reproduce your leg pain.",
        {"sets": 2, "reps": 10, "sessions_per_week": 7, "notes": "10-15 reps, 2-3 sets."},
    ),
    "clamshell": (
        "Clamshell",
        "strength",
        "hip_gluteal",
        "Lie on your side, hips and knees bent, feet together. Lift the top knee without "
        "rolling the pelvis back, then lower slowly.",
        {"sets": 3, "reps": 15, "sessions_per_week": 4},
    ),
    "side-lying-hip-abduction": (
        "Side-lying hip abduction",
        "strength",
        "hip_gluteal",
        "Lie on your side with the bottom knee bent. Lift the straight top leg slightly behind "
        "you, toes forward, then lower slowly.",
        {"sets": 3, "reps": 15, "sessions_per_week": 4},
    ),
    "bridge": (
        "Bridge",
        "strength",
        "hip_gluteal",
        "Lie on your back, knees bent, feet flat. Squeeze your buttocks and lift the hips "
        "until knees, hips and shoulders line up; lower slowly.",
        {"sets": 3, "reps": 15, "sessions_per_week": 4},
    ),
    "seated-piriformis-stretch": (
        "Seated piriformis stretch",
        "stretch",
        "hip_gluteal",
        "Sit tall, rest the ankle of the affected leg on the opposite knee and lean forward "
        "from the hips, back straight, until you feel a stretch in the buttock.",
        {"sets": 3, "hold_seconds": 30, "sessions_per_week": 4},
    ),
    "banded-squat": (
        "Banded squat",
        "strength",
        "lower_limb",
        "Band just above the knees, feet hip-width. Sit back into a squat keeping the knees "
        "pushed out against the band, then stand.",
        {"sets": 3, "reps": 8, "sessions_per_week": 3, "notes": "8-12 reps."},
    ),
    "banded-side-step": (
        "Banded side steps",
        "strength",
        "hip_gluteal",
        "Band above the knees or at the ankles, knees slightly bent. Step sideways keeping "
        "tension in the band; count each step.",
        {"sets": 3, "reps": 8, "sessions_per_week": 3, "notes": "8-12 steps each way."},
    ),
    "single-leg-sit-to-stand": (
        "Single-leg sit-to-stand",
        "functional",
        "lower_limb",
        "From a chair, stand up on the affected leg with the other foot lifted, then sit "
        "back down slowly. Use a higher seat if needed.",
        {"sets": 3, "reps": 8, "sessions_per_week": 3, "notes": "8-12 reps."},
    ),
    "step-down": (
        "Step-down",
        "strength",
        "lower_limb",
        "Stand on a step on the affected leg and slowly lower the other heel to the floor, "
        "keeping the knee in line with the toes; push back up.",
        {"sets": 3, "reps": 8, "sessions_per_week": 3, "notes": "8-12 reps."},
    ),
    "lunge": (
        "Lunge",
        "functional",
        "lower_limb",
        "Step forward and lower the back knee towards the floor, front knee over the ankle; "
        "push back to standing.",
        {"sets": 3, "reps": 8, "sessions_per_week": 3, "notes": "[D] 8-12 each leg."},
    ),
    "lunge-45-degree": (
        "45-degree lunge",
        "functional",
        "lower_limb",
        "As a lunge, but stepping forward and out at 45 degrees, keeping the pelvis level.",
        {"sets": 3, "reps": 8, "sessions_per_week": 3, "notes": "[D] 8-12 each leg."},
    ),
    "hop": (
        "Hops (active patients)",
        "functional",
        "lower_limb",
        "Small hops on the spot on the affected leg, landing softly with a bent knee. Only "
        "for patients returning to running or sport.",
        {"sets": 3, "reps": 10, "sessions_per_week": 3, "notes": "[D] Active patients only."},
    ),
    "sitting-tolerance": (
        "Sitting tolerance",
        "functional",
        "whole_body",
        "Sit on a firm chair for the time prescribed, changing position as needed, and note "
        "any buttock or leg symptoms.",
        {"sets": 1, "duration_minutes": 15, "sessions_per_week": 3, "notes": "+10 min a week."},
    ),
    "walking": (
        "Walking",
        "aerobic",
        "whole_body",
        "Walk at a comfortable pace on level ground. Short and often beats long and rare.",
        {"sets": 2, "duration_minutes": 5, "sessions_per_week": 7, "notes": "2-3 walks a day."},
    ),
    "bird-dog": (
        "Bird-dog",
        "strength",
        "trunk",
        "On hands and knees, reach one arm forward and the opposite leg back, keeping the back "
        "still; return and swap sides.",
        {"sets": 2, "reps": 8, "sessions_per_week": 3, "notes": "8-12 each side, 2-3 sets."},
    ),
    "side-bridge": (
        "Side bridge",
        "strength",
        "trunk",
        "On your side, propped on the forearm with knees bent, lift the hips into a straight "
        "line; hold briefly and lower.",
        {"sets": 2, "reps": 8, "sessions_per_week": 3, "notes": "8-12 each side, 2-3 sets."},
    ),
    "sit-to-stand": (
        "Sit-to-stand",
        "functional",
        "lower_limb",
        "Stand up from a chair without using your hands, then sit down slowly.",
        {"sets": 2, "reps": 8, "sessions_per_week": 3, "notes": "8-12 reps, 2-3 sets."},
    ),
    "loaded-squat": (
        "Loaded squat",
        "strength",
        "lower_limb",
        "Squat holding a weight at the chest, back neutral, as deep as is comfortable.",
        {"sets": 3, "reps": 8, "sessions_per_week": 3, "notes": "8-12 reps."},
    ),
    "step-up": (
        "Step-up",
        "strength",
        "lower_limb",
        "Step up onto a stair or box with the affected leg, stand tall, step down slowly.",
        {"sets": 3, "reps": 8, "sessions_per_week": 3, "notes": "[D] 8-12 each leg."},
    ),
    "lifting-practice": (
        "Lifting practice",
        "functional",
        "whole_body",
        "Lift a box from the floor to waist height with a hip hinge, close to the body; "
        "build up the weight gradually.",
        {"sets": 3, "reps": 8, "sessions_per_week": 3, "notes": "[D] Start light."},
    ),
    "aerobic-exercise": (
        "Aerobic exercise",
        "aerobic",
        "whole_body",
        "Brisk walking, cycling or swimming at a pace where you can talk but not sing.",
        {"sets": 1, "duration_minutes": 20, "sessions_per_week": 3, "notes": "20-30 minutes."},
    ),
}

# slug: template, then phases of (name, goals, weeks, [(exercise slug, dosage override)])
TEMPLATES: dict[str, dict[str, Any]] = {
    "deep-gluteal-syndrome": {
        "name": "Deep gluteal syndrome, 8-12 weeks",
        "condition": "Deep gluteal syndrome",
        "description": "Calm and glide, recruit, load in weight-bearing, functional single-leg.",
        "source": "Tonley et al. 2010, JOSPT [S/D]",
        "phases": [
            (
                "Calm and glide",
                "Settle the irritated sciatic nerve: gentle stretches and nerve glides, daily.",
                2,
                [
                    ("figure-four-stretch", {}),
                    ("knee-to-opposite-shoulder-stretch", {}),
                    ("sciatic-nerve-glide", {}),
                ],
            ),
            (
                "Recruit",
                "Wake up the deep hip rotators and gluteals, 4-5 times a week.",
                4,
                [
                    ("clamshell", {}),
                    ("side-lying-hip-abduction", {}),
                    ("bridge", {}),
                    ("seated-piriformis-stretch", {}),
                ],
            ),
            (
                "Load in weight-bearing",
                "Strength in standing: squats, side steps, single-leg work, 3-4 times a week.",
                2,
                [
                    ("banded-squat", {}),
                    ("banded-side-step", {}),
                    ("single-leg-sit-to-stand", {}),
                    ("step-down", {}),
                ],
            ),
            (
                "Functional single-leg",
                "Single-leg control for daily life and sport; build sitting tolerance.",
                4,
                [
                    ("lunge", {}),
                    ("lunge-45-degree", {}),
                    ("hop", {}),
                    ("sitting-tolerance", {}),
                ],
            ),
        ],
    },
    "sciatica": {
        "name": "Sciatica, 12 weeks",
        "condition": "Sciatica",
        "description": "Settle and move, load and mobilise, function and return.",
        "source": "NICE CG88/NG59 [D]",
        "phases": [
            (
                "Settle and move",
                "Keep moving: short frequent walks and neural sliders.",
                2,
                [
                    ("walking", {}),
                    ("sciatic-nerve-glide", {}),
                ],
            ),
            (
                "Load and mobilise",
                "Trunk and hip strength, 3-5 times a week.",
                4,
                [
                    (
                        "bridge",
                        {
                            "sets": 2,
                            "reps": 8,
                            "sessions_per_week": 3,
                            "notes": "8-12 reps, 2-3 sets.",
                        },
                    ),
                    ("bird-dog", {}),
                    ("side-bridge", {}),
                    ("sit-to-stand", {}),
                ],
            ),
            (
                "Function and return",
                "Loaded daily tasks and 20-30 minutes of aerobic exercise 3 times a week.",
                6,
                [
                    ("loaded-squat", {}),
                    ("step-up", {}),
                    ("lifting-practice", {}),
                    ("aerobic-exercise", {}),
                ],
            ),
        ],
    },
}

DOSAGE_DEFAULTS = {"reps": None, "hold_seconds": None, "duration_minutes": None, "notes": ""}


def seed(apps: Any, schema_editor: Any = None) -> None:
    Exercise = apps.get_model("programs", "Exercise")
    ProgramTemplate = apps.get_model("programs", "ProgramTemplate")
    TemplatePhase = apps.get_model("programs", "TemplatePhase")
    PrescribedExercise = apps.get_model("programs", "PrescribedExercise")

    exercises = {}
    for slug, (name, category, region, instructions, dosage) in EXERCISES.items():
        exercises[slug], _ = Exercise.objects.get_or_create(
            slug=slug,
            defaults={
                "clinic": None,
                "name": name,
                "category": category,
                "body_region": region,
                "instructions": instructions,
                **DOSAGE_DEFAULTS,
                **dosage,
            },
        )

    for slug, spec in TEMPLATES.items():
        template, _ = ProgramTemplate.objects.get_or_create(
            clinic=None,
            slug=slug,
            defaults={
                "name": spec["name"],
                "condition": spec["condition"],
                "description": spec["description"],
                "source": spec["source"],
            },
        )
        if TemplatePhase.objects.filter(template=template).exists():
            continue  # already seeded (or edited since): leave it alone
        for position, (name, goals, weeks, items) in enumerate(spec["phases"], start=1):
            phase = TemplatePhase.objects.create(
                template=template, position=position, name=name, goals=goals, length_weeks=weeks
            )
            for item_position, (exercise_slug, override) in enumerate(items, start=1):
                exercise = exercises[exercise_slug]
                dosage = {
                    "sets": exercise.sets,
                    "reps": exercise.reps,
                    "hold_seconds": exercise.hold_seconds,
                    "duration_minutes": exercise.duration_minutes,
                    "sessions_per_week": exercise.sessions_per_week,
                    "notes": exercise.notes,
                }
                if override:
                    dosage = {**dosage, **DOSAGE_DEFAULTS, **override}
                PrescribedExercise.objects.create(
                    phase=phase, exercise=exercise, position=item_position, **dosage
                )


class Migration(migrations.Migration):
    dependencies = [("programs", "0001_initial")]

    # Reversing keeps the rows: clinics may have built on them, and re-seeding is a no-op.
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
