"""Marking safety translations reviewed (docs/app-developers.md § Languages)."""

from __future__ import annotations

from collections.abc import Iterable

from patients.models import User
from rehab.models import TranslationReview
from rehab.translations import SAFETY_TEXTS, is_translated, safety_text, translation_hash


def translations_mark_reviewed(*, reviewer: User, language: str, keys: Iterable[str]) -> int:
    """Record that `reviewer` found the current translations of `keys` in `language`
    clinically right; returns how many were marked. A text without a translation is not
    marked (it is shown in English), and marking one twice records it once."""
    rows = [
        TranslationReview(
            language=language,
            message_key=key,
            translation_hash=translation_hash(key, language),
            source_text=SAFETY_TEXTS[key],
            translated_text=safety_text(key, language),
            reviewed_by=reviewer,
        )
        for key in keys
        if key in SAFETY_TEXTS and is_translated(key, language)
    ]
    # ON CONFLICT DO NOTHING: a second mark of the same translation is no error.
    TranslationReview.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)
