"""The red-flag rules, written as data (the reference: docs/safety-rules.md).

Each rule's condition is a tree of small predicates. Every predicate can
- evaluate itself on a log and the patient's context, to True, False or None (unknown:
  it needs history the caller did not give), together with the inputs it read (`basis`);
- serialize itself to a declarative JSON form, published in the rule catalogue so the
  app can evaluate the same rules offline;
- say whether it needs history, so the inline (request) part of a rule can be published.

Changing what a rule fires on means bumping its `version`: alerts store the version, and
an audit replays a firing with the definition of that version.

One module, though over 500 lines: the rule set is read and reviewed as one document (the
reference is generated from it), and its predicates and messages are only meaningful
beside the rules that use them.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from rehab.safety.vocab import (
    BOOLEAN_FIELDS,
    CHOICE_FIELDS,
    FEVER_THRESHOLD_C,
    HISTORY_FLAGS,
    LEG_PAIN_SIDES,
    MARKABLE_SYMPTOMS,
    PROCEDURE_KINDS,
    SEVERITIES,
    SLEEP_ANSWERS,
    HistoryFlag,
    InterventionKind,
    JsonObject,
    JsonValue,
    Severity,
)

if TYPE_CHECKING:
    from rehab.safety.engine import LogFacts, PatientContext


@dataclass(frozen=True)
class Outcome:
    """A predicate's result: True, False, or None when it needs history not given."""

    value: bool | None
    basis: JsonObject


def _merge(outcomes: Sequence[Outcome]) -> JsonObject:
    merged: JsonObject = {}
    for outcome in outcomes:
        merged.update(outcome.basis)
    return merged


class Predicate(ABC):
    @abstractmethod
    def evaluate(self, log: LogFacts, ctx: PatientContext) -> Outcome: ...

    def decide(self, log: LogFacts, ctx: PatientContext) -> bool | None:
        """`evaluate(log, ctx).value` without building the basis: what the engine asks of
        every rule on every log. Only a rule that fires is evaluated again for its basis."""
        return self.evaluate(log, ctx).value

    @abstractmethod
    def to_json(self) -> JsonValue: ...

    @property
    def uses_history(self) -> bool:
        return False

    @property
    def previous_logs(self) -> int:
        """How many of the patient's logs before this one it reads (the latest ones)."""
        return 0

    def inline(self) -> Predicate | None:
        """This predicate without its history branches; None when it cannot be decided
        without history at all. Firing on the result is the same as firing on the
        three-valued evaluation with no history given."""
        return None if self.uses_history else self


# --- combinators ---------------------------------------------------------------------------


def _decide_all(
    parts: Sequence[Predicate], log: LogFacts, ctx: PatientContext, *, deciding: bool
) -> bool | None:
    """Kleene AND (`deciding` False) or OR (True) of the parts' `decide`, stopping at the
    first part whose value decides it; unknown if no part did and one was unknown."""
    unknown = False
    for part in parts:
        value = part.decide(log, ctx)
        if value is deciding:
            return deciding
        unknown = unknown or value is None
    return None if unknown else not deciding


@dataclass(frozen=True, init=False)
class AllOf(Predicate):
    parts: tuple[Predicate, ...]

    def __init__(self, *parts: Predicate) -> None:
        object.__setattr__(self, "parts", parts)

    def evaluate(self, log: LogFacts, ctx: PatientContext) -> Outcome:
        results = [p.evaluate(log, ctx) for p in self.parts]
        false = [r for r in results if r.value is False]
        if false:
            # The inputs that stopped it; enough to show why a rule did not fire.
            return Outcome(False, _merge(false))
        if any(r.value is None for r in results):
            return Outcome(None, _merge([r for r in results if r.value is not None]))
        return Outcome(True, _merge(results))

    def decide(self, log: LogFacts, ctx: PatientContext) -> bool | None:
        return _decide_all(self.parts, log, ctx, deciding=False)

    def to_json(self) -> JsonValue:
        return {"all": [p.to_json() for p in self.parts]}

    @property
    def uses_history(self) -> bool:
        return any(p.uses_history for p in self.parts)

    @property
    def previous_logs(self) -> int:
        return max((p.previous_logs for p in self.parts), default=0)

    def inline(self) -> Predicate | None:
        # A conjunction with an unknown part is never known to be true.
        parts = [p.inline() for p in self.parts]
        if any(p is None for p in parts):
            return None
        return AllOf(*(p for p in parts if p is not None))


