import io
from pathlib import Path

import pytest

from engine.customers import CustomerRow, RowError, read_customers

CSV = Path("customers.csv")
JSONL = Path("customers.jsonl")


def read(path, text):
    return list(read_customers(path, io.StringIO(text)))


def read_csv(header, *rows):
    return read(CSV, "\n".join([header, *rows]) + "\n")


def read_one_csv(header, row):
    (result,) = read_csv(header, row)
    return result


def read_jsonl(*lines):
    return read(JSONL, "\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        # already E.164
        ("+12125550123", "+12125550123"),
        # with separators
        ("+1 (212) 555-0123", "+12125550123"),
        # 00 instead of +
        ("0012125550123", "+12125550123"),
        # 00 with spaces
        ("00 44 7400 123456", "+447400123456"),
    ],
)
@pytest.mark.parametrize("path", [CSV, JSONL], ids=["csv", "jsonl"])
def test_phones_are_normalised_to_e164(path, raw, e164):
    text = f"id,phone\nc1,{raw}\n" if path == CSV else f'{{"id": "c1", "phone": "{raw}"}}\n'
    (row,) = read(path, text)
    assert isinstance(row, CustomerRow), row
    assert row.phone == e164
    assert row.attributes["phone"] == e164


def test_customer_without_phone_has_none():
    (row,) = read_csv("id,first_name", "c1,Ada")
    assert row.phone is None
    assert "phone" not in row.attributes


@pytest.mark.parametrize(
    ("path", "text", "line", "fragment"),
    [
        # national format in CSV: the row's line counts the header
        (
            CSV,
            "id,phone\nc1,+12125550123\nc2,2125550123\n",
            3,
            "phone '2125550123' is not in international format",
        ),
        # national format in JSON lines
        (
            JSONL,
            '{"id": "c1", "phone": "0601234567"}\n',
            1,
            "phone '0601234567' is not in international format",
        ),
        # a number given as a JSON number has no + either
        (JSONL, '{"id": "c1", "phone": 12125550123}\n', 1, "not in international format"),
        # missing id column
        (CSV, "phone\n+12125550123\n", 2, "missing 'id'"),
        # empty id cell
        (CSV, "id,phone\n  ,+12125550123\n", 2, "missing 'id'"),
        # missing id key
        (JSONL, '{"phone": "+12125550123"}\n', 1, "missing 'id'"),
        # null id
        (JSONL, '{"id": null}\n', 1, "missing 'id'"),
        # invalid JSON, after a blank line that still counts
        (JSONL, '{"id": "c1"}\n\n{"id": "c2",\n', 3, "not valid JSON"),
        # a JSON line that is not an object
        (JSONL, '["c1"]\n', 1, "a JSON line must be an object"),
        # an unknown time zone
        (
            CSV,
            "id,timezone\nc1,Mars/Olympus_Mons\n",
            2,
            "timezone 'Mars/Olympus_Mons' is not an IANA time zone",
        ),
        # a bad consent value
        (
            CSV,
            "id,consent:sms_marketing\nc1,maybe\n",
            2,
            "'consent:sms_marketing' must be true or false",
        ),
        # a bad consent value in JSON
        (JSONL, '{"id": "c1", "consent:sms_marketing": 2}\n', 1, "must be true or false, not 2"),
    ],
)
def test_bad_rows_are_reported_with_their_line(path, text, line, fragment):
    errors = [row for row in read(path, text) if isinstance(row, RowError)]
    assert [error.line for error in errors] == [line]
    assert fragment in errors[0].reason
    assert str(errors[0]) == f"line {line}: {errors[0].reason}"


def test_a_bad_row_does_not_stop_the_rest():
    rows = read_csv(
        "id,phone",
        "c1,+12125550123",
        "c2,2125550123",  # national format
        ",+12125550124",  # no id
        "c4,+12125550125",
    )
    assert [(type(row).__name__, row.line) for row in rows] == [
        ("CustomerRow", 2),
        ("RowError", 3),
        ("RowError", 4),
        ("CustomerRow", 5),
    ]


def test_time_zone_folder_is_a_row_error():
    rows = read_csv("id,timezone", "c1,Europe", "c2,UTC")
    assert [type(row) for row in rows] == [RowError, CustomerRow]
    assert "timezone 'Europe' is not an IANA time zone" in rows[0].reason


