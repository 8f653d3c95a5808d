"""Evaluation of the red-flag rules on one daily log, and the published rule catalogue.

Pure domain logic: no Django, no I/O, no clock. The request path calls `evaluate()` with
`recent_logs=None` so the patient's advice never waits for a queue; the background job
calls it again with the history filled in, which decides the history-only branches too.

What runs where (docs/safety-rules.md, "Evaluated": rules that need history run in the
background job). A predicate that needs data the caller did not give evaluates to *unknown*, and
the rule logic is three-valued (Kleene): a rule fires only when its condition is known to
be true. So, on the inline path (`recent_logs=None`, `baseline_back_pain=None`):
- every rule except RF-NP-01 is evaluated;
- RF-CA-02 decides its sleep and thoracic-pain branches; its "back pain >= baseline + 2 on
  3 consecutive logged days" branch needs `baseline_back_pain` and `recent_logs`;
- RF-FX-02 decides its `pain_new_or_rapidly_worse` branch; its "back pain >= baseline + 3"
  branch needs `baseline_back_pain`;
- RF-NP-01 needs `recent_logs` (and the caller's `open_alert_rules`).
A rule that could still fire on the missing branch is listed in `Evaluation.undecided`.

One module, though over 500 lines: one evaluation (three-valued logic, precedence between
rules, the inline/background split) and the catalogue that publishes exactly that logic
to the app; apart, the two could drift.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from decimal import Decimal
from typing import Any, Final, Protocol, cast

# rules.py imports the input types below only for type checking: no import cycle at runtime.
from rehab.safety.rules import (
    FALL_REMINDER,
    FEVER,
    MESSAGES,
    RULES,
    SUPPRESSED_REMINDER,
    Rule,
    check_rules,
)
from rehab.safety.vocab import (
    BOOLEAN_FIELDS,
    CHOICE_FIELDS,
    HISTORY_FLAGS,
    INTERVENTION_KINDS,
    LEG_PAIN_SIDES,
    MARKABLE_SYMPTOMS,
    PAIN_MAX,
    PAIN_MIN,
    SAFETY_FIELDS,
    SEVERITIES,
    SEVERITY_RANK,
    SLEEP_ANSWERS,
    TEMPERATURE_MAX_C,
    TEMPERATURE_MIN_C,
    Injury,
    InterventionKind,
    JsonObject,
    JsonValue,
    LegPainSide,
    MarkableSymptom,
    NumbnessSpread,
    Severity,
    SexualFunctionAnswer,
    Sleep,
    SymptomAnswer,
    Weakness,
)

# --- inputs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SafetyAnswers:
    """The daily safety check with the contract's defaults applied.

    Absent, `null`, and "no"/"none"/false are one and the same answer (contract, retries),
    so the normalized form has no "absent" state and two equal checks compare equal.
    """

    saddle_numbness: SymptomAnswer = "no"
    bladder_change: SymptomAnswer = "no"
    bowel_change: SymptomAnswer = "no"
    sexual_function_change: SexualFunctionAnswer = "no"
    both_legs: SymptomAnswer = "no"
    weakness: Weakness = "none"
    numbness_spread: NumbnessSpread = "none"
    walking_unsteady_new: bool = False
    fever: bool = False
    temperature_c: float | None = None
    feel_very_unwell: bool = False
    injury: Injury = "none"
    pain_new_or_rapidly_worse: bool = False
    unexplained_weight_loss: bool = False
    thoracic_or_band_pain: bool = False

    def __post_init__(self) -> None:
        # Validated here as well as in DRF so that an instance built from a database row
        # or by the backtest can never carry an answer the rules do not know about.
        for name, allowed in CHOICE_FIELDS.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"safety.{name}: unknown answer {value!r}")
        for name in BOOLEAN_FIELDS:
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"safety.{name}: must be a boolean")
        if self.temperature_c is not None:
            object.__setattr__(self, "temperature_c", _temperature(self.temperature_c))

    @classmethod
    def from_mapping(cls, data: Mapping[str, object] | None) -> SafetyAnswers:
        """Normalize a request's `safety` object; `None` (no check sent) is all "no"."""
        if data is None:
            return cls()
        unknown = sorted(set(data) - set(SAFETY_FIELDS))
        if unknown:
            raise ValueError(f"safety: unknown field(s) {', '.join(unknown)}")
        present = {name: value for name, value in data.items() if value is not None}
        return cls(**cast("dict[str, Any]", present))

    def as_dict(self) -> JsonObject:
        """Every field with its normalized value: the canonical form for retry comparison."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _temperature(value: object) -> float:
    # bool is an int subclass; `true` is not a temperature.
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError("safety.temperature_c: must be a number")
    number = float(value)
    if math.isnan(number) or not TEMPERATURE_MIN_C <= number <= TEMPERATURE_MAX_C:
        raise ValueError(
            f"safety.temperature_c: must be between {TEMPERATURE_MIN_C} and {TEMPERATURE_MAX_C}"
        )
    return number


def _score(name: str, value: object, *, required: bool = False) -> None:
    if value is None and not required:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not PAIN_MIN <= value <= PAIN_MAX:
        raise ValueError(f"{name}: must be an integer {PAIN_MIN}-{PAIN_MAX}")


@dataclass(frozen=True)
class LogFacts:
    """What the rules read from one daily log; `date` is the patient's local date."""

    date: dt.date
    pain: int
    leg_pain: int | None = None
    back_pain: int | None = None
    worst_pain: int | None = None
    leg_pain_side: LegPainSide | None = None
    function: int | None = None
    sleep: Sleep | None = None
    safety: SafetyAnswers = SafetyAnswers()

    def __post_init__(self) -> None:
        _score("pain", self.pain, required=True)
        for name in ("leg_pain", "back_pain", "worst_pain", "function"):
            _score(name, getattr(self, name))
        if self.leg_pain_side is not None and self.leg_pain_side not in LEG_PAIN_SIDES:
            raise ValueError(f"leg_pain_side: unknown value {self.leg_pain_side!r}")
        if self.sleep is not None and self.sleep not in SLEEP_ANSWERS:
            raise ValueError(f"sleep: unknown value {self.sleep!r}")


