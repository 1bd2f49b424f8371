"""Silent hours: when messages must not be sent, and when sending may resume.

A rule combines a daily window (which may cross midnight, e.g. 21:00-08:00) with whole
silent weekdays. Both are read on the local wall clock of one time zone, with the DST rule
of `engine.schedule.local_to_utc`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, Self
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from engine.schedule import local_to_utc, parse_zone

__all__ = ["SilentHours", "Weekday", "silent_until"]

Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAYS: tuple[Weekday, ...] = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)

Interval = tuple[datetime, datetime]


class SilentHours(BaseModel):
    """When messages must not be sent."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: time | None = None
    """Start of the daily silent window, e.g. "21:00"; silent from this minute on."""
    end: time | None = None
    """End of the daily window, e.g. "08:00"; sending resumes at this minute. May be
    earlier than `start`, in which case the window crosses midnight."""
    days: list[Weekday] = []
    """Whole days that are silent."""
    timezone: str = "customer"
    """An IANA time zone name, or "customer" for each customer's own zone."""

    @field_validator("start", "end")
    @classmethod
    def _wall_clock(cls, value: time | None) -> time | None:
        if value is not None and value.tzinfo is not None:
            raise ValueError("must be a local time without a UTC offset, e.g. '21:00'")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value != "customer":
            try:
                parse_zone(value)
            except ValueError:
                raise ValueError(
                    f"timezone must be 'customer' or an IANA time zone name such as "
                    f"'Europe/Prague', got '{value}'"
                ) from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.start is None) != (self.end is None):
            raise ValueError("start and end must be given together")
        if self.start is None and not self.days:
            raise ValueError("silent hours need a start and end, or days, or both")
        if self.start is not None and self.start == self.end:
            raise ValueError(f"start and end are both {self.start}: the window would be empty")
        if set(self.days) == set(WEEKDAYS):
            # Every instant would be silent, so nothing could ever be sent.
            raise ValueError("days cannot list all seven days")
        return self


def silent_until(rule: SilentHours, now: datetime, tz: ZoneInfo) -> datetime | None:
    """Return when the silence around `now` ends (aware UTC), or None if `now` is not silent.

    `tz` is the zone to read the rule in; the caller resolves "customer". The answer is the
    first instant at or after `now` that is neither in the daily window nor on a silent day,
    so a 21:00-08:00 window plus sunday silences Saturday 21:00 to Monday 08:00.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be a timezone-aware datetime, got {now}")
    now = now.astimezone(UTC)
    today = now.astimezone(tz).date()
    # Silence lasts at most six silent days plus one window, so eight days of intervals
    # (and the day before, whose window may run past midnight) cover it.
    intervals = sorted(
        interval
        for offset in range(-1, 9)
        for interval in _silent_intervals(rule, today + timedelta(days=offset), tz)
    )
    until = now
    for start, end in intervals:
        # Sorted by start, so one pass extends `until` through every overlapping interval.
        if start <= until < end:
            until = end
    return until if until != now else None


def _silent_intervals(rule: SilentHours, day: date, tz: ZoneInfo) -> list[Interval]:
    """The half-open [start, end) UTC intervals of silence that begin on local `day`."""
    intervals: list[Interval] = []
    if WEEKDAYS[day.weekday()] in rule.days:
        intervals.append(
            (local_to_utc(day, time(0), tz), local_to_utc(day + timedelta(days=1), time(0), tz))
        )
    if rule.start is not None and rule.end is not None:
        end_day = day if rule.start < rule.end else day + timedelta(days=1)
        intervals.append((local_to_utc(day, rule.start, tz), local_to_utc(end_day, rule.end, tz)))
    return intervals
