"""Cron expressions in a time zone: croniter for the expression, zoneinfo for the zone.

Daylight saving time follows Vixie cron. A wall time skipped by the spring-forward change runs at the
first minute after the gap (croniter's own answer: a daily 02:30 runs at 03:00 that day, once). A wall
time that happens twice at the fall-back change runs once, at its first occurrence, unless the
expression's hour field is `*`: schedules that run every hour follow real time and run in both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

FIELDS = (5, 6)  # minute hour day month weekday, and an optional sixth: seconds
# A tick is never searched further than this many repeated wall times ahead (a fall-back change
# repeats one hour: a few ticks; the bound only guards the loop).
_MAX_SKIPS = 10_000


class CronError(ValueError):
    """A cron expression or time zone that cannot be used; `field` names which."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


def zone_of(name: str) -> ZoneInfo:
    """The IANA time zone `name` (e.g. Europe/Berlin, UTC); CronError when there is no such zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CronError("timezone", f"{name!r} is not an IANA time zone name such as UTC, Asia/Jakarta or "
                                    "Europe/Berlin") from None


def check_expression(expression: str) -> None:
    """Raise CronError unless `expression` is a cron expression of 5 fields (6 with seconds last) or a
    macro such as @daily."""
    fields = expression.split()
    if not expression.startswith("@") and len(fields) not in FIELDS:
        raise CronError("cron", f"must have 5 fields (minute hour day month weekday), or 6 with seconds last; "
                                f"got {len(fields)}")
    try:
        ticks = croniter(expression)
    except (CroniterError, ValueError, KeyError) as exc:
        raise CronError("cron", f"is not a valid cron expression ({exc})") from None
    try:
        ticks.get_next(datetime)
    except CroniterError:
        raise CronError("cron", "matches no date (for example the 30th of February)") from None


@dataclass(frozen=True)
class CronSchedule:
    """The ticks of a cron expression in a time zone, as UTC instants."""

    expression: str
    zone: ZoneInfo

    def next_after(self, moment: datetime) -> datetime:
        """The first tick strictly after `moment`."""
        ticks = croniter(self.expression, moment.astimezone(self.zone))
        for _ in range(_MAX_SKIPS):
            tick = ticks.get_next(datetime)
            if not self._repeated(tick):
                return tick.astimezone(UTC)
        raise CronError("cron", "finds no time to run")

    def first_from(self, moment: datetime) -> datetime:
        """The first tick at or after `moment`."""
        tick = self.next_after(moment - timedelta(seconds=1))
        while tick < moment:  # croniter counts in whole seconds: a tick within the second before `moment`
            tick = self.next_after(tick)
        return tick

    def latest_until(self, moment: datetime, floor: datetime) -> datetime:
        """The last tick at or before `moment`, and not before `floor` (itself a tick at or before `moment`)."""
        ticks = croniter(self.expression, (moment + timedelta(microseconds=1)).astimezone(self.zone))
        for _ in range(_MAX_SKIPS):
            tick = ticks.get_prev(datetime)
            if not self._repeated(tick):
                return max(tick.astimezone(UTC), floor)
        return floor

    def _repeated(self, tick: datetime) -> bool:
        """Whether `tick` is the second occurrence of a wall time repeated by a fall-back change, and the
        expression names its hours (an every-hour expression runs in both)."""
        if tick.fold != 1 or tick.replace(fold=0).utcoffset() == tick.utcoffset():
            return False
        return not self.every_hour

    @property
    def every_hour(self) -> bool:
        """Whether the hour field is `*` (macros included: @hourly is, @daily is not)."""
        return croniter(self.expression).expanded[1] == ["*"]


def cron_schedule(expression: str, timezone: str) -> CronSchedule:
    """A checked CronSchedule; CronError names the field that is wrong."""
    check_expression(expression)
    return CronSchedule(expression, zone_of(timezone))
