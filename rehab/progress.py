"""Progress figures (docs/clinical-record.md § Progress figures). Pure: no Django.

The one definition of the baseline (the mean pain of the first BASELINE_DAYS days from
the first log), the 7-day mean (the CURRENT_DAYS days ending the patient's today), the
change, the percent change and the MCID responder. SQL that restates one for speed (the
caseload's figures and order, the dashboard's MCID filter, the review rule NR-PROG-01) is
held to these functions over generated data by tests/rehab/test_figures_sql.py.

Means are exact fractions so that rounding happens once, at the end, half away from zero
("computed from unrounded values, then rounded to one decimal"); binary floats would
round 2.25 down.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

BASELINE_DAYS = 7
CURRENT_DAYS = 7
MIN_LOGS = 3
# Meaningful change in NRS pain: 2 points AND 30 % (Farrar 2001; Ostelo 2008).
MCID_POINTS = -2
MCID_PERCENT = -30


@dataclass(frozen=True)
class Progress:
    baseline_pain: float | None
    current_pain_7d: float | None
    change: float | None
    percent_change: float | None
    mcid_reached: bool
    days_logged: int


def round1(value: Fraction | None) -> float | None:
    if value is None:
        return None
    quantized = (Decimal(value.numerator) / Decimal(value.denominator)).quantize(
        Decimal("0.1"), rounding=ROUND_HALF_UP
    )
    return float(quantized)


def _mean(values: list[int]) -> Fraction | None:
    return Fraction(sum(values), len(values)) if len(values) >= MIN_LOGS else None


def change(baseline: Fraction | None, current: Fraction | None) -> Fraction | None:
    """Current less baseline (negative: better), exact; None unless both are known."""
    return current - baseline if current is not None and baseline is not None else None


def percent_change(baseline: Fraction | None, current: Fraction | None) -> Fraction | None:
    """The change as a percentage of the baseline, exact; None for a baseline of 0."""
    delta = change(baseline, current)
    return 100 * delta / baseline if delta is not None and baseline else None


def mcid_reached(baseline: Fraction | None, current: Fraction | None) -> bool:
    """The meaningful change: down at least 2 points AND at least 30 %."""
    delta, percent = change(baseline, current), percent_change(baseline, current)
    return (
        delta is not None
        and percent is not None
        and delta <= MCID_POINTS
        and percent <= MCID_PERCENT
    )


def figures(baseline: Fraction | None, current: Fraction | None, days_logged: int) -> Progress:
    """Change, percent change and MCID from unrounded baseline and current means."""
    delta, percent = change(baseline, current), percent_change(baseline, current)
    mcid = mcid_reached(baseline, current)
    return Progress(
        baseline_pain=round1(baseline),
        current_pain_7d=round1(current),
        change=round1(delta),
        percent_change=round1(percent),
        mcid_reached=mcid,
        days_logged=days_logged,
    )


def means(
    pains: Iterable[tuple[date, int]], *, today: date
) -> tuple[Fraction | None, Fraction | None]:
    """The exact baseline and current (7-day) means of one patient's (date, pain) logs,
    each None under MIN_LOGS logs in its window; `today` is the patient's local today."""
    logs = sorted(pains)
    if not logs:
        return None, None
    first = logs[0][0]
    baseline_end = first + timedelta(days=BASELINE_DAYS - 1)
    current_start = today - timedelta(days=CURRENT_DAYS - 1)
    baseline = _mean([pain for day, pain in logs if day <= baseline_end])
    current = _mean([pain for day, pain in logs if current_start <= day <= today])
    return baseline, current


def progress(pains: Iterable[tuple[date, int]], *, today: date) -> Progress:
    """Figures from every (date, pain) of one patient; `today` is their local today."""
    logs = list(pains)
    baseline, current = means(logs, today=today)
    return figures(baseline, current, len(logs))


def mcid_threshold(baseline: float) -> float:
    """The pain at or below which the meaningful change is reached: the baseline less the
    larger of 2 points and 30 % (both must be met, so the larger one binds). Exact for a
    baseline of one decimal (at most two decimals), so the line is never drawn above it."""
    exact = Fraction(str(baseline))
    drop = max(Fraction(-MCID_POINTS), exact * Fraction(-MCID_PERCENT, 100))
    return float(exact - drop)


def rolling_means(
    pains: Iterable[tuple[date, int]], *, days: int = CURRENT_DAYS
) -> list[tuple[date, float | None]]:
    """For each logged date, the mean pain of the logs in the `days` days ending that date
    (the same window and the same minimum of logs as `current_pain_7d`), else None."""
    window: deque[tuple[date, int]] = deque()
    total = 0
    means: list[tuple[date, float | None]] = []
    for day, pain in sorted(pains):
        window.append((day, pain))
        total += pain
        while window[0][0] <= day - timedelta(days=days):
            total -= window.popleft()[1]
        mean = Fraction(total, len(window)) if len(window) >= MIN_LOGS else None
        means.append((day, round1(mean)))
    return means
