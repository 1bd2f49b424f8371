"""Time arithmetic for scenarios: durations, local times of day, cron fires and time zones.

Every instant taken or returned is a timezone-aware datetime; results are in UTC. Local
wall-clock times are turned into instants with one DST rule, used everywhere in Scenarist:

* a wall time that does not exist (skipped when clocks spring forward) means the first
  instant after the gap;
* a wall time that happens twice (clocks fall back) means its first occurrence (fold=0).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter
from pydantic import AfterValidator, BeforeValidator, TypeAdapter, ValidationError

__all__ = [
    "cron_error",
    "local_to_utc",
    "next_cron_fire",
    "next_time_of_day",
    "parse_duration",
    "parse_zone",
]

# The compact form ("1d12h") is Scenarist's own, so no library parses it.
_COMPACT_DURATION = re.compile(r"(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_ISO_DURATION = TypeAdapter(timedelta)
_DURATION_FORMATS = (
    "use a number and a unit (s, m, h, d, w) such as '15m' or '1d12h', "
    "or ISO 8601 such as 'PT2H30M'"
)

# Clocks never shift by more than this, so a cron fire this far before `after` in wall-clock
# time is also before it in real time.
_MAX_DST_SHIFT = timedelta(hours=3)

# croniter's aliases; it keeps no public list of them.
_ALIASES = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


def parse_duration(text: str) -> timedelta:
    """Parse a positive duration: "90s", "15m", "2h", "3d", "1w", "1d12h", "PT2H30M", "P3D".

    Units in the compact form go from largest to smallest. ISO 8601 years and months are
    refused because they have no fixed length. Raises ValueError naming the text.
    """
    stripped = text.strip()
    try:
        if stripped.startswith(("P", "+P", "-P")):
            duration = _parse_iso_duration(stripped, text)
        else:
            match = _COMPACT_DURATION.fullmatch(stripped)
            if not stripped or match is None:
                raise ValueError(f"invalid duration '{text}': {_DURATION_FORMATS}")
            weeks, days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
            duration = timedelta(
                weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds
            )
    except OverflowError:
        raise ValueError(f"duration '{text}' is too long") from None
    if duration <= timedelta(0):
        raise ValueError(f"duration '{text}' must be positive")
    return duration


def _parse_iso_duration(stripped: str, text: str) -> timedelta:
    date_part = stripped.lstrip("+-")[1:].partition("T")[0]
    if "Y" in date_part or "M" in date_part:
        raise ValueError(
            f"invalid duration '{text}': years and months have no fixed length, use days or weeks"
        )
    try:
        return _ISO_DURATION.validate_python(stripped)
    except ValidationError:
        raise ValueError(f"invalid duration '{text}': {_DURATION_FORMATS}") from None


def parse_zone(name: str) -> ZoneInfo:
    """Return the IANA time zone `name`, e.g. "Europe/Prague"; ValueError if there is none."""
    try:
        return ZoneInfo(name)
    # Besides ZoneInfoNotFoundError, malformed keys ("", "../x") raise ValueError and
    # directories ("Europe") raise OSError.
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone '{name}'") from None


def local_to_utc(day: date, at: time, tz: ZoneInfo) -> datetime:
    """Return the UTC instant when the wall clock in `tz` shows `at` on `day`.

    A time skipped by a spring-forward change gives the first instant after the gap; a
    time repeated by a fall-back change gives its first occurrence.
    """
    if at.tzinfo is not None:
        raise ValueError(f"time {at} must be a wall-clock time without a UTC offset")
    wall = datetime.combine(day, at.replace(fold=0))
    instant = wall.replace(tzinfo=tz).astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) == wall:
        return instant
    return _end_of_gap(wall, tz)


def _end_of_gap(wall: datetime, tz: ZoneInfo) -> datetime:
    # zoneinfo does not expose its transition table, so find the transition by bisection.
    # A nonexistent wall time read with the offset from after the gap (fold=1) lands
    # before the transition, read with the offset from before it (fold=0) after it.
    before = math.floor(wall.replace(tzinfo=tz, fold=1).timestamp())
    after = math.ceil(wall.replace(tzinfo=tz, fold=0).timestamp())
    offset_after = datetime.fromtimestamp(after, tz).utcoffset()
    while after - before > 1:
        middle = (before + after) // 2
        if datetime.fromtimestamp(middle, tz).utcoffset() == offset_after:
            after = middle
        else:
            before = middle
    return datetime.fromtimestamp(after, UTC)


def next_time_of_day(
    now: datetime, at: time, tz: ZoneInfo, on_date: date | None = None
) -> datetime:
    """Return the first instant at or after `now` when the wall clock in `tz` shows `at`.

    With `on_date`, the instant is `at` on that local date, or `now` if it has passed.
    """
    now = _as_utc(now, "now")
    if on_date is not None:
        return max(local_to_utc(on_date, at, tz), now)
    today = now.astimezone(tz).date()
    instant = local_to_utc(today, at, tz)
    if instant < now:
        instant = local_to_utc(today + timedelta(days=1), at, tz)
    return instant


def cron_error(expression: str) -> str | None:
    """Return why `expression` is not a usable 5-field cron expression, or None if it is.

    Aliases such as "@daily" are accepted. A 6th or 7th field (croniter's seconds and
    years) is refused: it is easy to write by mistake in Quartz style and would be
    misread. So is a day that never occurs in the given months, such as "0 0 30 2 *".
    """
    expression = expression.strip()
    if expression.startswith("@"):
        if not croniter.is_valid(expression):
            return f"unknown alias '{expression}', use one of {', '.join(_ALIASES)}"
        return None
    fields = expression.split()
    if len(fields) != 5:
        return f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}"
    try:
        croniter.expand(expression, strict=True)
    except CroniterError as exc:
        return str(exc)
    return None


def next_cron_fire(expression: str, tz: ZoneInfo, after: datetime) -> datetime:
    """Return the first fire of cron `expression`, read in `tz`, strictly after `after`.

    Fires at times skipped by a spring-forward change happen once, at the end of the gap.
    In the repeated hour of a fall-back change a cron that fires in every hour (such as
    "*/15 * * * *") keeps firing by real time, so it fires in both occurrences; any other
    cron fires in the first occurrence only, so a daily 01:30 job runs once.
    Raises ValueError for an invalid expression.
    """
    expression = expression.strip()
    error = cron_error(expression)
    if error is not None:
        raise ValueError(f"invalid cron expression '{expression}': {error}")
    after = _as_utc(after, "after")
    fires_every_hour = _fires_every_hour(expression)

    start = after.astimezone(tz).replace(tzinfo=None, fold=0) - _MAX_DST_SHIFT
    walls = croniter(expression, start)
    best: datetime | None = None
    while True:
        wall = walls.get_next(datetime)
        first = local_to_utc(wall.date(), wall.time(), tz)
        candidates = [first]
        if fires_every_hour:
            second = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
            if second != first and second.astimezone(tz).replace(tzinfo=None) == wall:
                candidates.append(second)
        for candidate in candidates:
            if candidate > after and (best is None or candidate < best):
                best = candidate
        # First occurrences only grow with wall time, and second occurrences all come
        # before the first occurrence of any later wall time outside the repeated hour.
        if first > after:
            return first if best is None else best


def _fires_every_hour(expression: str) -> bool:
    hours = croniter(expression).expanded[1]
    return hours == ["*"] or len(set(hours)) == 24


def _as_utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {moment}")
    return moment.astimezone(UTC)


def _duration_value(value: object) -> object:
    return parse_duration(value) if isinstance(value, str) else value


def _zone_name(value: str) -> str:
    parse_zone(value)
    return value


def _zone_or_customer(value: str) -> str:
    if value != "customer":
        parse_zone(value)
    return value


# Field types for the YAML schemas: a duration written "2h" or "PT2H"; an IANA zone name;
# an IANA zone name or "customer" (each customer's own zone).
Duration = Annotated[timedelta, BeforeValidator(_duration_value)]
ZoneName = Annotated[str, AfterValidator(_zone_name)]
ZoneOrCustomer = Annotated[str, AfterValidator(_zone_or_customer)]
