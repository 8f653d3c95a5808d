"""When a patient's reminder falls due: their local wall-clock time on one of their local
dates, as an instant (docs/architecture.md, "Patient reminders"). Pure: no Django.

Daylight saving time, with zoneinfo:
- a local time that does not exist (the hour skipped on spring-forward day) fires at the
  first valid instant after it, the end of the gap;
- a local time that happens twice (the hour repeated on autumn day) is the first of the
  two (fold=0); the reminder's unique (patient, kind, local date) key makes it fire once.

Quiet hours: a reminder falling inside them is moved to their end when that is on the
same local date, else skipped (a reminder for today shown tomorrow morning would be
about a day the patient can no longer log).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def _exists(local: datetime) -> bool:
    """False for a wall-clock time in a spring-forward gap: it does not survive a round
    trip through UTC."""
    tz = local.tzinfo
    assert tz is not None
    back = local.astimezone(UTC).astimezone(tz)
    return back.replace(tzinfo=None) == local.replace(tzinfo=None)


def local_instant(day: date, at: time, tz: ZoneInfo) -> datetime:
    """`at` on `day` in `tz`, in UTC; past a gap when it falls into one."""
    local = datetime.combine(day, at, tzinfo=tz)  # fold=0: the first of a repeated hour
    if _exists(local):
        return local.astimezone(UTC)
    # In a gap. zoneinfo reads a gap time with the offset before the transition (fold=0),
    # which lands after the gap by its length; the transition itself is the first valid
    # instant: find it minute by minute back from there (a gap is at most a few hours).
    after = local.astimezone(UTC)
    instant = after
    while True:
        earlier = instant - timedelta(minutes=1)
        wall = earlier.astimezone(tz).replace(tzinfo=None)
        if wall.date() != day or wall.time() < at:
            return instant
        instant = earlier


def in_quiet_hours(at: time, start: time, end: time) -> bool:
    """Whether local time `at` is inside the quiet hours [start, end), which may run
    over midnight (22:00-07:00)."""
    if start == end:
        return False
    if start < end:
        return start <= at < end
    return at >= start or at < end


def reminder_due(
    day: date,
    at: time,
    tz: ZoneInfo,
    *,
    quiet_start: time | None = None,
    quiet_end: time | None = None,
) -> datetime | None:
    """The instant of the reminder for local date `day` at local time `at`, moved out of
    the quiet hours; None when it is skipped."""
    if (
        quiet_start is not None
        and quiet_end is not None
        and in_quiet_hours(at, quiet_start, quiet_end)
    ):
        # The quiet hours end later today only if they do not run past midnight, or `at`
        # is in their after-midnight part.
        if quiet_start < quiet_end or at < quiet_end:
            return local_instant(day, quiet_end, tz)
        return None
    return local_instant(day, at, tz)
