"""Seed the global education cards in English and Spanish (programs/education/content.py).

Idempotent: cards are keyed by slug and a language's first version is only created when
that language has none, so running it again (tests do, after a flush) adds nothing and
never touches a later version or a clinic's own cards.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

from programs.education.content import seed_cards


def seed(apps: Any, schema_editor: Any = None) -> None:
    seed_cards(apps)


class Migration(migrations.Migration):
    dependencies = [("programs", "0004_template_pain_ceiling_education_cards")]

    # Reversing keeps the rows: patients' read receipts point at them.
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
