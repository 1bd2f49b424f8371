import codecs
import io
from pathlib import Path

import pytest

from engine import customers
from engine.customers import (
    MAX_CELL,
    CustomerRow,
    RowError,
    check_decodes,
    column_problems,
    encoding_of,
    read_customers,
    sniff_delimiter,
)
from engine.errors import InputError

CSV = Path("customers.csv")
JSONL = Path("customers.jsonl")
CATEGORIES = ("sms_marketing", "transactional", "a", "b", "c")


def read(path, text):
    return list(read_customers(path, io.StringIO(text), CATEGORIES))


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


def test_customer_with_an_empty_phone_cell_has_none():
    (row,) = read_csv("id,phone,first_name", "c1,,Ada")
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
            "id,phone,timezone\nc1,,Mars/Olympus_Mons\n",
            2,
            "timezone 'Mars/Olympus_Mons' is not an IANA time zone",
        ),
        # a bad consent value
        (
            CSV,
            "id,phone,consent:sms_marketing\nc1,,maybe\n",
            2,
            "'consent:sms_marketing' must be true or false",
        ),
        # a bad consent value in JSON
        (JSONL, '{"id": "c1", "consent:sms_marketing": 2}\n', 1, "must be true or false, not 2"),
        # JSON lines have no header: a consent key the project does not define, per row
        (
            JSONL,
            '{"id": "c1", "consent:newsletter": true}\n',
            1,
            "'consent:newsletter': 'newsletter' is not one of the project's consent categories",
        ),
        # a cell over MAX_CELL characters, named by its column
        (
            CSV,
            f"id,phone,note\nc1,,{'x' * (MAX_CELL + 1)}\nc2,,short\n",
            2,
            f"'note' is {MAX_CELL + 1:,} characters long, over {MAX_CELL:,}",
        ),
        # the same in JSON lines
        (JSONL, f'{{"id": "c1", "bio": "{"x" * (MAX_CELL + 1)}"}}\n', 1, "'bio' is 131,073"),
        # a NUL character in the id (PostgreSQL text cannot hold one)
        (CSV, "id,phone\nc\x001,\n", 2, "'id' contains a NUL character"),
        # an integer wider than 64 bits in JSON: its type was chosen, so it is not made text
        (JSONL, f'{{"id": "c1", "card": {2**64}}}\n', 1, "'card' is an integer wider than 64"),
        # ... nested too, named by its path
        (JSONL, f'{{"id": "c1", "x": {{"y": [{-(2**63) - 1}]}}}}\n', 1, "'x.y' is an integer"),
        # more digits than int() converts: the line, not the import, fails
        (JSONL, f'{{"id": "c1", "n": {"9" * 5000}}}\n', 1, "not readable JSON"),
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
    rows = read_csv("id,phone,timezone", "c1,,Europe", "c2,,UTC")
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
    row = read_one_csv("id,phone,consent:sms_marketing,consent:transactional", f"c1,,{value},")
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
        # the widest 64-bit integers are numbers
        (str(2**63 - 1), 2**63 - 1),
        (str(-(2**63)), -(2**63)),
        # one more is a card, order or tracking number: kept exactly, as text
        (str(2**63), str(2**63)),
        ("123456789012345678901234567890", "123456789012345678901234567890"),
        pytest.param("9" * 5000, "9" * 5000, id="more-digits-than-int-converts"),
        # a float that overflows stays text too
        ("1e400", "1e400"),
        # a NUL character is kept: attributes are JSON, which holds it
        ("a\x00b", "a\x00b"),
    ],
)
def test_csv_cells_are_typed(cell, value):
    row = read_one_csv("id,phone,note", f"c1,,{cell}")
    assert row.attributes == {"note": value}
    assert type(row.attributes["note"]) is type(value)


@pytest.mark.parametrize(
    "row",
    [
        "c1,,",  # an empty cell
        "c1,,   ",  # a blank cell
        "c1",  # a short row
    ],
)
def test_empty_csv_cells_are_absent(row):
    assert read_one_csv("id,phone,note", row).attributes == {}


def test_json_values_keep_their_types():
    (row,) = read_jsonl(
        '{"id": 7, "orders": 3, "code": "007", "vip": false, "tags": ["a"], "x": null}'
    )
    assert row.id == "7"
    assert row.attributes == {"orders": 3, "code": "007", "vip": False, "tags": ["a"]}


