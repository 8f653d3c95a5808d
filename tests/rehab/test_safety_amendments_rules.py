"""The rules of the 2026-12-07 amendments (docs/safety-path.md): fever without pain
(RF-INF-03), falls (RF-FX-03, RF-FX-04 and the fall reminder), on their boundaries. Pure:
no database."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from rehab.safety import (
    FALL_REMINDER,
    MESSAGES,
    RULES,
    SUPPRESSED_REMINDER,
    EarlierLog,
    InterventionFact,
    catalogue,
)
from tests.rehab.test_safety_rules import DAY, fired, make_ctx, make_log, mark, run

FEVER = {"temperature_c": 38.0}
NO_PAIN: dict[str, Any] = {"pain": 0, "leg_pain": 0, "back_pain": 0}


def procedure(days_before: int, kind: str = "injection") -> InterventionFact:
    return InterventionFact(DAY - dt.timedelta(days=days_before), kind)  # type: ignore[arg-type]


# --- RF-INF-03 -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("temperature", "fires"), [(37.9, False), (37.99, False), (38.0, True), (39.5, True)]
)
def test_it_fires_rf_inf_03_from_38_0_degrees(temperature: float, fires: bool) -> None:
    ctx = make_ctx(history={"immunosuppressed": True})
    log = make_log(**NO_PAIN, safety={"temperature_c": temperature})

    assert ("RF-INF-03" in fired(log, ctx)) is fires


def test_it_counts_a_reported_fever_for_rf_inf_03() -> None:
    ctx = make_ctx(history={"iv_drug_use": True})

    assert fired(make_log(**NO_PAIN, safety={"fever": True}), ctx) == ("RF-INF-03",)


@pytest.mark.parametrize(
    ("history", "safety"),
    [
        ({"immunosuppressed": True}, {}),
        ({"iv_drug_use": True}, {}),
        ({}, {"feel_very_unwell": True}),
    ],
)
def test_it_fires_rf_inf_03_on_each_modifier(
    history: dict[str, bool], safety: dict[str, Any]
) -> None:
    log = make_log(**NO_PAIN, safety={**FEVER, **safety})

    assert fired(log, make_ctx(history=history)) == ("RF-INF-03",)
    advice = run(log, make_ctx(history=history)).advice
    assert advice is not None
    assert (advice.severity, advice.message) == ("urgent", MESSAGES["fever_no_pain"])


@pytest.mark.parametrize(
    "flag", ["cancer", "osteoporosis", "long_term_steroids", "previous_spine_surgery"]
)
def test_it_does_not_fire_rf_inf_03_on_other_history(flag: str) -> None:
    log = make_log(**NO_PAIN, safety=FEVER)

    assert "RF-INF-03" not in fired(log, make_ctx(history={flag: True}))


def test_it_needs_a_modifier_for_rf_inf_03() -> None:
    assert fired(make_log(**NO_PAIN, safety=FEVER)) == ()


@pytest.mark.parametrize(
    ("days_before", "fires"), [(-1, False), (0, True), (1, True), (14, True), (15, False)]
)
@pytest.mark.parametrize("kind", ["prolotherapy", "injection", "surgery"])
def test_it_counts_a_procedure_within_14_days_for_rf_inf_03(
    days_before: int, fires: bool, kind: str
) -> None:
    ctx = make_ctx(interventions=(procedure(days_before, kind),))

    assert ("RF-INF-03" in fired(make_log(**NO_PAIN, safety=FEVER), ctx)) is fires


def test_it_ignores_other_interventions_for_rf_inf_03() -> None:
    ctx = make_ctx(interventions=(procedure(2, "other"),))

    assert fired(make_log(**NO_PAIN, safety=FEVER), ctx) == ()


@pytest.mark.parametrize(
    "pain", [{"pain": 1}, {"pain": 0, "leg_pain": 1}, {"pain": 0, "back_pain": 1}]
)
def test_it_leaves_fever_with_pain_to_rf_inf_01_and_02(pain: dict[str, Any]) -> None:
    immunosuppressed = make_ctx(history={"immunosuppressed": True})
    log = make_log(safety=FEVER, **pain)

    assert fired(log, immunosuppressed) == ("RF-INF-02",)
    assert fired(log) == ("RF-INF-01",)


def test_it_treats_absent_leg_and_back_pain_as_no_pain() -> None:
    ctx = make_ctx(history={"immunosuppressed": True})

    assert fired(make_log(pain=0, safety=FEVER), ctx) == ("RF-INF-03",)


def test_a_procedure_15_to_42_days_back_still_counts_once_pain_starts() -> None:
    ctx = make_ctx(interventions=(procedure(30),))

    assert fired(make_log(**NO_PAIN, safety=FEVER), ctx) == ()
    assert fired(make_log(pain=2, safety=FEVER), ctx) == ("RF-INF-02",)


# --- falls ---------------------------------------------------------------------------------


NEURO_AFTER_FALL = [
    {"weakness": "one_leg_new"},
    {"weakness": "one_leg_worsening"},
    {"weakness": "foot_drop"},
    {"weakness": "both_legs"},
    {"numbness_spread": "one_leg"},
    {"numbness_spread": "both_legs"},
    {"numbness_spread": "arms_or_trunk"},
    {"walking_unsteady_new": True},
]


@pytest.mark.parametrize("injury", ["minor", "major"])
@pytest.mark.parametrize("neuro", NEURO_AFTER_FALL)
def test_it_fires_rf_fx_03_after_any_fall_with_neurology(
    injury: str, neuro: dict[str, Any]
) -> None:
    evaluation = run(make_log(safety={"injury": injury, **neuro}))

    assert "RF-FX-03" in evaluation.rule_ids
    assert evaluation.advice is not None
    assert evaluation.advice.severity == "emergency"
    # No fall reminder beside an emergency: the patient is already sent to hospital.
    assert evaluation.reminder is None


@pytest.mark.parametrize("neuro", NEURO_AFTER_FALL)
def test_it_needs_a_fall_for_rf_fx_03(neuro: dict[str, Any]) -> None:
    assert "RF-FX-03" not in fired(make_log(safety={"injury": "none", **neuro}))


def test_a_fall_alone_fires_no_rf_fx_03() -> None:
    assert fired(make_log(safety={"injury": "minor"})) == ()


def test_it_shows_the_fall_message_when_rf_fx_03_is_the_most_severe() -> None:
    evaluation = run(make_log(safety={"injury": "minor", "numbness_spread": "one_leg"}))

    assert evaluation.rule_ids == ("RF-FX-03",)
    assert evaluation.advice is not None
    assert evaluation.advice.message == MESSAGES["fall_neuro"]
    assert evaluation.advice.message_key == "fall_neuro"


@pytest.mark.parametrize(
    ("injury", "surgery", "expected"),
    [
        ("minor", True, ("RF-FX-04",)),
        ("minor", False, ()),
        ("major", True, ("RF-FX-01",)),
        ("none", True, ()),
    ],
)
def test_it_fires_rf_fx_04_on_a_minor_fall_after_spine_surgery(
    injury: str, surgery: bool, expected: tuple[str, ...]
) -> None:
    ctx = make_ctx(history={"previous_spine_surgery": surgery})

    assert fired(make_log(safety={"injury": injury}), ctx) == expected


def test_rf_fx_03_takes_precedence_over_rf_fx_04_for_the_advice() -> None:
    ctx = make_ctx(history={"previous_spine_surgery": True})
    evaluation = run(make_log(safety={"injury": "minor", "weakness": "foot_drop"}), ctx)

    assert evaluation.rule_ids == ("RF-FX-03", "RF-FX-04", "RF-NEU-01")
    assert evaluation.advice is not None
    assert evaluation.advice.message == MESSAGES["fall_neuro"]
    assert evaluation.reminder is None


def test_rf_fx_04_tells_the_patient_to_call_today_with_the_fall_reminder() -> None:
    ctx = make_ctx(history={"previous_spine_surgery": True})
    evaluation = run(make_log(safety={"injury": "minor"}), ctx)

    assert evaluation.advice is not None
    assert (evaluation.advice.severity, evaluation.advice.message) == (
        "urgent",
        MESSAGES["fall_after_spine_surgery"],
    )
    assert evaluation.reminder == FALL_REMINDER
    assert evaluation.advice.note == FALL_REMINDER


@pytest.mark.parametrize("injury", ["minor", "major"])
def test_it_reminds_after_a_fall_that_fired_nothing_or_nothing_emergency(injury: str) -> None:
    quiet = run(make_log(safety={"injury": injury}))
    if injury == "major":  # RF-FX-01 is an emergency: no reminder
        assert quiet.reminder is None
    else:
        assert quiet.advice is None
        assert quiet.reminder == FALL_REMINDER


def test_it_reminds_after_a_fall_beside_an_urgent_rule() -> None:
    evaluation = run(make_log(safety={"injury": "minor", "unexplained_weight_loss": True}))

    assert evaluation.rule_ids == ("RF-CA-03",)
    assert evaluation.reminder == FALL_REMINDER


def test_it_sends_both_sentences_when_a_mark_and_a_fall_apply() -> None:
    ctx = make_ctx(marks=(mark("saddle_numbness", DAY),))
    log = make_log(safety={"injury": "minor", "saddle_numbness": "unchanged_assessed"})

    assert run(log, ctx).reminder == f"{SUPPRESSED_REMINDER} {FALL_REMINDER}"


def test_no_fall_no_reminder() -> None:
    assert run(make_log(safety={"injury": "none"})).reminder is None


# --- RF-NP-01 beside the new red flags -----------------------------------------------------


@pytest.mark.parametrize("rule_id", ["RF-INF-03", "RF-FX-03", "RF-FX-04"])
def test_night_pain_stays_silent_while_a_new_red_flag_is_open(rule_id: str) -> None:
    nights = tuple(
        EarlierLog(DAY - dt.timedelta(days=n), None, "constant_any_position") for n in (1, 2)
    )
    log = make_log(sleep="constant_any_position")

    assert fired(log, make_ctx(recent_logs=nights)) == ("RF-NP-01",)
    assert fired(log, make_ctx(recent_logs=nights, open_alert_rules=frozenset({rule_id}))) == ()


def test_the_new_rules_are_versioned_and_night_pain_bumped() -> None:
    versions = {rule.id: rule.version for rule in RULES}

    assert (versions["RF-INF-03"], versions["RF-FX-03"], versions["RF-FX-04"]) == (1, 1, 1)
    assert versions["RF-NP-01"] == 2


def test_the_catalogue_publishes_the_new_rules_and_the_fall_reminder() -> None:
    published: dict[str, Any] = catalogue()

    ids = [rule["id"] for rule in published["rules"]]
    assert {"RF-INF-03", "RF-FX-03", "RF-FX-04"} <= set(ids)
    assert published["fall_reminder"] == FALL_REMINDER
    assert {"fever_no_pain", "fall_neuro", "fall_after_spine_surgery"} <= set(published["messages"])
