"""Closed vocabularies of the daily log and its safety check.

These mirror the daily log's API (docs/app-developers.md, docs/safety-rules.md) exactly. The
serializers validate requests against the same constants, so the engine and the API can
never disagree about which answers exist.
"""

from __future__ import annotations

from typing import Final, Literal, TypeAlias

# JSON as stored in an alert's `basis` and published in the rule catalogue. Recursive
# aliases must be strings: with postponed annotations an alias is not an annotation.
JsonValue: TypeAlias = "bool | int | float | str | list[JsonValue] | dict[str, JsonValue] | None"
JsonObject: TypeAlias = "dict[str, JsonValue]"

Severity = Literal["emergency", "urgent", "routine"]
# Most severe first: the order of `safety_advice.rules` and of the caseload tiers.
SEVERITIES: Final[tuple[Severity, ...]] = ("emergency", "urgent", "routine")
SEVERITY_RANK: Final[dict[str, int]] = {s: i for i, s in enumerate(SEVERITIES)}

# --- the safety check -----------------------------------------------------------------

SymptomAnswer = Literal["no", "new_or_worse", "unchanged_assessed"]
SYMPTOM_ANSWERS: Final[tuple[SymptomAnswer, ...]] = ("no", "new_or_worse", "unchanged_assessed")

SexualFunctionAnswer = Literal["no", "new_or_worse", "unchanged_assessed", "prefer_not_to_say"]
SEXUAL_FUNCTION_ANSWERS: Final[tuple[SexualFunctionAnswer, ...]] = (
    "no",
    "new_or_worse",
    "unchanged_assessed",
    "prefer_not_to_say",
)

Weakness = Literal["none", "one_leg_new", "one_leg_worsening", "foot_drop", "both_legs"]
WEAKNESS_ANSWERS: Final[tuple[Weakness, ...]] = (
    "none",
    "one_leg_new",
    "one_leg_worsening",
    "foot_drop",
    "both_legs",
)

NumbnessSpread = Literal["none", "one_leg", "both_legs", "arms_or_trunk"]
NUMBNESS_SPREAD_ANSWERS: Final[tuple[NumbnessSpread, ...]] = (
    "none",
    "one_leg",
    "both_legs",
    "arms_or_trunk",
)

Injury = Literal["none", "minor", "major"]
INJURY_ANSWERS: Final[tuple[Injury, ...]] = ("none", "minor", "major")

# The symptoms whose answer can be `unchanged_assessed`, hence the only ones a clinician
# can mark as assessed and stable (docs/clinical-record.md, "assessed and stable" marks).
MarkableSymptom = Literal[
    "saddle_numbness", "bladder_change", "bowel_change", "sexual_function_change", "both_legs"
]
MARKABLE_SYMPTOMS: Final[tuple[MarkableSymptom, ...]] = (
    "saddle_numbness",
    "bladder_change",
    "bowel_change",
    "sexual_function_change",
    "both_legs",
)

# Every safety field, its kind and its closed set of values. Choice fields default to
# their first value: the contract says an absent answer means "no"/"none".
CHOICE_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "saddle_numbness": SYMPTOM_ANSWERS,
    "bladder_change": SYMPTOM_ANSWERS,
    "bowel_change": SYMPTOM_ANSWERS,
    "sexual_function_change": SEXUAL_FUNCTION_ANSWERS,
    "both_legs": SYMPTOM_ANSWERS,
    "weakness": WEAKNESS_ANSWERS,
    "numbness_spread": NUMBNESS_SPREAD_ANSWERS,
    "injury": INJURY_ANSWERS,
}
BOOLEAN_FIELDS: Final[tuple[str, ...]] = (
    "walking_unsteady_new",
    "fever",
    "feel_very_unwell",
    "pain_new_or_rapidly_worse",
    "unexplained_weight_loss",
    "thoracic_or_band_pain",
)
TEMPERATURE_FIELD: Final = "temperature_c"
TEMPERATURE_MIN_C: Final = 34.0
TEMPERATURE_MAX_C: Final = 43.0
SAFETY_FIELDS: Final[tuple[str, ...]] = (*CHOICE_FIELDS, *BOOLEAN_FIELDS, TEMPERATURE_FIELD)

# NHS Fife / spinal infection red flags: "a fever of 38 °C or more". 37.9 is not a fever.
FEVER_THRESHOLD_C: Final = 38.0

# --- the daily log ----------------------------------------------------------------------

PAIN_MIN: Final = 0
PAIN_MAX: Final = 10

LegPainSide = Literal["none", "left", "right", "both"]
LEG_PAIN_SIDES: Final[tuple[LegPainSide, ...]] = ("none", "left", "right", "both")

Sleep = Literal["undisturbed", "disturbed", "constant_any_position"]
SLEEP_ANSWERS: Final[tuple[Sleep, ...]] = ("undisturbed", "disturbed", "constant_any_position")

# --- the clinical record ------------------------------------------------------------------

HistoryFlag = Literal[
    "cancer",
    "immunosuppressed",
    "iv_drug_use",
    "osteoporosis",
    "long_term_steroids",
    "previous_spine_surgery",
]
HISTORY_FLAGS: Final[tuple[HistoryFlag, ...]] = (
    "cancer",
    "immunosuppressed",
    "iv_drug_use",
    "osteoporosis",
    "long_term_steroids",
    "previous_spine_surgery",
)

InterventionKind = Literal["prolotherapy", "injection", "surgery", "other"]
INTERVENTION_KINDS: Final[tuple[InterventionKind, ...]] = (
    "prolotherapy",
    "injection",
    "surgery",
    "other",
)
# The kinds that count as a "recent procedure" for RF-INF-02 (contract, interventions).
PROCEDURE_KINDS: Final[tuple[InterventionKind, ...]] = ("prolotherapy", "injection", "surgery")
INTERVENTION_SIDES: Final[tuple[str, ...]] = ("left", "right", "bilateral", "midline")
INTERVENTION_GUIDANCE: Final[tuple[str, ...]] = ("ultrasound", "fluoroscopy", "ct", "landmark")

# The contract caps an assessed mark at 90 days ahead, so a mark is always re-reviewed.
MARK_MAX_DAYS_AHEAD: Final = 90
