"""Reading customers and events from files: CSV or JSON lines, streamed row by row.

Each row becomes a customer (id, phone in E.164, time zone, attributes) or a RowError
naming its line and the reason; a bad row never stops the rest. Columns named
`consent:<category>` grant (true/yes/1) or revoke (false/no/0) that consent category.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from engine.errors import InputError
from engine.phones import normalize_phone
from engine.schedule import parse_zone

CONSENT_PREFIX = "consent:"
_TRUE = {"true", "yes", "1", "granted", "y"}
_FALSE = {"false", "no", "0", "revoked", "n"}


@dataclass(frozen=True)
class CustomerRow:
    line: int
    id: str
    phone: str | None
    timezone: str | None
    attributes: dict[str, Any]
    consents: dict[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class RowError:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


def read_records(path: Path, stream: IO[str]) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    """(line number, record) for each row of a CSV or JSON-lines file."""
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, RowError(number, f"not valid JSON: {exc.msg}")
                continue
            if not isinstance(record, dict):
                yield number, RowError(number, "a JSON line must be an object")
                continue
            yield number, record
    else:
        reader = csv.DictReader(stream)
        first_line = 2  # after the header
        for record in reader:
            # csv counts physical lines; a row with quoted newlines starts where the last
            # one ended, so the number names the row's first line.
            yield first_line, {k: v for k, v in record.items() if k is not None}
            first_line = reader.line_num + 1


def parse_customer(line: int, record: dict[str, Any]) -> CustomerRow:
    """Validate one record; raises InputError naming the field."""
    customer_id = record.get("id", record.get("customer_id"))
    if customer_id is None or str(customer_id).strip() == "":
        raise InputError("missing 'id'")
    attributes: dict[str, Any] = {}
    consents: dict[str, bool] = {}
    for key, value in record.items():
        if key in ("id", "customer_id"):
            continue
        if key.startswith(CONSENT_PREFIX):
            if value is None or value == "":
                continue
            consents[key[len(CONSENT_PREFIX) :]] = _consent_value(key, value)
            continue
        value = _typed(value)
        if value is not None:
            attributes[key] = value
    phone = attributes.get("phone")
    if phone is not None:
        phone = normalize_phone(str(phone))
        attributes["phone"] = phone
    timezone = attributes.get("timezone")
    if timezone is not None:
        try:
            parse_zone(str(timezone))
        except ValueError as exc:
            raise InputError(f"timezone '{timezone}' is not an IANA time zone") from exc
    return CustomerRow(line, str(customer_id).strip(), phone, timezone, attributes, consents)


def read_customers(path: Path, stream: IO[str]) -> Iterator[CustomerRow | RowError]:
    for line, record in read_records(path, stream):
        if isinstance(record, RowError):
            yield record
            continue
        try:
            yield parse_customer(line, record)
        except InputError as exc:
            yield RowError(line, str(exc))


def _consent_value(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InputError(f"'{key}' must be true or false, not {value!r}")


_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)", re.ASCII)
_DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?", re.ASCII)


def _typed(value: Any) -> Any:
    """CSV cells are text: empty means absent, and plain numbers and booleans get their type.

    Only canonical numbers convert: "007", "+1", "1_000" or "²" stay text, so codes and
    identifiers keep their exact form.
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text == "":
        return None
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if _INTEGER.fullmatch(text):
        return int(text)
    if _DECIMAL.fullmatch(text):
        return float(text)
    return text
