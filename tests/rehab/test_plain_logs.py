"""The log POST's plain path (rehab/views/plain_logs.py) against the serializers it stands in
for: whatever body it accepts, `LogInputSerializer` accepts too and validates to the same
values, of the same types; whatever log it represents, it represents as
`LogOutputSerializer` does, byte for byte once rendered. And the everyday bodies and logs
do take it (else the comparison would hold by never being made)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.renderers import JSONRenderer

from rehab.models import DailyLog
from rehab.safety import vocab
from rehab.services.logs import normalise
from rehab.views.logs import (
    LogInputSerializer,
    LogOutputSerializer,
    log_data,
    plain_input,
    plain_output,
)

SAFETY_CHOICES = {
    "saddle_numbness": vocab.SYMPTOM_ANSWERS,
    "bladder_change": vocab.SYMPTOM_ANSWERS,
    "bowel_change": vocab.SYMPTOM_ANSWERS,
    "sexual_function_change": vocab.SEXUAL_FUNCTION_ANSWERS,
    "both_legs": vocab.SYMPTOM_ANSWERS,
    "weakness": vocab.WEAKNESS_ANSWERS,
    "numbness_spread": vocab.NUMBNESS_SPREAD_ANSWERS,
    "injury": vocab.INJURY_ANSWERS,
}
SAFETY_BOOLEANS = (
    "walking_unsteady_new",
    "fever",
    "feel_very_unwell",
    "pain_new_or_rapidly_worse",
    "unexplained_weight_loss",
    "thoracic_or_band_pain",
)
SCORES = ("pain", "leg_pain", "back_pain", "worst_pain", "function")


def same(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (38 == 38.0, True == 1 in Python)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


# Values of every JSON type, near the edges of what the fields accept.
odd = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=13),
    st.floats(min_value=30, max_value=45, allow_nan=False),
    st.sampled_from(["", " ", "5", "yes", "no", "true", "left", "2026-12-01", "20261201"]),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.sampled_from(["a", "fever"]), st.booleans(), max_size=1),
)


def _safety_value(name: str) -> st.SearchStrategy[Any]:
    if name in SAFETY_CHOICES:
        return st.one_of(st.sampled_from(SAFETY_CHOICES[name]), odd)
    if name == "temperature_c":
        return st.one_of(st.floats(min_value=33, max_value=44, allow_nan=False), odd)
    return st.one_of(st.booleans(), st.sampled_from([0, 1, "true", "yes"]), odd)


safety_names = [*SAFETY_CHOICES, *SAFETY_BOOLEANS, "temperature_c"]
safety = st.one_of(
    st.none(),
    odd,
    st.fixed_dictionaries(
        {}, optional={name: _safety_value(name) for name in [*safety_names, "unknown"]}
    ),
)
dates = st.one_of(
    st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 1, 1)).map(date.isoformat),
    st.sampled_from(["2026-02-30", "2026-13-01", "20261201", "2026-W48-1", "2026-12-1"]),
    odd,
)
ids = st.one_of(
    st.uuids().map(str),
    st.uuids().map(lambda u: str(u).upper()),
    st.uuids().map(lambda u: u.hex),
    st.uuids().map(lambda u: "{" + str(u) + "}"),
    odd,
)
scores = st.one_of(st.integers(min_value=-2, max_value=12), odd)
texts = st.one_of(
    st.text(max_size=30),
    st.just("x" * 2000),
    st.just("x" * 2001),
    st.just("nul\x00"),
    st.just("   "),
    odd,
)
valid_safety = st.fixed_dictionaries(
    {},
    optional={
        **{name: st.sampled_from(SAFETY_CHOICES[name]) for name in SAFETY_CHOICES},
        **dict.fromkeys(SAFETY_BOOLEANS, st.booleans()),
        "temperature_c": st.one_of(
            st.floats(min_value=34, max_value=43), st.integers(min_value=34, max_value=43)
        ),
    },
)
valid = st.fixed_dictionaries(
    {
        "date": st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 1, 1)).map(
            date.isoformat
        ),
        "pain": st.integers(min_value=0, max_value=10),
    },
    optional={
        "id": st.uuids().map(str),
        **{name: st.integers(min_value=0, max_value=10) for name in SCORES if name != "pain"},
        "leg_pain_side": st.sampled_from(DailyLog.LegPainSide.values),
        "sleep": st.sampled_from(DailyLog.Sleep.values),
        "notes": st.text(max_size=30),
        "safety": st.one_of(st.none(), valid_safety),
    },
)
wild_values: dict[str, st.SearchStrategy[Any]] = {
    "id": ids,
    "date": dates,
    **dict.fromkeys(SCORES, scores),
    "leg_pain_side": st.one_of(st.sampled_from(DailyLog.LegPainSide.values), odd),
    "sleep": st.one_of(st.sampled_from(DailyLog.Sleep.values), odd),
    "notes": texts,
    "safety": safety,
    "extra": odd,
}
wild_keys = list(wild_values)
wild = st.fixed_dictionaries({}, optional=wild_values)


@st.composite
def near_valid(draw: st.DrawFn) -> dict[str, Any]:
    """A valid body with one field (or one safety answer) changed to something else."""
    body: dict[str, Any] = draw(valid)
    changed = draw(st.sampled_from([*wild_keys, "safety."]))
    if changed == "safety.":
        answers: dict[str, Any] = {**(body.get("safety") or {})}
        name = draw(st.sampled_from([*safety_names, "unknown"]))
        answers[name] = draw(_safety_value(name))
        body["safety"] = answers
    else:
        body[changed] = draw(wild_values[changed])
    return body


# Mostly one change away from valid: where a plain check that is too lenient would show.
bodies = st.one_of(odd, valid, wild, near_valid(), near_valid(), near_valid())


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies)
def test_what_the_plain_path_accepts_the_serializer_validates_alike(body: Any) -> None:
    plain = plain_input(body)
    if plain is None:
        return
    serializer = LogInputSerializer(data=body)
    assert serializer.is_valid(), (body, serializer.errors)
    assert same(plain, _plain_dicts(serializer.validated_data)), body


def _plain_dicts(value: Any) -> Any:
    # DRF may hand nested data back as an OrderedDict: compare the values, not the class.
    if isinstance(value, dict):
        return {k: _plain_dicts(v) for k, v in value.items()}
    return value


EVERYDAY = {
    "id": "3f1c0c52-8a5e-4a8e-9a51-0c1c2f3e4d5a",
    "date": "2026-12-01",
    "pain": 4,
    "leg_pain": 6,
    "back_pain": 2,
    "worst_pain": 7,
    "leg_pain_side": "left",
    "function": 5,
    "sleep": "disturbed",
    "notes": "Walked to the shop.",
    "safety": {
        "saddle_numbness": "no",
        "bladder_change": "no",
        "bowel_change": "no",
        "weakness": "none",
        "fever": False,
        "temperature_c": 37,
    },
}


@pytest.mark.parametrize(
    "body",
    [
        EVERYDAY,
        {"date": "2026-12-01", "pain": 0},
        {"date": "2026-12-01", "pain": 10, "safety": None, "notes": None, "leg_pain": None},
        {**EVERYDAY, "safety": {"saddle_numbness": "new_or_worse", "fever": True}},
    ],
)
def test_the_everyday_bodies_take_the_plain_path(body: dict[str, Any]) -> None:
    plain = plain_input(body)
    assert plain is not None
    serializer = LogInputSerializer(data=body)
    assert serializer.is_valid()
    assert same(plain, _plain_dicts(serializer.validated_data))


@pytest.mark.parametrize(
    "body",
    [
        {**EVERYDAY, "pain": "4"},
        {**EVERYDAY, "pain": 11},
        {**EVERYDAY, "pain": True},
        {**EVERYDAY, "date": "20261201"},
        {**EVERYDAY, "id": None},
        {**EVERYDAY, "mood": "good"},
        {**EVERYDAY, "safety": {"fever": "yes"}},
        {**EVERYDAY, "safety": {"temperature_c": 50}},
        {**EVERYDAY, "safety": {"temperature_c": "38"}},
        {**EVERYDAY, "safety": {"temperature_c": True}},
        {**EVERYDAY, "safety": {"fever": 1}},
        {**EVERYDAY, "sleep": "fine"},
        {**EVERYDAY, "notes": "x" * 2001},
        {"pain": 4},
        [EVERYDAY],
    ],
)
def test_anything_else_is_left_to_the_serializer(body: Any) -> None:
    assert plain_input(body) is None


# ------------------------------------------------------------------------------ output

advice = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {
            "severity": st.sampled_from(["emergency", "urgent", "routine"]),
            "rules": st.lists(st.sampled_from(["RF-CES-01", "RF-INF-01"]), max_size=2),
            "message": st.text(max_size=20),
        },
        optional={
            "note": st.one_of(st.none(), st.text(max_size=5)),
            "message_key": st.text(max_size=5),
            "language": st.sampled_from(["en", "es"]),
            "message_en": st.text(max_size=5),
            "note_en": st.text(max_size=5),
            "unknown": st.integers(),
        },
    ),
    st.fixed_dictionaries({"severity": st.just("urgent"), "rules": odd, "message": odd}),
    st.fixed_dictionaries({"severity": st.just("urgent")}),
)


def _stored_value(name: str) -> st.SearchStrategy[Any]:
    if name in SAFETY_CHOICES:
        return st.one_of(st.none(), st.sampled_from(SAFETY_CHOICES[name]))
    if name == "temperature_c":
        return st.one_of(st.none(), st.floats(min_value=34, max_value=43), st.just(38))
    return st.one_of(st.none(), st.booleans())


stored_safety = st.one_of(
    # As the service stores it (every answer, normalised), or with answers missing.
    st.fixed_dictionaries({name: _stored_value(name) for name in safety_names}),
    st.fixed_dictionaries({}, optional={name: _stored_value(name) for name in safety_names}),
    st.fixed_dictionaries({}, optional={name: _safety_value(name) for name in safety_names}),
    st.none(),
)
moments = st.datetimes(
    min_value=datetime(2020, 1, 1),
    max_value=datetime(2030, 1, 1),
    timezones=st.sampled_from([UTC, ZoneInfo("Europe/Madrid"), ZoneInfo("America/New_York")]),
)


@st.composite
def logs(draw: st.DrawFn) -> DailyLog:
    return DailyLog(
        id=draw(st.uuids()),
        patient_id=uuid.uuid4(),
        date=draw(st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 1, 1))),
        pain=draw(st.integers(min_value=0, max_value=10)),
        leg_pain=draw(st.one_of(st.none(), st.integers(min_value=0, max_value=10))),
        back_pain=draw(st.one_of(st.none(), st.integers(min_value=0, max_value=10))),
        worst_pain=draw(st.one_of(st.none(), st.integers(min_value=0, max_value=10))),
        leg_pain_side=draw(st.one_of(st.none(), st.sampled_from(["left", "right", "both"]))),
        function=draw(st.one_of(st.none(), st.integers(min_value=0, max_value=10))),
        sleep=draw(st.one_of(st.none(), st.sampled_from(DailyLog.Sleep.values))),
        notes=draw(st.text(max_size=20)),
        safety=draw(stored_safety),
        safety_advice=draw(advice),
        safety_reminder=draw(st.one_of(st.none(), st.text(max_size=10))),
        version=draw(st.integers(min_value=1, max_value=5)),
        created_at=draw(moments),
        updated_at=draw(moments),
    )


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(log=logs(), zone=st.sampled_from(["UTC", "Europe/Madrid", "Asia/Kolkata"]))
def test_what_the_plain_path_represents_the_serializer_represents_alike(
    log: DailyLog, zone: str
) -> None:
    with timezone.override(zone):
        plain = plain_output(log)
        if plain is None:
            return
        expected = LogOutputSerializer(log).data
    assert same(plain, _plain_dicts(dict(expected)))
    assert JSONRenderer().render(plain) == JSONRenderer().render(expected)


def test_a_stored_log_of_the_usual_types_takes_the_plain_path() -> None:
    log = DailyLog(
        id=uuid.uuid4(),
        patient_id=uuid.uuid4(),
        date=date(2026, 12, 1),
        pain=4,
        leg_pain=None,
        notes="",
        safety=normalise({"safety": EVERYDAY["safety"]})["safety"],
        safety_advice={"severity": "urgent", "rules": ["RF-CES-01"], "message": "Call now."},
        safety_reminder=None,
        version=1,
        created_at=datetime(2026, 12, 1, 8, 30, tzinfo=UTC),
        updated_at=datetime(2026, 12, 1, 8, 30, 0, 123456, tzinfo=UTC),
    )
    plain = plain_output(log)
    assert plain is not None
    assert JSONRenderer().render(plain) == JSONRenderer().render(LogOutputSerializer(log).data)
    assert log_data(log) == plain
