"""Marking safety translations reviewed (docs/app-developers.md § Languages)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from patients.models import User
from rehab.models import TranslationReview
from rehab.translations import SAFETY_TEXTS, is_translated, safety_text, translation_hash


@transaction.atomic
def translations_mark_reviewed(
    *, reviewer: User, language: str, keys: Iterable[str]
) -> list[TranslationReview]:
    """Record that `reviewer` found the current translations of `keys` in `language`
    clinically right; returns the reviews newly recorded. A text without a translation
    is not marked (it is shown in English), and marking one twice records it once."""
    created = []
    for key in keys:
        if key not in SAFETY_TEXTS or not is_translated(key, language):
            continue
        review, new = TranslationReview.objects.get_or_create(
            language=language,
            message_key=key,
            translation_hash=translation_hash(key, language),
            defaults={
                "source_text": SAFETY_TEXTS[key],
                "translated_text": safety_text(key, language),
                "reviewed_by": reviewer,
            },
        )
        if new:
            created.append(review)
    return created
