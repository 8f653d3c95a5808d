"""The review rules (docs/safety-rules.md, "Review rules"), as data plus pure reference functions.

Each function decides for ONE patient on ONE evaluation day (`today`, the patient's local
date) from that patient's logs, and returns a `ReviewFinding` or None. The production job
runs them as set-based SQL over every patient; these functions are the oracle it is tested
against, and what a backtest replays day by day (logs after `today` are ignored, so the
whole series can be passed for every day).

Arithmetic is exact (fractions), so a threshold sits exactly where the table puts it and
a SQL `numeric` implementation can match it to the last case.

Interpretations of §3, each a product decision [D] until a clinician says otherwise:
- NR-PAIN-01: the value of a log is `leg_pain` when recorded, else `pain` (per log, the
  same rule for today and for the previous logs). "The previous 7 logged days" are the 7
  most recent logs before today's, however far apart; today must have a log. The median
  of an even count is the mean of the middle two. Both conditions are inclusive.
- NR-PAIN-02: "7-day mean" is the mean `pain` of the logs in the 7 calendar days ending
  today (as `current_pain_7d` in the contract); the previous one is the 7 days before
  those. Each window needs at least 3 logs, like `current_pain_7d`.
- NR-PAIN-03: "2 consecutive days" are calendar days: today and yesterday both logged
  with `worst_pain` >= 9. (RF-CA-02 says "logged days"; this rule does not.)
- NR-PROG-01: from day 42 of the program on (`today >= program_start + 42 days`), while
  the progress figures say the pain reduction is under 30 %: baseline and current pain
  exactly as in the contract's progress summary. No finding while either is null or the
  baseline is 0 (nothing to improve on).
- NR-PROG-03: each of the 7 calendar days ending today has a log with `pain` <= 1; a
  missing day breaks it.
- NR-ADH-01: the two most recent *completed* program weeks (a week is complete the day
  after its 7th day), which must be consecutive; each with sessions prescribed and fewer
  than half of them done. A week with nothing prescribed cannot be non-adherent.
- NR-LOG-01: missed days are the whole days since the last log, not counting today (the
  patient can still log today): last log on the 1st, today the 5th = 3 missed days. With
  no log at all, days are counted from `since` (e.g. the account's start), inclusive.
  3 missed days: remind the patient; 7: alert the clinician.
- NR-POST-01: "injection" means the kinds `injection` and `prolotherapy` (prolotherapy is
  a course of injections; §7 expects its post-injection flares). Only the most recent
  injection up to today counts: a newer injection starts a new expected-flare period.
  "More than 72 h after" with day-granular data is from the 4th day after the injection
  date on (the injection time is unknown, so day 3 may be under 72 h). The pre-injection
  mean is the mean `pain` of the logs in the 7 days before the injection date, at least 3
  of them. It compares today's `pain` (strictly above), for up to 42 days [D] after the
  injection; after that the general pain rules take over.

One module, though over 500 lines: the review rules' definitions and their reference
functions, the oracle the SQL detectors are tested against, kept beside each other.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Final, Literal

from rehab.safety.engine import InterventionFact, LogFacts
from rehab.safety.vocab import InterventionKind, JsonObject, JsonValue, Severity

# --- data ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Params:
    def as_dict(self) -> JsonObject:
        return {k: _json(v) for k, v in asdict(self).items()}


def _json(value: object) -> JsonValue:
    if isinstance(value, tuple | list):
        return [_json(v) for v in value]
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    raise TypeError(f"not JSON: {value!r}")


@dataclass(frozen=True)
class PainSpikeParams(Params):
    prior_logs: int = 7
    min_prior_logs: int = 4
    min_rise: int = 2
    # A decimal string so the ratio is exact: 1.3 is not representable as a float.
    min_ratio: str = "1.3"


@dataclass(frozen=True)
class TrendParams(Params):
    window_days: int = 7
    min_logs: int = 3
    min_rise: int = 2


@dataclass(frozen=True)
class UncontrolledPainParams(Params):
    worst_pain_at_least: int = 9
    consecutive_days: int = 2


@dataclass(frozen=True)
class NoImprovementParams(Params):
    after_days: int = 42
    min_reduction_pct: int = 30
    window_days: int = 7
    min_logs: int = 3


@dataclass(frozen=True)
class RecoveredParams(Params):
    pain_at_most: int = 1
    days: int = 7


@dataclass(frozen=True)
class AdherenceParams(Params):
    # "< 50 %": a week fails when done / prescribed is strictly below this.
    below_pct: int = 50
    consecutive_weeks: int = 2


@dataclass(frozen=True)
class MissedLogsParams(Params):
    remind_after_days: int = 3
    alert_after_days: int = 7


@dataclass(frozen=True)
class PostInjectionParams(Params):
    kinds: tuple[InterventionKind, ...] = ("injection", "prolotherapy")
    from_day: int = 4
    until_day: int = 42
    pre_days: int = 7
    min_pre_logs: int = 3


@dataclass(frozen=True)
class ReviewRule:
    id: str
    version: int
    severity: Severity
    title: str
    params: Params

    def as_dict(self) -> JsonObject:
        return {
            "id": self.id,
            "version": self.version,
            "severity": self.severity,
            "title": self.title,
            "params": self.params.as_dict(),
        }


NR_PAIN_01: Final = ReviewRule("NR-PAIN-01", 1, "routine", "Pain spike", PainSpikeParams())
NR_PAIN_02: Final = ReviewRule("NR-PAIN-02", 1, "routine", "Worsening trend", TrendParams())
NR_PAIN_03: Final = ReviewRule(
    "NR-PAIN-03", 1, "urgent", "Uncontrolled pain", UncontrolledPainParams()
)
NR_PROG_01: Final = ReviewRule(
    "NR-PROG-01", 1, "routine", "No meaningful improvement", NoImprovementParams()
)
# v2 (amendment 8.4): never beside an open or acknowledged urgent or emergency red flag.
NR_PROG_03: Final = ReviewRule(
    "NR-PROG-03", 2, "routine", "Recovered: consider discharge", RecoveredParams()
)
NR_ADH_01: Final = ReviewRule("NR-ADH-01", 1, "routine", "Non-adherence", AdherenceParams())
NR_LOG_01: Final = ReviewRule("NR-LOG-01", 1, "routine", "Missed logs", MissedLogsParams())
NR_POST_01: Final = ReviewRule(
    "NR-POST-01", 1, "routine", "Pain up after an injection", PostInjectionParams()
)
REVIEW_RULES: Final[tuple[ReviewRule, ...]] = (
    NR_PAIN_01,
    NR_PAIN_02,
    NR_PAIN_03,
    NR_PROG_01,
    NR_PROG_03,
    NR_ADH_01,
    NR_LOG_01,
    NR_POST_01,
)


@dataclass(frozen=True)
class ReviewFinding:
    rule_id: str
    version: int
    severity: Severity
    date: dt.date
    basis: JsonObject

    def as_dict(self) -> JsonObject:
        return {
            "rule": self.rule_id,
            "rule_version": self.version,
            "severity": self.severity,
            "date": self.date.isoformat(),
            "basis": self.basis,
        }


@dataclass(frozen=True)
class AdherenceWeek:
    """One program week: sessions prescribed and done in the 7 days from `start`."""

    start: dt.date
    prescribed: int
    done: int


def _finding(rule: ReviewRule, today: dt.date, basis: JsonObject) -> ReviewFinding:
    return ReviewFinding(rule.id, rule.version, rule.severity, today, basis)


# --- helpers ---------------------------------------------------------------------------


def _upto(series: Iterable[LogFacts], today: dt.date) -> list[LogFacts]:
    logs = sorted((x for x in series if x.date <= today), key=lambda x: x.date)
    for a, b in itertools.pairwise(logs):
        if a.date == b.date:
            raise ValueError(f"two logs dated {a.date}: one log per patient per date")
    return logs


def _mean_pain(
    logs: Iterable[LogFacts], start: dt.date, end: dt.date, min_logs: int
) -> Fraction | None:
    values = [x.pain for x in logs if start <= x.date <= end]
    if len(values) < min_logs:
        return None
    return Fraction(sum(values), len(values))


def _median(values: Sequence[int]) -> Fraction:
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return Fraction(ordered[mid])
    return Fraction(ordered[mid - 1] + ordered[mid], 2)


def _num(value: Fraction) -> float:
    return round(float(value), 4)


def _days(n: int) -> dt.timedelta:
    return dt.timedelta(days=n)


def baseline_pain(series: Sequence[LogFacts], *, min_logs: int = 3) -> Fraction | None:
    """Contract `baseline_pain`: mean pain in the week from the first log, >= 3 logs."""
    logs = sorted(series, key=lambda x: x.date)
    if not logs:
        return None
    first = logs[0].date
    return _mean_pain(logs, first, first + _days(6), min_logs)


def current_pain_7d(
    series: Sequence[LogFacts], *, today: dt.date, min_logs: int = 3
) -> Fraction | None:
    """Contract `current_pain_7d`: mean pain of today and the 6 days before, >= 3 logs."""
    return _mean_pain(series, today - _days(6), today, min_logs)


# --- the rules -------------------------------------------------------------------------


def pain_spike(
    series: Sequence[LogFacts], *, today: dt.date, params: PainSpikeParams = PainSpikeParams()
) -> ReviewFinding | None:
    """NR-PAIN-01: today's leg pain (else pain) >= median(previous 7) + 2 and >= median x 1.3."""
    logs = _upto(series, today)
    if not logs or logs[-1].date != today:
        return None
    prior = logs[:-1][-params.prior_logs :]
    if len(prior) < params.min_prior_logs:
        return None

    def value(x: LogFacts) -> int:
        return x.leg_pain if x.leg_pain is not None else x.pain

    now = value(logs[-1])
    median = _median([value(x) for x in prior])
    if now >= median + params.min_rise and now >= median * Fraction(params.min_ratio):
        return _finding(
            NR_PAIN_01,
            today,
            {
                "value": now,
                "field": "leg_pain" if logs[-1].leg_pain is not None else "pain",
                "prior_median": _num(median),
                "prior_dates": [x.date.isoformat() for x in prior],
            },
        )
    return None


