"""The red-flag rules (docs/safety-rules.md), at every boundary. Pure: no database."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import random
import re
from decimal import Decimal
from typing import Any, Final

import pytest

from rehab.safety import (
    ESCALATION,
    MESSAGES,
    RULES,
    SUPPRESSED_REMINDER,
    Evaluation,
    History,
    InterventionFact,
    LogFacts,
    MarkFact,
    PatientContext,
    SafetyAnswers,
    canonical_json,
    catalogue,
    evaluate,
)
from rehab.safety.rules import AnswerIn, IsNew, LogAtLeast, check_rules
from rehab.safety.vocab import (
    BOOLEAN_FIELDS,
    CHOICE_FIELDS,
    MARKABLE_SYMPTOMS,
    InterventionKind,
    LegPainSide,
    Sleep,
)

DAY = dt.date(2026, 11, 20)
FIFTY = dt.date(1976, 5, 5)


def make_log(
    *, date: dt.date = DAY, pain: int = 5, safety: dict[str, Any] | None = None, **fields: Any
) -> LogFacts:
    return LogFacts(date=date, pain=pain, safety=SafetyAnswers.from_mapping(safety), **fields)


def make_ctx(**fields: Any) -> PatientContext:
    fields.setdefault("date_of_birth", FIFTY)
    if isinstance(fields.get("history"), dict):
        fields["history"] = History.from_mapping(fields["history"])
    return PatientContext(**fields)


def run(log: LogFacts, ctx: PatientContext | None = None) -> Evaluation:
    return evaluate(log, ctx or make_ctx())


def fired(log: LogFacts, ctx: PatientContext | None = None) -> tuple[str, ...]:
    return run(log, ctx).rule_ids


def basis_of(evaluation: Evaluation, rule_id: str) -> dict[str, Any]:
    return next(f.basis for f in evaluation.firings if f.rule_id == rule_id)


def mark(symptom: str, until: dt.date) -> MarkFact:
    return MarkFact(symptom, until)  # type: ignore[arg-type]


def injection(days_before: int, kind: str = "injection") -> InterventionFact:
    return InterventionFact(DAY - dt.timedelta(days=days_before), kind)  # type: ignore[arg-type]


def previous_logs(*rows: dict[str, Any]) -> tuple[LogFacts, ...]:
    """Logs on the days before DAY, the last row being yesterday."""
    n = len(rows)
    return tuple(make_log(date=DAY - dt.timedelta(days=n - i), **row) for i, row in enumerate(rows))


# --- the safety check: normalization ---------------------------------------------------


def test_it_treats_absent_null_and_no_as_the_same_answers() -> None:
    explicit = SafetyAnswers.from_mapping(
        {"saddle_numbness": "no", "weakness": "none", "fever": False, "temperature_c": None}
    )
    with_nulls = SafetyAnswers.from_mapping({"bladder_change": None, "walking_unsteady_new": None})

    assert SafetyAnswers.from_mapping(None) == SafetyAnswers()
    assert SafetyAnswers.from_mapping({}) == SafetyAnswers()
    assert explicit == with_nulls == SafetyAnswers()


def test_it_lists_every_field_with_its_default() -> None:
    answers = SafetyAnswers.from_mapping({"temperature_c": 38, "injury": "minor"}).as_dict()

    assert set(answers) == {*CHOICE_FIELDS, *BOOLEAN_FIELDS, "temperature_c"}
    assert answers["temperature_c"] == 38.0
    assert answers["injury"] == "minor"
    assert answers["both_legs"] == "no"
    assert answers["numbness_spread"] == "none"
    assert answers["fever"] is False
    json.dumps(answers)


def test_it_rejects_unknown_safety_fields() -> None:
    with pytest.raises(ValueError, match="saddle_numbess"):
        SafetyAnswers.from_mapping({"saddle_numbess": "new_or_worse"})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("saddle_numbness", "yes"),
        ("saddle_numbness", "prefer_not_to_say"),
        ("sexual_function_change", "maybe"),
        ("weakness", "no"),
        ("numbness_spread", "no"),
        ("injury", "severe"),
        ("fever", "yes"),
        ("fever", 1),
        ("temperature_c", "38.5"),
        ("temperature_c", True),
        ("temperature_c", 33.9),
        ("temperature_c", 43.1),
        ("temperature_c", float("nan")),
    ],
)
def test_it_rejects_unknown_safety_values(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        SafetyAnswers.from_mapping({field: value})


@pytest.mark.parametrize("value", [34.0, 43.0, 38, Decimal("38.0")])
def test_it_accepts_temperatures_at_the_limits(value: object) -> None:
    assert SafetyAnswers.from_mapping({"temperature_c": value}).temperature_c == float(value)  # type: ignore[arg-type]


def test_it_rejects_unknown_history_flags_and_out_of_range_logs() -> None:
    with pytest.raises(ValueError, match="cancr"):
        History.from_mapping({"cancr": True})
    with pytest.raises(ValueError, match="pain"):
        make_log(pain=11)
    with pytest.raises(ValueError, match="back_pain"):
        make_log(back_pain=-1)
    with pytest.raises(ValueError, match="pain"):
        make_log(pain=True)
    with pytest.raises(ValueError, match="sleep"):
        make_log(sleep="restless")
    with pytest.raises(ValueError, match="mark"):
        mark("weakness", DAY)


def test_it_fires_nothing_on_a_quiet_log() -> None:
    evaluation = run(make_log(pain=7, leg_pain=8, leg_pain_side="left", sleep="disturbed"))

    assert evaluation.firings == ()
    assert evaluation.advice is None
    assert evaluation.reminder is None


# --- cauda equina group and marks ------------------------------------------------------

CES_SYMPTOMS = [
    ("saddle_numbness", "RF-CES-01"),
    ("bladder_change", "RF-CES-02"),
    ("bowel_change", "RF-CES-03"),
    ("sexual_function_change", "RF-CES-04"),
    ("both_legs", "RF-CES-05"),
]


@pytest.mark.parametrize(("symptom", "rule"), CES_SYMPTOMS)
def test_it_raises_an_emergency_for_a_new_ces_symptom(symptom: str, rule: str) -> None:
    evaluation = run(make_log(safety={symptom: "new_or_worse"}))

    assert evaluation.rule_ids == (rule,)
    assert evaluation.firings[0].severity == "emergency"
    assert evaluation.firings[0].basis == {f"safety.{symptom}": "new_or_worse"}
    assert evaluation.advice is not None
    assert evaluation.advice.message == MESSAGES["ces"]


@pytest.mark.parametrize(("symptom", "rule"), CES_SYMPTOMS)
def test_it_counts_unchanged_assessed_without_a_mark_as_new(symptom: str, rule: str) -> None:
    evaluation = run(make_log(safety={symptom: "unchanged_assessed"}))

    assert evaluation.rule_ids == (rule,)
    assert evaluation.firings[0].basis == {
        f"safety.{symptom}": "unchanged_assessed",
        f"mark.{symptom}": None,
    }


@pytest.mark.parametrize(("symptom", "rule"), CES_SYMPTOMS)
def test_it_counts_unchanged_assessed_as_new_once_the_mark_expired(symptom: str, rule: str) -> None:
    ctx = make_ctx(marks=(mark(symptom, DAY - dt.timedelta(days=1)),))
    evaluation = run(make_log(safety={symptom: "unchanged_assessed"}), ctx)

    assert evaluation.rule_ids == (rule,)
    assert evaluation.firings[0].basis[f"mark.{symptom}"] == {
        "until": "2026-11-19",
        "current": False,
    }
    assert evaluation.suppressed == ()


@pytest.mark.parametrize(
    "symptom", ["saddle_numbness", "bladder_change", "bowel_change", "sexual_function_change"]
)
@pytest.mark.parametrize("until", [DAY, DAY + dt.timedelta(days=90)])
def test_it_takes_a_marked_symptom_at_its_word(symptom: str, until: dt.date) -> None:
    ctx = make_ctx(marks=(mark(symptom, until),))
    evaluation = run(make_log(safety={symptom: "unchanged_assessed"}), ctx)

    assert evaluation.firings == ()
    # Nothing fired, so safety_advice is null; the reminder travels on its own.
    assert evaluation.advice is None
    assert evaluation.reminder == SUPPRESSED_REMINDER
    assert [(s.symptom, s.until) for s in evaluation.suppressed] == [(symptom, until)]


@pytest.mark.parametrize(("symptom", "rule"), CES_SYMPTOMS)
def test_it_fires_new_or_worse_despite_a_current_mark(symptom: str, rule: str) -> None:
    ctx = make_ctx(marks=(mark(symptom, DAY),))

    assert fired(make_log(safety={symptom: "new_or_worse"}), ctx) == (rule,)


def test_it_ignores_a_mark_for_another_symptom() -> None:
    ctx = make_ctx(marks=(mark("bowel_change", DAY),))

    assert fired(make_log(safety={"bladder_change": "unchanged_assessed"}), ctx) == ("RF-CES-02",)


def test_it_never_fires_on_prefer_not_to_say() -> None:
    log = make_log(safety={"sexual_function_change": "prefer_not_to_say"})

    assert fired(log) == ()
    assert fired(log, make_ctx(history={"cancer": True})) == ()


def test_it_fires_ces_05_not_ces_06_for_new_symptoms_in_both_legs() -> None:
    log = make_log(leg_pain_side="both", safety={"both_legs": "new_or_worse"})

    assert fired(log) == ("RF-CES-05",)


def test_it_fires_ces_06_for_assessed_symptoms_in_both_legs_under_a_mark() -> None:
    ctx = make_ctx(marks=(mark("both_legs", DAY),))
    evaluation = run(make_log(safety={"both_legs": "unchanged_assessed"}), ctx)

    assert evaluation.rule_ids == ("RF-CES-06",)
    assert evaluation.firings[0].severity == "urgent"
    assert evaluation.firings[0].basis == {
        "safety.both_legs": "unchanged_assessed",
        "mark.both_legs": {"until": "2026-11-20", "current": True},
    }
    assert evaluation.advice is not None
    assert evaluation.advice.message == MESSAGES["bilateral_assessed"]
    assert evaluation.advice.note == SUPPRESSED_REMINDER


def test_it_fires_ces_05_for_assessed_symptoms_in_both_legs_once_the_mark_expired() -> None:
    ctx = make_ctx(marks=(mark("both_legs", DAY - dt.timedelta(days=1)),))

    assert fired(make_log(safety={"both_legs": "unchanged_assessed"}), ctx) == ("RF-CES-05",)


def test_it_fires_ces_06_for_leg_pain_in_both_legs() -> None:
    evaluation = run(make_log(leg_pain_side="both"))

    assert evaluation.rule_ids == ("RF-CES-06",)
    assert evaluation.firings[0].basis == {"log.leg_pain_side": "both"}
    assert fired(make_log(leg_pain_side="left")) == ()
    assert fired(make_log(leg_pain_side=None)) == ()


def test_it_uses_the_latest_of_several_marks() -> None:
    ctx = make_ctx(marks=(mark("both_legs", DAY - dt.timedelta(days=5)), mark("both_legs", DAY)))

    assert fired(make_log(safety={"both_legs": "unchanged_assessed"}), ctx) == ("RF-CES-06",)


# --- neurology ---------------------------------------------------------------------------


@pytest.mark.parametrize("weakness", ["one_leg_new", "one_leg_worsening", "foot_drop"])
def test_it_raises_an_urgent_alert_for_weakness_in_one_leg(weakness: str) -> None:
    evaluation = run(make_log(safety={"weakness": weakness}))

    assert evaluation.rule_ids == ("RF-NEU-01",)
    assert evaluation.advice is not None
    assert evaluation.advice.severity == "urgent"
    assert evaluation.advice.message == MESSAGES["weakness"]


def test_it_raises_an_emergency_for_weakness_in_both_legs_or_unsteady_walking() -> None:
    assert fired(make_log(safety={"weakness": "both_legs"})) == ("RF-NEU-02",)
    assert fired(make_log(safety={"walking_unsteady_new": True})) == ("RF-NEU-02",)
    assert fired(make_log(safety={"weakness": "none"})) == ()


def test_it_grades_spreading_numbness() -> None:
    assert fired(make_log(safety={"numbness_spread": "both_legs"})) == ("RF-NEU-03",)
    assert fired(make_log(safety={"numbness_spread": "arms_or_trunk"})) == ("RF-NEU-04",)
    assert fired(make_log(safety={"numbness_spread": "one_leg"})) == ()


def test_it_escalates_arm_or_trunk_numbness_when_walking_is_unsteady() -> None:
    evaluation = run(
        make_log(safety={"numbness_spread": "arms_or_trunk", "walking_unsteady_new": True})
    )

    assert evaluation.rule_ids == ("RF-NEU-02",)
    assert evaluation.advice is not None
    assert evaluation.advice.severity == "emergency"


def test_it_records_the_negative_condition_in_neu_04s_basis() -> None:
    evaluation = run(make_log(safety={"numbness_spread": "arms_or_trunk"}))

    assert basis_of(evaluation, "RF-NEU-04") == {
        "safety.numbness_spread": "arms_or_trunk",
        "safety.walking_unsteady_new": False,
    }


# --- infection ---------------------------------------------------------------------------


def test_it_counts_38_0_as_a_fever_and_37_9_not() -> None:
    assert fired(make_log(safety={"temperature_c": 38.0})) == ("RF-INF-01",)
    assert fired(make_log(safety={"temperature_c": 37.9})) == ()


def test_it_counts_a_reported_fever_without_a_temperature() -> None:
    assert fired(make_log(safety={"fever": True})) == ("RF-INF-01",)
    assert fired(make_log(safety={"fever": True, "temperature_c": 37.2})) == ("RF-INF-01",)


def test_it_needs_pain_that_day_for_a_fever_to_fire_rf_inf_01_or_02() -> None:
    fever = {"temperature_c": 39.0}
    ctx = make_ctx(history={"immunosuppressed": True})

    assert fired(make_log(pain=0, safety=fever)) == ()
    # Without pain an immunosuppressed patient's fever is RF-INF-03 (urgent), not 01/02.
    assert fired(make_log(pain=0, leg_pain=0, back_pain=0, safety=fever), ctx) == ("RF-INF-03",)
    assert fired(make_log(pain=0, back_pain=1, safety=fever)) == ("RF-INF-01",)
    assert fired(make_log(pain=0, leg_pain=1, safety=fever)) == ("RF-INF-01",)
    assert fired(make_log(pain=1, safety=fever)) == ("RF-INF-01",)


@pytest.mark.parametrize(
    ("history", "safety", "interventions"),
    [
        ({"immunosuppressed": True}, {}, ()),
        ({"iv_drug_use": True}, {}, ()),
        ({}, {"feel_very_unwell": True}, ()),
        ({}, {}, (injection(10, "injection"),)),
        ({}, {}, (injection(10, "prolotherapy"),)),
        ({}, {}, (injection(10, "surgery"),)),
    ],
)
def test_it_makes_a_fever_an_emergency_with_any_modifier(
    history: dict[str, bool], safety: dict[str, Any], interventions: tuple[InterventionFact, ...]
) -> None:
    ctx = make_ctx(history=history, interventions=interventions)

    assert fired(make_log(safety={"temperature_c": 38.0, **safety}), ctx) == ("RF-INF-02",)


def test_it_keeps_a_fever_urgent_without_modifiers() -> None:
    ctx = make_ctx(
        history={"cancer": False, "osteoporosis": True, "previous_spine_surgery": True},
        interventions=(injection(10, "other"),),
    )
    evaluation = run(make_log(safety={"fever": True}), ctx)

    assert evaluation.rule_ids == ("RF-INF-01",)
    # The basis shows the modifiers that were checked and absent.
    assert basis_of(evaluation, "RF-INF-01") == {
        "safety.temperature_c": None,
        "safety.fever": True,
        "log.pain": 5,
        "log.leg_pain": None,
        "log.back_pain": None,
        "history.immunosuppressed": False,
        "history.iv_drug_use": False,
        "intervention": None,
        "safety.feel_very_unwell": False,
    }


@pytest.mark.parametrize(
    ("days_before", "expected"),
    [(0, "RF-INF-02"), (1, "RF-INF-02"), (42, "RF-INF-02"), (43, "RF-INF-01"), (-1, "RF-INF-01")],
)
def test_it_counts_a_procedure_within_the_42_days_before_the_log(
    days_before: int, expected: str
) -> None:
    ctx = make_ctx(interventions=(injection(days_before),))

    assert fired(make_log(safety={"temperature_c": 38.2}), ctx) == (expected,)


def test_it_tells_the_patient_about_the_recent_procedure_and_records_it() -> None:
    ctx = make_ctx(interventions=(injection(30, "surgery"), injection(19, "injection")))
    evaluation = run(make_log(safety={"temperature_c": 38.2}), ctx)

    assert basis_of(evaluation, "RF-INF-02")["intervention"] == {
        "kind": "injection",
        "date": "2026-11-01",
    }
    assert basis_of(evaluation, "RF-INF-02")["safety.temperature_c"] == 38.2
    assert evaluation.advice is not None
    assert evaluation.advice.message == MESSAGES["fever_after_procedure"]
    assert evaluation.advice.message.startswith(
        "A temperature with back pain after a recent injection or procedure needs hospital "
        "assessment. Go to the Emergency Department now."
    )


def test_it_does_not_mention_a_procedure_there_was_not() -> None:
    ctx = make_ctx(history={"immunosuppressed": True}, interventions=(injection(43),))
    evaluation = run(make_log(safety={"fever": True}), ctx)

    assert evaluation.advice is not None
    assert evaluation.advice.message == MESSAGES["infection_emergency"]


# --- cancer --------------------------------------------------------------------------------

CANCER = {"cancer": True}


@pytest.mark.parametrize(
    ("safety", "fields"),
    [
        ({"weakness": "one_leg_new"}, {}),
        ({"walking_unsteady_new": True}, {}),
        ({"numbness_spread": "one_leg"}, {}),
        ({"bladder_change": "new_or_worse"}, {}),
        ({"bowel_change": "unchanged_assessed"}, {}),
        ({"pain_new_or_rapidly_worse": True}, {"worst_pain": 8}),
    ],
)
def test_it_raises_a_cancer_emergency_and_not_ca_02(
    safety: dict[str, Any], fields: dict[str, Any]
) -> None:
    ctx = make_ctx(history=CANCER)
    log = make_log(sleep="constant_any_position", safety=safety, **fields)
    rules = fired(log, ctx)

    assert "RF-CA-01" in rules
    assert "RF-CA-02" not in rules


def test_it_needs_worst_pain_8_and_rapidly_worse_pain_together() -> None:
    ctx = make_ctx(history=CANCER)

    assert fired(make_log(worst_pain=7, safety={"pain_new_or_rapidly_worse": True}), ctx) == ()
    assert fired(make_log(worst_pain=10), ctx) == ()
    assert fired(make_log(safety={"pain_new_or_rapidly_worse": True}), ctx) == ()


def test_it_does_not_count_a_marked_bladder_change_for_ca_01() -> None:
    ctx = make_ctx(history=CANCER, marks=(mark("bladder_change", DAY),))

    assert fired(make_log(safety={"bladder_change": "unchanged_assessed"}), ctx) == ()


def test_it_does_not_raise_cancer_rules_without_a_cancer_history() -> None:
    assert fired(make_log(worst_pain=9, safety={"pain_new_or_rapidly_worse": True})) == ()
    assert fired(make_log(safety={"numbness_spread": "one_leg"})) == ()
    assert fired(make_log(sleep="constant_any_position")) == ()


def test_it_raises_ca_02_for_night_or_thoracic_pain_with_cancer() -> None:
    ctx = make_ctx(history=CANCER)

    assert fired(make_log(sleep="constant_any_position"), ctx) == ("RF-CA-02",)
    assert fired(make_log(safety={"thoracic_or_band_pain": True}), ctx) == ("RF-CA-02",)


def test_it_leaves_ca_02_undecided_inline_when_only_the_trend_could_fire() -> None:
    evaluation = run(make_log(back_pain=9), make_ctx(history=CANCER))

    assert evaluation.firings == ()
    assert "RF-CA-02" in evaluation.undecided


def _cancer_trend(back_pains: list[int | None], baseline: float = 3.0) -> Evaluation:
    *before, today = back_pains
    ctx = make_ctx(
        history=CANCER,
        baseline_back_pain=baseline,
        recent_logs=previous_logs(*({"back_pain": b} for b in before)),
    )
    return run(make_log(back_pain=today), ctx)


def test_it_raises_ca_02_for_back_pain_at_baseline_plus_2_on_3_logs() -> None:
    evaluation = _cancer_trend([1, 5, 5, 5])

    assert evaluation.rule_ids == ("RF-CA-02",)
    assert basis_of(evaluation, "RF-CA-02") == {
        "history.cancer": True,
        "baseline_back_pain": 3.0,
        "back_pain_run": [
            {"date": "2026-11-18", "back_pain": 5},
            {"date": "2026-11-19", "back_pain": 5},
            {"date": "2026-11-20", "back_pain": 5},
        ],
    }


@pytest.mark.parametrize("back_pains", [[5, 4, 5], [4, 5, 5], [5, 5, 4], [5, None, 5], [5, 5]])
def test_it_needs_3_logs_in_a_row_at_baseline_plus_2(back_pains: list[int | None]) -> None:
    evaluation = _cancer_trend(back_pains)

    assert evaluation.firings == ()
    assert evaluation.undecided == ()


def test_it_reads_consecutive_logged_days_across_a_day_without_a_log() -> None:
    gap = (
        make_log(date=DAY - dt.timedelta(days=5), back_pain=5),
        make_log(date=DAY - dt.timedelta(days=2), back_pain=5),
        # A later log (an edit of an older day) is not part of the history of this one.
        make_log(date=DAY + dt.timedelta(days=1), back_pain=0),
    )
    ctx = make_ctx(history=CANCER, baseline_back_pain=3.0, recent_logs=gap)

    assert fired(make_log(back_pain=5), ctx) == ("RF-CA-02",)


def test_it_needs_both_baseline_and_logs_for_the_ca_02_trend() -> None:
    ctx = make_ctx(history=CANCER, baseline_back_pain=3.0)

    assert run(make_log(back_pain=9), ctx).undecided == ("RF-CA-02",)


def test_it_raises_an_urgent_alert_for_unexplained_weight_loss() -> None:
    evaluation = run(make_log(safety={"unexplained_weight_loss": True}))

    assert evaluation.rule_ids == ("RF-CA-03",)
    assert evaluation.firings[0].severity == "urgent"


# --- fractures ---------------------------------------------------------------------------


def test_it_raises_an_emergency_for_a_major_injury() -> None:
    assert fired(make_log(safety={"injury": "major"})) == ("RF-FX-01",)


@pytest.mark.parametrize("history", [{"osteoporosis": True}, {"long_term_steroids": True}])
def test_it_raises_fx_02_for_a_minor_injury_with_a_risk_factor(history: dict[str, bool]) -> None:
    ctx = make_ctx(history=history)
    minor = {"injury": "minor", "pain_new_or_rapidly_worse": True}

    assert fired(make_log(safety=minor), ctx) == ("RF-FX-02",)
    assert fired(make_log(safety=minor)) == ()


@pytest.mark.parametrize(
    ("birthday", "expected"),
    [
        (dt.date(1966, 11, 20), ("RF-FX-02",)),  # 60 on the day of the log
        (dt.date(1966, 11, 21), ()),  # 60 tomorrow: 59 today
        (dt.date(1966, 11, 19), ("RF-FX-02",)),
    ],
)
def test_it_measures_age_at_the_logs_date(birthday: dt.date, expected: tuple[str, ...]) -> None:
    ctx = make_ctx(date_of_birth=birthday)
    evaluation = run(make_log(safety={"injury": "minor", "pain_new_or_rapidly_worse": True}), ctx)

    assert evaluation.rule_ids == expected
    if expected:
        assert basis_of(evaluation, "RF-FX-02")["patient.age"] == 60


def test_it_reaches_a_29_february_birthday_on_1_march() -> None:
    ctx = make_ctx(date_of_birth=dt.date(1964, 2, 29))

    assert ctx.age_on(dt.date(2024, 2, 28)) == 59
    assert ctx.age_on(dt.date(2024, 2, 29)) == 60
    assert ctx.age_on(dt.date(2025, 2, 28)) == 60
    assert ctx.age_on(dt.date(2023, 2, 28)) == 58
    assert ctx.age_on(dt.date(2023, 3, 1)) == 59


def test_it_decides_fx_02s_baseline_branch_only_with_a_baseline() -> None:
    minor = {"injury": "minor"}
    risky = {"osteoporosis": True}

    inline = run(make_log(back_pain=9, safety=minor), make_ctx(history=risky))
    assert inline.firings == ()
    assert "RF-FX-02" in inline.undecided
    at_plus_3 = make_ctx(history=risky, baseline_back_pain=4.0)
    assert fired(make_log(back_pain=7, safety=minor), at_plus_3) == ("RF-FX-02",)
    assert fired(make_log(back_pain=6, safety=minor), at_plus_3) == ()
    assert fired(make_log(back_pain=None, safety=minor), at_plus_3) == ()
    assert fired(make_log(back_pain=7, safety=minor), make_ctx(baseline_back_pain=4.0)) == ()


def test_it_needs_a_minor_injury_for_fx_02() -> None:
    ctx = make_ctx(history={"osteoporosis": True}, date_of_birth=dt.date(1940, 1, 1))

    assert fired(make_log(safety={"pain_new_or_rapidly_worse": True}), ctx) == ()


# --- thoracic and night pain ---------------------------------------------------------------


def test_it_raises_th_01_without_a_cancer_history_only() -> None:
    log = make_log(safety={"thoracic_or_band_pain": True})

    assert fired(log) == ("RF-TH-01",)
    assert fired(log, make_ctx(history=CANCER)) == ("RF-CA-02",)


def _nights(sleeps: list[Any], **ctx: Any) -> Evaluation:
    *before, today = sleeps
    context = make_ctx(recent_logs=previous_logs(*({"sleep": s} for s in before)), **ctx)
    return run(make_log(sleep=today), context)


CONSTANT: Final = "constant_any_position"


def test_it_raises_np_01_for_constant_night_pain_on_3_of_7_logged_nights() -> None:
    evaluation = _nights([CONSTANT, None, "disturbed", CONSTANT, None, None, CONSTANT])

    assert evaluation.rule_ids == ("RF-NP-01",)
    assert evaluation.advice is not None
    assert evaluation.advice.severity == "routine"
    assert basis_of(evaluation, "RF-NP-01")["sleep_nights"] == [
        "2026-11-14",
        "2026-11-17",
        "2026-11-20",
    ]


def test_it_counts_3_of_fewer_than_7_logs() -> None:
    assert _nights([CONSTANT, CONSTANT, CONSTANT]).rule_ids == ("RF-NP-01",)


def test_it_does_not_raise_np_01_for_2_of_7_or_nights_outside_the_window() -> None:
    assert _nights([None, None, CONSTANT, None, None, CONSTANT, None]).firings == ()
    # The first constant night is the 8th log back.
    assert _nights([CONSTANT, None, None, None, None, None, CONSTANT, CONSTANT]).firings == ()


def test_it_evaluates_np_01_only_with_history() -> None:
    evaluation = run(make_log(sleep=CONSTANT))

    assert evaluation.firings == ()
    assert evaluation.undecided == ("RF-NP-01",)


def test_it_does_not_raise_np_01_with_a_cancer_history() -> None:
    evaluation = _nights([CONSTANT, CONSTANT, "disturbed"], history=CANCER)

    assert "RF-NP-01" not in evaluation.rule_ids


def test_it_does_not_raise_np_01_when_another_red_flag_fired_on_the_log() -> None:
    ctx = make_ctx(recent_logs=previous_logs({"sleep": CONSTANT}, {"sleep": CONSTANT}))
    log = make_log(sleep=CONSTANT, safety={"unexplained_weight_loss": True})

    assert fired(log, ctx) == ("RF-CA-03",)


def test_it_does_not_raise_np_01_while_another_red_flag_alert_is_open() -> None:
    sleeps = [CONSTANT, CONSTANT, CONSTANT]

    assert _nights(sleeps, open_alert_rules=frozenset({"RF-NEU-01"})).firings == ()
    # Its own open alert is not "another" rule: the firing adds an occurrence to it.
    assert _nights(sleeps, open_alert_rules=frozenset({"RF-NP-01"})).rule_ids == ("RF-NP-01",)


def test_it_leaves_np_01_undecided_while_a_rule_it_depends_on_is_undecided() -> None:
    ctx = make_ctx(
        history={"osteoporosis": True},
        recent_logs=previous_logs({"sleep": CONSTANT}, {"sleep": CONSTANT}),
    )
    evaluation = run(make_log(sleep=CONSTANT, back_pain=9, safety={"injury": "minor"}), ctx)

    assert evaluation.firings == ()
    assert evaluation.undecided == ("RF-FX-02", "RF-NP-01")


# --- advice ------------------------------------------------------------------------------


def test_it_orders_firings_most_severe_first_then_by_rule_id() -> None:
    ctx = make_ctx(recent_logs=())
    log = make_log(
        leg_pain_side="both",
        safety={
            "injury": "major",
            "saddle_numbness": "new_or_worse",
            "weakness": "one_leg_new",
            "unexplained_weight_loss": True,
            "walking_unsteady_new": True,
        },
    )
    evaluation = run(log, ctx)

    assert evaluation.rule_ids == (
        "RF-CES-01",
        "RF-FX-01",
        "RF-FX-03",
        "RF-NEU-02",
        "RF-CA-03",
        "RF-CES-06",
        "RF-NEU-01",
    )
    assert evaluation.advice is not None
    assert evaluation.advice.as_dict() == {
        "severity": "emergency",
        "rules": list(evaluation.rule_ids),
        "message": MESSAGES["ces"],
        "message_key": "ces",
        "language": "en",
    }


def test_it_shows_the_message_of_the_most_severe_rule() -> None:
    evaluation = run(make_log(safety={"injury": "major", "weakness": "foot_drop"}))

    assert evaluation.advice is not None
    assert evaluation.advice.rules == ("RF-FX-01", "RF-FX-03", "RF-NEU-01")
    assert evaluation.advice.message == MESSAGES["major_injury"]


def test_it_adds_the_reminder_as_a_note_only_when_a_mark_applied() -> None:
    ctx = make_ctx(marks=(mark("saddle_numbness", DAY),))
    log = make_log(safety={"saddle_numbness": "unchanged_assessed", "weakness": "foot_drop"})
    advice = run(log, ctx).advice

    assert advice is not None
    assert advice.as_dict()["note"] == SUPPRESSED_REMINDER
    plain = run(make_log(safety={"weakness": "foot_drop"})).advice
    assert plain is not None
    assert "note" not in plain.as_dict()


def test_it_stores_rule_version_and_a_json_basis_on_each_firing() -> None:
    evaluation = run(make_log(safety={"bladder_change": "new_or_worse"}))

    assert evaluation.firings[0].as_dict() == {
        "rule": "RF-CES-02",
        "rule_version": 1,
        "severity": "emergency",
        "basis": {"safety.bladder_change": "new_or_worse"},
    }


@pytest.mark.parametrize("key", sorted(MESSAGES))
def test_it_words_every_message_plainly(key: str) -> None:
    text = MESSAGES[key].lower()
    severities = {r.severity for r in RULES if key in r.message_keys()}

    # "If you have chest pain" is a condition; "You have ..." would be a diagnosis.
    assert not re.search(r"(^|[.!] )you have", text)
    assert "rules out" not in text
    if "emergency" in severities:
        assert "emergency department now" in text
    if "urgent" in severities:
        assert "today" in text
        assert "emergency department" in text


def test_it_uses_the_suggested_wording_for_ces_and_weakness() -> None:
    assert MESSAGES["ces"].startswith(
        "These symptoms can be a sign of pressure on the nerves at the base of your spine"
    )
    assert MESSAGES["ces"].endswith("Don't wait for your physio to reply.")
    assert MESSAGES["weakness"].startswith(
        "New or increasing weakness in your leg or foot needs checking by a clinician today."
    )


# --- rule definitions ----------------------------------------------------------------------


def test_it_defines_exactly_the_rules_of_the_clinical_specification() -> None:
    assert [r.id for r in RULES] == [
        "RF-CES-01",
        "RF-CES-02",
        "RF-CES-03",
        "RF-CES-04",
        "RF-CES-05",
        "RF-CES-06",
        "RF-NEU-01",
        "RF-NEU-02",
        "RF-NEU-03",
        "RF-NEU-04",
        "RF-INF-01",
        "RF-INF-02",
        "RF-INF-03",
        "RF-CA-01",
        "RF-CA-02",
        "RF-CA-03",
        "RF-FX-01",
        "RF-FX-02",
        "RF-FX-03",
        "RF-FX-04",
        "RF-TH-01",
        "RF-NP-01",
    ]
    severity = {r.id: r.severity for r in RULES}
    assert [k for k, v in severity.items() if v == "routine"] == ["RF-NP-01"]
    assert {k for k, v in severity.items() if v == "urgent"} == {
        "RF-CES-06",
        "RF-NEU-01",
        "RF-NEU-04",
        "RF-INF-01",
        "RF-INF-03",
        "RF-CA-02",
        "RF-CA-03",
        "RF-FX-02",
        "RF-FX-04",
        "RF-TH-01",
    }
    # "No other RF rule open" means every other rule.
    np01 = RULES[-1]
    assert set(np01.unless_open) == {r.id for r in RULES} - {"RF-NP-01"}


def test_it_publishes_the_escalation_delays_as_data() -> None:
    raised = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)

    assert ESCALATION.id == "RF-META-01"
    assert ESCALATION.due_at("emergency", raised) == raised + dt.timedelta(minutes=60)
    assert ESCALATION.due_at("urgent", raised) == raised + dt.timedelta(hours=4)
    assert ESCALATION.due_at("routine", raised) is None


def test_it_knows_which_rules_need_history() -> None:
    assert [r.id for r in RULES if r.needs_history] == ["RF-NP-01"]
    assert [r.id for r in RULES if r.has_history_branches] == ["RF-CA-02", "RF-FX-02", "RF-NP-01"]


def test_it_rejects_inconsistent_definitions() -> None:
    np01, ces05, ces06 = RULES[-1], RULES[4], RULES[5]

    with pytest.raises(ValueError, match="not defined before"):
        check_rules([ces06, ces05], MESSAGES)
    with pytest.raises(ValueError, match="twice"):
        check_rules([ces05, ces05], MESSAGES)
    with pytest.raises(ValueError, match="no message"):
        check_rules([dataclasses.replace(np01, unless_open=(), message="nope")], MESSAGES)
    with pytest.raises(ValueError, match="unknown answers"):
        AnswerIn("weakness", ("severe",))
    with pytest.raises(ValueError, match="no new/assessed"):
        IsNew("weakness")
    with pytest.raises(ValueError, match="not a score"):
        LogAtLeast("sleep", 1)


# A change to what a rule fires on must come with a new version: alerts store the version
# and an audit replays it. If this fails, bump the rule's version and update the digest.
PINNED = {
    "RF-CES-01": (1, "c4c632c36e40"),
    "RF-CES-02": (1, "411a2927138c"),
    "RF-CES-03": (1, "921012546944"),
    "RF-CES-04": (1, "d09144bdd671"),
    "RF-CES-05": (1, "5b02ce2850c6"),
    "RF-CES-06": (1, "0f7d8560db4f"),
    "RF-NEU-01": (1, "ea90a56ac098"),
    "RF-NEU-02": (1, "f89fd2f2ba5e"),
    "RF-NEU-03": (1, "e00686ab4467"),
    "RF-NEU-04": (1, "81df6260cc67"),
    "RF-INF-01": (1, "027cb24060dc"),
    "RF-INF-02": (1, "534ddcaffd00"),
    "RF-INF-03": (1, "f7834dd78e8b"),
    "RF-CA-01": (1, "5a0918852b6d"),
    "RF-CA-02": (1, "b11f1fc65009"),
    "RF-CA-03": (1, "07dcac94d457"),
    "RF-FX-01": (1, "3f83eee16019"),
    "RF-FX-02": (1, "253aab1eed24"),
    "RF-FX-03": (1, "7ffa9b7c1430"),
    "RF-FX-04": (1, "03ec2cbb99be"),
    "RF-TH-01": (1, "6ddda08b3af9"),
    # v2: "no other RF rule open" gained RF-INF-03, RF-FX-03 and RF-FX-04.
    "RF-NP-01": (2, "75310b93929d"),
}


def _definition_digest(rule_id: str) -> str:
    rule = next(r for r in RULES if r.id == rule_id)
    definition = rule.to_json()
    for presentation in ("title", "source", "message", "message_variants", "version"):
        definition.pop(presentation)
    return hashlib.sha256(canonical_json(definition).encode()).hexdigest()[:12]


def test_it_pins_each_rule_definition_to_its_version() -> None:
    actual = {r.id: (r.version, _definition_digest(r.id)) for r in RULES}

    assert actual == PINNED


# --- the catalogue -------------------------------------------------------------------------


def test_it_publishes_a_json_catalogue_of_the_inline_rules() -> None:
    published: dict[str, Any] = catalogue()
    ids = [r["id"] for r in published["rules"]]

    assert json.loads(json.dumps(published)) == published
    assert ids == [r.id for r in RULES if r.id != "RF-NP-01"]
    assert published["reminder"] == SUPPRESSED_REMINDER
    assert set(published["messages"]) == {
        k for r in RULES if r.id != "RF-NP-01" for k in r.message_keys()
    }


def test_it_omits_history_branches_from_the_catalogue() -> None:
    published: dict[str, Any] = catalogue()
    rules = {r["id"]: r for r in published["rules"]}
    text = canonical_json(catalogue())

    assert rules["RF-CA-02"]["history_branches_omitted"] is True
    assert rules["RF-FX-02"]["history_branches_omitted"] is True
    assert rules["RF-CES-01"]["history_branches_omitted"] is False
    assert "baseline" not in json.dumps(rules["RF-CA-02"]["condition"])
    assert rules["RF-CES-01"]["condition"] == {"answer": "saddle_numbness", "is": "new"}
    assert "on_consecutive_logs" not in text


def test_it_versions_the_catalogue_by_its_content() -> None:
    first, second = catalogue(), catalogue()
    reworded = catalogue(RULES, {**MESSAGES, "ces": MESSAGES["ces"] + " "})
    bumped = catalogue((dataclasses.replace(RULES[0], version=2), *RULES[1:]))

    assert first == second
    assert str(first["version"]).startswith("sha256:")
    assert reworded["version"] != first["version"]
    assert bumped["version"] != first["version"]
    assert len({first["version"], reworded["version"], bumped["version"]}) == 3


# --- the catalogue evaluated as the app would, against the engine --------------------------


def _offline_fires(condition: Any, log: dict[str, Any], patient: dict[str, Any]) -> bool:
    """An independent reading of the published JSON, as the app implements it."""
    c = condition
    safety = log["safety"]
    if "all" in c:
        return all(_offline_fires(p, log, patient) for p in c["all"])
    if "any" in c:
        return any(_offline_fires(p, log, patient) for p in c["any"])
    if "not" in c:
        return not _offline_fires(c["not"], log, patient)
    if "answer" in c:
        value = safety[c["answer"]]
        marked = any(
            m["symptom"] == c["answer"] and log["date"] <= m["until"] for m in patient["marks"]
        )
        if c.get("is") == "new":
            return value == "new_or_worse" or (value == "unchanged_assessed" and not marked)
        if c.get("is") == "assessed_stable":
            return value == "unchanged_assessed" and marked
        if c.get("is") is True:
            return value is True
        if "in" in c:
            return value in c["in"]
        return value not in c["not_in"]
    if "log" in c:
        value = log[c["log"]]
        if "in" in c:
            return value in c["in"]
        return value is not None and value >= c["at_least"]
    if "history" in c:
        return bool(patient["history"][c["history"]])
    if "fever" in c:
        temp = safety["temperature_c"]
        limit = c["fever"]["temperature_c_at_least"]
        return (temp is not None and temp >= limit) or safety["fever"] is True
    if "pain_that_day" in c:
        spec = c["pain_that_day"]
        return any(log[f] is not None and log[f] >= spec["at_least"] for f in spec["any_of"])
    if "recent_procedure" in c:
        spec = c["recent_procedure"]
        return any(
            i["kind"] in spec["kinds"]
            and 0 <= (log["date"] - i["date"]).days <= spec["within_days_before"]
            for i in patient["interventions"]
        )
    if "age_at_least" in c:
        dob, day = patient["date_of_birth"], log["date"]
        age = day.year - dob.year - ((day.month, day.day) < (dob.month, dob.day))
        return bool(age >= c["age_at_least"])
    raise AssertionError(f"unknown predicate {c}")


def _offline_rule_ids(
    published: dict[str, Any], log: dict[str, Any], patient: dict[str, Any]
) -> list[str]:
    fired_ids: list[str] = []
    for rule in published["rules"]:
        if any(ref in fired_ids for ref in rule["unless_fired"]):
            continue
        if _offline_fires(rule["condition"], log, patient):
            fired_ids.append(rule["id"])
    return fired_ids


def _random_case(rng: random.Random) -> tuple[LogFacts, PatientContext]:
    def sometimes(value: Any, default: Any, p: float = 0.15) -> Any:
        return value if rng.random() < p else default

    safety: dict[str, Any] = {
        name: sometimes(rng.choice(values), values[0]) for name, values in CHOICE_FIELDS.items()
    }
    safety.update({name: sometimes(True, False, 0.1) for name in BOOLEAN_FIELDS})
    safety["temperature_c"] = sometimes(rng.choice([37.0, 37.9, 38.0, 39.5]), None, 0.3)
    score = [None, 0, 1, 5, 7, 8, 9, 10]
    sides: list[LegPainSide | None] = [None, "none", "left", "both"]
    sleeps: list[Sleep | None] = [None, "disturbed", CONSTANT]
    kinds: list[InterventionKind] = ["injection", "prolotherapy", "surgery", "other"]
    log = LogFacts(
        date=DAY,
        pain=rng.choice([0, 0, 1, 4, 8]),
        leg_pain=rng.choice(score),
        back_pain=rng.choice(score),
        worst_pain=rng.choice(score),
        leg_pain_side=rng.choice(sides),
        sleep=rng.choice(sleeps),
        safety=SafetyAnswers.from_mapping(safety),
    )
    ctx = PatientContext(
        date_of_birth=rng.choice([dt.date(1966, 11, 20), dt.date(1966, 11, 21), FIFTY]),
        history=History(**{flag: rng.random() < 0.2 for flag in dataclasses.asdict(History())}),
        interventions=tuple(
            # The edges of RF-INF-02's 42 days and RF-INF-03's 14, and after the log.
            InterventionFact(DAY - dt.timedelta(days=rng.choice([-1, 0, 14, 15, 42, 43])), kind)
            for kind in rng.sample(kinds, k=2)
            if rng.random() < 0.3
        ),
        marks=tuple(
            MarkFact(symptom, DAY + dt.timedelta(days=rng.choice([-1, 0, 5])))
            for symptom in MARKABLE_SYMPTOMS
            if rng.random() < 0.3
        ),
    )
    return log, ctx


def test_it_evaluates_the_published_catalogue_exactly_as_the_engine() -> None:
    published: dict[str, Any] = catalogue()
    rng = random.Random(20261120)
    seen: set[str] = set()
    for _ in range(1500):
        log, ctx = _random_case(rng)
        evaluation = evaluate(log, ctx)
        raw_log = {**dataclasses.asdict(log), "safety": log.safety.as_dict()}
        raw_patient = dataclasses.asdict(ctx)

        offline = _offline_rule_ids(published, raw_log, raw_patient)
        assert sorted(offline) == sorted(evaluation.rule_ids), (log, ctx)
        json.dumps([f.as_dict() for f in evaluation.firings])
        seen.update(evaluation.rule_ids)

    # The sample reaches every inline rule, so the comparison covers them all.
    assert seen == {r.id for r in RULES} - {"RF-NP-01"}


def test_it_fires_the_same_inline_as_the_pruned_conditions() -> None:
    rng = random.Random(7)
    for _ in range(300):
        log, ctx = _random_case(rng)
        for rule in RULES:
            three_valued = rule.condition.evaluate(log, ctx).value is True
            pruned = rule.condition.inline()
            assert three_valued == (pruned is not None and pruned.evaluate(log, ctx).value is True)


def test_it_is_deterministic_and_does_not_mutate_its_inputs() -> None:
    log = make_log(safety={"fever": True, "both_legs": "unchanged_assessed"})
    ctx = make_ctx(marks=(mark("both_legs", DAY),), interventions=(injection(3),))
    before = (dataclasses.asdict(log), dataclasses.asdict(ctx))

    assert evaluate(log, ctx) == evaluate(log, ctx)
    assert (dataclasses.asdict(log), dataclasses.asdict(ctx)) == before
