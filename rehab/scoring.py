"""Outcome questionnaires: validate item answers, score them, judge change
(docs/clinical-record.md § Questionnaires).

Pure Python, no Django: the scoring rules are the part a clinician or an auditor has to be
able to check line by line, and the tests run them without a database.

What is stored for each response (see `rehab.models.record.QuestionnaireResponse`): the
normalised answers returned here, the instrument's `version` (the item set and wording we
render) and its `scoring_version` (these rules, including the missing-item policy). Bump
`version` when the rendered items change and `scoring_version` when a rule below changes, so
that old scores can always be explained by the rules that produced them.

Instruments:

- PSFS (Patient-Specific Functional Scale; Stratford et al., Physiotherapy Canada 1995; free
  to use). The patient names 3-5 activities they find hard and rates each 0 (unable) to 10
  (as before the problem). Score: mean of the rated activities. Missing items [D]: an
  activity may be left unrated (`null`), but at least 3 must be rated, because the scale is
  defined on 3-5 activities and a mean of 1-2 activities is not a PSFS score.
- SBI (Sciatica Bothersomeness Index; Patrick et al., Spine 1995; believed free [U]). Four
  items, each 0 (not bothersome) to 6 (extremely bothersome): leg pain, numbness or
  tingling, weakness, pain while sitting. Item 4 is UNVERIFIED against the source
  (the clinical rules tag it [U]): confirm it before relying on SBI totals clinically.
  Score: sum 0-24. Missing items [D]: one skipped item (`null`) is prorated (mean of the
  three answered x 4); two or more make the response unscorable.
- RMDQ (Roland-Morris Disability Questionnaire, 24 items; Roland & Morris, Spine 1983).
  The authors say no permission is needed (Spine 2000), but the terms for commercial
  electronic use are unchecked [U], so the statement texts are NOT shipped: we store and
  render item numbers 1-24 only, and a clinic that has the licensed wording supplies it in
  its client. Score: number of statements ticked, 0-24. Missing items [D]: a checklist
  cannot tell "not true" from "not read", so the app sends `unanswered` for statements the
  patient explicitly skipped; up to 2 are prorated (ticked x 24 / answered), 3 or more make
  the response unscorable.

The Oswestry Disability Index is licensed: its items are deliberately absent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

PSFS = "psfs"
SBI = "sbi"
RMDQ = "rmdq"

_CENT = Decimal("0.01")


def _round(value: Decimal) -> Decimal:
    # Half-up to two places: the rounding a clinician does by hand on a paper form.
    return value.quantize(_CENT, rounding=ROUND_HALF_UP)


def gettext_noop(text: str) -> str:
    """Marks an English message for the translation catalogue (bin/translations.py
    collects it); the module stays free of Django. `Message` carries it to the edge."""
    return text


class Message(str):
    """An English error message that remembers its msgid and placeholders, so that the
    caller can translate it (`rehab.services.record`; docs/adding-things.md § A translated
    text). As a `str` it is the English text."""

    msgid: str
    params: dict[str, Any]

    def __new__(cls, msgid: str, **params: Any) -> Message:
        message = super().__new__(cls, msgid % params if params else msgid)
        message.msgid = msgid
        message.params = params
        return message


def _m(msgid: str, **params: Any) -> list[str]:
    return [Message(msgid, **params)]


class InvalidAnswers(ValueError):
    """The answers do not fit the instrument; `errors` maps an answer path to messages."""

    def __init__(self, errors: Mapping[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors: dict[str, list[str]] = dict(errors)


@dataclass(frozen=True)
class Scored:
    score: Decimal
    answers: dict[str, Any]
    """The answers as stored: validated and normalised (so a retry compares equal)."""
    items_answered: int
    items_missing: int

    @property
    def prorated(self) -> bool:
        return self.items_missing > 0


@dataclass(frozen=True)
class Thresholds:
    """Meaningful-change thresholds for one instrument (docs/clinical-record.md)."""

    higher_is_better: bool
    points: Decimal | None = None
    """A change of at least this many points in the score is meaningful."""
    percent: Decimal | None = None
    """... or of at least this percentage of the baseline score."""
    single_item_points: Decimal | None = None
    """... or of at least this many points in any one item matched with the baseline."""
    recovered_at_or_below: Decimal | None = None
    success_at_or_below: Decimal | None = None
    success_after_months: int | None = None
    """A score at or below `success_at_or_below` is a success only this many months or
    more after the baseline: the threshold was validated at that follow-up, not before."""
    source: str = ""


@dataclass(frozen=True)
class Instrument:
    code: str
    name: str
    version: str
    scoring_version: str
    score_min: Decimal
    score_max: Decimal
    thresholds: Thresholds
    definition: dict[str, Any]
    """What a client needs to render the form and build `answers` (our wording)."""
    score: Callable[[Any], Scored]


# --------------------------------------------------------------------------- helpers


def _is_int(value: Any) -> bool:
    # JSON true/false are ints in Python; a tick box answered `true` is a client bug.
    return isinstance(value, int) and not isinstance(value, bool)


def _require_object(answers: Any, keys: set[str], required: set[str]) -> dict[str, Any]:
    if not isinstance(answers, dict):
        raise InvalidAnswers({"answers": _m(gettext_noop("Must be an object."))})
    errors: dict[str, list[str]] = {}
    for key in sorted(set(answers) - keys):
        errors[key] = _m(gettext_noop("Unknown field."))
    for key in sorted(required - set(answers)):
        errors[key] = _m(gettext_noop("This field is required (send null to skip an item)."))
    if errors:
        raise InvalidAnswers(errors)
    return answers


# --------------------------------------------------------------------------- PSFS

PSFS_MIN_ACTIVITIES = 3
PSFS_MAX_ACTIVITIES = 5
PSFS_ACTIVITY_MAX_LENGTH = 100


def psfs_activity_key(name: str) -> str:
    """How activities are matched between visits: case and spacing do not matter."""
    return " ".join(name.split()).casefold()


def score_psfs(answers: Any) -> Scored:
    """`{"activities": [{"activity": "Sitting 30 min", "score": 0-10 | null}, ...]}`."""
    data = _require_object(answers, {"activities"}, {"activities"})
    activities = data["activities"]
    if not isinstance(activities, list) or not (
        PSFS_MIN_ACTIVITIES <= len(activities) <= PSFS_MAX_ACTIVITIES
    ):
        raise InvalidAnswers(
            {
                "activities": _m(
                    gettext_noop("Name %(min)s to %(max)s activities."),
                    min=PSFS_MIN_ACTIVITIES,
                    max=PSFS_MAX_ACTIVITIES,
                )
            }
        )
    errors: dict[str, list[str]] = {}
    normalised: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, item in enumerate(activities):
        path = f"activities.{i}"
        if not isinstance(item, dict) or set(item) != {"activity", "score"}:
            errors[path] = _m(gettext_noop('Must be {"activity": text, "score": 0-10 or null}.'))
            continue
        name, value = item["activity"], item["score"]
        if not isinstance(name, str) or not name.strip():
            errors[f"{path}.activity"] = _m(gettext_noop("Name the activity."))
        elif len(name.strip()) > PSFS_ACTIVITY_MAX_LENGTH:
            errors[f"{path}.activity"] = _m(
                gettext_noop("At most %(max)s characters."), max=PSFS_ACTIVITY_MAX_LENGTH
            )
        elif psfs_activity_key(name) in seen:
            errors[f"{path}.activity"] = _m(gettext_noop("Each activity may be named once."))
        else:
            seen.add(psfs_activity_key(name))
        if value is not None and not (_is_int(value) and 0 <= value <= 10):
            errors[f"{path}.score"] = _m(
                gettext_noop("Must be a whole number from %(min)s to %(max)s, or null."),
                min=0,
                max=10,
            )
        if path + ".activity" not in errors and path + ".score" not in errors:
            normalised.append({"activity": " ".join(name.split()), "score": value})
    if errors:
        raise InvalidAnswers(errors)
    rated = [item["score"] for item in normalised if item["score"] is not None]
    if len(rated) < PSFS_MIN_ACTIVITIES:
        raise InvalidAnswers(
            {
                "activities": _m(
                    gettext_noop("Rate at least %(min)s activities to get a score."),
                    min=PSFS_MIN_ACTIVITIES,
                )
            }
        )
    return Scored(
        score=_round(Decimal(sum(rated)) / len(rated)),
        answers={"activities": normalised},
        items_answered=len(rated),
        items_missing=len(normalised) - len(rated),
    )


# --------------------------------------------------------------------------- SBI

SBI_ITEMS: tuple[tuple[str, str], ...] = (
    ("leg_pain", "Leg pain"),
    ("numbness_tingling", "Numbness or tingling in the leg, foot or groin"),
    ("weakness", "Weakness in the leg or foot"),
    # Unverified against Patrick et al. 1995 ([U], docs/clinical-record.md).
    ("sitting_pain", "Back or leg pain while sitting"),
)
SBI_MAX_MISSING = 1


def score_sbi(answers: Any) -> Scored:
    """`{"leg_pain": 0-6|null, "numbness_tingling": ..., "weakness": ..., "sitting_pain": ...}`."""
    keys = [key for key, _ in SBI_ITEMS]
    data = _require_object(answers, set(keys), set(keys))
    errors = {
        key: _m(
            gettext_noop("Must be a whole number from %(min)s to %(max)s, or null."), min=0, max=6
        )
        for key in keys
        if data[key] is not None and not (_is_int(data[key]) and 0 <= data[key] <= 6)
    }
    if errors:
        raise InvalidAnswers(errors)
    answered = [data[key] for key in keys if data[key] is not None]
    missing = len(keys) - len(answered)
    if missing > SBI_MAX_MISSING:
        raise InvalidAnswers(
            {
                "answers": _m(
                    gettext_noop("At most %(max)s item may be skipped; %(missing)s were."),
                    max=SBI_MAX_MISSING,
                    missing=missing,
                )
            }
        )
    total = Decimal(sum(answered)) * len(keys) / len(answered)
    return Scored(
        score=_round(total),
        answers={key: data[key] for key in keys},
        items_answered=len(answered),
        items_missing=missing,
    )


# --------------------------------------------------------------------------- RMDQ

RMDQ_ITEMS = 24
RMDQ_MAX_UNANSWERED = 2


def _statement_numbers(value: Any, field: str, errors: dict[str, list[str]]) -> list[int]:
    if not isinstance(value, list) or not all(_is_int(n) and 1 <= n <= RMDQ_ITEMS for n in value):
        errors[field] = _m(
            gettext_noop("Must be a list of statement numbers from 1 to %(max)s."), max=RMDQ_ITEMS
        )
        return []
    if len(set(value)) != len(value):
        errors[field] = _m(gettext_noop("Each statement may be listed once."))
    return sorted(set(value))


def score_rmdq(answers: Any) -> Scored:
    """`{"ticked": [statement numbers], "unanswered": [statement numbers]}`; unanswered optional."""
    data = _require_object(answers, {"ticked", "unanswered"}, {"ticked"})
    errors: dict[str, list[str]] = {}
    ticked = _statement_numbers(data["ticked"], "ticked", errors)
    unanswered = _statement_numbers(data.get("unanswered", []), "unanswered", errors)
    if not errors and set(ticked) & set(unanswered):
        errors["unanswered"] = _m(gettext_noop("A statement cannot be both ticked and unanswered."))
    if not errors and len(unanswered) > RMDQ_MAX_UNANSWERED:
        errors["unanswered"] = _m(
            gettext_noop("At most %(max)s statements may be skipped; %(missing)s were."),
            max=RMDQ_MAX_UNANSWERED,
            missing=len(unanswered),
        )
    if errors:
        raise InvalidAnswers(errors)
    answered = RMDQ_ITEMS - len(unanswered)
    return Scored(
        score=_round(Decimal(len(ticked)) * RMDQ_ITEMS / answered),
        answers={"ticked": ticked, "unanswered": unanswered},
        items_answered=answered,
        items_missing=len(unanswered),
    )


# --------------------------------------------------------------------------- vocabulary

INSTRUMENTS: dict[str, Instrument] = {
    PSFS: Instrument(
        code=PSFS,
        name="Patient-Specific Functional Scale",
        version="1",
        scoring_version="1",
        score_min=Decimal(0),
        score_max=Decimal(10),
        thresholds=Thresholds(
            higher_is_better=True,
            points=Decimal(2),
            single_item_points=Decimal(3),
            source=(
                "docs/clinical-record.md § Questionnaires: 2 points average, "
                "3 points single item (MDC90)"
            ),
        ),
        definition={
            "instructions": (
                "Name 3 to 5 important activities that you are unable to do or find hard "
                "because of your problem. Rate how well you can do each one today, from 0 "
                "(unable to do it) to 10 (as well as before the problem)."
            ),
            "min_activities": PSFS_MIN_ACTIVITIES,
            "max_activities": PSFS_MAX_ACTIVITIES,
            "scale": {"min": 0, "max": 10, "min_label": "Unable", "max_label": "As before"},
            "answers_format": {"activities": [{"activity": "text", "score": "0-10 or null"}]},
        },
        score=score_psfs,
    ),
    SBI: Instrument(
        code=SBI,
        name="Sciatica Bothersomeness Index",
        version="1",
        scoring_version="1",
        score_min=Decimal(0),
        score_max=Decimal(24),
        thresholds=Thresholds(
            higher_is_better=False,
            success_at_or_below=Decimal("6.5"),
            success_after_months=12,
            source=(
                "docs/clinical-record.md § Questionnaires: success <= 6.5 at 12 months "
                "(Haugen 2011); no change threshold is defined, so none is applied"
            ),
        ),
        definition={
            "instructions": "How bothersome has each of these been during the last week?",
            "items": [
                {"key": key, "label": label, "verified": key != "sitting_pain"}
                for key, label in SBI_ITEMS
            ],
            "scale": {
                "min": 0,
                "max": 6,
                "min_label": "Not at all bothersome",
                "max_label": "Extremely bothersome",
            },
            "answers_format": {key: "0-6 or null (skipped)" for key, _ in SBI_ITEMS},
        },
        score=score_sbi,
    ),
    RMDQ: Instrument(
        code=RMDQ,
        name="Roland-Morris Disability Questionnaire",
        version="1",
        scoring_version="1",
        score_min=Decimal(0),
        score_max=Decimal(RMDQ_ITEMS),
        thresholds=Thresholds(
            higher_is_better=False,
            points=Decimal(5),
            percent=Decimal(30),
            recovered_at_or_below=Decimal(2),
            source="docs/clinical-record.md § Questionnaires: 5 points or 30 %; <= 2 recovered",
        ),
        definition={
            "instructions": "Tick each statement that describes you today.",
            # Numbers only: see the module docstring on the statements' licence.
            "items": [{"number": n, "text": None} for n in range(1, RMDQ_ITEMS + 1)],
            "item_text_note": (
                "Statement texts are not distributed by this service; render the clinic's "
                "licensed copy keyed by statement number."
            ),
            "answers_format": {"ticked": "[1-24, ...]", "unanswered": "[1-24, ...] (optional)"},
        },
        score=score_rmdq,
    ),
}


def score_answers(instrument: str, answers: Any) -> Scored:
    """Validate and score `answers` for `instrument`; raises `InvalidAnswers`."""
    return INSTRUMENTS[instrument].score(answers)


# --------------------------------------------------------------------------- change

Direction = Literal["improved", "worsened", "unchanged"]


@dataclass(frozen=True)
class Change:
    points: Decimal
    """Current minus baseline score."""
    percent: Decimal | None
    """`points` as a percentage of the baseline score; None when the baseline is 0."""
    direction: Direction
    meaningful: bool | None
    """Whether a §5 threshold was reached (either way); None when §5 gives no threshold."""
    criteria: tuple[str, ...]
    """Which thresholds were reached: "points", "percent", "single_item"."""
    items: tuple[tuple[str, int], ...] = ()
    """PSFS: (activity, change) of each activity rated at baseline and now."""


def _psfs_item_changes(
    baseline: Mapping[str, Any], current: Mapping[str, Any]
) -> list[tuple[str, int]]:
    before = {
        psfs_activity_key(a["activity"]): a["score"]
        for a in baseline.get("activities", [])
        if a["score"] is not None
    }
    return [
        (a["activity"], a["score"] - before[psfs_activity_key(a["activity"])])
        for a in current.get("activities", [])
        if a["score"] is not None and psfs_activity_key(a["activity"]) in before
    ]


def assess_change(
    instrument: str,
    *,
    baseline_score: Decimal,
    score: Decimal,
    baseline_answers: Mapping[str, Any] | None = None,
    answers: Mapping[str, Any] | None = None,
) -> Change:
    """How `score` compares with the baseline against the thresholds of §5."""
    thresholds = INSTRUMENTS[instrument].thresholds
    points = score - baseline_score
    percent = _round(points * 100 / baseline_score) if baseline_score else None
    better = points if thresholds.higher_is_better else -points
    direction: Direction = "improved" if better > 0 else "worsened" if better < 0 else "unchanged"

    criteria: list[str] = []
    if thresholds.points is not None and abs(points) >= thresholds.points:
        criteria.append("points")
    if (
        thresholds.percent is not None
        and percent is not None
        and abs(percent) >= thresholds.percent
    ):
        criteria.append("percent")
    items: list[tuple[str, int]] = []
    if thresholds.single_item_points is not None and baseline_answers and answers:
        items = _psfs_item_changes(baseline_answers, answers)
        if any(abs(change) >= thresholds.single_item_points for _, change in items):
            criteria.append("single_item")

    has_threshold = any(
        t is not None
        for t in (thresholds.points, thresholds.percent, thresholds.single_item_points)
    )
    return Change(
        points=points,
        percent=percent,
        direction=direction,
        meaningful=bool(criteria) if has_threshold else None,
        criteria=tuple(criteria),
        items=tuple(items),
    )


def months_after(day: date, months: int) -> date:
    """The same day `months` later; a day the month lacks (31st, 29 February) rolls to
    the first of the next month, so "12 months after" never comes early."""
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    try:
        return day.replace(year=year, month=month)
    except ValueError:
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return date(year, month, 1)


def success(
    thresholds: Thresholds, *, score: Decimal, baseline_date: date | None, on: date
) -> bool | None:
    """§5's "success <= 6.5 at 12 months": None before the follow-up it was defined at
    (or for an instrument without a success threshold), so that a low score in week 3 is
    not reported as what Haugen 2011 meant by success."""
    if thresholds.success_at_or_below is None or baseline_date is None:
        return None
    months = thresholds.success_after_months
    if months is not None and on < months_after(baseline_date, months):
        return None
    return score <= thresholds.success_at_or_below
