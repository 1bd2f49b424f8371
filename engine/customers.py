"""Reading customers and events from files: CSV or JSON lines, streamed row by row.

A file is read in its encoding: a byte-order mark decides (UTF-8, UTF-16, UTF-32), else the
one given, else UTF-8. `check_decodes` reads the whole file once before anything is
imported, so a byte the encoding cannot read is an error naming its line and byte offset,
never a half-done import. A CSV file's delimiter (comma, semicolon, tab or bar) is sniffed
from its first lines unless given, and a customers file's header is checked up front: an
`id` (or `customer_id`) and a `phone` column, no column twice, and `consent:<category>`
columns for the project's categories only.

Each row becomes a customer (id, phone in E.164, time zone, attributes) or a RowError
naming its line and the reason; a bad row never stops the rest. Columns named
`consent:<category>` grant (true/yes/1) or revoke (false/no/0) that consent category.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import json
import math
import re
from collections import Counter
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from engine.errors import InputError
from engine.phones import normalize_phone
from engine.schedule import parse_zone

CONSENT_PREFIX = "consent:"
_TRUE = {"true", "yes", "1", "granted", "y"}
_FALSE = {"false", "no", "0", "revoked", "n"}

JSON_LINES_SUFFIXES = frozenset({".jsonl", ".ndjson", ".json"})
DELIMITERS = ",;\t|"
# The longest cell a customer row may have: csv's own default limit, so every file that
# imported before still does; a longer cell rejects its row.
MAX_CELL = 131_072
# csv's limit on one field, set higher so a long cell is read whole and its row rejected
# naming the column; still a limit, so an unclosed quote cannot read the rest of a file
# into one field.
READER_FIELD_LIMIT = 16 * 1024 * 1024
# The database's JSON columns (orjson) hold integers of at most 64 bits.
_INT64 = range(-(2**63), 2**63)
_INT64_CHARACTERS = len(str(-(2**63)))
# UTF-32's marks first: UTF-32-LE's starts with UTF-16-LE's.
_BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_SNIFF_LINES = 20
_SNIFF_CHARACTERS = 64 * 1024
_DECODE_CHUNK = 64 * 1024  # larger chunks leave the allocator holding more memory


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


def is_json_lines(path: Path) -> bool:
    return path.suffix.lower() in JSON_LINES_SUFFIXES


def encoding_of(head: bytes, encoding: str | None = None) -> str:
    """The codec to read a file that starts with `head`: its byte-order mark's, else
    `encoding`, else UTF-8. A mark wins over `encoding`: it says how the file was written."""
    for mark, codec in _BYTE_ORDER_MARKS:
        if head.startswith(mark):
            return codec
    name = encoding or "utf-8"
    try:
        codecs.lookup(name)
    except LookupError:
        raise InputError(f"unknown encoding '{name}'") from None
    return name


def file_encoding(path: Path, encoding: str | None = None) -> str:
    """`encoding_of` the file at `path`."""
    with path.open("rb") as stream:
        return encoding_of(stream.read(4), encoding)


def check_decodes(path: Path, encoding: str) -> None:
    """Decode the whole file, streamed; raises InputError naming the line and the byte
    offset of the first byte `encoding` cannot read."""
    decoder = codecs.getincrementaldecoder(encoding)()
    line, offset = 1, 0
    with path.open("rb") as stream:
        while True:
            chunk = stream.read(_DECODE_CHUNK)
            buffered = decoder.getstate()[0]  # bytes held back from the last chunk
            try:
                line += decoder.decode(chunk, final=not chunk).count("\n")
            except UnicodeDecodeError as exc:
                # exc.object is a tail of buffered + chunk (utf-8-sig leaves out its mark).
                start = len(buffered) + len(chunk) - len(exc.object) + exc.start
                line += decoder.decode(chunk[: max(start - len(buffered), 0)]).count("\n")
                bad = exc.object[exc.start : exc.end].hex(" ")
                raise InputError(
                    f"{path}:{line}: byte {offset - len(buffered) + start} ({bad}) is not "
                    f"valid {encoding}; give the file's encoding (--encoding cp1252, "
                    "latin-1, ...)"
                ) from None
            if not chunk:
                return
            offset += len(chunk)


def sniff_delimiter(lines: list[str]) -> str:
    """The delimiter of a CSV file's first lines among DELIMITERS; a comma when it cannot
    tell (one column)."""
    sample, size = [], 0
    for line in lines:
        size += len(line)
        if sample and size > _SNIFF_CHARACTERS:
            break
        sample.append(line[:_SNIFF_CHARACTERS])
    try:
        return csv.Sniffer().sniff("".join(sample), delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","


def read_csv(
    stream: IO[str], delimiter: str | None = None
) -> tuple[list[str], str, Iterator[tuple[int, dict[str, Any] | RowError]]]:
    """The header's columns, the delimiter (sniffed unless given), and (line number,
    record) for each row after the header. Raises InputError when there is no header."""
    csv.field_size_limit(READER_FIELD_LIMIT)  # process-wide: this process reads this file
    head, size = [], 0
    for line in stream:
        head.append(line)
        size += len(line)
        if len(head) >= _SNIFF_LINES or size >= _SNIFF_CHARACTERS:
            break
    delimiter = delimiter or sniff_delimiter(head)
    reader = csv.reader(itertools.chain(head, stream), delimiter=delimiter)
    try:
        columns = next(reader, None)
    except csv.Error as exc:
        raise InputError(f"the header is not readable as CSV: {exc}") from None
    if not columns:
        raise InputError("no header (the file is empty)")
    return columns, delimiter, _csv_records(reader, columns)


def _csv_records(
    reader: Any, columns: list[str]
) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    # csv counts physical lines; a row with quoted newlines starts where the last one
    # ended, so the number names the row's first line.
    first_line = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # e.g. a field over READER_FIELD_LIMIT: that row only
            yield first_line, RowError(first_line, f"not readable as CSV: {exc}")
        else:
            if cells:  # a blank line is no row
                yield first_line, dict(zip(columns, cells, strict=False))
        first_line = reader.line_num + 1


def _json_records(stream: IO[str]) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, RowError(number, f"not valid JSON: {exc.msg}")
            continue
        except ValueError as exc:  # an integer of more digits than int() converts
            yield number, RowError(number, f"not readable JSON: {exc}")
            continue
        if not isinstance(record, dict):
            yield number, RowError(number, "a JSON line must be an object")
            continue
        yield number, record


def read_records(
    path: Path, stream: IO[str], delimiter: str | None = None
) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    """(line number, record) for each row of a CSV or JSON-lines file."""
    if is_json_lines(path):
        return _json_records(stream)
    return read_csv(stream, delimiter)[2]


def column_problems(columns: list[str], categories: Collection[str]) -> list[str]:
    """What makes a customers CSV header unusable: no `id` (or `customer_id`) or `phone`
    column, a column twice, a consent column for a category the project does not define,
    NUL characters (UTF-16 read as UTF-8, which it decodes as)."""
    problems = []
    if any("\x00" in name for name in columns):
        problems.append(
            "the header has NUL characters: is the file UTF-16 without a byte-order mark "
            "(--encoding utf-16-le)?"
        )
    if not {"id", "customer_id"} & set(columns):
        problems.append("no 'id' column")
    if "phone" not in columns:
        problems.append("no 'phone' column")
    problems += [
        f"column '{name}' appears {count} times"
        for name, count in Counter(columns).items()
        if count > 1
    ]
    problems += [
        f"column '{name}': {_unknown_category(name, categories)}"
        for name in dict.fromkeys(columns)
        if name.startswith(CONSENT_PREFIX) and name[len(CONSENT_PREFIX) :] not in categories
    ]
    return problems


def _unknown_category(key: str, categories: Collection[str]) -> str:
    return (
        f"'{key[len(CONSENT_PREFIX) :]}' is not one of the project's consent categories: "
        f"{', '.join(categories)}"
    )


def read_customers(
    path: Path, stream: IO[str], categories: Collection[str], delimiter: str | None = None
) -> Iterator[CustomerRow | RowError]:
    """Each row of a customers file, parsed. A CSV header that cannot be imported raises
    InputError naming the file and every problem, before any row is read."""
    if is_json_lines(path):
        records = _json_records(stream)
    else:
        try:
            columns, delimiter, records = read_csv(stream, delimiter)
        except InputError as exc:
            raise InputError(f"{path}:1: {exc}") from None
        problems = column_problems(columns, categories)
        if problems:
            if {"no 'id' column", "no 'phone' column"} & set(problems):
                problems.append(
                    f"the header read with the delimiter {delimiter!r} has the columns "
                    f"{columns}; is it another one (--delimiter)?"
                )
            raise InputError("\n".join(f"{path}:1: {problem}" for problem in problems))
    return _customers(records, categories)


def _customers(
    records: Iterator[tuple[int, dict[str, Any] | RowError]], categories: Collection[str]
) -> Iterator[CustomerRow | RowError]:
    for line, record in records:
        if isinstance(record, RowError):
            yield record
            continue
        try:
            yield parse_customer(line, record, categories)
        except InputError as exc:
            yield RowError(line, str(exc))


def parse_customer(line: int, record: dict[str, Any], categories: Collection[str]) -> CustomerRow:
    """Validate one record; raises InputError naming the field."""
    for key, value in record.items():
        _check_storable(key, value)
    customer_id = record.get("id", record.get("customer_id"))
    if customer_id is None or str(customer_id).strip() == "":
        raise InputError("missing 'id'")
    if "\x00" in str(customer_id):  # PostgreSQL text cannot hold it (JSON attributes can)
        raise InputError("'id' contains a NUL character")
    attributes: dict[str, Any] = {}
    consents: dict[str, bool] = {}
    for key, value in record.items():
        if key in ("id", "customer_id"):
            continue
        if key.startswith(CONSENT_PREFIX):
            if value is None or value == "":
                continue
            if key[len(CONSENT_PREFIX) :] not in categories:  # JSON lines have no header
                raise InputError(f"'{key}': {_unknown_category(key, categories)}")
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


def _check_storable(key: str, value: Any) -> None:
    """Raise InputError naming `key` for a value the database cannot hold as it is: text
    over MAX_CELL characters, an integer wider than 64 bits (JSON lines; a CSV cell stays
    text, see `_typed`)."""
    if isinstance(value, str):  # every CSV cell: one test
        if len(value) > MAX_CELL:
            raise InputError(f"'{key}' is {len(value):,} characters long, over {MAX_CELL:,}")
    elif isinstance(value, int) and not isinstance(value, bool) and value not in _INT64:
        raise InputError(f"'{key}' is an integer wider than 64 bits; give it as a string")
    elif isinstance(value, list):
        for item in value:
            _check_storable(key, item)
    elif isinstance(value, dict):
        for name, item in value.items():
            _check_storable(f"{key}.{name}", item)


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
    identifiers keep their exact form. So do integers wider than 64 bits and numbers too
    large for a float: in a customer file they are card, order or tracking numbers, kept
    exactly as text, where a number type would not hold them.
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text == "":
        return None
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if _INTEGER.fullmatch(text):
        # Length first: int() of a long enough string refuses, and slowly.
        if len(text) <= _INT64_CHARACTERS and int(text) in _INT64:
            return int(text)
        return text
    if _DECIMAL.fullmatch(text):
        decimal = float(text)
        return decimal if math.isfinite(decimal) else text
    return text