class PreviousLog(Protocol):
    """What the trend rules read of a patient's logs before the one being evaluated: its
    date, sleep and back pain, nothing else. `PatientContext.logs_before` gives the rules
    this type, so a rule reading more of an earlier log does not type-check; a `LogFacts`
    is one, and so is the lighter `EarlierLog` the background job builds."""

    @property
    def date(self) -> dt.date: ...

    @property
    def back_pain(self) -> int | None: ...

    @property
    def sleep(self) -> Sleep | None: ...


@dataclass(frozen=True, slots=True)
class EarlierLog:
    """A stored earlier log as the trend rules read it (`PreviousLog`): the background
    job reads these three columns of ~6 earlier logs for every log it evaluates, not the
    whole row and its safety check. Not validated again: the log was when it was sent."""

    date: dt.date
    back_pain: int | None
    sleep: Sleep | None


# The columns of an earlier log the background job reads: exactly `EarlierLog`'s fields.
EARLIER_LOG_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(EarlierLog))


@dataclass(frozen=True)
class History:
    """The clinician-confirmed history (contract: patient `history`), all false by default."""

    cancer: bool = False
    immunosuppressed: bool = False
    iv_drug_use: bool = False
    osteoporosis: bool = False
    long_term_steroids: bool = False
    previous_spine_surgery: bool = False

    def __post_init__(self) -> None:
        for name in HISTORY_FLAGS:
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"history.{name}: must be a boolean")

    @classmethod
    def from_mapping(cls, data: Mapping[str, object] | None) -> History:
        if data is None:
            return cls()
        unknown = sorted(set(data) - set(HISTORY_FLAGS))
        if unknown:
            raise ValueError(f"history: unknown field(s) {', '.join(unknown)}")
        present = {name: value for name, value in data.items() if value is not None}
        return cls(**cast("dict[str, Any]", present))


@dataclass(frozen=True)
class InterventionFact:
    date: dt.date
    kind: InterventionKind

    def __post_init__(self) -> None:
        if self.kind not in INTERVENTION_KINDS:
            raise ValueError(f"intervention kind: unknown value {self.kind!r}")

    def as_dict(self) -> JsonObject:
        return {"kind": self.kind, "date": self.date.isoformat()}


