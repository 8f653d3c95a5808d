"""The safety texts in the patient's language (docs/app-developers.md § Languages).

The rules (`rehab/safety/`) stay pure Python and speak English: each message and reminder
is an English text under a key. Translation happens here, at the edge, through Django's
gettext with the English text as the msgid, so the catalogue in `locale/` holds them
beside every other text (`bin/translations.py update` collects them from `SAFETY_TEXTS`).

A clinician marks each translation reviewed (`TranslationReview`, in the admin); until
then, the English is shown beside it. The review is tied to a hash of the English and
the translation, so a changed text or translation is unreviewed again.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Mapping
from typing import Any, Final

from django.conf import settings
from django.utils.translation import trans_real

from config.i18n import DEFAULT_LANGUAGE, current_language
from rehab.safety import MESSAGES, REMINDERS, Evaluation
from rehab.selectors.translations import reviewed_hashes

# Every safety text a patient can be shown, by key: the rules' messages and the reminders.
SAFETY_TEXTS: Final[Mapping[str, str]] = {**MESSAGES, **REMINDERS}
assert len(SAFETY_TEXTS) == len(MESSAGES) + len(REMINDERS), "a reminder key names a message"


@functools.cache
def safety_text(key: str, language: str) -> str:
    """The text of `key` in `language`; the English when it has no translation yet.

    Read from that language's catalogue without activating it (activating costs a
    thread-local write each way), and cached: the catalogues are fixed while the process
    runs."""
    return trans_real.translation(language).gettext(SAFETY_TEXTS[key])


@functools.cache
def translation_hash(key: str, language: str) -> str:
    """What a review is tied to: the English and its translation, both."""
    source = SAFETY_TEXTS[key]
    return hashlib.sha256(f"{source}\0{safety_text(key, language)}".encode()).hexdigest()


def is_translated(key: str, language: str) -> bool:
    return language == DEFAULT_LANGUAGE or safety_text(key, language) != SAFETY_TEXTS[key]


def unreviewed_keys(language: str, keys: Iterable[str]) -> set[str]:
    """Those of `keys` shown in `language` from a translation no clinician has reviewed
    (an untranslated text is shown in English: nothing to review)."""
    keys = [key for key in keys if is_translated(key, language)]
    if language == DEFAULT_LANGUAGE or not keys:
        return set()
    reviewed = reviewed_hashes(language=language, keys=keys)
    return {key for key in keys if translation_hash(key, language) not in reviewed.get(key, ())}


def localized_advice(evaluation: Evaluation) -> dict[str, Any] | None:
    """`safety_advice` in the active language (the request's: the patient's own).

    `language` is the language actually shown (English when the message has no
    translation); an unreviewed translation carries its English beside it, in
    `message_en` (and `note_en` for the reminders), for the app to show as well.
    """
    advice = evaluation.advice
    if advice is None:
        return None
    out = advice.as_dict()
    language = current_language()
    if language == DEFAULT_LANGUAGE:
        return out
    key = advice.message_key
    note_keys = evaluation.reminder_keys if advice.note is not None else ()
    unreviewed = unreviewed_keys(language, (key, *note_keys))
    if is_translated(key, language):
        out["message"] = safety_text(key, language)
        out["language"] = language
        if key in unreviewed:
            out["message_en"] = advice.message
    if note_keys:
        out["note"] = " ".join(safety_text(k, language) for k in note_keys)
        if unreviewed & set(note_keys):
            out["note_en"] = advice.note
    return out


def localized_reminder(evaluation: Evaluation) -> str | None:
    """`safety_reminder` in the active language; an unreviewed translation is followed by
    the English, on a line of its own (the field is one text the app shows as it is)."""
    keys = evaluation.reminder_keys
    if not keys:
        return None
    language = current_language()
    text = " ".join(safety_text(key, language) for key in keys)
    if language != DEFAULT_LANGUAGE and unreviewed_keys(language, keys):
        return f"{text}\n\n{evaluation.reminder}"
    return text


def localized_catalogue_texts(language: str) -> tuple[dict[str, str], dict[str, str]]:
    """The messages and the reminders in `language`, for the offline catalogue."""
    messages = {key: safety_text(key, language) for key in MESSAGES}
    reminders = {key: safety_text(key, language) for key in REMINDERS}
    return messages, reminders


def english_beside(language: str) -> dict[str, str]:
    """The English of every text whose translation in `language` is unreviewed."""
    return {key: SAFETY_TEXTS[key] for key in sorted(unreviewed_keys(language, SAFETY_TEXTS))}


def translation_status() -> list[dict[str, Any]]:
    """Every safety text in every language but English: its translation and whether a
    clinician reviewed it (what the admin lists)."""
    rows = []
    for language, _name in settings.LANGUAGES:
        if language == DEFAULT_LANGUAGE:
            continue
        unreviewed = unreviewed_keys(language, SAFETY_TEXTS)
        for key, source in SAFETY_TEXTS.items():
            translated = is_translated(key, language)
            rows.append(
                {
                    "language": language,
                    "key": key,
                    "source": source,
                    "translation": safety_text(key, language) if translated else "",
                    "state": (
                        "untranslated"
                        if not translated
                        else "unreviewed"
                        if key in unreviewed
                        else "reviewed"
                    ),
                }
            )
    return rows
