"""Serializer plumbing shared by every app's API."""

from __future__ import annotations

from typing import Any, ClassVar

from drf_spectacular.extensions import OpenApiSerializerExtension
from rest_framework import serializers


class StrictSerializer(serializers.Serializer):
    """Rejects fields it does not know: a typo in a client must not be silently dropped."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


class FieldsOnceMixin:
    """For output serializers: build and bind the fields once per class, not per instance.

    DRF builds a serializer's fields anew for every instance (a ModelSerializer from the
    model, every declared field deep-copied, nested serializers with theirs), which is
    most of the cost of showing one object: the log POST answers one log per request.
    Output fields hold no state of the instance they are bound to, so one set, bound to a
    first instance, serves all of them with the same code, hence the same JSON. Not for
    fields whose `to_representation` reads `context` (hyperlinks, the request): the
    shared set's context is the first instance's, empty.
    """

    # One cache per class: a subclass gets its own set.
    _shared_readable_fields: ClassVar[dict[type, list[serializers.Field]]] = {}

    @property
    def _readable_fields(self) -> list[serializers.Field]:
        cls = type(self)
        shared = FieldsOnceMixin._shared_readable_fields.get(cls)
        if shared is None:
            first = cls()
            assert isinstance(first, serializers.Serializer)
            shared = [field for field in first.fields.values() if not field.write_only]
            FieldsOnceMixin._shared_readable_fields[cls] = shared
        return shared


class StrictBooleanField(serializers.BooleanField):
    """JSON `true`/`false` only: "yes" or 1 in a clinical answer is a client bug, not a yes."""

    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data: Any) -> bool:
        if isinstance(data, bool):
            return data
        self.fail("invalid")
        raise AssertionError("unreachable")


class StrictIntegerField(serializers.IntegerField):
    """An integer, never a string or a float: 6.5 is not a pain score."""

    default_error_messages = {"invalid": "Must be a whole number."}

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return int(super().to_internal_value(data))


class StrictFloatField(serializers.FloatField):
    """A JSON number, never a string: "38" for a temperature is a client bug."""

    default_error_messages = {"invalid": "Must be a number."}

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