@dataclass(frozen=True)
class MarkFact:
    """A clinician's "assessed and stable" mark; it holds on every date up to `until`."""

    symptom: MarkableSymptom
    until: dt.date

    def __post_init__(self) -> None:
        if self.symptom not in MARKABLE_SYMPTOMS:
            raise ValueError(f"mark symptom: unknown value {self.symptom!r}")

    def holds_on(self, day: dt.date) -> bool:
        return day <= self.until


@dataclass(frozen=True)
class PatientContext:
    """Everything about the patient, other than the log itself, that the rules read.

    `marks` are the marks in force when the log is evaluated; the engine only checks
    their expiry against the log's date. `recent_logs` are the patient's logs before this
    one (any order; later ones are ignored), `None` on the request path. The background
    job also passes `baseline_back_pain` (mean back pain of the first week of logs, as for
    `baseline_pain` in the progress summary) and `open_alert_rules`, the rule ids with an
    alert in status `open`, which RF-NP-01 ("no other RF rule open") reads.
    """

    date_of_birth: dt.date
    history: History = History()
    interventions: tuple[InterventionFact, ...] = ()
    marks: tuple[MarkFact, ...] = ()
    baseline_back_pain: float | None = None
    recent_logs: tuple[PreviousLog, ...] | None = None
    open_alert_rules: frozenset[str] = frozenset()

    def age_on(self, day: dt.date) -> int:
        # Whole years at the log's date: the birthday itself counts. A 29 February
        # birthday is reached on 1 March in other years.
        before_birthday = (day.month, day.day) < (self.date_of_birth.month, self.date_of_birth.day)
        return day.year - self.date_of_birth.year - int(before_birthday)

    def current_mark(self, symptom: str, day: dt.date) -> MarkFact | None:
        holding = [m for m in self.marks if m.symptom == symptom and m.holds_on(day)]
        return max(holding, key=lambda m: m.until, default=None)

    def latest_mark(self, symptom: str) -> MarkFact | None:
        return max(
            (m for m in self.marks if m.symptom == symptom), key=lambda m: m.until, default=None
        )

    def logs_before(self, day: dt.date) -> tuple[PreviousLog, ...] | None:
        """Previous logs in date order; `None` when the caller gave no history."""
        if self.recent_logs is None:
            return None
        return tuple(sorted((x for x in self.recent_logs if x.date < day), key=lambda x: x.date))


# --- outputs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Firing:
    """One rule that fired on one log: what the alert stores (rule, version, basis)."""

    rule_id: str
    version: int
    severity: Severity
    basis: JsonObject
    message_key: str

    def as_dict(self) -> JsonObject:
        return {
            "rule": self.rule_id,
            "rule_version": self.version,
            "severity": self.severity,
            "basis": self.basis,
        }


@dataclass(frozen=True)
class Suppression:
    """A symptom answered `unchanged_assessed` while a clinician's mark held."""

    symptom: MarkableSymptom
    until: dt.date


# The language every message is written in here; the translations are Django's, done at
# the edge (docs/app-developers.md § Languages), which records the language it showed.
MESSAGE_LANGUAGE: Final = "en"

# The reminders by their key in the catalogue, beside the messages' keys.
REMINDER_KEY: Final = "reminder"
FALL_REMINDER_KEY: Final = "fall_reminder"
REMINDERS: Final[Mapping[str, str]] = {
    REMINDER_KEY: SUPPRESSED_REMINDER,
    FALL_REMINDER_KEY: FALL_REMINDER,
}


@dataclass(frozen=True)
class Advice:
    """The contract's `safety_advice`. Our additions (extra fields are allowed): `note`,
    the reminders owed to the patient (a mark applied, §4; a fall, §8.3), and
    `message_key` and `language`, which name the message shown so that an alert can say
    what the patient was told (§8.6) and the app can show it in its own words."""

    severity: Severity
    rules: tuple[str, ...]
    message: str
    note: str | None = None
    message_key: str = ""
    language: str = MESSAGE_LANGUAGE

    def as_dict(self) -> JsonObject:
        out: JsonObject = {
            "severity": self.severity,
            "rules": list(self.rules),
            "message": self.message,
            "message_key": self.message_key,
            "language": self.language,
        }
        # Only when there is one, so the common shape is exactly the contract's.
        if self.note is not None:
            out["note"] = self.note
        return out


