"""The daily log's body and answer on the hottest endpoint, without DRF's per-field
machinery, for the bodies (and logs) of the everyday shape; everything else goes through
the serializers as before. docs/architecture.md § The log POST's plain path.

DRF validates and represents a log field object by field object, each with its own
validators and hooks: about a quarter of the Python a log POST costs. Every phone sends
the same plain shape (JSON strings, integers, booleans, null), so:

- `plain_input(body)` gives what `LogInputSerializer` would validate the body to, or
  `None` when the body is anything but plainly valid (a wrong type, a value out of range,
  an unknown field, a date written another way...). `None` sends the body through the
  serializer, which then validates it, or answers the 400 that names every problem, as
  it always did. So this only ever accepts a subset of what the serializer accepts, with
  the same result; tests/rehab/test_plain_logs.py holds it to that on generated bodies.
- `plain_output(log)` is `LogOutputSerializer(log).data` for a log whose stored values
  have their usual types (the same test holds it to that); any other log is represented
  by the serializer.

`rehab/views/logs.py` makes the two from its serializers (`PlainInput`, `PlainOutput`).
The rules (which fields, their ranges, choices and nullability) are read from the
serializers' own fields when this module is imported, so the schema, the serializer and
this path cannot drift apart; a field of a kind this module does not know stops the
import.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.core import validators
from django.utils import timezone
from rest_framework import serializers
from rest_framework.validators import ProhibitSurrogateCharactersValidator

from config.parsers import unstorable_text
from config.serializers import StrictBooleanField, StrictFloatField, StrictIntegerField
from rehab.models import DailyLog

# One value's check: the validated value, or _NOT_PLAIN.
_NOT_PLAIN: Any = object()
Check = Callable[[Any], Any]

# A date exactly as ISO 8601 writes it; the serializer also takes other spellings.
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z", re.ASCII)
_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\Z", re.ASCII)


def _integer(field: StrictIntegerField) -> Check:
    low, high = field.min_value, field.max_value

    def check(value: Any) -> Any:
        if type(value) is not int:
            return _NOT_PLAIN
        if (low is not None and value < low) or (high is not None and value > high):
            return _NOT_PLAIN
        return value

    return check


def _number(field: StrictFloatField) -> Check:
    low, high = field.min_value, field.max_value

    def check(value: Any) -> Any:
        if type(value) is not int and type(value) is not float:
            return _NOT_PLAIN
        number = float(value)
        if (low is not None and number < low) or (high is not None and number > high):
            return _NOT_PLAIN
        return number

    return check


def _boolean(value: Any) -> Any:
    return value if type(value) is bool else _NOT_PLAIN


def _choice(field: serializers.ChoiceField) -> Check:
    choices = frozenset(k for k in field.choice_strings_to_values if isinstance(k, str))

    def check(value: Any) -> Any:
        # Only a choice's own string: the serializer maps it to itself.
        return value if type(value) is str and value in choices else _NOT_PLAIN

    return check


def _text(field: serializers.CharField) -> Check:
    longest, blank = field.max_length, field.allow_blank
    if field.min_length is not None:
        raise TypeError("plain_logs: no plain check for a minimum length")

    def check(value: Any) -> Any:
        if type(value) is not str or (longest is not None and len(value) > longest):
            return _NOT_PLAIN
        if (not blank and not value.strip()) or unstorable_text(value):
            return _NOT_PLAIN
        return value

    return check


def _date(value: Any) -> Any:
    if type(value) is not str or not _ISO_DATE.match(value):
        return _NOT_PLAIN
    try:
        return date.fromisoformat(value)
    except ValueError:
        return _NOT_PLAIN


def _uuid(value: Any) -> Any:
    if type(value) is not str or not _UUID.match(value):
        return _NOT_PLAIN
    return uuid.UUID(value)


class _Object:
    """A serializer's fields as checks: the plain validated dict, or `_NOT_PLAIN`."""

    def __init__(self, serializer: serializers.Serializer[Any]) -> None:
        self.fields: dict[str, tuple[Check, bool, bool]] = {}
        for name, field in serializer.fields.items():
            if field.read_only:
                continue
            if (
                field.source != name
                or _validates(serializer, name)
                or any(type(v) not in _KNOWN_VALIDATORS for v in field.validators)
            ):
                raise TypeError(f"plain_logs: {name} has a source or validators of its own")
            self.fields[name] = (_check_for(field), field.required, field.allow_null)
        if _validates(serializer, None):
            raise TypeError("plain_logs: the serializer has a validate() of its own")

    def __call__(self, body: Any) -> Any:
        if type(body) is not dict:
            return _NOT_PLAIN
        fields = self.fields
        out: dict[str, Any] = {}
        for name, value in body.items():
            spec = fields.get(name)
            if spec is None:
                return _NOT_PLAIN  # unknown: the serializer names it
            if value is None:
                if not spec[2]:
                    return _NOT_PLAIN
                out[name] = None
                continue
            checked = spec[0](value)
            if checked is _NOT_PLAIN:
                return _NOT_PLAIN
            out[name] = checked
        for name, (_, required, _) in fields.items():
            if required and name not in out:
                return _NOT_PLAIN
        return out


