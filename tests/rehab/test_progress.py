"""The progress figures (docs/clinical-record.md), on hand-computed examples (no database)."""

from __future__ import annotations

from datetime import date, timedelta

from rehab.progress import progress

TODAY = date(2026, 11, 22)


def _days(start: date, pains: list[int]) -> list[tuple[date, int]]:
    return [(start + timedelta(days=i), pain) for i, pain in enumerate(pains)]


def test_it_computes_baseline_current_change_and_mcid():
    # First week 7, 8, 7 -> baseline 22/3 = 7.333...; last 7 days 3, 3, 4 -> 10/3 = 3.333...
    logs = _days(date(2026, 10, 1), [7, 8, 7]) + _days(TODAY - timedelta(days=2), [3, 3, 4])
    result = progress(logs, today=TODAY)
    assert result.baseline_pain == 7.3
    assert result.current_pain_7d == 3.3
    assert result.change == -4.0  # -12/3, from unrounded means
    assert result.percent_change == -54.5  # 100 * -4 / (22/3) = -54.545...
    assert result.mcid_reached is True
    assert result.days_logged == 6


def test_it_gives_null_baseline_under_three_logs_in_the_first_week():
    logs = [(date(2026, 10, 1), 7), (date(2026, 10, 7), 7), (date(2026, 10, 8), 7)]
    result = progress(logs + _days(TODAY - timedelta(days=2), [3, 3, 3]), today=TODAY)
    assert result.baseline_pain is None  # 2026-10-08 is the 8th day: outside the window
    assert result.current_pain_7d == 3.0
    assert result.change is None
    assert result.percent_change is None
    assert result.mcid_reached is False


def test_it_gives_null_current_mean_under_three_recent_logs():
    logs = [*_days(date(2026, 10, 1), [6, 6, 6]), (TODAY - timedelta(days=7), 1), (TODAY, 1)]
    result = progress(logs, today=TODAY)
    assert result.baseline_pain == 6.0
    assert result.current_pain_7d is None  # TODAY-7 is outside the 7 local days
    assert result.change is None


def test_it_gives_null_percent_change_for_a_zero_baseline():
    logs = _days(date(2026, 10, 1), [0, 0, 0]) + _days(TODAY - timedelta(days=2), [2, 2, 2])
    result = progress(logs, today=TODAY)
    assert result.baseline_pain == 0.0
    assert result.change == 2.0
    assert result.percent_change is None
    assert result.mcid_reached is False


def test_it_needs_both_two_points_and_thirty_percent():
    # 10 -> 8: two points but only 20 %.
    logs = _days(date(2026, 10, 1), [10, 10, 10]) + _days(TODAY - timedelta(days=2), [8, 8, 8])
    assert progress(logs, today=TODAY).mcid_reached is False
    # 5 -> 3.5: 30 % but only 1.5 points.
    logs = _days(date(2026, 10, 1), [5, 5, 5, 5]) + _days(TODAY - timedelta(days=3), [3, 4, 3, 4])
    assert progress(logs, today=TODAY).mcid_reached is False
    # 5 -> 3: exactly 2 points and 40 %.
    logs = _days(date(2026, 10, 1), [5, 5, 5]) + _days(TODAY - timedelta(days=2), [3, 3, 3])
    assert progress(logs, today=TODAY).mcid_reached is True


def test_it_rounds_half_away_from_zero_once():
    # Baseline (2+2+3+2)/4 = 2.25 must round to 2.3 (binary float rounding gives 2.2).
    logs = _days(date(2026, 10, 1), [2, 2, 3, 2])
    assert progress(logs, today=TODAY).baseline_pain == 2.3


def test_it_uses_the_same_logs_for_both_windows_when_they_overlap():
    logs = _days(TODAY - timedelta(days=3), [6, 5, 4, 3])
    result = progress(logs, today=TODAY)
    assert result.baseline_pain == 4.5
    assert result.current_pain_7d == 4.5
    assert result.change == 0.0


def test_it_handles_no_logs():
    result = progress([], today=TODAY)
    assert result.days_logged == 0
    assert result.baseline_pain is None
    assert result.mcid_reached is False


def test_it_takes_change_and_percent_from_unrounded_means():
    # Baseline 7, 7, 7, 8 = 29/4 = 7.25 (7.3); current 3, 3, 4 = 10/3 = 3.33 (3.3).
    # Unrounded: change -47/12 = -3.92 -> -3.9, percent -4700/87 = -54.02 -> -54.0.
    # From the rounded means it would be 3.3 - 7.3 = -4.0 and -54.8.
    logs = _days(date(2026, 10, 1), [7, 7, 7, 8]) + _days(TODAY - timedelta(days=2), [3, 3, 4])
    result = progress(logs, today=TODAY)
    assert (result.baseline_pain, result.current_pain_7d) == (7.3, 3.3)
    assert result.change == -3.9
    assert result.percent_change == -54.0


def test_it_reaches_the_mcid_exactly_on_both_thresholds():
    # 20/3 -> 14/3: exactly -2 points and exactly -30 %. The rounded means (6.7 -> 4.7)
    # would give -29.9 % and miss it.
    logs = _days(date(2026, 10, 1), [7, 7, 6]) + _days(TODAY - timedelta(days=2), [5, 5, 4])
    result = progress(logs, today=TODAY)
    assert (result.change, result.percent_change) == (-2.0, -30.0)
    assert result.mcid_reached is True


def test_it_misses_the_mcid_when_only_the_rounded_change_reaches_two_points():
    # 14/3 -> 19/7: the change is -41/21 = -1.95, shown as -2.0, but not two points.
    logs = _days(date(2026, 10, 1), [5, 5, 4])
    logs += _days(TODAY - timedelta(days=6), [3, 3, 3, 3, 3, 2, 2])
    result = progress(logs, today=TODAY)
    assert result.change == -2.0
    assert result.percent_change == -41.8
    assert result.mcid_reached is False
