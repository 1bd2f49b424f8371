from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from engine.schedule import (
    cron_error,
    local_to_utc,
    next_cron_fire,
    next_time_of_day,
    parse_duration,
    parse_zone,
)

NEW_YORK = ZoneInfo("America/New_York")  # 2026: EST->EDT on 03-08 at 02:00, back 11-01 02:00
PRAGUE = ZoneInfo("Europe/Prague")  # 2026: CET->CEST on 03-29 at 02:00, back 10-25 03:00
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")  # half-hour DST: 02:00->02:30 on 2026-10-04
SANTIAGO = ZoneInfo("America/Santiago")  # skips midnight: 00:00->01:00 on 2026-09-06


def utc(*args):
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # seconds
        ("90s", timedelta(seconds=90)),
        # minutes
        ("15m", timedelta(minutes=15)),
        # hours
        ("2h", timedelta(hours=2)),
        # days
        ("3d", timedelta(days=3)),
        # weeks
        ("1w", timedelta(weeks=1)),
        # compound
        ("1d12h", timedelta(days=1, hours=12)),
        # every unit, largest first
        ("1w2d3h4m5s", timedelta(weeks=1, days=2, hours=3, minutes=4, seconds=5)),
        # surrounding whitespace
        (" 15m ", timedelta(minutes=15)),
        # a zero part is fine when the total is positive
        ("1h0m", timedelta(hours=1)),
        # ISO 8601 time part
        ("PT2H30M", timedelta(hours=2, minutes=30)),
        # ISO 8601 days
        ("P3D", timedelta(days=3)),
        # ISO 8601 weeks
        ("P1W", timedelta(weeks=1)),
        # ISO 8601 date and time parts
        ("P1DT12H", timedelta(days=1, hours=12)),
        # ISO 8601 M after T is minutes
        ("PT1M", timedelta(minutes=1)),
        # ISO 8601 allows fractions
        ("PT1.5H", timedelta(minutes=90)),
    ],
)
def test_parse_duration(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # empty
        ("", "invalid duration ''"),
        # a bare number has no unit
        ("90", "invalid duration '90': use a number and a unit"),
        # capital M could mean months
        ("15M", "invalid duration '15M'"),
        # units must go from largest to smallest
        ("12h1d", "invalid duration '12h1d'"),
        # a unit twice
        ("1h1h", "invalid duration '1h1h'"),
        # fractions only in ISO form
        ("1.5h", "invalid duration '1.5h'"),
        # space inside
        ("1 h", "invalid duration '1 h'"),
        # unknown unit
        ("2y", "invalid duration '2y'"),
        # a clock time is not a duration
        ("12:00", "invalid duration '12:00'"),
        # negative
        ("-1h", "invalid duration '-1h'"),
        # zero
        ("0s", "duration '0s' must be positive"),
        # zero in every unit
        ("0d0h", "duration '0d0h' must be positive"),
        # ISO zero
        ("PT0S", "duration 'PT0S' must be positive"),
        # ISO negative
        ("-PT1H", "duration '-PT1H' must be positive"),
        # ISO months have no fixed length
        ("P1M", "years and months have no fixed length"),
        # ISO years have no fixed length
        ("P1Y2D", "years and months have no fixed length"),
        # ISO with nothing after T
        ("PT", "invalid duration 'PT'"),
        # ISO with a unit it does not know
        ("PT5X", "invalid duration 'PT5X'"),
        # beyond what timedelta holds
        ("999999999999d", "duration '999999999999d' is too long"),
    ],
)
def test_parse_duration_rejects(text, message):
    with pytest.raises(ValueError) as caught:
        parse_duration(text)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "name",
    [
        # canonical IANA name
        "Europe/Prague",
        # UTC itself
        "UTC",
        # three-level name
        "America/Argentina/Buenos_Aires",
    ],
)
def test_parse_zone(name):
    assert parse_zone(name).key == name


@pytest.mark.parametrize(
    "name",
    [
        # no such zone
        "Mars/Base",
        # names are case-sensitive
        "europe/prague",
        # empty
        "",
        # a directory of zones, not a zone
        "Europe",
        # path tricks
        "../etc/passwd",
        # a data file next to the zones
        "zone.tab",
    ],
)
def test_parse_zone_rejects(name):
    with pytest.raises(ValueError) as caught:
        parse_zone(name)
    assert str(caught.value) == f"unknown time zone '{name}'"