def worsening_trend(
    series: Sequence[LogFacts], *, today: dt.date, params: TrendParams = TrendParams()
) -> ReviewFinding | None:
    """NR-PAIN-02: mean pain of the last 7 days >= mean of the 7 days before + 2."""
    w = params.window_days
    current = _mean_pain(series, today - _days(w - 1), today, params.min_logs)
    previous = _mean_pain(series, today - _days(2 * w - 1), today - _days(w), params.min_logs)
    if current is None or previous is None or current < previous + params.min_rise:
        return None
    return _finding(
        NR_PAIN_02, today, {"mean_pain": _num(current), "previous_mean_pain": _num(previous)}
    )


def uncontrolled_pain(
    series: Sequence[LogFacts],
    *,
    today: dt.date,
    params: UncontrolledPainParams = UncontrolledPainParams(),
) -> ReviewFinding | None:
    """NR-PAIN-03: `worst_pain` >= 9 today and on the day before (calendar days)."""
    by_date = {x.date: x for x in _upto(series, today)}
    days = [today - _days(n) for n in range(params.consecutive_days - 1, -1, -1)]
    worst = [by_date[d].worst_pain if d in by_date else None for d in days]
    if all(w is not None and w >= params.worst_pain_at_least for w in worst):
        return _finding(
            NR_PAIN_03,
            today,
            {
                "worst_pain": [
                    {"date": d.isoformat(), "worst_pain": w}
                    for d, w in zip(days, worst, strict=True)
                ]
            },
        )
    return None