@pytest.mark.parametrize(
    ("value", "granted"),
    [
        ("true", True),  # the usual spelling
        ("True", True),  # as spreadsheets write it
        ("yes", True),  # yes/no
        ("1", True),  # a number
        ("granted", True),  # the state's name
        ("y", True),  # one letter
        ("false", False),  # the usual spelling
        ("NO", False),  # any case
        ("0", False),  # a number
        ("revoked", False),  # the state's name
        (" n ", False),  # surrounding spaces
    ],
)
def test_consent_columns_grant_or_revoke(value, granted):
    row = read_one_csv("id,consent:sms_marketing,consent:transactional", f"c1,{value},")
    # an empty consent cell says nothing
    assert row.consents == {"sms_marketing": granted}
    # consent columns are not attributes
    assert row.attributes == {}


def test_consent_keys_in_json_lines():
    (row,) = read_jsonl('{"id": "c1", "consent:a": true, "consent:b": "no", "consent:c": null}')
    assert row.consents == {"a": True, "b": False}


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        ("42", 42),  # an integer
        ("-3", -3),  # a negative integer
        ("0", 0),  # zero is a number
        ("1.5", 1.5),  # a float
        ("-0.25", -0.25),  # a negative float
        ("1e3", 1000.0),  # scientific notation
        ("true", True),  # booleans
        ("False", False),  # any case
        ("007", "007"),  # a leading zero: a code, kept as text
        ("00420", "00420"),  # a postcode
        ("+12", "+12"),  # a leading + is not a number
        ("Ada", "Ada"),  # text
        ("1.2.3", "1.2.3"),  # not a number
        ("yes", "yes"),  # only true/false are booleans
        (" padded ", "padded"),  # surrounding spaces are trimmed
        pytest.param(
            "-007",
            "-007",
            id="negative-leading-zero",
        ),
        pytest.param(
            "²",
            "²",
            id="superscript-digit",
        ),
    ],
)
def test_csv_cells_are_typed(cell, value):
    row = read_one_csv("id,note", f"c1,{cell}")
    assert row.attributes == {"note": value}
    assert type(row.attributes["note"]) is type(value)


@pytest.mark.parametrize(
    "row",
    [
        "c1,",  # an empty cell
        "c1,   ",  # a blank cell
        "c1",  # a short row
    ],
)
def test_empty_csv_cells_are_absent(row):
    assert read_one_csv("id,note", row).attributes == {}


def test_json_values_keep_their_types():
    (row,) = read_jsonl(
        '{"id": 7, "orders": 3, "code": "007", "vip": false, "tags": ["a"], "x": null}'
    )
    assert row.id == "7"
    assert row.attributes == {"orders": 3, "code": "007", "vip": False, "tags": ["a"]}


def test_customer_id_column_is_an_alias_for_id():
    (row,) = read_csv("customer_id,first_name", " c1 ,Ada")
    assert row.id == "c1"
    assert row.attributes == {"first_name": "Ada"}


def test_time_zone_is_kept():
    (row,) = read_csv("id,timezone", "c1,Europe/Prague")
    assert row.timezone == "Europe/Prague"


def test_quoted_newline_keeps_later_line_numbers_right():
    rows = read_csv(
        "id,phone,note",
        'c1,+12125550123,"two',  # line 2
        'lines"',  # line 3
        "c2,2125550123,",  # line 4: national format
        "c3,+12125550124,",  # line 5
    )
    assert rows[0].attributes["note"] == "two\nlines"
    assert isinstance(rows[1], RowError)
    assert rows[1].line == 4
    assert rows[2].line == 5


def test_row_spanning_lines_is_reported_at_its_first_line():
    rows = read_csv("id,phone,note", 'c1,2125550123,"two', 'lines"')
    assert rows[0].line == 2


@pytest.mark.parametrize(
    "name",
    [
        "customers.jsonl",  # JSON lines
        "customers.ndjson",  # its other name
        "customers.JSON",  # any case
    ],
)
def test_json_suffixes_read_json_lines(name):
    (row,) = read(Path(name), '{"id": "c1"}\n')
    assert row.id == "c1"