@pytest.mark.parametrize(
    ("day", "at", "tz", "expected"),
    [
        # an ordinary winter day in New York: UTC-5
        (date(2026, 1, 15), time(9), NEW_YORK, utc(2026, 1, 15, 14)),
        # an ordinary summer day in New York: UTC-4
        (date(2026, 7, 15), time(9), NEW_YORK, utc(2026, 7, 15, 13)),
        # in the spring-forward gap: the first instant after it, 03:00 EDT
        (date(2026, 3, 8), time(2, 30), NEW_YORK, utc(2026, 3, 8, 7)),
        # the start of the gap is itself missing
        (date(2026, 3, 8), time(2), NEW_YORK, utc(2026, 3, 8, 7)),
        # the last minute before the gap exists
        (date(2026, 3, 8), time(1, 59), NEW_YORK, utc(2026, 3, 8, 6, 59)),
        # the first wall time after the gap
        (date(2026, 3, 8), time(3), NEW_YORK, utc(2026, 3, 8, 7)),
        # in the repeated hour: the first occurrence, still EDT
        (date(2026, 11, 1), time(1, 30), NEW_YORK, utc(2026, 11, 1, 5, 30)),
        # Prague spring-forward gap ends at 03:00 CEST
        (date(2026, 3, 29), time(2, 30), PRAGUE, utc(2026, 3, 29, 1)),
        # Prague repeated hour: first occurrence, still CEST
        (date(2026, 10, 25), time(2, 30), PRAGUE, utc(2026, 10, 25, 0, 30)),
        # a half-hour gap: 02:15 does not exist, 02:30 (+11) does
        (date(2026, 10, 4), time(2, 15), LORD_HOWE, utc(2026, 10, 3, 15, 30)),
        # midnight itself skipped: the day starts at 01:00 (-03)
        (date(2026, 9, 6), time(0), SANTIAGO, utc(2026, 9, 6, 4)),
        # seconds and microseconds are kept
        (date(2026, 1, 15), time(9, 0, 5, 7), NEW_YORK, utc(2026, 1, 15, 14, 0, 5, 7)),
    ],
)
def test_local_to_utc(day, at, tz, expected):
    result = local_to_utc(day, at, tz)
    assert result == expected
    assert result.tzinfo is UTC


def test_local_to_utc_rejects_a_time_with_an_offset():
    with pytest.raises(ValueError, match="without a UTC offset"):
        local_to_utc(date(2026, 1, 1), time(9, tzinfo=UTC), PRAGUE)


@pytest.mark.parametrize(
    ("now", "at", "tz", "on_date", "expected"),
    [
        # later today
        (utc(2026, 6, 1, 12), time(9), NEW_YORK, None, utc(2026, 6, 1, 13)),
        # exactly now counts
        (utc(2026, 6, 1, 13), time(9), NEW_YORK, None, utc(2026, 6, 1, 13)),
        # already past today: tomorrow
        (utc(2026, 6, 1, 13, 0, 1), time(9), NEW_YORK, None, utc(2026, 6, 2, 13)),
        # just after local midnight: later the same local day, which is the next UTC day
        (utc(2026, 6, 1, 22, 30), time(23), PRAGUE, None, utc(2026, 6, 2, 21)),
        # late evening, target just after midnight
        (utc(2026, 6, 1, 21, 30), time(0, 15), PRAGUE, None, utc(2026, 6, 1, 22, 15)),
        # the day before spring-forward: tomorrow 09:00 is EDT, 23 hours away, not 24
        (utc(2026, 3, 7, 15), time(9), NEW_YORK, None, utc(2026, 3, 8, 13)),
        # the day before fall-back: tomorrow 09:00 is EST, 25 hours away
        (utc(2026, 10, 31, 14), time(9, 0, 1), NEW_YORK, None, utc(2026, 11, 1, 14, 0, 1)),
        # target inside the gap: 03:00 EDT
        (utc(2026, 3, 8, 5), time(2, 30), NEW_YORK, None, utc(2026, 3, 8, 7)),
        # target in the repeated hour: its first occurrence
        (utc(2026, 11, 1, 4), time(1, 30), NEW_YORK, None, utc(2026, 11, 1, 5, 30)),
        # first occurrence just passed (now is 01:45 EST): the next day, not 01:30 EST
        (utc(2026, 11, 1, 6, 45), time(1, 30), NEW_YORK, None, utc(2026, 11, 2, 6, 30)),
        # Prague spring-forward day
        (utc(2026, 3, 28, 23), time(2, 30), PRAGUE, None, utc(2026, 3, 29, 1)),
        # Prague fall-back day: 02:30 CEST
        (utc(2026, 10, 24, 23), time(2, 30), PRAGUE, None, utc(2026, 10, 25, 0, 30)),
        # on a future date, inside that day's gap
        (utc(2026, 3, 1), time(2, 30), NEW_YORK, date(2026, 3, 8), utc(2026, 3, 8, 7)),
        # on today's date, still ahead
        (utc(2026, 6, 1, 12), time(9), NEW_YORK, date(2026, 6, 1), utc(2026, 6, 1, 13)),
        # on today's date, already past: now
        (utc(2026, 6, 1, 15), time(9), NEW_YORK, date(2026, 6, 1), utc(2026, 6, 1, 15)),
        # on a date long past: now
        (utc(2026, 6, 1, 15), time(9), NEW_YORK, date(2025, 1, 1), utc(2026, 6, 1, 15)),
    ],
)
def test_next_time_of_day(now, at, tz, on_date, expected):
    result = next_time_of_day(now, at, tz, on_date)
    assert result == expected
    assert result.utcoffset() == timedelta(0)