# The validators DRF gives the fields from their arguments, which the checks above apply
# from the same arguments (`max_length`, `min_value`, `max_value`; NUL and surrogates).
_KNOWN_VALIDATORS = (
    validators.MaxLengthValidator,
    validators.MinValueValidator,
    validators.MaxValueValidator,
    validators.ProhibitNullCharactersValidator,
    ProhibitSurrogateCharactersValidator,
)


def _validates(serializer: serializers.Serializer[Any], name: str | None) -> bool:
    hook = "validate" if name is None else f"validate_{name}"
    own = getattr(type(serializer), hook, None)
    return own is not None and own is not getattr(serializers.Serializer, hook, None)


def _check_for(field: serializers.Field[Any, Any, Any, Any]) -> Check:
    # Subclasses before their bases (a StrictIntegerField is an IntegerField).
    if isinstance(field, serializers.Serializer):
        return _Object(field)
    if isinstance(field, StrictIntegerField):
        return _integer(field)
    if isinstance(field, StrictFloatField):
        return _number(field)
    if isinstance(field, StrictBooleanField):
        return _boolean
    if isinstance(field, serializers.ChoiceField):
        return _choice(field)
    if isinstance(field, serializers.UUIDField):
        return _uuid
    if isinstance(field, serializers.DateField):
        return _date
    if type(field) is serializers.CharField:
        return _text(field)
    raise TypeError(f"plain_logs: no plain check for {type(field).__name__}")


# ------------------------------------------------------------------------------ output

# The safety answers' kinds, as the output serializer represents them.
_BOOLEAN, _CHOICE, _FLOAT = "boolean", "choice", "float"


# How `_Output` shows each field of the log.
_AS_NESTED, _AS_INTEGER, _AS_TEXT, _AS_UUID, _AS_DAY, _AS_MOMENT = (
    "nested",
    "integer",
    "text",
    "uuid",
    "day",
    "moment",
)


def _shown_as(name: str, field: serializers.Field[Any, Any, Any, Any]) -> str:
    if field.source != name:
        raise TypeError(f"plain_logs: {name} is shown from another attribute")
    if name in ("safety", "safety_advice"):
        return _AS_NESTED
    # Subclasses before their bases (a DateTimeField is not a DateField, but be explicit).
    for kind, types in (
        (_AS_MOMENT, (serializers.DateTimeField,)),
        (_AS_DAY, (serializers.DateField,)),
        (_AS_UUID, (serializers.UUIDField,)),
        (_AS_INTEGER, (serializers.IntegerField,)),
        (_AS_TEXT, (serializers.ChoiceField, serializers.CharField)),
    ):
        if isinstance(field, types):
            return kind
    raise TypeError(f"plain_logs: no plain output for {name} ({type(field).__name__})")


def _safety_kinds(serializer: serializers.Serializer[Any]) -> tuple[tuple[str, str], ...]:
    kinds: list[tuple[str, str]] = []
    for name, field in serializer.fields.items():
        if isinstance(field, StrictBooleanField):
            kinds.append((name, _BOOLEAN))
        elif isinstance(field, serializers.ChoiceField):
            kinds.append((name, _CHOICE))
        elif isinstance(field, StrictFloatField):
            kinds.append((name, _FLOAT))
        else:
            raise TypeError(f"plain_logs: no plain output for safety.{name}")
    return tuple(kinds)