@dataclass(frozen=True, init=False)
class AnyOf(Predicate):
    parts: tuple[Predicate, ...]

    def __init__(self, *parts: Predicate) -> None:
        object.__setattr__(self, "parts", parts)

    def evaluate(self, log: LogFacts, ctx: PatientContext) -> Outcome:
        results = [p.evaluate(log, ctx) for p in self.parts]
        true = [r for r in results if r.value is True]
        if true:
            # Only the branches that made it fire belong in the basis.
            return Outcome(True, _merge(true))
        known = [r for r in results if r.value is not None]
        return Outcome(None if len(known) < len(results) else False, _merge(known))

    def decide(self, log: LogFacts, ctx: PatientContext) -> bool | None:
        return _decide_all(self.parts, log, ctx, deciding=True)

    def to_json(self) -> JsonValue:
        return {"any": [p.to_json() for p in self.parts]}

    @property
    def uses_history(self) -> bool:
        return any(p.uses_history for p in self.parts)

    @property
    def previous_logs(self) -> int:
        return max((p.previous_logs for p in self.parts), default=0)

    def inline(self) -> Predicate | None:
        # An unknown branch of a disjunction can only add firings, never remove one, so
        # dropping it leaves the inline firings exact.
        parts = [q for p in self.parts if (q := p.inline()) is not None]
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else AnyOf(*parts)


@dataclass(frozen=True)
class Not(Predicate):
    part: Predicate

    def evaluate(self, log: LogFacts, ctx: PatientContext) -> Outcome:
        result = self.part.evaluate(log, ctx)
        return Outcome(None if result.value is None else not result.value, result.basis)

    def decide(self, log: LogFacts, ctx: PatientContext) -> bool | None:
        value = self.part.decide(log, ctx)
        return None if value is None else not value

    def to_json(self) -> JsonValue:
        return {"not": self.part.to_json()}

    @property
    def uses_history(self) -> bool:
        return self.part.uses_history

    @property
    def previous_logs(self) -> int:
        return self.part.previous_logs

    def inline(self) -> Predicate | None:
        # Not(unknown) is unknown: the negation of a pruned branch would be wrong.
        return None if self.part.uses_history else self


# --- the safety check ----------------------------------------------------------------------


def _mark_basis(ctx: PatientContext, symptom: str, day: dt.date) -> JsonValue:
    # Record the mark that decided it, or the latest expired one, so a reviewer can see
    # that `unchanged_assessed` counted as new because the mark had run out.
    mark = ctx.current_mark(symptom, day) or ctx.latest_mark(symptom)
    if mark is None:
        return None
    return {"until": mark.until.isoformat(), "current": mark.holds_on(day)}


@dataclass(frozen=True)
class IsNew(Predicate):
    """`new_or_worse`, or `unchanged_assessed` without a mark holding on the log's date."""

    answer: str

    def __post_init__(self) -> None:
        if self.answer not in MARKABLE_SYMPTOMS:
            raise ValueError(f"{self.answer} has no new/assessed answers")

    def evaluate(self, log: LogFacts, ctx: PatientContext) -> Outcome:
        value = getattr(log.safety, self.answer)
        basis: JsonObject = {f"safety.{self.answer}": value}
        if value == "unchanged_assessed":
            basis[f"mark.{self.answer}"] = _mark_basis(ctx, self.answer, log.date)
            return Outcome(ctx.current_mark(self.answer, log.date) is None, basis)
        # `prefer_not_to_say` and "no" never fire.
        return Outcome(value == "new_or_worse", basis)

    def decide(self, log: LogFacts, ctx: PatientContext) -> bool | None:
        value: str = getattr(log.safety, self.answer)
        if value == "unchanged_assessed":
            return ctx.current_mark(self.answer, log.date) is None
        return value == "new_or_worse"

    def to_json(self) -> JsonValue:
        return {"answer": self.answer, "is": "new"}


@dataclass(frozen=True)
class IsAssessedStable(Predicate):
    """`unchanged_assessed` with a clinician's mark holding on the log's date (§4)."""

    answer: str

    def __post_init__(self) -> None:
        if self.answer not in MARKABLE_SYMPTOMS:
            raise ValueError(f"{self.answer} has no new/assessed answers")

    def evaluate(self, log: LogFacts, ctx: PatientContext) -> Outcome:
        value = getattr(log.safety, self.answer)
        basis: JsonObject = {f"safety.{self.answer}": value}
        if value != "unchanged_assessed":
            return Outcome(False, basis)
        basis[f"mark.{self.answer}"] = _mark_basis(ctx, self.answer, log.date)
        return Outcome(ctx.current_mark(self.answer, log.date) is not None, basis)

    def decide(self, log: LogFacts, ctx: PatientContext) -> bool | None:
        if getattr(log.safety, self.answer) != "unchanged_assessed":
            return False
        return ctx.current_mark(self.answer, log.date) is not None

    def to_json(self) -> JsonValue:
        return {"answer": self.answer, "is": "assessed_stable"}


@dataclass(frozen=True)
class AnswerIn(Predicate):
    answer: str
    values: tuple[str, ...]
    negate: bool = False

    def __post_init__(self) -> None:
        allowed = CHOICE_FIELDS.get(self.answer)
        if allowed is None or not set(self.values) <= set(allowed):
            raise ValueError(f"safety.{self.answer}: unknown answers {self.values!r}")

    def evaluate(self, log: LogFacts, ctx: PatientContext) -> Outcome:
        value = getattr(log.safety, self.answer)
        return Outcome((value in self.values) != self.negate, {f"safety.{self.answer}": value})

    def decide(self, log: LogFacts, ctx: PatientContext) -> bool | None:
        return (getattr(log.safety, self.answer) in self.values) != self.negate

    def to_json(self) -> JsonValue:
        return {"answer": self.answer, "not_in" if self.negate else "in": list(self.values)}


