"""When a reminder falls due: DST gaps and repeats, quiet hours. Pure, no database."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from notifications.schedule import in_quiet_hours, local_instant, reminder_due

NEW_YORK = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")


def test_it_fires_at_the_local_time_on_an_ordinary_day():
    assert local_instant(date(2027, 6, 1), time(19), LONDON) == datetime(2027, 6, 1, 18, tzinfo=UTC)
    assert local_instant(date(2027, 1, 5), time(19), LONDON) == datetime(2027, 1, 5, 19, tzinfo=UTC)


def test_it_keeps_the_local_time_across_the_spring_change():
    # New York springs forward on 14 March 2027, 02:00 -> 03:00.
    assert local_instant(date(2027, 3, 13), time(19), NEW_YORK) == datetime(
        2027, 3, 14, 0, tzinfo=UTC
    )  # EST
    assert local_instant(date(2027, 3, 14), time(19), NEW_YORK) == datetime(
        2027, 3, 14, 23, tzinfo=UTC
    )  # EDT


def test_it_fires_a_time_the_spring_gap_skips_at_the_first_valid_instant_after():
    due = local_instant(date(2027, 3, 14), time(2, 30), NEW_YORK)
    assert due == datetime(2027, 3, 14, 7, 0, tzinfo=UTC)
    assert due.astimezone(NEW_YORK).time() == time(3, 0)
    # London: 28 March 2027, 01:00 -> 02:00.
    assert local_instant(date(2027, 3, 28), time(1, 15), LONDON) == datetime(
        2027, 3, 28, 1, 0, tzinfo=UTC
    )


def test_it_fires_a_time_the_autumn_change_repeats_once_at_the_first():
    # London falls back on 31 October 2027, 02:00 BST -> 01:00 GMT: 01:30 happens twice.
    due = local_instant(date(2027, 10, 31), time(1, 30), LONDON)
    assert due == datetime(2027, 10, 31, 0, 30, tzinfo=UTC)
    assert local_instant(date(2027, 10, 31), time(19), LONDON) == datetime(
        2027, 10, 31, 19, tzinfo=UTC
    )
    assert local_instant(date(2027, 10, 30), time(19), LONDON) == datetime(
        2027, 10, 30, 18, tzinfo=UTC
    )


def test_it_knows_quiet_hours_over_midnight():
    assert in_quiet_hours(time(23), time(22), time(7))
    assert in_quiet_hours(time(6, 59), time(22), time(7))
    assert not in_quiet_hours(time(7), time(22), time(7))
    assert in_quiet_hours(time(13), time(12), time(14))
    assert not in_quiet_hours(time(14), time(12), time(14))


def test_it_moves_a_reminder_in_quiet_hours_to_their_end_the_same_day():
    due = reminder_due(
        date(2027, 6, 1), time(19), LONDON, quiet_start=time(18), quiet_end=time(20, 30)
    )
    assert due == datetime(2027, 6, 1, 19, 30, tzinfo=UTC)
    early = reminder_due(date(2027, 6, 1), time(6), LONDON, quiet_start=time(22), quiet_end=time(7))
    assert early == datetime(2027, 6, 1, 6, 0, tzinfo=UTC)


def test_it_skips_a_reminder_whose_quiet_hours_end_the_next_day():
    assert (
        reminder_due(date(2027, 6, 1), time(23), LONDON, quiet_start=time(22), quiet_end=time(7))
        is None
    )


def test_it_leaves_a_reminder_outside_quiet_hours_alone():
    due = reminder_due(date(2027, 6, 1), time(19), LONDON, quiet_start=time(22), quiet_end=time(7))
    assert due == datetime(2027, 6, 1, 18, tzinfo=UTC)