def no_meaningful_improvement(
    series: Sequence[LogFacts],
    *,
    today: dt.date,
    program_start: dt.date,
    params: NoImprovementParams = NoImprovementParams(),
) -> ReviewFinding | None:
    """NR-PROG-01: 6 weeks into the program, pain down less than 30 % from baseline."""
    if today < program_start + _days(params.after_days):
        return None
    logs = _upto(series, today)
    baseline = baseline_pain(logs, min_logs=params.min_logs)
    current = current_pain_7d(logs, today=today, min_logs=params.min_logs)
    if baseline is None or current is None or baseline == 0:
        return None
    reduction_pct = (baseline - current) / baseline * 100
    if reduction_pct >= params.min_reduction_pct:
        return None
    return _finding(
        NR_PROG_01,
        today,
        {
            "baseline_pain": _num(baseline),
            "current_pain_7d": _num(current),
            "percent_change": _num(-reduction_pct),
            "program_start": program_start.isoformat(),
            "program_day": (today - program_start).days,
        },
    )


def recovered(
    series: Sequence[LogFacts],
    *,
    today: dt.date,
    params: RecoveredParams = RecoveredParams(),
    red_flag_open: bool = False,
) -> ReviewFinding | None:
    """NR-PROG-03: pain <= 1 on each of the last 7 calendar days (each one logged), unless
    `red_flag_open`: the patient has an unresolved urgent or emergency red-flag (RF-*)
    alert, and "consider discharge" must not stand beside it."""
    if red_flag_open:
        return None
    by_date = {x.date: x for x in _upto(series, today)}
    days = [today - _days(n) for n in range(params.days - 1, -1, -1)]
    if all(d in by_date and by_date[d].pain <= params.pain_at_most for d in days):
        return _finding(
            NR_PROG_03,
            today,
            {"pain": [by_date[d].pain for d in days], "from": days[0].isoformat()},
        )
    return None


