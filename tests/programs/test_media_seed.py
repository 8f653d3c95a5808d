"""The seeded templates' exercises get demonstration line figures (programs/demo.py)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from programs.demo import TEMPLATE_SLUGS, seed_exercise_media
from programs.demo_figures import POSES
from programs.models import ExerciseMedia, PrescribedExercise

pytestmark = pytest.mark.django_db


def test_every_seeded_exercise_gets_a_drawn_figure_once(seeded_templates, media_root):
    made = seed_exercise_media()
    seeded = set(
        PrescribedExercise.objects.filter(
            phase__template__clinic__isnull=True, phase__template__slug__in=TEMPLATE_SLUGS
        ).values_list("exercise_id", flat=True)
    )
    assert made == len(seeded) > 10
    media = ExerciseMedia.objects.filter(clinic__isnull=True)
    assert set(media.values_list("exercise_id", flat=True)) == seeded
    for item in media.select_related("exercise"):
        assert item.exercise.slug in POSES  # drawn for it, not the fallback figure
        assert item.content_type == "image/png"
        with Image.open(media_root / item.file_name) as image:
            assert image.size == (480, 360)
    assert seed_exercise_media() == 0  # idempotent


def test_a_figure_is_a_line_drawing_on_white(seeded_templates, media_root):
    from programs.demo_figures import figure_png

    image = Image.open(io.BytesIO(figure_png("bridge", "Bridge"))).convert("RGB")
    colours = image.getcolors(maxcolors=100_000)
    assert colours is not None
    white = next(count for count, colour in colours if colour == (255, 255, 255))
    assert white > 0.8 * image.width * image.height