@dataclass(frozen=True)
class AnswerTrue(Predicate):
    answer: str

    def __post_init__(self) -> None:
        if self.answer not in BOOLEAN_FIELDS:
            raise ValueError(f"safety.{self.answer} is not a yes/no answer")

    def evaluate(self, log: LogFacts, ctx: PatientContext) -> Outcome:
        value: bool = getattr(log.safety, self.answer)
        return Outcome(value, {f"safety.{self.answer}": value})

    def decide(self, log: LogFacts, ctx: PatientContext) -> bool | None:
        value: bool = getattr(log.safety, self.answer)
        return value

    def to_json(self) -> JsonValue:
        return {"answer": self.answer, "is": True}


@dataclass(frozen=True)
class Answer:
    """Builder so that definitions read as sentences: `Answer("weakness").in_(...)`."""

    name: str

    def is_new(self) -> Predicate:
        return IsNew(self.name)

    def is_assessed_stable(self) -> Predicate:
        return IsAssessedStable(self.name)

    def in_(self, *values: str) -> Predicate:
        return AnswerIn(self.name, values)

    def not_in(self, *values: str) -> Predicate:
        # Written as "not none" rather than a list of the other answers so that an answer
        # added to the vocabulary later fires rather than being silently ignored.
        return AnswerIn(self.name, values, negate=True)

    def is_true(self) -> Predicate:
        return AnswerTrue(self.name)


@dataclass(frozen=True)
class Fever(Predicate):
    """Measured temperature >= 38.0 °C, or the patient reports a fever (NHS Fife)."""

    threshold_c: float = FEVER_THRESHOLD_C

    def holds(self, log: LogFacts) -> bool:
        temp = log.safety.temperature_c
        measured = temp is not None and temp >= self.threshold_c
        return measured or log.safety.fever

    def evaluate(self, log: LogFacts, ctx: PatientContext) -> Outcome:
        return Outcome(
            self.holds(log),
            {"safety.temperature_c": log.safety.temperature_c, "safety.fever": log.safety.fever},
        )

    def decide(self, log: LogFacts, ctx: PatientContext) -> bool | None:
        return self.holds(log)

    def to_json(self) -> JsonValue:
        return {"fever": {"temperature_c_at_least": self.threshold_c, "or_answer": "fever"}}


# --- the log -------------------------------------------------------------------------------

_SCORE_FIELDS: Final = ("pain", "leg_pain", "back_pain", "worst_pain", "function")
_LOG_CHOICES: Final[dict[str, tuple[str, ...]]] = {
    "leg_pain_side": LEG_PAIN_SIDES,
    "sleep": SLEEP_ANSWERS,
}


@dataclass(frozen=True)
class LogIn(Predicate):
    field: str
    values: tuple[str, ...]

    def __post_init__(self) -> None:
        allowed = _LOG_CHOICES.get(self.field)
        if allowed is None or not set(self.values) <= set(allowed):
            raise ValueError(f"log.{self.field}: unknown values {self.values!r}")

    def evaluate(self, log: LogFacts, ctx: PatientContext) -> Outcome:
        value = getattr(log, self.field)
        return Outcome(value in self.values, {f"log.{self.field}": value})

    def decide(self, log: LogFacts, ctx: PatientContext) -> bool | None:
        return getattr(log, self.field) in self.values

    def to_json(self) -> JsonValue:
        return {"log": self.field, "in": list(self.values)}


@dataclass(frozen=True)
class LogAtLeast(Predicate):
    field: str
    threshold: int

    def __post_init__(self) -> None:
        if self.field not in _SCORE_FIELDS:
            raise ValueError(f"log.{self.field} is not a score")

    def evaluate(self, log: LogFacts, ctx: PatientContext) -> Outcome:
        value: int | None = getattr(log, self.field)
        return Outcome(value is not None and value >= self.threshold, {f"log.{self.field}": value})

    def decide(self, log: LogFacts, ctx: PatientContext) -> bool | None:
        value: int | None = getattr(log, self.field)
        return value is not None and value >= self.threshold

    def to_json(self) -> JsonValue:
        return {"log": self.field, "at_least": self.threshold}


@dataclass(frozen=True)
class PainThatDay(Predicate):
    """Any of `pain`, `leg_pain`, `back_pain` at least `threshold` (RF-INF-01 "with pain")."""

    threshold: int = 1
    fields: tuple[str, ...] = ("pain", "leg_pain", "back_pain")

    def evaluate(self, log: LogFacts, ctx: PatientContext) -> Outcome:
        values: dict[str, int | None] = {name: getattr(log, name) for name in self.fields}
        hit = any(v is not None and v >= self.threshold for v in values.values())
        return Outcome(hit, {f"log.{name}": v for name, v in values.items()})

    def decide(self, log: LogFacts, ctx: PatientContext) -> bool | None:
        values = (getattr(log, name) for name in self.fields)
        return any(v is not None and v >= self.threshold for v in values)

    def to_json(self) -> JsonValue:
        return {"pain_that_day": {"any_of": list(self.fields), "at_least": self.threshold}}


