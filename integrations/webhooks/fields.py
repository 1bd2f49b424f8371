"""Reading callback bodies: the few field readers every parser uses (delivery reports,
inbound messages, customer events), so a body is checked once, at the boundary, the same
way for every provider.

Each reader raises `InputError` naming the JSON field path ("results[0].messageCount is
out of range (0 to 2147483647)") for anything that could not be stored as it is:
- a value of the wrong JSON type (booleans are never numbers);
- an integer outside 0..`MAX_INTEGER`: the integer columns hold no more (INTEGER is 32
  bits on PostgreSQL), and no count, code or id a provider sends comes near it;
- a string with a NUL character: PostgreSQL text cannot hold one, and SQLite compares
  strings only up to it, so a re-posted copy would not be found;
- a timestamp that does not parse, or lies outside `EARLIEST`..`LATEST` (no provider
  clock is there; years 1 and 9999 overflow when converted to UTC);
- a URL that does not parse, or is not http(s).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from engine.errors import InputError

MAX_INTEGER = 2**31 - 1
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
E164_DIGITS = 15  # the most digits a phone number has (ITU-T E.164)


def join(path: str, key: str) -> str:
    """The path of `key` inside the object at `path` ("" is the body itself)."""
    return f"{path}.{key}" if path else key


def obj(value: Any, path: str) -> dict[str, Any]:
    """`value`, which must be a JSON object."""
    if not isinstance(value, dict):
        raise InputError(f"{path} is not a JSON object")
    return value


def checked(value: Any, field: str, kinds: type | tuple[type, ...]) -> Any:
    """`value` (not None) if it is one of `kinds` and storable (see the module doc)."""
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise InputError(f"{field} has the wrong type ({type(value).__name__})")
    if isinstance(value, int) and not 0 <= value <= MAX_INTEGER:
        raise InputError(f"{field} is out of range (0 to {MAX_INTEGER})")
    if isinstance(value, str) and "\x00" in value:
        raise InputError(f"{field} contains a NUL character")
    return value


def get(body: dict[str, Any], key: str, path: str, kinds: type | tuple[type, ...]) -> Any:
    """`body[key]` if present and not null, checked against `kinds`; None if absent."""
    value = body.get(key)
    return None if value is None else checked(value, join(path, key), kinds)


def need(body: dict[str, Any], key: str, path: str, kinds: type | tuple[type, ...]) -> Any:
    """`body[key]`, checked against `kinds`; absent, null or "" is an error."""
    value = get(body, key, path, kinds)
    if value is None or value == "":
        raise InputError(f"{join(path, key)} is missing")
    return value


def text(body: dict[str, Any], key: str, path: str) -> str | None:
    """An optional string; "" reads as absent."""
    return get(body, key, path, str) or None


def items(body: dict[str, Any], key: str, path: str) -> list[tuple[str, dict[str, Any]]]:
    """`body[key]`, a list of objects (absent: empty), each with its path."""
    values = get(body, key, path, list) or []
    field = join(path, key)
    return [(f"{field}[{i}]", obj(item, f"{field}[{i}]")) for i, item in enumerate(values)]


def e164(value: str, field: str) -> str:
    """A phone number (a "+" optional) as E.164 with "+"."""
    digits = value.strip().removeprefix("+")
    # isascii: str.isdigit also takes other scripts' digits, which no number is dialled with
    if not (digits.isascii() and digits.isdigit()) or len(digits) > E164_DIGITS:
        raise InputError(f"{field} is not a phone number: {value!r}")
    return "+" + digits


def timestamp(body: dict[str, Any], key: str, path: str) -> datetime | None:
    """An optional ISO 8601 timestamp, as an aware UTC datetime."""
    value = text(body, key, path)
    if value is None:
        return None
    field = join(path, key)
    try:
        moment = datetime.fromisoformat(value)
        # choice: a timestamp without an offset is read as UTC (every provider speaks UTC).
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InputError(f"{field} is not a timestamp: {value!r}") from None
    if not EARLIEST <= moment < LATEST:
        raise InputError(
            f"{field} is out of range ({EARLIEST.year} to {LATEST.year - 1}): {value!r}"
        )
    return moment


def url(value: str, field: str) -> str:
    """`value`, which must be an http(s) URL with a host."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - reading the port is what refuses "http://host:x/"
    except ValueError:
        raise InputError(f"{field} is not a URL: {value!r}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise InputError(f"{field} is not an http(s) URL: {value!r}")
    return value


def lookup(table: Mapping[Any, Any], value: Any, field: str) -> Any:
    """`table[value]`; a value not in it (of any JSON type) is an error naming `field`."""
    if not isinstance(value, str | int) or value not in table:
        raise InputError(f"{field} has an unknown value: {value!r}")
    return table[value]