@dataclass(frozen=True)
class Evaluation:
    firings: tuple[Firing, ...]
    advice: Advice | None
    # Marks that changed the outcome; when nothing fired, `safety_advice` must be null
    # (contract), so the API carries `reminder` in a field of its own.
    suppressed: tuple[Suppression, ...] = ()
    # Rules that could still fire on a branch whose history was not given.
    undecided: tuple[str, ...] = ()
    # The log reports a fall (`safety.injury` minor or major): §8.3's safety net is owed
    # unless an emergency rule already sent the patient to hospital.
    fall: bool = False

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return tuple(f.rule_id for f in self.firings)

    @property
    def decided_quiet(self) -> bool:
        """Nothing fired and no rule was left undecided. Every rule's condition was then
        known false from the facts given, and more facts cannot turn a known value
        (three-valued logic); an alert open elsewhere can only stop a rule, never start
        one. An evaluation with every fact would fire nothing either
        (tests/rehab/test_safety_record_needs.py holds it over generated logs)."""
        return not self.firings and not self.undecided

    @property
    def reminder_keys(self) -> tuple[str, ...]:
        """The reminders owed, by their key in the catalogue (`reminder`, `fall_reminder`),
        in the order they are shown; a translation looks each one up by its key."""
        owed: list[str] = []
        if self.suppressed:
            owed.append(REMINDER_KEY)
        emergency = any(f.severity == "emergency" for f in self.firings)
        if self.fall and not emergency:
            owed.append(FALL_REMINDER_KEY)
        return tuple(owed)

    @property
    def reminder(self) -> str | None:
        """Every reminder owed, as one text (§4 and §8.3 both may apply); None if none."""
        return " ".join(REMINDERS[key] for key in self.reminder_keys) or None


def evaluate(log: LogFacts, ctx: PatientContext, *, rules: Sequence[Rule] = RULES) -> Evaluation:
    """Run every rule on one log, in definition order (later rules may name earlier ones)."""
    fired: dict[str, Firing] = {}
    undecided: list[str] = []
    for rule in rules:
        if any(ref in fired for ref in rule.unless_fired):
            continue
        # "No other RF rule open": an alert about to be raised from this log counts too.
        if any(ref in fired or ref in ctx.open_alert_rules for ref in rule.unless_open):
            continue
        value = rule.condition.decide(log, ctx)
        blocked_by_unknown = any(
            ref in undecided for ref in (*rule.unless_fired, *rule.unless_open)
        )
        if value is None or (value and blocked_by_unknown):
            undecided.append(rule.id)
        elif value:
            fired[rule.id] = Firing(
                rule_id=rule.id,
                version=rule.version,
                severity=rule.severity,
                # Only the rules that fire pay for the basis of their condition.
                basis=rule.condition.evaluate(log, ctx).basis,
                message_key=rule.message_for(log, ctx),
            )

    firings = tuple(sorted(fired.values(), key=lambda f: (SEVERITY_RANK[f.severity], f.rule_id)))
    suppressed = tuple(
        Suppression(symptom=symptom, until=mark.until)
        for symptom in MARKABLE_SYMPTOMS
        if getattr(log.safety, symptom) == "unchanged_assessed"
        and (mark := ctx.current_mark(symptom, log.date)) is not None
    )
    evaluation = Evaluation(
        firings=firings,
        advice=None,
        suppressed=suppressed,
        undecided=tuple(undecided),
        fall=log.safety.injury in ("minor", "major"),
    )
    if not firings:
        return evaluation
    advice = Advice(
        severity=firings[0].severity,
        rules=tuple(f.rule_id for f in firings),
        message=MESSAGES[firings[0].message_key],
        note=evaluation.reminder,
        message_key=firings[0].message_key,
    )
    return replace(evaluation, advice=advice)


@dataclass(frozen=True)
class RecordNeeds:
    """Which clinical-record facts can change the evaluation of one log."""

    interventions: bool
    marks: bool


