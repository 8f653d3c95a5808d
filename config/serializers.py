"""Serializer plumbing shared by every app's API."""

from __future__ import annotations

from typing import Any, ClassVar

from django.utils import translation
from django.utils.translation import gettext, gettext_lazy
from drf_spectacular.extensions import OpenApiSerializerExtension
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail


class StrictSerializer(serializers.Serializer[Any]):
    # Rejects fields it does not know: a typo in a client must not be silently dropped.
    # (A comment: a docstring would become the schema description of every request body;
    # StrictSerializerScheme below says it as `additionalProperties: false`.)

    def to_internal_value(self, data: Any) -> Any:
        unknown = sorted(set(data) - set(self.fields)) if isinstance(data, dict) else []
        errors: dict[str, Any] = {
            name: [ErrorDetail(gettext("Unknown field."), code="unknown_field")] for name in unknown
        }
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if not unknown or not isinstance(exc.detail, dict):
                raise
            # Every problem of the body in one answer: a typo must not hide the others.
            raise serializers.ValidationError({**exc.detail, **errors}) from exc
        if unknown:
            raise serializers.ValidationError(errors)
        return value


class FieldsOnceMixin:
    # (A comment, not a docstring: drf-spectacular would show a docstring as the description
    # of every serializer that uses the mixin, in the public schema.)
    # Build and bind a serializer's fields once per class, not once per instance.
    #
    # DRF builds a serializer's fields anew for every instance (a ModelSerializer from the
    # model, every declared field deep-copied, nested serializers with theirs): most of the
    # cost of validating a log or of showing one, on the hottest endpoint. Fields keep no
    # state of the instance they are bound to while they validate or represent, only what
    # its root says: `partial` (absent fields are skipped, not defaulted) and `context`. So
    # one set, bound to a first instance of the class with the same `partial`, serves them
    # all: the same field code runs, hence the same answers.
    #
    # Only for the root serializer of a request (nested ones follow their root), with
    # fields that do not read `context` (the shared set's is empty: no hyperlinks, no
    # request), and never for a serializer that adds fields per instance.
    #
    # One set per language too: DRF formats some messages once per field and keeps them
    # (`lazy_format` in the min/max validators), so a set shared across languages would
    # answer every patient in the language of the first request it served.

    partial: bool
    _shared_fields: ClassVar[dict[tuple[type, bool, str | None], Any]] = {}

    @property
    def fields(self) -> Any:
        # Looked up once per instance: reading the active language costs a few us, and
        # DRF asks for `fields` several times while it validates or represents.
        mine = self.__dict__.get("_fields_once")
        if mine is not None:
            return mine
        key = (type(self), bool(self.partial), translation.get_language())
        shared = FieldsOnceMixin._shared_fields.get(key)
        if shared is None:
            cls: Any = type(self)
            first = cls(partial=key[1])
            shared = serializers.Serializer.fields.func(first)  # type: ignore[attr-defined]
            FieldsOnceMixin._shared_fields[key] = shared
        self.__dict__["_fields_once"] = shared
        return shared


class StrictBooleanField(serializers.BooleanField):
    """JSON `true`/`false` only: "yes" or 1 in a clinical answer is a client bug, not a yes."""

    default_error_messages = {"invalid": gettext_lazy("Must be true or false.")}

    def to_internal_value(self, data: Any) -> bool:
        if isinstance(data, bool):
            return data
        self.fail("invalid")
        raise AssertionError("unreachable")


class StrictIntegerField(serializers.IntegerField):
    """An integer, never a string or a float: 6.5 is not a pain score."""

    default_error_messages = {"invalid": gettext_lazy("Must be a whole number.")}

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return int(super().to_internal_value(data))


class StrictFloatField(serializers.FloatField):
    """A JSON number, never a string: "38" for a temperature is a client bug."""

    default_error_messages = {"invalid": gettext_lazy("Must be a number.")}

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        return float(super().to_internal_value(data))


class StrictSerializerScheme(OpenApiSerializerExtension):
    """Tell clients, in the OpenAPI schema, that unknown fields are refused."""

    target_class = StrictSerializer
    match_subclasses = True

    def map_serializer(self, auto_schema: Any, direction: str) -> Any:
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if direction == "request":
            schema["additionalProperties"] = False
        return schema
