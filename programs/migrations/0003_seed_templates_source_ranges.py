"""Bring the seeded §7 templates closer to the source (docs/clinical-record.md § Exercise programs).

- The prescription starts at the low end of each range the source gives; the notes now
  carry the whole range to progress within: deep gluteal syndrome phase 2 "4-5 x/week",
  phase 3 "3-4 x/week", sciatica phase 2 "3-5 x/week", walking "5-10 min, 2-3 x/day".
- Hops are "for active patients" in the source, not for everyone, and a prescription has
  no optional exercises (every one counts in adherence and progression). So hops leave
  the default deep gluteal syndrome phase 4 and its goals say so; the library keeps them
  for a clinic template that adds them.

Idempotent and careful: only the global (seeded) templates' rows are touched, each change
only where the row still holds the value 0002 seeded (an edit since is left alone), and
patients' copies (assignments, their exercises and dosage versions) are never touched,
so no patient's history changes. §7 names no mobility exercise (neural sliders are nerve
glides, bird-dog is strength, walking is aerobic), so none is added.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

DGS = "deep-gluteal-syndrome"
SCIATICA = "sciatica"

# (template slug, phase position, exercise slug): (notes as seeded by 0002, notes now)
NOTES: dict[tuple[str, int, str], tuple[str, str]] = {
    (DGS, 2, "clamshell"): ("", "4-5 x/week."),
    (DGS, 2, "side-lying-hip-abduction"): ("", "4-5 x/week."),
    (DGS, 2, "bridge"): ("", "4-5 x/week."),
    (DGS, 2, "seated-piriformis-stretch"): ("", "4-5 x/week."),
    (DGS, 3, "banded-squat"): ("8-12 reps.", "8-12 reps, 3-4 x/week."),
    (DGS, 3, "banded-side-step"): ("8-12 steps each way.", "8-12 steps each way, 3-4 x/week."),
    (DGS, 3, "single-leg-sit-to-stand"): ("8-12 reps.", "8-12 reps, 3-4 x/week."),
    (DGS, 3, "step-down"): ("8-12 reps.", "8-12 reps, 3-4 x/week."),
    (SCIATICA, 1, "walking"): ("2-3 walks a day.", "5-10 min, 2-3 x/day."),
    (SCIATICA, 2, "bridge"): ("8-12 reps, 2-3 sets.", "8-12 reps, 2-3 sets, 3-5 x/week."),
    (SCIATICA, 2, "bird-dog"): (
        "8-12 each side, 2-3 sets.",
        "8-12 each side, 2-3 sets, 3-5 x/week.",
    ),
    (SCIATICA, 2, "side-bridge"): (
        "8-12 each side, 2-3 sets.",
        "8-12 each side, 2-3 sets, 3-5 x/week.",
    ),
    (SCIATICA, 2, "sit-to-stand"): ("8-12 reps, 2-3 sets.", "8-12 reps, 2-3 sets, 3-5 x/week."),
}

# (template slug, phase position): (goals as seeded by 0002, goals now)
GOALS: dict[tuple[str, int], tuple[str, str]] = {
    (DGS, 4): (
        "Single-leg control for daily life and sport; build sitting tolerance.",
        "Single-leg control for daily life and sport; build sitting tolerance. Hops are for "
        "active patients only (returning to running or sport), so they are not in this "
        "default prescription: use a clinic template that adds them.",
    ),
}

# (template slug, phase position, exercise slug) no longer prescribed by default.
REMOVED = [(DGS, 4, "hop")]


def apply(apps: Any, schema_editor: Any = None) -> None:
    TemplatePhase = apps.get_model("programs", "TemplatePhase")
    PrescribedExercise = apps.get_model("programs", "PrescribedExercise")

    def seeded(model: Any, slug: str, position: int) -> Any:
        # Only the global templates; a clinic's template of the same name is its own.
        prefix = "" if model is TemplatePhase else "phase__"
        return model.objects.filter(
            **{
                f"{prefix}template__clinic__isnull": True,
                f"{prefix}template__slug": slug,
                f"{prefix}position": position,
            }
        )

    for (slug, position, exercise), (old, new) in NOTES.items():
        seeded(PrescribedExercise, slug, position).filter(
            exercise__slug=exercise, notes=old
        ).update(notes=new)
    for (slug, position), (old, new) in GOALS.items():
        seeded(TemplatePhase, slug, position).filter(goals=old).update(goals=new)
    for slug, position, exercise in REMOVED:
        removed, _ = (
            seeded(PrescribedExercise, slug, position).filter(exercise__slug=exercise).delete()
        )
        if removed:
            # Close the gap, keeping the order (positions are unique per phase, and each
            # moves down into a free one).
            rows = seeded(PrescribedExercise, slug, position).order_by("position")
            for index, row in enumerate(rows, start=1):
                if row.position != index:
                    row.position = index
                    row.save(update_fields=["position"])


class Migration(migrations.Migration):
    dependencies = [("programs", "0002_seed_templates")]

    # Reversing keeps the rows as they are: the earlier shape was the less faithful one.
    operations = [migrations.RunPython(apply, migrations.RunPython.noop)]
