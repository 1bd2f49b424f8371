from datetime import UTC, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from engine.silent_hours import SilentHours, silent_until

NEW_YORK = ZoneInfo("America/New_York")  # 2026: EST->EDT on 03-08 at 02:00, back 11-01 02:00
PRAGUE = ZoneInfo("Europe/Prague")  # 2026: CET->CEST on 03-29 at 02:00, back 10-25 03:00

WEEK = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]

# In June 2026 Prague is UTC+2; 2026-06-13 is a Saturday, 06-14 a Sunday.


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def rule(start=None, end=None, *days):
    return SilentHours(start=start, end=end, days=list(days))


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        # a window crossing midnight, zone per customer by default
        (
            {"start": "21:00", "end": "08:00"},
            {"start": time(21), "end": time(8), "days": [], "timezone": "customer"},
        ),
        # whole days only
        ({"days": ["sunday"]}, {"start": None, "end": None, "days": ["sunday"]}),
        # window, days and a fixed zone
        (
            {"start": "12:00", "end": "13:30", "days": ["saturday"], "timezone": "Europe/Prague"},
            {"start": time(12), "end": time(13, 30), "timezone": "Europe/Prague"},
        ),
        # six silent days still leave one
        ({"days": WEEK[:6]}, {"days": WEEK[:6]}),
    ],
)
def test_silent_hours_accepts(fields, expected):
    parsed = SilentHours.model_validate(fields)
    assert {name: getattr(parsed, name) for name in expected} == expected


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        # start without end
        ({"start": "21:00"}, "start and end must be given together"),
        # end without start
        ({"end": "08:00", "days": ["sunday"]}, "start and end must be given together"),
        # nothing silent at all
        ({}, "silent hours need a start and end, or days, or both"),
        # a zone alone is not a rule
        ({"timezone": "UTC"}, "silent hours need a start and end, or days"),
        # an empty window
        ({"start": "21:00", "end": "21:00"}, "start and end are both 21:00:00"),
        # every day silent: nothing could ever be sent
        (
            {"days": WEEK},
            "days cannot list all seven days",
        ),
        # unknown zone, named in the message
        (
            {"days": ["sunday"], "timezone": "Mars/Base"},
            "timezone must be 'customer' or an IANA time zone name such as 'Europe/Prague', "
            "got 'Mars/Base'",
        ),
        # zone names are case-sensitive
        ({"days": ["sunday"], "timezone": "europe/prague"}, "got 'europe/prague'"),
        # an offset would fight the zone
        ({"start": "21:00+02:00", "end": "08:00"}, "must be a local time without a UTC offset"),
        # not a time
        ({"start": "25:00", "end": "08:00"}, "start"),
        # weekdays are full lowercase English names
        ({"days": ["Sun"]}, "days.0"),
        # unknown field
        ({"days": ["sunday"], "quiet": True}, "Extra inputs are not permitted"),
    ],
)
def test_silent_hours_rejects(fields, message):
    with pytest.raises(ValidationError) as caught:
        SilentHours.model_validate(fields)
    assert message in str(caught.value)


def test_silent_hours_is_frozen():
    silent = rule("21:00", "08:00")
    with pytest.raises(ValidationError):
        silent.start = time(22)


