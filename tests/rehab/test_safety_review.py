"""Reference implementations of the §3 review rules on small hand-computed series."""

from __future__ import annotations

import datetime as dt
import json
from fractions import Fraction
from typing import Any

import pytest

from rehab.safety import InterventionFact, LogFacts
from rehab.safety.review import (
    REVIEW_RULES,
    AdherenceWeek,
    PainSpikeParams,
    baseline_pain,
    current_pain_7d,
    missed_logs,
    no_meaningful_improvement,
    non_adherence,
    pain_spike,
    post_injection,
    recovered,
    review_all,
    uncontrolled_pain,
    worsening_trend,
)

TODAY = dt.date(2026, 11, 20)


def days_ago(n: int) -> dt.date:
    return TODAY - dt.timedelta(days=n)


def daily(values: list[Any], *, field: str = "pain", end: dt.date = TODAY) -> list[LogFacts]:
    """One log a day ending on `end`; None leaves the day without a log. A dict gives a
    log's fields; a number sets `field` (pain defaults to 5 when it is not the field)."""
    logs = []
    for i, value in enumerate(values):
        if value is None:
            continue
        date = end - dt.timedelta(days=len(values) - 1 - i)
        fields = value if isinstance(value, dict) else {field: value}
        logs.append(LogFacts(date=date, **{"pain": 5, **fields}))
    return logs


def fires(finding: object) -> bool:
    return finding is not None


# --- rule data ---------------------------------------------------------------------------


def test_it_defines_the_review_rules_with_the_specified_defaults() -> None:
    rules: dict[str, Any] = {r.id: r.as_dict() for r in REVIEW_RULES}

    assert list(rules) == [
        "NR-PAIN-01",
        "NR-PAIN-02",
        "NR-PAIN-03",
        "NR-PROG-01",
        "NR-PROG-03",
        "NR-ADH-01",
        "NR-LOG-01",
        "NR-POST-01",
    ]
    assert {k for k, r in rules.items() if r["severity"] == "urgent"} == {"NR-PAIN-03"}
    assert rules["NR-PAIN-01"]["params"] == {
        "prior_logs": 7,
        "min_prior_logs": 4,
        "min_rise": 2,
        "min_ratio": "1.3",
    }
    assert rules["NR-POST-01"]["params"]["kinds"] == ["injection", "prolotherapy"]
    assert rules["NR-LOG-01"]["params"] == {"remind_after_days": 3, "alert_after_days": 7}
    json.dumps(rules)


def test_it_computes_baseline_and_current_pain_as_the_progress_summary() -> None:
    logs = daily([7, 8, None, 6, 9, None, None, 1, 1, 2], end=days_ago(0))

    # First log 9 days ago: its week holds 7, 8, 6, 9.
    assert baseline_pain(logs) == Fraction(30, 4)
    # The last 7 days hold 6 (6 days ago is day index 3), 9, 1, 1, 2.
    assert current_pain_7d(logs, today=TODAY) == Fraction(19, 5)
    assert baseline_pain(daily([7, 8])) is None
    assert current_pain_7d(daily([7, 8]), today=TODAY) is None


def test_it_rejects_two_logs_on_one_date() -> None:
    logs = [LogFacts(date=TODAY, pain=1), LogFacts(date=TODAY, pain=2)]

    with pytest.raises(ValueError, match="one log per patient per date"):
        pain_spike(logs, today=TODAY)


# --- NR-PAIN-01 ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prior", "today", "expected"),
    [
        ([4, 4, 4, 4], 6, True),  # median 4: 6 >= 4 + 2 and 6 >= 5.2
        ([4, 4, 4, 4], 5, False),
        ([6, 6, 6, 6], 8, True),  # 8 >= 8 and 8 >= 7.8
        ([6, 6, 6, 6], 7, False),
        ([7, 7, 7, 7], 9, False),  # 9 >= 9 but 9 < 9.1: the ratio decides
        ([7, 7, 7, 7], 10, True),
        ([0, 0, 0, 0], 2, True),
        ([0, 0, 0, 0], 1, False),
        ([2, 2, 4, 4], 5, True),  # even count: median 3
        ([2, 2, 4, 4], 4, False),
        ([4, 4, 4], 9, False),  # 3 prior logs are not enough
    ],
)
def test_it_spots_a_pain_spike(prior: list[int], today: int, expected: bool) -> None:
    assert fires(pain_spike(daily([*prior, today]), today=TODAY)) is expected


