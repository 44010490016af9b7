"""Cron expressions in a time zone: the ticks, daylight saving time on both changes, and refused input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from jobs.cron import CronError, cron_schedule

NEW_YORK = ZoneInfo("America/New_York")  # 2026: spring forward 8 March 02:00, fall back 1 November 02:00


def ticks(expression: str, zone: str, start: datetime, end: datetime) -> list[datetime]:
    cron, found = cron_schedule(expression, zone), []
    tick = cron.next_after(start)
    while tick <= end:
        found.append(tick)
        tick = cron.next_after(tick)
    return found


def local(moments: list[datetime], zone: ZoneInfo = NEW_YORK) -> list[str]:
    return [moment.astimezone(zone).strftime("%m-%d %H:%M %Z") for moment in moments]


def test_cron_daily_0230_runs_once_on_the_spring_forward_day_at_the_first_minute_after_the_gap() -> None:
    found = ticks("30 2 * * *", "America/New_York", datetime(2026, 3, 6, 12, tzinfo=NEW_YORK),
                  datetime(2026, 3, 10, 12, tzinfo=NEW_YORK))
    assert local(found) == ["03-07 02:30 EST", "03-08 03:00 EDT", "03-09 02:30 EDT", "03-10 02:30 EDT"]


def test_cron_daily_0130_runs_once_on_the_fall_back_day_at_its_first_occurrence() -> None:
    found = ticks("30 1 * * *", "America/New_York", datetime(2026, 10, 30, 12, tzinfo=NEW_YORK),
                  datetime(2026, 11, 3, 12, tzinfo=NEW_YORK))
    assert local(found) == ["10-31 01:30 EDT", "11-01 01:30 EDT", "11-02 01:30 EST", "11-03 01:30 EST"]
    assert [b - a for a, b in zip(found, found[1:], strict=False)] == [timedelta(days=1), timedelta(hours=25),
                                                                       timedelta(days=1)]


def test_cron_every_half_hour_follows_real_time_through_both_changes() -> None:
    back = ticks("*/30 * * * *", "America/New_York", datetime(2026, 11, 1, 0, 50, tzinfo=NEW_YORK),
                 datetime(2026, 11, 1, 2, 10, tzinfo=NEW_YORK))
    assert local(back) == ["11-01 01:00 EDT", "11-01 01:30 EDT", "11-01 01:00 EST", "11-01 01:30 EST",
                           "11-01 02:00 EST"]
    forward = ticks("*/30 * * * *", "America/New_York", datetime(2026, 3, 8, 1, 10, tzinfo=NEW_YORK),
                    datetime(2026, 3, 8, 3, 40, tzinfo=NEW_YORK))
    assert local(forward) == ["03-08 01:30 EST", "03-08 03:00 EDT", "03-08 03:30 EDT"]
    for found in (back, forward):
        assert {b - a for a, b in zip(found, found[1:], strict=False)} == {timedelta(minutes=30)}


def test_cron_next_tick_inside_the_repeated_hour_is_the_next_day() -> None:
    cron = cron_schedule("30 1 * * *", "America/New_York")
    inside = datetime(2026, 11, 1, 1, 35, tzinfo=NEW_YORK, fold=1)  # 01:35 EST, after the 01:30 EDT run
    assert local([cron.next_after(inside)]) == ["11-02 01:30 EST"]


def test_cron_sixth_field_is_seconds_and_ticks_are_utc() -> None:
    start = datetime(2026, 1, 1, 0, 0, 1, 500000, tzinfo=UTC)
    found = ticks("* * * * * */2", "Asia/Jakarta", start, start + timedelta(seconds=7))
    assert found == [datetime(2026, 1, 1, 0, 0, second, tzinfo=UTC) for second in (2, 4, 6, 8)]
    assert all(tick.tzinfo is UTC for tick in found)


def test_cron_first_from_counts_a_tick_at_the_moment_itself() -> None:
    cron = cron_schedule("0 9 * * *", "Europe/Berlin")
    nine = datetime(2026, 6, 1, 9, tzinfo=ZoneInfo("Europe/Berlin"))
    assert cron.first_from(nine) == nine
    assert cron.first_from(nine + timedelta(microseconds=1)) == nine + timedelta(days=1)


def test_cron_latest_until_is_the_last_tick_not_after_the_moment_and_not_before_the_floor() -> None:
    cron = cron_schedule("0 * * * *", "UTC")
    floor = datetime(2026, 1, 1, 0, tzinfo=UTC)
    assert cron.latest_until(datetime(2026, 1, 1, 5, 59, 59, tzinfo=UTC), floor) == datetime(2026, 1, 1, 5, tzinfo=UTC)
    assert cron.latest_until(datetime(2026, 1, 1, 5, tzinfo=UTC), floor) == datetime(2026, 1, 1, 5, tzinfo=UTC)
    assert cron.latest_until(datetime(2026, 1, 1, 0, 30, tzinfo=UTC), floor) == floor


def test_cron_latest_until_skips_the_repeated_wall_time_like_next_after() -> None:
    cron = cron_schedule("30 1 * * *", "America/New_York")
    first = datetime(2026, 11, 1, 1, 30, tzinfo=NEW_YORK).astimezone(UTC)  # EDT (PEP 495: compare in UTC)
    after_repeat = datetime(2026, 11, 1, 1, 45, tzinfo=NEW_YORK, fold=1)  # EST, after the repeated 01:30
    assert cron.latest_until(after_repeat.astimezone(UTC), floor=first) == first


@pytest.mark.parametrize(("expression", "zone", "field", "words"), [
    ("61 * * * *", "UTC", "cron", "out of range"),
    ("* * *", "UTC", "cron", "5 fields"),
    ("* * * * * * * *", "UTC", "cron", "5 fields"),
    ("0 0 30 2 *", "UTC", "cron", "matches no date"),
    ("every day", "UTC", "cron", "5 fields"),
    ("@daily", "Mars/Olympus", "timezone", "IANA time zone"),
    ("@daily", "../../etc/passwd", "timezone", "IANA time zone"),
])
def test_cron_refuses_what_it_cannot_use_naming_the_field(expression: str, zone: str, field: str, words: str) -> None:
    with pytest.raises(CronError) as caught:
        cron_schedule(expression, zone)
    assert caught.value.field == field and words in str(caught.value)


def test_cron_accepts_macros() -> None:
    cron = cron_schedule("@hourly", "UTC")
    assert cron.every_hour and not cron_schedule("@daily", "UTC").every_hour
    assert cron.next_after(datetime(2026, 1, 1, 0, 10, tzinfo=UTC)) == datetime(2026, 1, 1, 1, tzinfo=UTC)