def test_customer_id_column_is_an_alias_for_id():
    (row,) = read_csv("customer_id,phone,first_name", " c1 ,,Ada")
    assert row.id == "c1"
    assert row.attributes == {"first_name": "Ada"}


def test_time_zone_is_kept():
    (row,) = read_csv("id,phone,timezone", "c1,,Europe/Prague")
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


@pytest.mark.parametrize(
    ("head", "given", "codec"),
    [
        # Excel's "CSV UTF-8": a UTF-8 byte-order mark, which utf-8-sig leaves out
        (codecs.BOM_UTF8 + b"id", None, "utf-8-sig"),
        # UTF-16 both ways; utf-16 reads the mark and leaves it out
        (codecs.BOM_UTF16_LE + b"i\x00", None, "utf-16"),
        (codecs.BOM_UTF16_BE + b"\x00i", None, "utf-16"),
        # UTF-32-LE's mark starts with UTF-16-LE's
        (codecs.BOM_UTF32_LE, None, "utf-32"),
        (codecs.BOM_UTF32_BE, None, "utf-32"),
        # no mark: UTF-8 unless told
        (b"id,p", None, "utf-8"),
        (b"id,p", "cp1252", "cp1252"),
        # a mark says how the file was written, whatever was given
        (codecs.BOM_UTF8 + b"id", "latin-1", "utf-8-sig"),
        # an empty file
        (b"", None, "utf-8"),
    ],
)
def test_a_byte_order_mark_decides_the_encoding(head, given, codec):
    assert encoding_of(head, given) == codec


def test_an_unknown_encoding_is_named():
    with pytest.raises(InputError, match="unknown encoding 'klingon'"):
        encoding_of(b"id", "klingon")


@pytest.mark.parametrize("chunk", [1, 5, 1024 * 1024], ids=["1-byte", "5-byte", "1-MiB"])
@pytest.mark.parametrize(
    ("data", "codec", "line", "byte", "shown"),
    [
        # a Latin-1 é in a UTF-8 file, on line 3
        (b"id,phone\nc1,+1\nc2,Zo\xe9\n", "utf-8", 3, 20, "e9"),
        # the byte-order mark counts in the offset
        (codecs.BOM_UTF8 + b"id\n\xff\n", "utf-8-sig", 2, 6, "ff"),
        # a two-byte sequence cut short by a newline
        (b"id\nc\xc3\nx", "utf-8", 2, 4, "c3"),
        # a file that ends inside a character
        (b"id\nZo\xc3", "utf-8", 2, 5, "c3"),
        # a byte cp1252 does not define
        (b"a\r\nb\r\n\x81", "cp1252", 3, 6, "81"),
        # UTF-16 with an odd number of bytes
        ("id\nx".encode("utf-16") + b"\x00", "utf-16", 2, 10, "00"),
        # UTF-16 with a lone surrogate
        ("id\n".encode("utf-16") + b"\x00\xd8a\x00", "utf-16", 2, 8, "00 d8"),
    ],
)
def test_a_byte_the_encoding_cannot_read_is_named_by_line_and_offset(
    tmp_path, monkeypatch, chunk, data, codec, line, byte, shown
):
    monkeypatch.setattr(customers, "_DECODE_CHUNK", chunk)
    path = tmp_path / "people.csv"
    path.write_bytes(data)
    with pytest.raises(InputError) as caught:
        check_decodes(path, codec)
    assert str(caught.value).startswith(
        f"{path}:{line}: byte {byte} ({shown}) is not valid {codec}; give the file's encoding"
    )


@pytest.mark.parametrize("chunk", [1, 1024 * 1024], ids=["1-byte", "1-MiB"])
@pytest.mark.parametrize(
    ("data", "codec"),
    [
        ("id,name\nc1,Zoë ☃\n".encode(), "utf-8"),
        (codecs.BOM_UTF8 + "id\nZoë\n".encode(), "utf-8-sig"),
        ("id\tname\r\nc1\tZoë 😀\r\n".encode("utf-16"), "utf-16"),
        (bytes(range(256)), "latin-1"),  # every byte is a Latin-1 character
        (b"", "utf-8"),
    ],
)
def test_files_in_their_encoding_decode(tmp_path, monkeypatch, chunk, data, codec):
    monkeypatch.setattr(customers, "_DECODE_CHUNK", chunk)
    path = tmp_path / "people.csv"
    path.write_bytes(data)
    check_decodes(path, codec)


