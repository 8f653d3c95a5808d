"""Rate strings of `THROTTLE_RATES` (pure: no database)."""

from __future__ import annotations

import pytest

from config.rates import parse_rate


@pytest.mark.parametrize(
    ("rate", "parsed"),
    [
        ("10/15min", (10, 900)),
        ("10/min", (10, 60)),
        ("10/minute", (10, 60)),
        ("10/m", (10, 60)),
        ("5/s", (5, 1)),
        ("5/sec", (5, 1)),
        ("5/second", (5, 1)),
        ("20/h", (20, 3600)),
        ("20/hour", (20, 3600)),
        ("20/hours", (20, 3600)),
        ("3/d", (3, 86400)),
        ("3/day", (3, 86400)),
        ("3/2day", (3, 172800)),
        (" 1000 / Hour ", (1000, 3600)),
    ],
)
def test_it_parses_drf_and_multiplied_rates(rate, parsed):
    assert parse_rate(rate) == parsed


@pytest.mark.parametrize(
    "rate", ["", "10", "10/", "/min", "ten/min", "10/fortnight", "0/min", "10/0min", "-1/min"]
)
def test_it_rejects_a_bad_rate(rate):
    with pytest.raises(ValueError, match="N/unit"):
        parse_rate(rate)
