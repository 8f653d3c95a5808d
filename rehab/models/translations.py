"""Clinicians' reviews of the translated safety texts (docs/app-developers.md § Languages)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class TranslationReview(models.Model):
    """A clinician read one safety text in one language and found it clinically right.

    Keyed by the hash of the English source and the translation together: a changed
    text, or a changed translation, has another hash and is unreviewed again, while the
    row of the old one stays as the record of what was reviewed.
    """

    language = models.CharField(max_length=8, choices=settings.LANGUAGES)
    message_key = models.CharField(max_length=40)
    translation_hash = models.CharField(max_length=64)
    # The texts as reviewed, so the record says what was read even after they change.
    source_text = models.TextField()
    translated_text = models.TextField()
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=("language", "message_key", "translation_hash"),
                name="translationreview_once_per_translation",
            )
        ]

    def __str__(self) -> str:
        return f"{self.message_key} ({self.language})"