def test_it_takes_the_median_of_the_7_logs_before_todays() -> None:
    # Of all 9 earlier logs the median is 9; of the last 7 it is 2.
    logs = daily([9, 9, 9, 9, 9, 2, 2, 2, 2, 4])

    finding = pain_spike(logs, today=TODAY)

    assert finding is not None
    assert finding.basis["prior_median"] == 2
    assert len(finding.basis["prior_dates"]) == 7  # type: ignore[arg-type]


def test_it_counts_logged_days_not_calendar_days_for_the_spike() -> None:
    logs = daily([3, None, None, 3, None, 3, None, None, 3, 6])

    assert fires(pain_spike(logs, today=TODAY))


def test_it_uses_leg_pain_when_recorded_else_pain() -> None:
    prior = [{"pain": 3}, {"pain": 3, "leg_pain": 3}, {"pain": 3}, {"pain": 3}]
    leg = pain_spike(daily([*prior, {"pain": 3, "leg_pain": 5}]), today=TODAY)
    overall = pain_spike(daily([*prior, {"pain": 5}]), today=TODAY)
    mixed = daily([*prior, {"pain": 8, "leg_pain": 4}])

    assert leg is not None
    assert leg.basis["field"] == "leg_pain"
    assert overall is not None
    assert overall.basis["field"] == "pain"
    assert pain_spike(mixed, today=TODAY) is None


def test_it_needs_a_log_today_for_the_spike_and_ignores_later_logs() -> None:
    logs = daily([4, 4, 4, 4, 9], end=days_ago(1))

    assert pain_spike(logs, today=TODAY) is None
    assert fires(pain_spike(logs, today=days_ago(1)))
    assert fires(pain_spike([*logs, LogFacts(date=TODAY, pain=0)], today=days_ago(1)))


def test_it_takes_per_patient_spike_parameters() -> None:
    logs = daily([4, 4, 4, 4, 5])
    lenient = PainSpikeParams(min_rise=1, min_ratio="1.25")

    assert pain_spike(logs, today=TODAY) is None
    assert fires(pain_spike(logs, today=TODAY, params=lenient))


# --- NR-PAIN-02 ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("previous_week", "this_week", "expected"),
    [
        ([3, 3, 3, None, None, None, None], [5, 5, 5, None, None, None, None], True),
        ([3, 3, 3, None, None, None, None], [5, 5, 4, None, None, None, None], False),
        ([2, 4, 3, 3, 3, 3, 3], [None, None, None, None, 5, 5, 5], True),
        ([3, 3, None, None, None, None, None], [9, 9, 9, 9, 9, 9, 9], False),
        ([3, 3, 3, None, None, None, None], [9, 9, None, None, None, None, None], False),
        ([5, 5, 5, 5, 5, 5, 5], [3, 3, 3, 3, 3, 3, 3], False),
    ],
)
def test_it_compares_this_weeks_mean_pain_with_last_weeks(
    previous_week: list[int | None], this_week: list[int | None], expected: bool
) -> None:
    logs = daily([*previous_week, *this_week])

    assert fires(worsening_trend(logs, today=TODAY)) is expected


def test_it_splits_the_two_weeks_at_7_and_14_days_ago() -> None:
    # Ten days ending today: 9, 8, 7 days ago are last week; 6, 5, 4 days ago this week.
    assert fires(worsening_trend(daily([3, 3, 3, 5, 5, 5, None, None, None, None]), today=TODAY))
    # A 9 seven days ago belongs to last week and lifts its mean to 5.
    assert worsening_trend(daily([3, 3, 9, 5, 5, 5, None, None, None, None]), today=TODAY) is None
    # A 9 fourteen days ago belongs to neither week.
    fifteen_days = [9, 3, 3, 3, None, None, None, None, 5, 5, 5, None, None, None, None]
    assert fires(worsening_trend(daily(fifteen_days), today=TODAY))


# --- NR-PAIN-03 ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("worst", "expected"),
    [
        ([9, 9], True),
        ([10, 9], True),
        ([8, 9], False),
        ([9, 8], False),
        ([9, None, 9], False),  # two logged days apart are not consecutive days
        ([None, 9], False),
    ],
)
def test_it_flags_uncontrolled_pain_on_2_consecutive_days(
    worst: list[int | None], expected: bool
) -> None:
    finding = uncontrolled_pain(daily(worst, field="worst_pain"), today=TODAY)

    assert fires(finding) is expected
    if finding is not None:
        assert finding.severity == "urgent"


def test_it_needs_a_worst_pain_score_on_both_days() -> None:
    logs = daily([{"pain": 9}, {"pain": 9, "worst_pain": 10}])

    assert uncontrolled_pain(logs, today=TODAY) is None


