"""Rate strings (`THROTTLE_RATES`), parsed without Django so that settings can check them.

Settings validate every rate at start-up: a rate the throttles could not read would make
every sign-in a 500 (login) or silently switch the limit off (the throttles fail open).
"""

from __future__ import annotations

import re

# DRF's own spellings (`second`, `minute`, `hour`, `day`) and the short ones, singular or
# plural, so that a rate written for DRF means the same here.
_UNIT_SECONDS = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600),
    **dict.fromkeys(("d", "day", "days"), 86400),
}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([a-z]+)\s*$")

RATE_HELP = (
    "use N/unit or N/Kunit (e.g. 10/min, 10/15min, 1000/hour) with N and K at least 1 and "
    "unit one of s, sec, second, m, min, minute, h, hour, d, day"
)


def parse_rate(rate: str) -> tuple[int, int]:
    """`"10/15min"` -> (10, 900): at most 10 in any 900 seconds.

    DRF's own parser has no multiplier, which the contract's "10 failed sign-ins within
    15 minutes" needs. Raises ValueError for anything else, including a zero count or
    window (a limit of 0 would lock everyone out, a window of 0 would count nothing).
    """
    match = _RATE.match(rate.lower()) if isinstance(rate, str) else None
    if not match or match.group(3) not in _UNIT_SECONDS:
        raise ValueError(f"bad rate {rate!r}: {RATE_HELP}")
    count, multiplier, unit = match.groups()
    if int(count) < 1 or (multiplier and int(multiplier) < 1):
        raise ValueError(f"bad rate {rate!r}: {RATE_HELP}")
    return int(count), int(multiplier or 1) * _UNIT_SECONDS[unit]
