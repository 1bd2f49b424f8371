"""The field readers every callback parser shares: the boundaries of what may be stored."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from engine.errors import InputError
from integrations.webhooks import fields


@pytest.mark.parametrize(
    ("value", "kinds", "error"),
    [
        (0, int, None),
        (2**31 - 1, int, None),  # the most an INTEGER column holds on PostgreSQL
        (2**31, int, "n is out of range (0 to 2147483647)"),
        (2**63, int, "n is out of range"),  # beyond SQLite's INTEGER too
        (-1, int, "n is out of range"),
        (True, int, "n has the wrong type (bool)"),  # JSON true is not a number
        (1.0, int, "n has the wrong type (float)"),
        ("1", int, "n has the wrong type (str)"),
        ("a b", str, None),
        ("a\x00b", str, "n contains a NUL character"),
        ("", str, None),  # empty is `need`'s business
        ([1], list, None),
        ({}, (dict, str), None),
        ([], str, "n has the wrong type (list)"),
    ],
)
def test_checked(value: Any, kinds: Any, error: str | None) -> None:
    if error is None:
        assert fields.checked(value, "n", kinds) == value
    else:
        with pytest.raises(InputError, match=re.escape(error)):
            fields.checked(value, "n", kinds)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2019-11-09T16:00:00.000+0000", datetime(2019, 11, 9, 16, tzinfo=UTC)),
        ("2025-01-13T09:22:40Z", datetime(2025, 1, 13, 9, 22, 40, tzinfo=UTC)),
        ("2014-02-03T11:19:49-05:00", datetime(2014, 2, 3, 16, 19, 49, tzinfo=UTC)),
        ("2025-01-13T09:22:40", datetime(2025, 1, 13, 9, 22, 40, tzinfo=UTC)),  # read as UTC
        ("2000-01-01T00:00:00Z", fields.EARLIEST),  # the range's first instant
        ("2000-01-01T00:00:00+01:00", "at is out of range (2000 to 2099)"),  # 1999 in UTC
        ("2099-12-31T23:59:59.999999Z", datetime(2099, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        ("2100-01-01T00:00:00Z", "at is out of range"),
        ("0001-01-01T00:00:00+01:00", "at is not a timestamp"),  # overflows in UTC
        ("9999-12-31T23:59:59-01:00", "at is not a timestamp"),
        ("0001-01-01T00:00:00Z", "at is out of range"),
        ("yesterday", "at is not a timestamp: 'yesterday'"),
        ("", None),  # absent
    ],
)
def test_timestamp(value: str, expected: datetime | str | None) -> None:
    if isinstance(expected, str):
        with pytest.raises(InputError, match=re.escape(expected)):
            fields.timestamp({"at": value}, "at", "")
    else:
        assert fields.timestamp({"at": value}, "at", "") == expected


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("https://example.sinch.com/mo/file2.txt", None),
        ("HTTP://127.0.0.1:8765/_simulator/inbound/U1RPUA.txt", None),
        ("http://[::1", "f is not a URL"),
        ("http://host:port/", "f is not a URL"),
        ("ftp://example.com/a.txt", "f is not an http(s) URL"),
        ("file:///etc/passwd", "f is not an http(s) URL"),
        ("/relative/a.txt", "f is not an http(s) URL"),
        ("https://", "f is not an http(s) URL"),
    ],
)
def test_url(value: str, error: str | None) -> None:
    if error is None:
        assert fields.url(value, "f") == value
    else:
        with pytest.raises(InputError, match=re.escape(error)):
            fields.url(value, "f")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("+12025550100", "+12025550100"),
        ("385916242493", "+385916242493"),
        (" 40404 ", "+40404"),
        ("+" + "1" * 15, "+" + "1" * 15),
        ("+" + "1" * 16, None),  # longer than E.164 allows
        ("+\u0661\u0662\u0663", None),  # Arabic-Indic digits: str.isdigit takes them
        ("\u00b2", None),  # superscript two, also a "digit"
        ("ACME", None),
        ("", None),
    ],
)
def test_e164(value: str, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(InputError, match="p is not a phone number"):
            fields.e164(value, "p")
    else:
        assert fields.e164(value, "p") == expected


@pytest.mark.parametrize("value", [[], {}, None, 1.5, "Lost"])
def test_lookup_names_the_field_for_any_json_value(value: Any) -> None:
    with pytest.raises(InputError, match="status has an unknown value"):
        fields.lookup({"Delivered": "delivered", 0: "zero"}, value, "status")