# --- the patient ---------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryTrue(Predicate):
    flag: HistoryFlag

    def __post_init__(self) -> None:
        if self.flag not in HISTORY_FLAGS:
            raise ValueError(f"history.{self.flag} is not a history flag")

    def evaluate(self, log: LogFacts, ctx: PatientContext) -> Outcome:
        value: bool = getattr(ctx.history, self.flag)
        return Outcome(value, {f"history.{self.flag}": value})

    def decide(self, log: LogFacts, ctx: PatientContext) -> bool | None:
        value: bool = getattr(ctx.history, self.flag)
        return value

    def to_json(self) -> JsonValue:
        return {"history": self.flag, "is": True}


@dataclass(frozen=True)
class AgeAtLeast(Predicate):
    years: int

    def evaluate(self, log: LogFacts, ctx: PatientContext) -> Outcome:
        age = ctx.age_on(log.date)
        return Outcome(age >= self.years, {"patient.age": age})

    def decide(self, log: LogFacts, ctx: PatientContext) -> bool | None:
        return ctx.age_on(log.date) >= self.years

    def to_json(self) -> JsonValue:
        return {"age_at_least": self.years}


@dataclass(frozen=True)
class RecentProcedure(Predicate):
    """A procedure dated in [log date - days, log date].

    The 6-week window [D] counts the day of the log itself: an injection in the morning
    and a fever that evening is exactly the case RF-INF-02 exists for. Interventions dated
    after the log do not count.
    """

    days: int
    kinds: tuple[InterventionKind, ...] = PROCEDURE_KINDS

    def evaluate(self, log: LogFacts, ctx: PatientContext) -> Outcome:
        earliest = log.date - dt.timedelta(days=self.days)
        recent = [
            i for i in ctx.interventions if i.kind in self.kinds and earliest <= i.date <= log.date
        ]
        latest = max(recent, key=lambda i: i.date, default=None)
        return Outcome(
            latest is not None, {"intervention": None if latest is None else latest.as_dict()}
        )

    def to_json(self) -> JsonValue:
        return {"recent_procedure": {"kinds": list(self.kinds), "within_days_before": self.days}}


# --- history (background job only) --------------------------------------------------------


@dataclass(frozen=True)
class BackPainAboveBaseline(Predicate):
    """Today's back pain >= the patient's baseline back pain + `margin`."""

    margin: int

    @property
    def uses_history(self) -> bool:
        return True

    def evaluate(self, log: LogFacts, ctx: PatientContext) -> Outcome:
        baseline = ctx.baseline_back_pain
        basis: JsonObject = {"log.back_pain": log.back_pain, "baseline_back_pain": baseline}
        if baseline is None:
            return Outcome(None, basis)
        # No back-pain score that day is no evidence of a rise, not an unknown.
        return Outcome(log.back_pain is not None and log.back_pain >= baseline + self.margin, basis)

    def to_json(self) -> JsonValue:
        return {"back_pain_at_least_baseline_plus": self.margin}


@dataclass(frozen=True)
class BackPainRunAboveBaseline(Predicate):
    """Back pain >= baseline + `margin` on this log and the `logs - 1` logs before it.

    "Consecutive logged days" is read as consecutive logs: a day without a log neither
    breaks nor extends the run, so skipping a day cannot hide a rising trend.
    """

    margin: int
    logs: int

    @property
    def uses_history(self) -> bool:
        return True

    @property
    def previous_logs(self) -> int:
        return self.logs - 1

    def evaluate(self, log: LogFacts, ctx: PatientContext) -> Outcome:
        baseline = ctx.baseline_back_pain
        previous = ctx.logs_before(log.date)
        if baseline is None or previous is None:
            return Outcome(None, {"baseline_back_pain": baseline})
        run = [*previous[-(self.logs - 1) :], log] if self.logs > 1 else [log]
        hit = len(run) == self.logs and all(
            x.back_pain is not None and x.back_pain >= baseline + self.margin for x in run
        )
        return Outcome(
            hit,
            {
                "baseline_back_pain": baseline,
                "back_pain_run": [
                    {"date": x.date.isoformat(), "back_pain": x.back_pain} for x in run
                ],
            },
        )

    def to_json(self) -> JsonValue:
        return {"back_pain_at_least_baseline_plus": self.margin, "on_consecutive_logs": self.logs}