def non_adherence(
    weeks: Sequence[AdherenceWeek],
    *,
    today: dt.date,
    params: AdherenceParams = AdherenceParams(),
) -> ReviewFinding | None:
    """NR-ADH-01: under 50 % of prescribed sessions done in each of the last 2 weeks."""
    completed = sorted((w for w in weeks if w.start + _days(7) <= today), key=lambda w: w.start)
    recent = completed[-params.consecutive_weeks :]
    if len(recent) < params.consecutive_weeks:
        return None
    if any(b.start - a.start != _days(7) for a, b in itertools.pairwise(recent)):
        return None
    # done / prescribed < below_pct / 100, cross-multiplied to stay in integers.
    if all(w.prescribed > 0 and w.done * 100 < w.prescribed * params.below_pct for w in recent):
        return _finding(
            NR_ADH_01,
            today,
            {
                "weeks": [
                    {"start": w.start.isoformat(), "prescribed": w.prescribed, "done": w.done}
                    for w in recent
                ]
            },
        )
    return None


MissedLogsAction = Literal["remind_patient", "alert_clinician"]


def missed_logs(
    series: Sequence[LogFacts],
    *,
    today: dt.date,
    since: dt.date | None = None,
    params: MissedLogsParams = MissedLogsParams(),
) -> ReviewFinding | None:
    """NR-LOG-01: 3 whole days without a log: remind the patient; 7: alert the clinician.

    The basis's `action` says which; only `alert_clinician` is meant to raise an alert.
    """
    logs = _upto(series, today)
    if logs:
        if logs[-1].date == today:
            return None
        last: dt.date | None = logs[-1].date
        missed = (today - logs[-1].date).days - 1
    elif since is not None and since <= today:
        last = None
        missed = (today - since).days
    else:
        return None
    action: MissedLogsAction
    if missed >= params.alert_after_days:
        action = "alert_clinician"
    elif missed >= params.remind_after_days:
        action = "remind_patient"
    else:
        return None
    return _finding(
        NR_LOG_01,
        today,
        {
            "missed_days": missed,
            "last_log_date": None if last is None else last.isoformat(),
            "action": action,
        },
    )


def post_injection(
    series: Sequence[LogFacts],
    *,
    today: dt.date,
    interventions: Sequence[InterventionFact],
    params: PostInjectionParams = PostInjectionParams(),
) -> ReviewFinding | None:
    """NR-POST-01: today's pain above the pre-injection 7-day mean, > 72 h after it."""
    injection = max(
        (i for i in interventions if i.kind in params.kinds and i.date <= today),
        key=lambda i: i.date,
        default=None,
    )
    if injection is None:
        return None
    day = (today - injection.date).days
    if not params.from_day <= day <= params.until_day:
        return None
    logs = _upto(series, today)
    if not logs or logs[-1].date != today:
        return None
    before = _mean_pain(
        logs,
        injection.date - _days(params.pre_days),
        injection.date - _days(1),
        params.min_pre_logs,
    )
    if before is None or logs[-1].pain <= before:
        return None
    return _finding(
        NR_POST_01,
        today,
        {
            "pain": logs[-1].pain,
            "pre_injection_mean_pain": _num(before),
            "intervention": injection.as_dict(),
            "days_after": day,
        },
    )


def review_all(
    series: Sequence[LogFacts],
    *,
    today: dt.date,
    program_start: dt.date | None = None,
    adherence_weeks: Sequence[AdherenceWeek] = (),
    interventions: Sequence[InterventionFact] = (),
    since: dt.date | None = None,
) -> tuple[ReviewFinding, ...]:
    """Every review rule for one patient on one day, with the default parameters."""
    findings = [
        pain_spike(series, today=today),
        worsening_trend(series, today=today),
        uncontrolled_pain(series, today=today),
        None
        if program_start is None
        else no_meaningful_improvement(series, today=today, program_start=program_start),
        recovered(series, today=today),
        non_adherence(adherence_weeks, today=today),
        missed_logs(series, today=today, since=since),
        post_injection(series, today=today, interventions=interventions),
    ]
    return tuple(f for f in findings if f is not None)
