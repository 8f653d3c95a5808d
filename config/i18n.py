"""Which language a text is shown in (docs/app-developers.md § Languages).

A patient reads the app in their profile's language, else their phone's `Accept-Language`,
else English; the codes are those of `settings.LANGUAGES` (`en`, `es`). Everything here is
cheap enough for every API request: Django caches both the header's parse and the look-up
of a supported variant.
"""

from __future__ import annotations

import functools

from django.conf import settings
from django.utils import translation
from django.utils.translation.trans_real import parse_accept_lang_header

DEFAULT_LANGUAGE = "en"


def supported_language(code: str | None) -> str | None:
    """`code` as one of settings.LANGUAGES (`es-MX` -> `es`, `en-gb` -> `en`), or None."""
    if not code:
        return None
    try:
        variant = translation.get_supported_language_variant(code)
    except LookupError:
        return None
    languages = {lang for lang, _name in settings.LANGUAGES}
    return variant if variant in languages else variant.split("-")[0]


@functools.lru_cache(maxsize=512)
def accept_language(header: str) -> str | None:
    """The first language of an `Accept-Language` header that we speak, or None. Cached:
    phones send a handful of distinct headers, and this runs on every API request."""
    for code, _quality in parse_accept_lang_header(header):
        if code == "*":
            break
        found = supported_language(code)
        if found is not None:
            return found
    return None


def current_language() -> str:
    """The language texts are being translated into now, as a settings.LANGUAGES code."""
    return supported_language(translation.get_language()) or DEFAULT_LANGUAGE


# Set on the HttpRequest by whoever activates a language for it, so that the middleware
# deactivates only then: the thread-local activation costs ~10 us each way, and most
# requests (English) need none, English being the default.
ACTIVATED_ATTRIBUTE = "_language_activated"


def activate_for_request(request: object, language: str) -> None:
    """Activate `language` for the rest of this request (ApiLanguageMiddleware ends it)."""
    translation.activate(language)
    setattr(request, ACTIVATED_ATTRIBUTE, True)