@dataclass(frozen=True)
class SleepOnLogs(Predicate):
    """`log.sleep` is `value` on at least `at_least` of the last `window` logs, this one
    included. With fewer logs than `window`, the logs there are count (3 of 3 fires)."""

    value: str
    at_least: int
    window: int

    @property
    def uses_history(self) -> bool:
        return True

    @property
    def previous_logs(self) -> int:
        return self.window - 1

    def evaluate(self, log: LogFacts, ctx: PatientContext) -> Outcome:
        previous = ctx.logs_before(log.date)
        if previous is None:
            return Outcome(None, {})
        nights = [*previous[-(self.window - 1) :], log] if self.window > 1 else [log]
        matching: list[JsonValue] = [x.date.isoformat() for x in nights if x.sleep == self.value]
        return Outcome(
            len(matching) >= self.at_least,
            {"sleep": self.value, "sleep_nights": matching, "logs_in_window": len(nights)},
        )

    def to_json(self) -> JsonValue:
        return {"sleep": self.value, "on_at_least": self.at_least, "of_last_logs": self.window}


# --- rules -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MessageVariant:
    """A more specific patient message, used when `when` holds on the same log."""

    when: Predicate
    message: str


@dataclass(frozen=True)
class Rule:
    id: str
    version: int
    severity: Severity
    title: str
    message: str
    condition: Predicate
    source: str
    # Rules that, if fired on the same log, stop this one (evaluated earlier in RULES).
    unless_fired: tuple[str, ...] = ()
    # Rules that stop this one when fired on this log *or* open as an alert.
    unless_open: tuple[str, ...] = ()
    message_variants: tuple[MessageVariant, ...] = ()

    @property
    def needs_history(self) -> bool:
        """True when the rule cannot fire at all without history (never inline)."""
        return self.condition.inline() is None

    @property
    def has_history_branches(self) -> bool:
        return self.condition.uses_history

    @property
    def previous_logs(self) -> int:
        """How many of the patient's latest logs before this one the rule reads."""
        variants = (variant.when.previous_logs for variant in self.message_variants)
        return max([self.condition.previous_logs, *variants])

    def message_for(self, log: LogFacts, ctx: PatientContext) -> str:
        for variant in self.message_variants:
            if variant.when.decide(log, ctx):
                return variant.message
        return self.message

    def message_keys(self) -> tuple[str, ...]:
        return (self.message, *(v.message for v in self.message_variants))

    def to_json(self, *, inline: bool = False) -> JsonObject:
        condition = self.condition.inline() if inline else self.condition
        if condition is None:
            raise ValueError(f"{self.id} has no inline condition")
        out: JsonObject = {
            "id": self.id,
            "version": self.version,
            "severity": self.severity,
            "title": self.title,
            "source": self.source,
            "condition": condition.to_json(),
            "unless_fired": list(self.unless_fired),
            "message": self.message,
            "message_variants": [
                {"when": v.when.to_json(), "message": v.message} for v in self.message_variants
            ],
        }
        if inline:
            out["history_branches_omitted"] = self.has_history_branches
        else:
            out["unless_open"] = list(self.unless_open)
            out["needs_history"] = self.needs_history
        return out


# --- patient messages ----------------------------------------------------------------------
# Plain words, never a diagnosis ("may be a sign of", "needs checking today"), and always
# what to do now: nobody watches the alerts around the clock (§1). The CES, weakness and
# fever-after-procedure texts are §2's suggested wording.

_ED_NOW = (
    "Go to your nearest Emergency Department now, or call the emergency number if you "
    "can't get there. Show them this screen. Don't wait for your physio to reply."
)
_TODAY = "Contact your physio or GP today; out of hours, call the urgent-care line."