@pytest.mark.parametrize(
    ("silent", "now", "tz", "expected"),
    [
        # --- a 21:00-08:00 window in Prague summer (UTC+2)
        # midday is not silent
        (rule("21:00", "08:00"), utc(2026, 6, 10, 10), PRAGUE, None),
        # one second before the start is not silent
        (rule("21:00", "08:00"), utc(2026, 6, 10, 18, 59, 59), PRAGUE, None),
        # the start itself is silent
        (rule("21:00", "08:00"), utc(2026, 6, 10, 19), PRAGUE, utc(2026, 6, 11, 6)),
        # before midnight, until tomorrow 08:00
        (rule("21:00", "08:00"), utc(2026, 6, 10, 21, 30), PRAGUE, utc(2026, 6, 11, 6)),
        # after midnight, the window that started yesterday
        (rule("21:00", "08:00"), utc(2026, 6, 11, 0), PRAGUE, utc(2026, 6, 11, 6)),
        # one second before the end is silent
        (rule("21:00", "08:00"), utc(2026, 6, 11, 5, 59, 59), PRAGUE, utc(2026, 6, 11, 6)),
        # the end itself is not silent
        (rule("21:00", "08:00"), utc(2026, 6, 11, 6), PRAGUE, None),
        # --- a 12:00-14:00 window that does not cross midnight
        # inside
        (rule("12:00", "14:00"), utc(2026, 6, 10, 10, 30), PRAGUE, utc(2026, 6, 10, 12)),
        # before
        (rule("12:00", "14:00"), utc(2026, 6, 10, 9, 59), PRAGUE, None),
        # at the end
        (rule("12:00", "14:00"), utc(2026, 6, 10, 12), PRAGUE, None),
        # the other side of midnight is not silent
        (rule("12:00", "14:00"), utc(2026, 6, 10, 23), PRAGUE, None),
        # --- whole days
        # Saturday 23:59:59 is not Sunday
        (rule(None, None, "sunday"), utc(2026, 6, 13, 21, 59, 59), PRAGUE, None),
        # Sunday starts at local midnight, until Monday local midnight
        (rule(None, None, "sunday"), utc(2026, 6, 13, 22), PRAGUE, utc(2026, 6, 14, 22)),
        # Sunday afternoon
        (rule(None, None, "sunday"), utc(2026, 6, 14, 13), PRAGUE, utc(2026, 6, 14, 22)),
        # Monday local midnight is free
        (rule(None, None, "sunday"), utc(2026, 6, 14, 22), PRAGUE, None),
        # consecutive days chain
        (
            rule(None, None, "saturday", "sunday"),
            utc(2026, 6, 13, 8),
            PRAGUE,
            utc(2026, 6, 14, 22),
        ),
        # the local day decides: Sunday 23:00 UTC is Monday in Prague
        (rule(None, None, "sunday"), utc(2026, 6, 14, 23), PRAGUE, None),
        # ...but still Sunday in New York, until Monday 00:00 EDT
        (rule(None, None, "sunday"), utc(2026, 6, 14, 23), NEW_YORK, utc(2026, 6, 15, 4)),
        # --- window and days combined
        # Saturday 21:00 runs through Sunday to Monday 08:00
        (
            rule("21:00", "08:00", "sunday"),
            utc(2026, 6, 13, 19),
            PRAGUE,
            utc(2026, 6, 15, 6),
        ),
        # Sunday noon, same end
        (rule("21:00", "08:00", "sunday"), utc(2026, 6, 14, 10), PRAGUE, utc(2026, 6, 15, 6)),
        # Saturday 20:59 is still free
        (rule("21:00", "08:00", "sunday"), utc(2026, 6, 13, 18, 59), PRAGUE, None),
        # Friday night ends Saturday 08:00: Saturday is not a silent day
        (rule("21:00", "08:00", "sunday"), utc(2026, 6, 12, 20), PRAGUE, utc(2026, 6, 13, 6)),
        # window, then a silent day, then the silent day's own overnight window
        (
            rule("22:00", "06:00", "saturday"),
            utc(2026, 6, 12, 21),
            PRAGUE,
            utc(2026, 6, 14, 4),
        ),
        # a daytime window next to a silent day: free at Monday midnight
        (rule("08:00", "12:00", "sunday"), utc(2026, 6, 14, 8), PRAGUE, utc(2026, 6, 14, 22)),
        # the rule's own zone is ignored: `tz` decides (21:00 in New York is 01:00 UTC)
        (
            SilentHours(start="21:00", end="08:00", timezone="Europe/Prague"),
            utc(2026, 6, 11, 1),
            NEW_YORK,
            utc(2026, 6, 11, 12),
        ),
        # --- New York spring-forward, 2026-03-08 (a Sunday)
        # overnight window: 08:00 EDT is 12:00 UTC, not 13:00
        (rule("22:00", "08:00"), utc(2026, 3, 8, 4), NEW_YORK, utc(2026, 3, 8, 12)),
        # 07:59 EDT, one minute left
        (rule("22:00", "08:00"), utc(2026, 3, 8, 11, 59), NEW_YORK, utc(2026, 3, 8, 12)),
        # 08:00 EDT is free
        (rule("22:00", "08:00"), utc(2026, 3, 8, 12), NEW_YORK, None),
        # the end 02:30 does not exist: silence ends at 03:00 EDT
        (rule("21:00", "02:30"), utc(2026, 3, 8, 6), NEW_YORK, utc(2026, 3, 8, 7)),
        # Sunday is 23 hours long
        (rule(None, None, "sunday"), utc(2026, 3, 8, 5), NEW_YORK, utc(2026, 3, 9, 4)),
        # --- New York fall-back, 2026-11-01 (a Sunday)
        # overnight window: 08:00 EST is 13:00 UTC
        (rule("22:00", "08:00"), utc(2026, 11, 1, 3), NEW_YORK, utc(2026, 11, 1, 13)),
        # the end 01:30 happens twice: the first one (EDT) ends the silence
        (rule("22:00", "01:30"), utc(2026, 11, 1, 5), NEW_YORK, utc(2026, 11, 1, 5, 30)),
        # 01:15 EST, in the repeated hour, is after that end
        (rule("22:00", "01:30"), utc(2026, 11, 1, 6, 15), NEW_YORK, None),
        # Sunday is 25 hours long
        (rule(None, None, "sunday"), utc(2026, 11, 1, 4, 30), NEW_YORK, utc(2026, 11, 2, 5)),
        # --- Prague spring-forward, 2026-03-29
        # overnight window: 08:00 CEST is 06:00 UTC
        (rule("21:00", "08:00"), utc(2026, 3, 28, 21), PRAGUE, utc(2026, 3, 29, 6)),
        # the end 02:30 is inside the gap: silence ends at 03:00 CEST
        (rule("23:00", "02:30"), utc(2026, 3, 29, 0, 30), PRAGUE, utc(2026, 3, 29, 1)),
        # a start inside the gap begins at 03:00 CEST
        (rule("02:30", "06:00"), utc(2026, 3, 29, 1), PRAGUE, utc(2026, 3, 29, 4)),
        # ...and 01:59 CET, before the gap, is free
        (rule("02:30", "06:00"), utc(2026, 3, 29, 0, 59), PRAGUE, None),
        # --- Prague fall-back, 2026-10-25
        # overnight window: 08:00 CET is 07:00 UTC
        (rule("21:00", "08:00"), utc(2026, 10, 24, 20), PRAGUE, utc(2026, 10, 25, 7)),
        # the end 02:30 happens twice: the first one (CEST) ends the silence
        (rule("23:00", "02:30"), utc(2026, 10, 24, 23), PRAGUE, utc(2026, 10, 25, 0, 30)),
        # a start at 02:30 also uses the first occurrence
        (rule("02:30", "06:00"), utc(2026, 10, 25, 0, 30), PRAGUE, utc(2026, 10, 25, 5)),
    ],
)
def test_silent_until(silent, now, tz, expected):
    assert silent_until(silent, now, tz) == expected


def test_silent_until_answers_in_utc_for_any_aware_now():
    now = datetime(2026, 6, 10, 23, 30, tzinfo=timezone(timedelta(hours=2)))
    result = silent_until(rule("21:00", "08:00"), now, PRAGUE)
    assert result == utc(2026, 6, 11, 6)
    assert result.tzinfo is UTC


def test_silent_until_rejects_naive_now():
    with pytest.raises(ValueError, match="now must be a timezone-aware datetime"):
        silent_until(rule("21:00", "08:00"), datetime(2026, 6, 10, 23), PRAGUE)