def record_needs(log: LogFacts) -> RecordNeeds:
    """What of the clinical record `evaluate` can read for this log; a context left without
    the rest evaluates exactly the same (tests/rehab/test_safety_rules.py checks it over
    every kind of log and record).

    - Procedures are read only by RecentProcedure, under the fever of both infection
      rules (a modifier, and RF-INF-02's message variant): without a fever neither rule
      can fire, whatever the procedures, and a rule that does not fire leaves no trace.
    - Marks are read only for an answer of `unchanged_assessed` (`is_new`,
      `is_assessed_stable`, and the §4 reminder); every other answer ignores them.

    Most logs answer neither, and the request path then reads no record at all.
    """
    return RecordNeeds(
        interventions=FEVER.holds(log),
        marks=any(getattr(log.safety, s) == "unchanged_assessed" for s in MARKABLE_SYMPTOMS),
    )


# --- the published catalogue -----------------------------------------------------------------

CATALOGUE_SCHEMA = 1

# How the app must read the declarative conditions; part of the hashed content, so a
# change of meaning changes the version just like a change of rule.
CONVENTIONS: dict[str, JsonValue] = {
    "order": "Evaluate rules in the listed order; unless_fired names earlier rules only.",
    "unless_fired": "The rule does not fire when any listed rule fired on the same log.",
    "fires": "A rule fires when its condition is true. Answers absent from the safety "
    "check mean 'no'/'none'/false.",
    "is_new": "The answer is new_or_worse, or unchanged_assessed while no assessed mark "
    "for that symptom holds on the log's date (a mark holds while log date <= until). "
    "prefer_not_to_say is never new.",
    "is_assessed_stable": "The answer is unchanged_assessed and a mark for that symptom "
    "holds on the log's date.",
    "recent_procedure": "An intervention of one of the kinds dated from within_days_before "
    "days before the log's date up to and including the log's date.",
    "age_at_least": "Age in whole years at the log's date; the birthday itself counts.",
    "fever": "safety.temperature_c >= temperature_c_at_least, or safety.fever is true.",
    "pain_that_day": "Any listed log field (null is not pain) is at least at_least.",
    "omitted_history_branches": "Branches that need the patient's history (baselines, "
    "recent logs) are omitted here; the server evaluates them in the background.",
    "advice": "The patient sees the message of the most severe rule that fired (emergency, "
    "urgent, routine, then rule id); if any symptom was unchanged_assessed under a mark, "
    "also the reminder.",
    "fall_reminder": "When safety.injury is minor or major and no emergency rule fired, the "
    "patient also sees fall_reminder (after the reminder, when both apply).",
}


def catalogue(
    rules: Sequence[Rule] = RULES,
    messages: Mapping[str, str] = MESSAGES,
    *,
    reminders: Mapping[str, str] = REMINDERS,
    language: str = MESSAGE_LANGUAGE,
    english_beside: Mapping[str, str] | None = None,
) -> JsonObject:
    """The inline-evaluable rules in a JSON form the app can evaluate offline.

    `messages` and `reminders` are the texts in `language` (the caller translates);
    `english_beside` holds the English of those whose translation is not reviewed yet, by
    key, which the app shows beside them. `version` is a sha256 of the canonical JSON of
    everything else, so it changes exactly when a definition, a message, a translation or
    a convention changes, and differs between languages: usable as the ETag.
    """
    check_rules(rules, messages)
    published = [r for r in rules if not r.needs_history]
    used = sorted({key for r in published for key in r.message_keys()})
    body: JsonObject = {
        "schema": CATALOGUE_SCHEMA,
        "severities": list(SEVERITIES),
        "conventions": CONVENTIONS,
        "vocabulary": {
            "choices": {name: list(values) for name, values in CHOICE_FIELDS.items()},
            "booleans": list(BOOLEAN_FIELDS),
            "temperature_c": {"min": TEMPERATURE_MIN_C, "max": TEMPERATURE_MAX_C},
        },
        "rules": [r.to_json(inline=True) for r in published],
        "language": language,
        "messages": {key: messages[key] for key in used},
        "reminder": reminders[REMINDER_KEY],
        "fall_reminder": reminders[FALL_REMINDER_KEY],
    }
    if english_beside:
        body["english_beside"] = {
            key: text
            for key, text in sorted(english_beside.items())
            if key in used or key in reminders
        }
    digest = hashlib.sha256(canonical_json(body).encode()).hexdigest()
    return {"version": f"sha256:{digest}", **body}


def canonical_json(value: JsonValue) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