# --- NR-PROG-01 ----------------------------------------------------------------------------

START = TODAY - dt.timedelta(days=42)


def _program(baseline: list[int], current: list[int]) -> list[LogFacts]:
    first_week = [
        LogFacts(date=START + dt.timedelta(days=i), pain=p) for i, p in enumerate(baseline)
    ]
    return first_week + daily(current)


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        ([7, 7, 7], False),  # exactly 30 % down
        ([7, 7, 8], True),  # 26.7 % down
        ([6, 7, 7], False),  # 33 % down
        ([10, 10, 10], True),  # no change
    ],
)
def test_it_flags_less_than_30_percent_improvement_at_6_weeks(
    current: list[int], expected: bool
) -> None:
    logs = _program([10, 10, 10], current)

    assert fires(no_meaningful_improvement(logs, today=TODAY, program_start=START)) is expected


def test_it_waits_6_weeks_into_the_program() -> None:
    logs = _program([10, 10, 10], [10, 10, 10])

    assert (
        no_meaningful_improvement(logs, today=TODAY, program_start=START + dt.timedelta(days=1))
        is None
    )
    finding = no_meaningful_improvement(logs, today=TODAY, program_start=START)
    assert finding is not None
    assert finding.basis["program_day"] == 42
    assert finding.basis["percent_change"] == 0


def test_it_needs_a_baseline_and_a_current_week_for_improvement() -> None:
    assert (
        no_meaningful_improvement(
            _program([10, 10], [10, 10, 10]), today=TODAY, program_start=START
        )
        is None
    )
    assert (
        no_meaningful_improvement(
            _program([10, 10, 10], [10, 10]), today=TODAY, program_start=START
        )
        is None
    )
    assert (
        no_meaningful_improvement(_program([0, 0, 0], [3, 3, 3]), today=TODAY, program_start=START)
        is None
    )


# --- NR-PROG-03 ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pains", "expected"),
    [
        ([1, 0, 1, 1, 0, 0, 1], True),
        ([5, 1, 0, 1, 1, 0, 0, 1], True),
        ([1, 0, 1, 2, 0, 0, 1], False),
        ([1, 0, 1, None, 0, 0, 1], False),
        ([0, 0, 0, 0, 0, 0], False),
    ],
)
def test_it_spots_a_recovered_patient(pains: list[int | None], expected: bool) -> None:
    assert fires(recovered(daily(pains), today=TODAY)) is expected


# --- NR-ADH-01 -----------------------------------------------------------------------------

WEEK_1 = TODAY - dt.timedelta(days=14)
WEEK_2 = TODAY - dt.timedelta(days=7)


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ((10, 4), (10, 4), True),
        ((10, 5), (10, 4), False),  # exactly 50 % is not under 50 %
        ((10, 4), (10, 5), False),
        ((9, 4), (9, 4), True),  # 44 %
        ((0, 0), (10, 0), False),  # nothing prescribed: cannot be non-adherent
    ],
)
def test_it_flags_two_weeks_under_half_the_sessions(
    first: tuple[int, int], second: tuple[int, int], expected: bool
) -> None:
    weeks = [AdherenceWeek(WEEK_1, *first), AdherenceWeek(WEEK_2, *second)]

    assert fires(non_adherence(weeks, today=TODAY)) is expected


def test_it_judges_completed_consecutive_weeks_only() -> None:
    low = [AdherenceWeek(WEEK_1, 10, 0), AdherenceWeek(WEEK_2, 10, 0)]
    this_week = AdherenceWeek(TODAY, 10, 0)
    gap = [AdherenceWeek(WEEK_1 - dt.timedelta(days=7), 10, 0), AdherenceWeek(WEEK_2, 10, 0)]

    assert non_adherence(low, today=TODAY - dt.timedelta(days=1)) is None
    assert fires(non_adherence([*low, this_week], today=TODAY))
    assert non_adherence(gap, today=TODAY) is None


def test_it_clears_adherence_once_the_latest_week_recovers() -> None:
    weeks = [
        AdherenceWeek(WEEK_1 - dt.timedelta(days=7), 10, 0),
        AdherenceWeek(WEEK_1, 10, 0),
        AdherenceWeek(WEEK_2, 10, 9),
    ]

    assert non_adherence(weeks, today=TODAY) is None


