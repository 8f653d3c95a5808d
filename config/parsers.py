"""The one JSON parser of the API: JSON that cannot be stored or is built to hurt is a 400.

DRF's parser turns JSON nested a few thousand deep into a RecursionError (a 500), and
passes NUL characters and lone surrogates on: PostgreSQL text cannot hold a NUL, UTF-8
cannot encode a lone surrogate, so either became a 500 somewhere later (the database, the
renderer echoing a bad choice) with the value in the error log. docs/security.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.utils.translation import gettext
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# Far deeper than any request body of this API (a log is two levels).
MAX_DEPTH = 20

# NUL, and any UTF-16 surrogate: a valid pair in JSON (\ud83d\ude00) decodes to one
# character above U+FFFF, so a surrogate left in a decoded string stands alone.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable_text(value: str) -> bool:
    return _UNSTORABLE.search(value) is not None


class StrictJSONParser(JSONParser):
    """DRF's JSON parser, plus: nesting at most `MAX_DEPTH` deep, and no NUL or lone
    surrogate in any string or key. The error never quotes the input."""

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError(_too_deep()) from exc
        _check(data)
        return data


def _too_deep() -> str:
    # Translated: the parser runs in the view, after the patient's language is active.
    return gettext("JSON nested deeper than %(depth)s levels.") % {"depth": MAX_DEPTH}


def _check(data: Any) -> None:
    # Iterative, so that the check itself cannot recurse too deep; the strings are
    # searched in one pass at the end (one regex call, not one per string).
    texts: list[str] = []
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, dict):
            if depth > MAX_DEPTH:
                raise ParseError(_too_deep())
            texts.extend(value)  # keys are strings in JSON
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            if depth > MAX_DEPTH:
                raise ParseError(_too_deep())
            stack.extend((item, depth + 1) for item in value)
    if unstorable_text("".join(texts)):
        raise ParseError(gettext("Text may not contain NUL characters or lone surrogates."))