MESSAGES: Final[dict[str, str]] = {
    "ces": (
        "These symptoms can be a sign of pressure on the nerves at the base of your spine, "
        "which needs checking in hospital today. Go to your nearest Emergency Department "
        "now, or call the emergency number if you can't get there. Show them this screen. "
        "Don't wait for your physio to reply."
    ),
    "bilateral_assessed": (
        "Symptoms in both legs need checking by a clinician today. "
        f"{_TODAY} If you get numbness between your legs, bladder or bowel changes, or "
        "weakness in both legs, go to the Emergency Department now."
    ),
    "weakness": (
        "New or increasing weakness in your leg or foot needs checking by a clinician today. "
        "Contact your physio or GP today. If both legs become weak, or you have numbness "
        "between your legs or bladder or bowel changes, go to the Emergency Department now."
    ),
    "gait_or_bilateral_weakness": (
        "Weakness in both legs, or new unsteadiness when you walk, can be a sign of pressure "
        f"on the nerves of your spine, which needs checking in hospital today. {_ED_NOW}"
    ),
    "widespread_numbness": (
        "Numbness that has spread to your arms or body needs checking by a clinician today. "
        f"{_TODAY} If you become unsteady on your feet, your legs become weak, or you notice "
        "bladder or bowel changes, go to the Emergency Department now."
    ),
    "infection_urgent": (
        "A temperature with back or leg pain may be a sign of an infection and needs "
        f"checking today. {_TODAY} If you feel very unwell or it gets worse, go to the "
        "Emergency Department now."
    ),
    "infection_emergency": (
        "A temperature with back or leg pain may be a sign of an infection. With your "
        "medical history, or when you feel very unwell, it needs hospital assessment today. "
        f"{_ED_NOW}"
    ),
    "fever_after_procedure": (
        "A temperature with back pain after a recent injection or procedure needs hospital "
        "assessment. Go to the Emergency Department now. Don't wait for your physio to reply."
    ),
    "cancer_emergency": (
        "Because of your history of cancer, these symptoms need checking in hospital today: "
        "they may be a sign of pressure on the nerves of your spine. Tell them about your "
        f"cancer history. {_ED_NOW}"
    ),
    "cancer_urgent": (
        "Because of your history of cancer, this back pain needs checking by a clinician "
        f"today. {_TODAY} You can also contact your cancer team. If your legs become weak "
        "or numb, you become unsteady, or you notice bladder or bowel changes, go to the "
        "Emergency Department now."
    ),
    "weight_loss": (
        "Weight loss you can't explain needs checking by a clinician. "
        f"{_TODAY} Go to the Emergency Department if you get worse or notice weakness, "
        "numbness between your legs, or bladder or bowel changes."
    ),
    "major_injury": (
        "Back pain after a major fall or injury needs checking in hospital. If you can't "
        f"move safely, stay still and call the emergency number. {_ED_NOW}"
    ),
    "fragility_fracture": (
        "New or worse back pain after a fall or knock may be a sign of a small break in a "
        f"bone of the spine and needs checking today. {_TODAY} Go to the Emergency "
        "Department if it gets worse, or if you notice weakness, numbness or bladder or "
        "bowel changes."
    ),
    "thoracic_pain": (
        "Pain in the middle of your back, or pain like a band around your body, needs "
        f"checking by a clinician today. {_TODAY} If you have chest pain or feel short of "
        "breath, call the emergency number now. Go to the Emergency Department if it gets "
        "worse."
    ),
    "fever_no_pain": (
        "A temperature soon after an injection or procedure, while your immune system is "
        "weakened, or when you feel very unwell needs checking today. Contact your physio or "
        "GP today. Go to the Emergency Department if you get worse or back pain starts."
    ),
    "fall_neuro": (
        "A fall followed by numbness, weakness or unsteady walking needs checking in hospital "
        "today. Go to your nearest Emergency Department now, or call the emergency number if "
        "you can't get there. Don't wait for your physio to reply."
    ),
    "fall_after_spine_surgery": (
        "After a fall, anyone who has had spine surgery should be checked by a clinician. "
        "Contact your physio or your surgeon's team today. Go to the Emergency Department if "
        "the pain gets much worse, or numbness, weakness, or bladder or bowel changes appear."
    ),
    "night_pain": (
        "Pain that keeps you awake whatever position you lie in has been noted, and your "
        "physio will review this. If it gets much worse, or you notice new symptoms, "
        "contact your physio or GP."
    ),
}

# §4: a symptom "assessed and stable" fires nothing, but the patient is still told this.
SUPPRESSED_REMINDER: Final = (
    "Your clinician has checked this symptom before. If it gets worse, go to the Emergency "
    "Department now."
)

# Amendment 8.3 (docs/safety-path.md): after any fall, unless an emergency rule already
# sent the patient to hospital, the answer carries this safety net.
FALL_REMINDER: Final = (
    "If numbness, weakness, or bladder or bowel changes appear after your fall, go to the "
    "Emergency Department now."
)

# --- the rules ---------------------------------------------------------------------------

_CES = "NICE CKS cauda equina (2018); GIRFT suspected CES pathway (2023); CES patient cards"
_FEVER_MODIFIERS = AnyOf(
    HistoryTrue("immunosuppressed"),
    HistoryTrue("iv_drug_use"),
    RecentProcedure(days=42),
    Answer("feel_very_unwell").is_true(),
)
# The one fever of the rules: both infection rules need it (and `record_needs` asks it
# whether the procedures, read only behind it, can matter to a log).
FEVER: Final = Fever()
# "with pain that day" is part of the fever condition of both infection rules: RF-INF-02
# says "fever as RF-INF-01", and RF-INF-01/02 split that one condition by the modifiers.
_PAIN_THAT_DAY = PainThatDay(threshold=1)
_FEVER_WITH_PAIN = AllOf(FEVER, _PAIN_THAT_DAY)
# RF-INF-03 (fever before any pain): the same modifiers, the procedure window shortened to
# 14 days, counted as RF-INF-02 counts its 42 (the day of the log included).
_FEVER_NO_PAIN_MODIFIERS = AnyOf(
    HistoryTrue("immunosuppressed"),
    HistoryTrue("iv_drug_use"),
    Answer("feel_very_unwell").is_true(),
    RecentProcedure(days=14),
)