@pytest.mark.parametrize(
    ("lines", "delimiter"),
    [
        (["id,phone\n", "c1,+12125550123\n"], ","),
        # Excel in most of Europe
        (["id;phone;name\n", "c1;+33123456789;Dupont, Jean\n"], ";"),
        (["id\tphone\n", "c1\t+1\n"], "\t"),
        (["id|phone\n", "c1|+1\n"], "|"),
        # a quoted semicolon inside a comma file
        (["id,phone,note\n", 'c1,+1,"a;b"\n', "c2,+2,x\n"], ","),
        # a header alone
        (["id;phone\n"], ";"),
        # one column: nothing to tell, a comma
        (["id\n", "c1\n"], ","),
        # no lines
        ([], ","),
    ],
)
def test_the_delimiter_is_sniffed(lines, delimiter):
    assert sniff_delimiter(lines) == delimiter


@pytest.mark.parametrize(
    ("columns", "problems"),
    [
        (["id", "phone", "consent:sms_marketing"], []),
        (["customer_id", "phone"], []),  # the id's other name
        (["phone", "name"], ["no 'id' column"]),
        (["id", "mobile"], ["no 'phone' column"]),
        # a semicolon file read with commas: one column
        (["id;phone"], ["no 'id' column", "no 'phone' column"]),
        (["id", "phone", "name", "name"], ["column 'name' appears 2 times"]),
        # UTF-16 without a byte-order mark, read as UTF-8
        (
            ["i\x00d\x00", "\x00p\x00h\x00o\x00n\x00e\x00"],
            [
                "the header has NUL characters: is the file UTF-16 without a byte-order mark "
                "(--encoding utf-16-le)?",
                "no 'id' column",
                "no 'phone' column",
            ],
        ),
        (
            ["id", "phone", "consent:newsletter", "consent:sms_marketing"],
            [
                "column 'consent:newsletter': 'newsletter' is not one of the project's consent "
                "categories: sms_marketing, transactional"
            ],
        ),
    ],
)
def test_header_problems(columns, problems):
    assert column_problems(columns, ("sms_marketing", "transactional")) == problems


def test_a_header_that_cannot_be_imported_is_refused_before_any_row():
    text = "id;phone\nc1;+12125550123\n"
    with pytest.raises(InputError) as caught:
        read_customers(CSV, io.StringIO(text), CATEGORIES, delimiter=",")
    assert str(caught.value).splitlines() == [
        "customers.csv:1: no 'id' column",
        "customers.csv:1: no 'phone' column",
        "customers.csv:1: the header read with the delimiter ',' has the columns ['id;phone']; "
        "is it another one (--delimiter)?",
    ]


@pytest.mark.parametrize("text", ["", "\n"])
def test_a_file_without_header_is_refused(text):
    with pytest.raises(InputError, match="customers.csv:1: no header"):
        read_customers(CSV, io.StringIO(text), CATEGORIES)


@pytest.mark.parametrize(
    ("text", "delimiter"),
    [
        ("id;phone;name\nc1;+12125550123;Dupont, Jean\n", None),  # sniffed
        ("id\tphone\tname\nc1\t+12125550123\tDupont, Jean\n", None),
        ("id|phone|name\nc1|+12125550123|Dupont, Jean\n", "|"),  # given
    ],
)
def test_other_delimiters_read(text, delimiter):
    (row,) = read_customers(CSV, io.StringIO(text), CATEGORIES, delimiter)
    assert (row.id, row.phone, row.attributes["name"]) == ("c1", "+12125550123", "Dupont, Jean")


def test_a_cell_past_the_readers_limit_rejects_its_row_only(monkeypatch):
    monkeypatch.setattr(customers, "READER_FIELD_LIMIT", 1000)
    rows = read_csv("id,phone,note", f"c1,,{'x' * 2000}", "c2,,fine")
    assert isinstance(rows[0], RowError)
    assert rows[0].line == 2
    assert "not readable as CSV: field larger than field limit (1000)" in rows[0].reason
    assert (rows[1].line, rows[1].attributes) == (3, {"note": "fine"})
