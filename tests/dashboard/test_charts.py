"""The chart and its figures, without a database."""

from __future__ import annotations

import itertools
import re
from datetime import date, timedelta
from typing import Any

import pytest

from dashboard import charts
from dashboard.selectors import chart_window, safety_answers
from rehab import progress

D0 = date(2026, 10, 1)


def day(n: int) -> date:
    return D0 + timedelta(days=n)


@pytest.mark.parametrize(
    ("baseline", "threshold"),
    [
        (8.0, 5.6),  # 30 % of 8 is 2.4: the larger drop binds
        (6.0, 4.0),  # 30 % of 6 is 1.8: 2 points bind
        (6.7, 4.69),  # 30 % is 2.01: never rounded up to a line the patient must beat
        (2.0, 0.0),
    ],
)
def test_it_puts_the_meaningful_change_line_at_the_larger_drop(baseline, threshold):
    assert progress.mcid_threshold(baseline) == threshold


def test_the_meaningful_change_line_agrees_with_mcid_reached():
    from fractions import Fraction

    for tenths in range(20, 101):
        baseline = tenths / 10
        line = progress.mcid_threshold(baseline)
        at = progress.figures(Fraction(str(baseline)), Fraction(str(line)), days_logged=14)
        above = progress.figures(
            Fraction(str(baseline)), Fraction(str(line)) + Fraction(1, 100), days_logged=14
        )
        assert at.mcid_reached, baseline
        assert not above.mcid_reached, baseline


def test_it_computes_a_7_day_mean_like_current_pain_7d():
    pains = [(day(0), 8), (day(1), 6), (day(3), 4), (day(7), 2), (day(8), 2), (day(20), 5)]
    assert progress.rolling_means(pains) == [
        (day(0), None),  # fewer than 3 logs
        (day(1), None),
        (day(3), 6.0),
        (day(7), 4.0),  # day 0 has left the window: (6 + 4 + 2) / 3
        (day(8), 2.7),  # days 3, 7, 8: 8/3, rounded half up
        (day(20), None),
    ]


def _svg(**kwargs):
    logs: list[dict[str, Any]] = [
        {"date": day(i), "pain": 5, "leg_pain": 6, "function": 4} for i in range(10)
    ]
    defaults = {
        "logs": logs,
        "rolling": progress.rolling_means((r["date"], r["pain"]) for r in logs),
        "baseline": 5.0,
        "start": day(0),
        "end": day(9),
    }
    return charts.pain_chart_svg(**{**defaults, **kwargs})


def test_it_breaks_the_line_over_a_gap_of_days_without_logs():
    logs = [{"date": day(i), "pain": 5} for i in (0, 1, 2, 9, 10)]
    svg = _svg(logs=logs, rolling=[], end=day(10))
    pain_series = svg.split('class="series serie-1 color-1"')[1].split("</g>")[0]
    assert pain_series.count("<path") == 2


def test_it_draws_only_the_bands_and_markers_inside_the_window():
    svg = _svg(
        bands=[
            charts.Band(day(-20), day(-5), "Before"),
            charts.Band(day(-2), day(3), "Phase 1"),
            charts.Band(day(4), day(30), "Phase 2"),
        ],
        markers=[charts.Marker(day(-1), "Old"), charts.Marker(day(5), "Injection")],
    )
    assert re.findall(r'<text[^>]*class="band-label">([^<]+)', svg) == ["Phase 1", "Phase 2"]
    assert re.findall(r'<text[^>]*class="marker-label">([^<]+)', svg) == ["Injection"]


def test_it_refers_to_no_outside_resource():
    svg = _svg(script_urls=["/static/pygaljs/pygal-tooltips.min.js"])
    assert re.findall(r'(?:href|src)="([^"]+)"', svg) == ["/static/pygaljs/pygal-tooltips.min.js"]
    assert "@import" not in svg
    assert "url(" not in svg


def test_it_starts_the_chart_at_the_first_log_and_shows_at_least_a_week():
    today = date(2026, 11, 20)
    assert chart_window(today=today, days=90, first_log=today - timedelta(days=20)) == (
        today - timedelta(days=20),
        today,
    )
    assert chart_window(today=today, days=30, first_log=date(2025, 1, 1))[0] == today - timedelta(
        days=29
    )
    assert chart_window(today=today, days=None, first_log=date(2025, 1, 1))[0] == date(2025, 1, 1)
    assert chart_window(today=today, days=90, first_log=today)[0] == today - timedelta(days=6)
    assert chart_window(today=today, days=90, first_log=None)[0] == today - timedelta(days=89)


def test_it_marks_every_safety_answer_that_is_not_no():
    answers = {
        a.field: a
        for a in safety_answers({"both_legs": "unchanged_assessed", "temperature_c": 37.2})
    }
    assert answers["both_legs"].notable
    assert answers["both_legs"].value == "unchanged assessed"
    assert not answers["temperature_c"].notable
    assert not answers["saddle_numbness"].notable
    assert answers["saddle_numbness"].value == "no"
    assert [a.field for a in safety_answers(None) if a.notable] == []


def _x_label_positions(svg: str) -> list[tuple[float, str]]:
    axis = svg[svg.index('class="axis x') :]
    axis = axis[: axis.index('class="axis y')] if 'class="axis y' in axis else axis
    return [
        (float(x), text)
        for x, text in re.findall(r'<text x="([\d.]+)" y="[\d.]+" class="">([^<]*)</text>', axis)
    ]


@pytest.mark.parametrize("days", [1, 5, 9, 14, 17, 28, 35, 45, 56, 60, 90])
def test_it_spaces_the_date_labels_so_that_they_never_touch(days: int) -> None:
    from dashboard.charts import MAX_DATE_LABELS, pain_chart_svg

    end = date(2026, 12, 7)
    start = end - timedelta(days=days - 1)
    logs = [{"date": start + timedelta(days=n), "pain": 5} for n in range(days)]
    labels = _x_label_positions(
        pain_chart_svg(logs=logs, rolling=[], baseline=None, start=start, end=end)
    )
    assert 1 <= len(labels) <= MAX_DATE_LABELS, labels
    xs = [x for x, _ in labels]
    gaps = [b - a for a, b in itertools.pairwise(xs)]
    # "30 Nov" at 14 px is ~46 px wide in the 840 px chart; 70 leaves a clear gap.
    assert all(gap >= 70 for gap in gaps), labels
    # Evenly spaced: one step throughout.
    assert max(gaps, default=0) - min(gaps, default=0) < 1, labels