RULES: Final[tuple[Rule, ...]] = (
    Rule(
        id="RF-CES-01",
        version=1,
        severity="emergency",
        title="Saddle numbness, new",
        message="ces",
        condition=Answer("saddle_numbness").is_new(),
        source=_CES,
    ),
    Rule(
        id="RF-CES-02",
        version=1,
        severity="emergency",
        title="Bladder change, new",
        message="ces",
        condition=Answer("bladder_change").is_new(),
        source=_CES,
    ),
    Rule(
        id="RF-CES-03",
        version=1,
        severity="emergency",
        title="Bowel change, new",
        message="ces",
        condition=Answer("bowel_change").is_new(),
        source=_CES,
    ),
    Rule(
        id="RF-CES-04",
        version=1,
        severity="emergency",
        title="Sexual function change, new",
        message="ces",
        condition=Answer("sexual_function_change").is_new(),
        source=_CES,
    ),
    Rule(
        id="RF-CES-05",
        version=1,
        severity="emergency",
        title="Symptoms in both legs, new",
        message="ces",
        condition=Answer("both_legs").is_new(),
        source="NICE CKS: sudden bilateral sciatica, or unilateral becoming bilateral",
    ),
    Rule(
        id="RF-CES-06",
        version=1,
        severity="urgent",
        title="Symptoms in both legs, known",
        message="bilateral_assessed",
        condition=AnyOf(
            LogIn("leg_pain_side", ("both",)),
            Answer("both_legs").is_assessed_stable(),
        ),
        source="GIRFT urgent tier: long-standing, assessed bilateral symptoms",
        unless_fired=("RF-CES-05",),
    ),
    Rule(
        id="RF-NEU-01",
        version=1,
        severity="urgent",
        title="Weakness in one leg, new or worsening, or foot drop",
        message="weakness",
        condition=Answer("weakness").in_("one_leg_new", "one_leg_worsening", "foot_drop"),
        source="ACP/APS severe or progressive deficit; NHS Lothian acute foot drop",
    ),
    Rule(
        id="RF-NEU-02",
        version=1,
        severity="emergency",
        title="Weakness in both legs or new unsteady walking",
        message="gait_or_bilateral_weakness",
        condition=AnyOf(
            Answer("weakness").in_("both_legs"),
            Answer("walking_unsteady_new").is_true(),
        ),
        source="Community Red Flags (Sept 2023): gait disturbance, multilevel weakness",
    ),
    Rule(
        id="RF-NEU-03",
        version=1,
        severity="emergency",
        title="Numbness spreading to both legs",
        message="ces",
        condition=Answer("numbness_spread").in_("both_legs"),
        source=_CES,
    ),
    Rule(
        id="RF-NEU-04",
        version=1,
        severity="urgent",
        title="Numbness in arms or trunk",
        message="widespread_numbness",
        condition=AllOf(
            Answer("numbness_spread").in_("arms_or_trunk"),
            Not(Answer("walking_unsteady_new").is_true()),
        ),
        source="NHS Lothian: widespread neurology not in keeping with radiculopathy",
    ),
    Rule(
        id="RF-INF-01",
        version=1,
        severity="urgent",
        title="Fever with pain",
        message="infection_urgent",
        condition=AllOf(_FEVER_WITH_PAIN, Not(_FEVER_MODIFIERS)),
        source="Spinal infection red flags; NHS Fife: fever of 38 °C or more with back pain",
    ),
    Rule(
        id="RF-INF-02",
        version=1,
        severity="emergency",
        title="Fever with pain and a risk factor or recent procedure",
        message="infection_emergency",
        condition=AllOf(_FEVER_WITH_PAIN, _FEVER_MODIFIERS),
        source="Community Red Flags: suspected spinal infection; 6-week window [D]",
        # §2's wording speaks of a recent injection; only say so when there was one.
        message_variants=(MessageVariant(RecentProcedure(days=42), "fever_after_procedure"),),
    ),
    Rule(
        id="RF-INF-03",
        version=1,
        severity="urgent",
        title="Fever without pain, with a risk factor or recent procedure",
        message="fever_no_pain",
        condition=AllOf(FEVER, Not(_PAIN_THAT_DAY), _FEVER_NO_PAIN_MODIFIERS),
        source="Post-procedure and spinal infection red flags can present before pain [D]",
    ),
    Rule(
        id="RF-CA-01",
        version=1,
        severity="emergency",
        title="History of cancer with neurological signs or severe new pain",
        message="cancer_emergency",
        condition=AllOf(
            HistoryTrue("cancer"),
            AnyOf(
                Answer("weakness").not_in("none"),
                Answer("walking_unsteady_new").is_true(),
                Answer("numbness_spread").not_in("none"),
                Answer("bladder_change").is_new(),
                Answer("bowel_change").is_new(),
                AllOf(LogAtLeast("worst_pain", 8), Answer("pain_new_or_rapidly_worse").is_true()),
            ),
        ),
        source="NHS Lothian metastatic spinal cord compression pathway; Henschke 2013",
    ),
    Rule(
        id="RF-CA-02",
        version=1,
        severity="urgent",
        title="History of cancer with night, thoracic or rising back pain",
        message="cancer_urgent",
        condition=AllOf(
            HistoryTrue("cancer"),
            AnyOf(
                LogIn("sleep", ("constant_any_position",)),
                Answer("thoracic_or_band_pain").is_true(),
                BackPainRunAboveBaseline(margin=2, logs=3),
            ),
        ),
        source="Community Red Flags: past cancer with new spinal pain",
        unless_fired=("RF-CA-01",),
    ),
    Rule(
        id="RF-CA-03",
        version=1,
        severity="urgent",
        title="Unexplained weight loss",
        message="weight_loss",
        condition=Answer("unexplained_weight_loss").is_true(),
        source="NICE CKS: referral within a few days may be appropriate",
    ),
    Rule(
        id="RF-FX-01",
        version=1,
        severity="emergency",
        title="Major injury",
        message="major_injury",
        condition=Answer("injury").in_("major"),
        source="Major trauma; NHS Lothian",
    ),
    Rule(
        id="RF-FX-02",
        version=1,
        severity="urgent",
        title="Minor injury with fracture risk and worse pain",
        message="fragility_fracture",
        condition=AllOf(
            Answer("injury").in_("minor"),
            AnyOf(
                HistoryTrue("osteoporosis"),
                HistoryTrue("long_term_steroids"),
                AgeAtLeast(60),
            ),
            AnyOf(
                Answer("pain_new_or_rapidly_worse").is_true(),
                BackPainAboveBaseline(margin=3),
            ),
        ),
        source="NHS Lothian vertebral fragility fracture pathway; age cut-off [D]",
    ),
    Rule(
        id="RF-FX-03",
        version=1,
        severity="emergency",
        title="Fall with numbness, weakness or unsteady walking",
        message="fall_neuro",
        condition=AllOf(
            Answer("injury").in_("minor", "major"),
            AnyOf(
                Answer("weakness").not_in("none"),
                # The question asks about numbness that is new or has spread: after a fall
                # any answer but "none" counts.
                Answer("numbness_spread").not_in("none"),
                Answer("walking_unsteady_new").is_true(),
            ),
        ),
        source="Seed advice on falls with leg pain: immediate care for numbness or weakness",
    ),
    Rule(
        id="RF-FX-04",
        version=1,
        severity="urgent",
        title="Minor fall after spine surgery",
        message="fall_after_spine_surgery",
        # A major injury is RF-FX-01, an emergency, already.
        condition=AllOf(Answer("injury").in_("minor"), HistoryTrue("previous_spine_surgery")),
        source="Seed advice: always get evaluated after a fall with a history of spine surgery",
    ),
    Rule(
        id="RF-TH-01",
        version=1,
        severity="urgent",
        title="Thoracic or band-like pain",
        message="thoracic_pain",
        condition=AllOf(Answer("thoracic_or_band_pain").is_true(), Not(HistoryTrue("cancer"))),
        source="Community Red Flags priority tier",
    ),
    Rule(
        id="RF-NP-01",
        # v2: the rules of the 2026-12-07 amendments are red flags too ("no other RF rule
        # open"), so night pain beside one of them no longer fires.
        version=2,
        severity="routine",
        title="Constant night pain on 3 of the last 7 logged nights",
        message="night_pain",
        condition=AllOf(
            SleepOnLogs("constant_any_position", at_least=3, window=7),
            Not(HistoryTrue("cancer")),
        ),
        source="Night pain alone has low specificity (Verhagen 2016; Henschke 2013)",
        # "No other RF rule open": every rule above, whether it fired on this log or is
        # still open from an earlier one.
        unless_open=(
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
        ),
    ),
)