def test_next_time_of_day_accepts_any_aware_now_and_answers_in_utc():
    now = datetime(2026, 6, 1, 8, tzinfo=timezone(timedelta(hours=-4)))
    result = next_time_of_day(now, time(9), NEW_YORK)
    assert result == utc(2026, 6, 1, 13)
    assert result.tzinfo is UTC


def test_next_time_of_day_rejects_naive_now():
    with pytest.raises(ValueError, match="now must be a timezone-aware datetime"):
        next_time_of_day(datetime(2026, 6, 1, 12), time(9), NEW_YORK)


def fires(expression, tz, after, until):
    """Every fire strictly after `after` up to and including `until`."""
    result = []
    while (after := next_cron_fire(expression, tz, after)) <= until:
        result.append(after)
    return result


@pytest.mark.parametrize(
    ("expression", "tz", "after", "until", "expected"),
    [
        # daily 09:00 across spring-forward: 14:00 UTC in EST, 13:00 UTC in EDT
        (
            "0 9 * * *",
            NEW_YORK,
            utc(2026, 3, 7),
            utc(2026, 3, 9, 23),
            [utc(2026, 3, 7, 14), utc(2026, 3, 8, 13), utc(2026, 3, 9, 13)],
        ),
        # daily 02:30 on spring-forward day fires once, at 03:00 EDT
        (
            "30 2 * * *",
            NEW_YORK,
            utc(2026, 3, 7),
            utc(2026, 3, 9, 23),
            [utc(2026, 3, 7, 7, 30), utc(2026, 3, 8, 7), utc(2026, 3, 9, 6, 30)],
        ),
        # daily 01:30 on fall-back day fires once, at the first 01:30 (EDT)
        (
            "30 1 * * *",
            NEW_YORK,
            utc(2026, 10, 31),
            utc(2026, 11, 2, 23),
            [utc(2026, 10, 31, 5, 30), utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)],
        ),
        # daily 02:30 in Prague on spring-forward day: once, at 03:00 CEST
        (
            "30 2 * * *",
            PRAGUE,
            utc(2026, 3, 28),
            utc(2026, 3, 30, 23),
            [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1), utc(2026, 3, 30, 0, 30)],
        ),
        # daily 02:30 in Prague on fall-back day: once, in CEST
        (
            "30 2 * * *",
            PRAGUE,
            utc(2026, 10, 24),
            utc(2026, 10, 26, 23),
            [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)],
        ),
        # every 15 minutes through spring-forward: 01:45 EST, then 03:00 EDT
        (
            "*/15 * * * *",
            NEW_YORK,
            utc(2026, 3, 8, 6, 30),
            utc(2026, 3, 8, 7, 30),
            [
                utc(2026, 3, 8, 6, 45),
                utc(2026, 3, 8, 7),
                utc(2026, 3, 8, 7, 15),
                utc(2026, 3, 8, 7, 30),
            ],
        ),
        # every 15 minutes through fall-back: both 01:xx hours, no hole
        (
            "*/15 * * * *",
            NEW_YORK,
            utc(2026, 11, 1, 5, 30),
            utc(2026, 11, 1, 7),
            [utc(2026, 11, 1, 5, 30) + timedelta(minutes=15 * i) for i in range(1, 7)],
        ),
        # every 15 minutes through Prague fall-back: 02:xx CEST then 02:xx CET
        (
            "*/15 * * * *",
            PRAGUE,
            utc(2026, 10, 25, 0, 30),
            utc(2026, 10, 25, 2),
            [utc(2026, 10, 25, 0, 30) + timedelta(minutes=15 * i) for i in range(1, 7)],
        ),
        # hourly through Prague spring-forward: one real hour apart, no duplicate
        (
            "0 * * * *",
            PRAGUE,
            utc(2026, 3, 28, 23, 30),
            utc(2026, 3, 29, 2),
            [utc(2026, 3, 29, 0), utc(2026, 3, 29, 1), utc(2026, 3, 29, 2)],
        ),
        # hourly through Prague fall-back: 02:00 CEST and 02:00 CET both fire
        (
            "0 * * * *",
            PRAGUE,
            utc(2026, 10, 24, 23, 30),
            utc(2026, 10, 25, 2),
            [utc(2026, 10, 25, 0), utc(2026, 10, 25, 1), utc(2026, 10, 25, 2)],
        ),
        # every 30 minutes within hours 1-2 only: the repeated hour runs once
        (
            "*/30 1-2 * * *",
            NEW_YORK,
            utc(2026, 11, 1, 5),
            utc(2026, 11, 1, 8),
            [utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 7), utc(2026, 11, 1, 7, 30)],
        ),
        # weekly on Sunday 10:00 across spring-forward (2026-03-08 is a Sunday)
        (
            "0 10 * * sun",
            NEW_YORK,
            utc(2026, 2, 28),
            utc(2026, 3, 14),
            [utc(2026, 3, 1, 15), utc(2026, 3, 8, 14)],
        ),
        # weekly on Sunday 02:30 in Prague lands in the gap on 2026-03-29
        (
            "30 2 * * 0",
            PRAGUE,
            utc(2026, 3, 21),
            utc(2026, 4, 6),
            [utc(2026, 3, 22, 1, 30), utc(2026, 3, 29, 1), utc(2026, 4, 5, 0, 30)],
        ),
        # the weekday is the local one: Monday 00:00 CEST is Sunday in UTC
        (
            "0 0 * * mon",
            PRAGUE,
            utc(2026, 6, 1),
            utc(2026, 6, 14),
            [utc(2026, 6, 7, 22)],
        ),
        # an alias
        (
            "@daily",
            PRAGUE,
            utc(2026, 1, 1, 12),
            utc(2026, 1, 3),
            [utc(2026, 1, 1, 23), utc(2026, 1, 2, 23)],
        ),
    ],
)
def test_next_cron_fire(expression, tz, after, until, expected):
    assert fires(expression, tz, after, until) == expected