# --- NR-LOG-01 -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("last_log_days_ago", "action"),
    [
        (0, None),
        (3, None),  # 2 whole days missed; today is still open
        (4, "remind_patient"),
        (7, "remind_patient"),
        (8, "alert_clinician"),
        (30, "alert_clinician"),
    ],
)
def test_it_counts_missed_days_since_the_last_log(
    last_log_days_ago: int, action: str | None
) -> None:
    logs = [
        LogFacts(date=days_ago(last_log_days_ago + 1), pain=3),
        LogFacts(date=days_ago(last_log_days_ago), pain=3),
    ]
    finding = missed_logs(logs, today=TODAY)

    if action is None:
        assert finding is None
    else:
        assert finding is not None
        assert finding.basis["action"] == action
        assert finding.basis["missed_days"] == last_log_days_ago - 1


def test_it_counts_missed_days_from_the_start_without_any_log() -> None:
    finding = missed_logs([], today=TODAY, since=days_ago(3))

    assert finding is not None
    assert finding.basis == {"missed_days": 3, "last_log_date": None, "action": "remind_patient"}
    assert missed_logs([], today=TODAY, since=days_ago(2)) is None
    assert missed_logs([], today=TODAY) is None


# --- NR-POST-01 ----------------------------------------------------------------------------

INJECTION_DAY = TODAY - dt.timedelta(days=10)


def _around_injection(pre: list[int | None], after: dict[int, int]) -> list[LogFacts]:
    """`pre` on the days before the injection (last = the day before), `after` by day."""
    before = daily(pre, end=INJECTION_DAY - dt.timedelta(days=1))
    later = [LogFacts(date=INJECTION_DAY + dt.timedelta(days=d), pain=p) for d, p in after.items()]
    return before + later


def _post(logs: list[LogFacts], day: int, kind: str = "injection") -> Any:
    injections = [InterventionFact(INJECTION_DAY, kind)]  # type: ignore[arg-type]
    return post_injection(
        logs, today=INJECTION_DAY + dt.timedelta(days=day), interventions=injections
    )


@pytest.mark.parametrize(
    ("day", "pain", "expected"),
    [
        (3, 9, False),  # within 72 h: an expected flare
        (4, 5, True),
        (4, 4, False),  # equal to the mean is not above it
        (42, 5, True),
        (43, 9, False),
    ],
)
def test_it_flags_pain_above_the_pre_injection_mean_after_72_hours(
    day: int, pain: int, expected: bool
) -> None:
    logs = _around_injection([4, 4, 4, 4, 4, 4, 4], {day: pain})

    assert fires(_post(logs, day)) is expected


def test_it_uses_the_7_days_before_the_injection_with_3_logs() -> None:
    # The 9 of 8 days before the injection is outside the window: the mean is 2.
    counted = _around_injection([9, None, None, None, None, 2, 2, 2], {5: 3})
    sparse = _around_injection([4, 4, None, None, None, None, None], {5: 9})

    finding = _post(counted, 5)
    assert finding is not None
    assert finding.basis["pre_injection_mean_pain"] == 2
    assert _post(sparse, 5) is None


@pytest.mark.parametrize(
    ("kind", "expected"), [("prolotherapy", True), ("surgery", False), ("other", False)]
)
def test_it_counts_prolotherapy_as_an_injection(kind: str, expected: bool) -> None:
    logs = _around_injection([4, 4, 4], {5: 6})

    assert fires(_post(logs, 5, kind)) is expected


def test_it_restarts_the_72_hours_at_a_newer_injection() -> None:
    logs = _around_injection([4, 4, 4], {6: 8})
    injections = [
        InterventionFact(INJECTION_DAY, "injection"),
        InterventionFact(INJECTION_DAY + dt.timedelta(days=4), "prolotherapy"),
    ]

    assert (
        post_injection(logs, today=INJECTION_DAY + dt.timedelta(days=6), interventions=injections)
        is None
    )


# --- all together ------------------------------------------------------------------------


def test_it_reviews_one_patient_day_by_day_as_a_backtest_would() -> None:
    logs = daily([8, 8, 8, 3, 3, 3, 3, 3, 9, 9, None, None, None, None, None], field="worst_pain")
    findings_by_day = {
        day.isoformat(): [f.rule_id for f in review_all(logs, today=day, since=logs[0].date)]
        for day in (days_ago(n) for n in range(14, -1, -1))
    }

    assert findings_by_day[days_ago(5).isoformat()] == ["NR-PAIN-03"]
    assert findings_by_day[days_ago(1).isoformat()] == ["NR-LOG-01"]
    assert findings_by_day[days_ago(14).isoformat()] == []
    json.dumps([f.as_dict() for f in review_all(logs, today=TODAY)])