# The most logs before a log that any rule reads: all that the background job needs to
# fetch of a patient's history per log (RF-NP-01's 7 nights are this log and 6 before).
PREVIOUS_LOGS: Final = max(rule.previous_logs for rule in RULES)


@dataclass(frozen=True)
class EscalationRule:
    """RF-META-01 is about alerts, not logs: an unacknowledged alert escalates to the
    clinic's escalation contact after a delay that depends on its severity (§1)."""

    id: str
    version: int
    after: Mapping[str, dt.timedelta]

    def due_at(self, severity: Severity, raised_at: dt.datetime) -> dt.datetime | None:
        delay = self.after.get(severity)
        return None if delay is None else raised_at + delay


# Clock hours, not working hours: the 4 working hours of §1 is the review target, the
# escalation after 4 hours is the safety net and must not wait for Monday.
ESCALATION: Final = EscalationRule(
    id="RF-META-01",
    version=1,
    after={"emergency": dt.timedelta(minutes=60), "urgent": dt.timedelta(hours=4)},
)


def check_rules(rules: Sequence[Rule], messages: Mapping[str, str]) -> None:
    """Raise ValueError unless the definitions are consistent; run at import and publish."""
    seen: set[str] = set()
    for rule in rules:
        if rule.id in seen:
            raise ValueError(f"{rule.id} is defined twice")
        if rule.version < 1 or rule.severity not in SEVERITIES:
            raise ValueError(f"{rule.id}: bad version or severity")
        later = [ref for ref in (*rule.unless_fired, *rule.unless_open) if ref not in seen]
        if later:
            raise ValueError(f"{rule.id} refers to rules not defined before it: {later}")
        missing = [key for key in rule.message_keys() if key not in messages]
        if missing:
            raise ValueError(f"{rule.id}: no message {missing}")
        seen.add(rule.id)


check_rules(RULES, MESSAGES)