def test_next_cron_fire_is_strictly_after():
    # `after` is itself a fire time (09:00 EST)
    assert next_cron_fire("0 9 * * *", NEW_YORK, utc(2026, 1, 15, 14)) == utc(2026, 1, 16, 14)


def test_next_cron_fire_answers_in_utc_for_any_aware_after():
    after = datetime(2026, 1, 15, 8, tzinfo=NEW_YORK)
    result = next_cron_fire("0 9 * * *", NEW_YORK, after)
    assert result == utc(2026, 1, 15, 14)
    assert result.tzinfo is UTC


@pytest.mark.parametrize(
    ("expression", "after", "message"),
    [
        # hour out of range
        ("0 25 * * *", utc(2026, 1, 1), "invalid cron expression '0 25 * * *'"),
        # aware `after` is required
        ("0 9 * * *", datetime(2026, 1, 1), "after must be a timezone-aware datetime"),
    ],
)
def test_next_cron_fire_rejects(expression, after, message):
    with pytest.raises(ValueError) as caught:
        next_cron_fire(expression, NEW_YORK, after)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "expression",
    [
        # every 15 minutes
        "*/15 * * * *",
        # weekdays at 09:00, by name
        "0 9 * * mon-fri",
        # months by name and lists
        "0 12 1 jan,jul *",
        # last day of the month
        "0 0 L * *",
        # leap day is possible
        "0 0 29 2 *",
        # alias
        "@hourly",
        # surrounding whitespace
        "  @daily ",
    ],
)
def test_cron_error_accepts(expression):
    assert cron_error(expression) is None


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        # hour out of range, croniter's words
        ("0 25 * * *", "[0 25 * * *] is not acceptable, out of range"),
        # minute out of range
        ("61 * * * *", "out of range"),
        # weekday out of range
        ("0 0 * * 8", "out of range"),
        # not numbers or names
        ("a b c d e", "is not acceptable"),
        # too few fields
        ("* * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 3"),
        # Quartz style with seconds
        ("0 0 12 * * ?", "expected 5 fields"),
        # croniter's 6-field seconds form
        ("0 0 * * * 0", "got 6"),
        # empty
        ("", "got 0"),
        # 30 February never comes
        ("0 0 30 2 *", "can never occur"),
        # @reboot makes no sense for a schedule
        ("@reboot", "unknown alias '@reboot'"),
    ],
)
def test_cron_error_rejects(expression, message):
    error = cron_error(expression)
    assert error is not None
    assert message in error