class _Output:
    def __init__(self, serializer: serializers.Serializer[Any]) -> None:
        if not settings.USE_TZ:
            raise TypeError("plain_logs: moments are shown as DRF shows aware ones")
        fields = serializer.fields
        safety, advice_serializer = fields["safety"], fields["safety_advice"]
        if not isinstance(safety, serializers.Serializer) or not isinstance(
            advice_serializer, serializers.Serializer
        ):
            raise TypeError("plain_logs: safety and safety_advice are nested serializers")
        self.safety = _safety_kinds(safety)
        advice = advice_serializer.fields
        self.advice = tuple(advice)
        self.advice_required = frozenset(n for n, f in advice.items() if f.required)
        # Each shown field and how it is shown, from the serializer's own fields.
        self.plan = tuple((name, _shown_as(name, field)) for name, field in fields.items())

    def __call__(self, log: DailyLog) -> dict[str, Any] | None:
        zone = timezone.get_current_timezone()
        out: dict[str, Any] = {}
        for name, kind in self.plan:
            value = getattr(log, name)
            if kind is _AS_NESTED:
                value = self._safety(value) if name == "safety" else self._advice(value)
                if (value is None and name == "safety") or value is _NOT_PLAIN:
                    return None
            elif value is None:
                pass
            elif kind is _AS_INTEGER or kind is _AS_TEXT:
                if type(value) is not (int if kind is _AS_INTEGER else str):
                    return None
            elif kind is _AS_UUID:
                value = str(value)
            elif kind is _AS_DAY:
                if type(value) is not date:
                    return None
                value = value.isoformat()
            else:  # a moment, as DRF shows an aware one: the current zone, "Z" for UTC
                if type(value) is not datetime or value.utcoffset() is None:
                    return None
                text = value.astimezone(zone).isoformat()
                value = text[:-6] + "Z" if text.endswith("+00:00") else text
            out[name] = value
        return out

    def _safety(self, stored: Any) -> dict[str, Any] | None:
        if type(stored) is not dict:
            return None
        out: dict[str, Any] = {}
        for name, kind in self.safety:
            value = stored.get(name)
            if value is None:
                out[name] = None
            elif (kind is _BOOLEAN and type(value) is bool) or (
                kind is _CHOICE and type(value) is str
            ):
                out[name] = value
            elif kind is _FLOAT and (type(value) is float or type(value) is int):
                out[name] = float(value)
            else:
                return None
        return out

    def _advice(self, stored: Any) -> Any:
        if stored is None:
            return None
        if type(stored) is not dict or not self.advice_required <= stored.keys():
            return _NOT_PLAIN
        out: dict[str, Any] = {}
        for name in self.advice:
            if name not in stored:
                continue  # optional keys the advice does not carry are left out
            value = stored[name]
            if name == "rules":
                if type(value) is not list or any(type(rule) is not str for rule in value):
                    return _NOT_PLAIN
                out[name] = list(value)
            elif value is None or type(value) is str:
                out[name] = value
            else:
                return _NOT_PLAIN
        return out


class PlainInput:
    """`plain_input` for a serializer class: built from its fields on first use."""

    def __init__(self, serializer_class: type[serializers.Serializer[Any]]) -> None:
        self.serializer_class = serializer_class
        self._checks: _Object | None = None

    def __call__(self, body: Any) -> dict[str, Any] | None:
        """What the serializer validates `body` to, when it is plainly valid; else None."""
        if self._checks is None:
            self._checks = _Object(self.serializer_class())
        checked = self._checks(body)
        return None if checked is _NOT_PLAIN else checked


class PlainOutput:
    """`plain_output` for the log's output serializer class: built on first use."""

    def __init__(self, serializer_class: type[serializers.Serializer[Any]]) -> None:
        self.serializer_class = serializer_class
        self._output: _Output | None = None

    def __call__(self, log: DailyLog) -> dict[str, Any] | None:
        """The serializer's `.data` for a log of the usual types; else None."""
        if self._output is None:
            self._output = _Output(self.serializer_class())
        return self._output(log)
