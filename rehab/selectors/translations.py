"""Which safety translations clinicians have reviewed (rehab/translations.py)."""

from __future__ import annotations

from collections.abc import Iterable

from rehab.models import TranslationReview


def reviewed_hashes(*, language: str, keys: Iterable[str]) -> dict[str, set[str]]:
    """The reviewed translation hashes of `keys` in `language`, by key."""
    found: dict[str, set[str]] = {}
    rows = TranslationReview.objects.filter(
        language=language, message_key__in=list(keys)
    ).values_list("message_key", "translation_hash")
    for key, digest in rows:
        found.setdefault(key, set()).add(digest)
    return found
