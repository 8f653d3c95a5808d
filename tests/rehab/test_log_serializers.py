"""The log serializers bind their fields once per class, and answer exactly the same."""

from __future__ import annotations

import datetime as dt
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer

from config.serializers import FieldsOnceMixin
from rehab.models import DailyLog
from rehab.safety import SUPPRESSED_REMINDER, SafetyAnswers
from rehab.safety.vocab import SAFETY_FIELDS
from rehab.views.logs import LogInputSerializer, LogOutputSerializer, LogPatchSerializer

pytestmark = pytest.mark.django_db

DAY = dt.date(2026, 11, 20)
ADVICE = {"severity": "urgent", "rules": ["RF-CES-06"], "message": "Contact your physio today."}


def _logs(patient: Any) -> list[DailyLog]:
    variants: list[dict[str, Any]] = [
        {"pain": 0, "safety": SafetyAnswers().as_dict()},
        {
            "pain": 10,
            "leg_pain": 7,
            "back_pain": 0,
            "worst_pain": 10,
            "leg_pain_side": "both",
            "function": 3,
            "sleep": "constant_any_position",
            "notes": '  Spaces kept, ünïcödé, "quotes" and\nnewlines.  ',
            "safety": SafetyAnswers(both_legs="unchanged_assessed", temperature_c=38.4).as_dict(),
            "safety_advice": {**ADVICE, "note": SUPPRESSED_REMINDER},
            "safety_reminder": SUPPRESSED_REMINDER,
        },
        # Rows as older code may have stored them: answers missing, a whole-number
        # temperature, advice without the optional note.
        {"pain": 4, "safety": {"fever": True, "temperature_c": 38}, "safety_advice": ADVICE},
        {"pain": 5, "safety": {}, "version": 3},
    ]
    return [
        DailyLog.objects.create(patient=patient, date=DAY - dt.timedelta(days=i), **fields)
        for i, fields in enumerate(variants)
    ]


def _built_per_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(LogOutputSerializer, "fields", serializers.Serializer.fields)


def test_it_shows_a_log_exactly_as_fields_built_per_instance_would(
    patient, other_patient, monkeypatch
):
    # As the POST shows a log (just created), and as a read does (from the database).
    fresh = [*_logs(patient), *(DailyLog.objects.get(pk=log.pk) for log in _logs(other_patient))]
    shared = [JSONRenderer().render(LogOutputSerializer(log).data) for log in fresh]
    shared_list = JSONRenderer().render(LogOutputSerializer(fresh, many=True).data)

    _built_per_instance(monkeypatch)
    reference = [JSONRenderer().render(LogOutputSerializer(log).data) for log in fresh]

    assert shared == reference
    assert shared_list == JSONRenderer().render(LogOutputSerializer(fresh, many=True).data)
    assert b'"temperature_c":38.0' in shared[2]  # the float field still converts
    assert b'"note"' not in shared[2]
    assert b'"note"' in shared[1]


def test_it_builds_the_output_fields_once(patient):
    logs = _logs(patient)
    LogOutputSerializer(logs[0]).data  # noqa: B018 - the first use builds them
    with mock.patch.object(
        LogOutputSerializer, "get_fields", wraps=LogOutputSerializer().get_fields
    ) as get_fields:
        for log in logs:
            assert LogOutputSerializer(log).data["id"] == str(log.pk)
        assert LogOutputSerializer(logs, many=True).data[1]["pain"] == 10

    assert get_fields.call_count == 0


def test_it_keeps_one_set_of_fields_per_class():
    class Small(FieldsOnceMixin, serializers.Serializer[Any]):
        name = serializers.CharField()

    class Smaller(Small):
        name = None  # type: ignore[assignment]
        size = serializers.IntegerField()

    assert Small({"name": "a", "size": 1}).data == {"name": "a"}
    assert Smaller({"name": "a", "size": 1}).data == {"size": 1}


# --------------------------------------------------------------------------- input

_ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 2_000) | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(), inner, max_size=2),
    max_leaves=3,
)


_SAFETY_GOOD = st.fixed_dictionaries(
    {},
    optional={
        "saddle_numbness": st.sampled_from(["no", "new_or_worse", "unchanged_assessed"]),
        "sexual_function_change": st.sampled_from(["no", "prefer_not_to_say", None]),
        "weakness": st.sampled_from(["none", "foot_drop", "both_legs"]),
        "fever": st.booleans() | st.none(),
        "temperature_c": st.floats(34, 43) | st.none(),
        "injury": st.sampled_from(["none", "minor", "major"]),
    },
)
# A valid body, then up to two fields (or the safety check's answers) made anything at
# all: most bodies are valid, the rest fail in every way a field can.
_VALID = st.fixed_dictionaries(
    {"date": st.dates().map(dt.date.isoformat), "pain": st.integers(0, 10)},
    optional={
        "id": st.uuids().map(str),
        "leg_pain": st.integers(0, 10) | st.none(),
        "back_pain": st.integers(0, 10) | st.none(),
        "worst_pain": st.integers(0, 10) | st.none(),
        "leg_pain_side": st.sampled_from(["none", "left", "right", "both", None]),
        "function": st.integers(0, 10) | st.none(),
        "sleep": st.sampled_from(["undisturbed", "disturbed", "constant_any_position", None]),
        "notes": st.text(max_size=30) | st.none(),
        "safety": _SAFETY_GOOD | st.none(),
    },
)
_FIELDS = ["id", "date", "pain", "leg_pain", "leg_pain_side", "sleep", "notes", "safety", "typo"]
_BAD_VALUES = _ANY_JSON | st.sampled_from(["2026-02-30", "20261120", 11, -1, 5.0, "5", "x" * 2001])


@st.composite
def _bodies(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = draw(_VALID)
    body.update(draw(st.dictionaries(st.sampled_from(_FIELDS), _BAD_VALUES, max_size=2)))
    if isinstance(body.get("safety"), dict) and draw(st.booleans()):
        answers = st.sampled_from([*SAFETY_FIELDS, "made_up"])
        body["safety"] = {**body["safety"], **draw(st.dictionaries(answers, _BAD_VALUES))}
    return body


_BODIES = _bodies()


def _validate(cls: type[serializers.Serializer[Any]], body: Any, partial: bool) -> tuple[Any, ...]:
    serializer = cls(data=body, partial=partial)
    valid = serializer.is_valid()
    return (valid, serializer.errors, dict(serializer.validated_data) if valid else None)


@settings(max_examples=400, derandomize=True, database=None, deadline=None)
@given(body=_BODIES, patch=st.booleans())
def test_it_validates_a_body_exactly_as_fields_built_per_instance_would(
    body: dict[str, Any], patch: bool
) -> None:
    cls, partial = (LogPatchSerializer, True) if patch else (LogInputSerializer, False)
    shared = _validate(cls, body, partial)
    with mock.patch.object(cls, "fields", serializers.Serializer.fields):
        reference = _validate(cls, body, partial)

    assert shared == reference


def test_it_keeps_apart_the_fields_of_a_partial_serializer():
    assert LogInputSerializer(data={}, partial=True).is_valid()
    # Built for a partial serializer first, the shared fields must not skip the required
    # ones of a full one.
    full = LogInputSerializer(data={})
    assert not full.is_valid()
    assert set(full.errors) == {"date", "pain"}
    assert LogPatchSerializer(data={"pain": 3}, partial=True).is_valid()
