"""A log's JSON: the output serializer binds its fields once, and says exactly the same."""

from __future__ import annotations

import datetime as dt
from typing import Any
from unittest import mock

import pytest
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer

from config.serializers import FieldsOnceMixin
from rehab.models import DailyLog
from rehab.safety import SUPPRESSED_REMINDER, SafetyAnswers
from rehab.views.logs import LogOutputSerializer

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
    monkeypatch.setattr(
        LogOutputSerializer, "_readable_fields", serializers.Serializer._readable_fields
    )


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
    class Small(FieldsOnceMixin, serializers.Serializer):
        name = serializers.CharField()

    class Smaller(Small):
        name = None  # type: ignore[assignment]
        size = serializers.IntegerField()

    assert Small({"name": "a", "size": 1}).data == {"name": "a"}
    assert Smaller({"name": "a", "size": 1}).data == {"size": 1}
