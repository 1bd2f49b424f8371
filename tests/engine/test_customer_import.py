"""Importing real exports into the store: encodings, delimiters, headers, duplicates,
values the database cannot hold, and every rejected row listed."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from engine import progress
from engine.customer_import import (
    SHOWN_REJECTS,
    FirstLines,
    Rejects,
    default_rejects_path,
    import_customers,
)
from engine.customers import RowError
from engine.errors import InputError
from tests.conftest import NOW

CATEGORIES = ("sms_marketing", "transactional")
HEADER = "id,phone,first_name,consent:sms_marketing\n"
ANN = "c1,+12125550123,Ann,true\n"
ZOE = "c2,+12125550124,Zoë,false\n"
NATIONAL = "phone '0601234567' is not in international format: it must start with + or 00"


def run(store, path: Path, **options):
    return import_customers(path, store, CATEGORIES, lambda: NOW, **options)


def write(tmp_path: Path, data: bytes, name: str = "people.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("data", "options"),
    [
        # plain UTF-8
        ((HEADER + ANN + ZOE).encode(), {}),
        # Excel's "CSV UTF-8": a byte-order mark before "id"
        (codecs.BOM_UTF8 + (HEADER + ANN + ZOE).encode(), {}),
        # Excel's "Unicode text": UTF-16 with its mark, tabs and CRLF
        ((HEADER + ANN + ZOE).replace(",", "\t").replace("\n", "\r\n").encode("utf-16"), {}),
        # Excel in most of Europe: semicolons, sniffed
        ((HEADER + ANN + ZOE).replace(",", ";").encode(), {}),
        # ... or given
        ((HEADER + ANN + ZOE).replace(",", ";").encode(), {"delimiter": ";"}),
        # Windows' own encoding, given
        ((HEADER + ANN + ZOE).encode("cp1252"), {"encoding": "cp1252"}),
        # a Latin-1 file, given
        ((HEADER + ANN + ZOE).encode("latin-1"), {"encoding": "latin-1"}),
    ],
)
def test_real_exports_import(sqlite_store, tmp_path, data, options):
    result = run(sqlite_store, write(tmp_path, data), **options)
    assert (result.imported, result.rejected, result.rejects_file) == (2, 0, None)
    zoe = sqlite_store.customers.get("c2")
    assert zoe.phone == "+12125550124"
    assert zoe.attributes["first_name"] == "Zoë"
    assert sqlite_store.customers.consented(["c1", "c2"], "sms_marketing") == {"c1"}


@pytest.mark.parametrize(
    "data",
    [
        b'{"id": "c1", "phone": "+12125550123"}\n',
        codecs.BOM_UTF8 + b'{"id": "c1", "phone": "+12125550123"}\n',
        '{"id": "c1", "phone": "+12125550123"}\r\n'.encode("utf-16"),
    ],
)
def test_json_lines_read_in_their_encoding(sqlite_store, tmp_path, data):
    result = run(sqlite_store, write(tmp_path, data, "people.jsonl"))
    assert (result.imported, result.rejected) == (1, 0)
    assert sqlite_store.customers.get("c1").phone == "+12125550123"


@pytest.mark.parametrize(
    ("data", "name", "options", "message"),
    [
        # one Latin-1 byte in a UTF-8 file
        (
            (HEADER + ANN).encode() + "c2,+12125550124,Zoë,true\n".encode("latin-1"),
            "people.csv",
            {},
            "people.csv:3: byte 85 (eb) is not valid utf-8",
        ),
        # the same in JSON lines
        (b'{"id": "c1"}\n{"id": "Zo\xeb"}\n', "people.jsonl", {}, "people.jsonl:2: byte 23 (eb)"),
        # an encoding Python does not know
        ((HEADER + ANN).encode(), "people.csv", {"encoding": "klingon"}, "unknown encoding"),
        # no id column
        (b"phone,first_name\n+12125550123,Ann\n", "people.csv", {}, "people.csv:1: no 'id'"),
        # no phone column
        (b"id,first_name\nc1,Ann\n", "people.csv", {}, "people.csv:1: no 'phone' column"),
        # a semicolon file read with the delimiter forced to a comma
        (
            (HEADER + ANN).replace(",", ";").encode(),
            "people.csv",
            {"delimiter": ","},
            "people.csv:1: no 'id' column",
        ),
        # a consent category the project does not define
        (
            b"id,phone,consent:newsletter\nc1,+12125550123,true\n",
            "people.csv",
            {},
            "people.csv:1: column 'consent:newsletter': 'newsletter' is not one of the "
            "project's consent categories: sms_marketing, transactional",
        ),
        # an empty file
        (b"", "people.csv", {}, "people.csv:1: no header"),
        # UTF-16 without its byte-order mark decodes as UTF-8, with NULs
        (
            (HEADER + ANN).encode("utf-16-le"),
            "people.csv",
            {},
            "people.csv:1: the header has NUL characters: is the file UTF-16 without",
        ),
    ],
)
def test_files_that_cannot_be_imported_import_nothing(
    sqlite_store, tmp_path, data, name, options, message
):
    path = write(tmp_path, data, name)
    with pytest.raises(InputError) as caught:
        run(sqlite_store, path, rejects_file=tmp_path / "rejects.txt", **options)
    assert message in str(caught.value)
    assert sqlite_store.customers.get("c1") is None
    assert not (tmp_path / "rejects.txt").exists()


@pytest.mark.parametrize(
    ("rows", "rejected", "imported"),
    [
        # an id twice: the first row imports, the repeat is rejected naming both lines
        (
            [ANN, ZOE, "c1,+12125550125,Again,false\n"],
            ["line 4: duplicate id 'c1' (first on line 2, imported)"],
            {"c1": "+12125550123", "c2": "+12125550124"},
        ),
        # a first row that was rejected does not make the next one a duplicate
        (
            ["c1,0601234567,Ann,true\n", "c1,+12125550123,Ann,true\n"],
            [f"line 2: {NATIONAL}"],
            {"c1": "+12125550123"},
        ),
        # a cell over 131,072 characters rejects its row, named by its column
        (
            [f"c1,+12125550123,{'A' * 200_000},true\n", ZOE],
            ["line 2: 'first_name' is 200,000 characters long, over 131,072"],
            {"c2": "+12125550124"},
        ),
        # an integer wider than 64 bits is kept as text
        (["c1,+12125550123,123456789012345678901234567890,\n"], [], {"c1": "+12125550123"}),
    ],
)
def test_rows_are_rejected_one_by_one(store, tmp_path, rows, rejected, imported):
    result = run(store, write(tmp_path, (HEADER + "".join(rows)).encode()))
    assert [str(error) for error in result.shown] == rejected
    assert (result.imported, result.rejected) == (len(imported), len(rejected))
    stored = store.customers.by_id(["c1", "c2"])
    assert {id: customer.phone for id, customer in stored.items()} == imported


def test_wide_integers_and_long_texts_are_stored_exactly(store, tmp_path):
    card = "123456789012345678901234567890"
    path = write(tmp_path, (HEADER + f"c1,+12125550123,{card},\n").encode())
    run(store, path)
    assert store.customers.get("c1").attributes["first_name"] == card


def test_a_wide_integer_in_json_lines_rejects_its_line(store, tmp_path):
    lines = f'{{"id": "c1", "card": {2**64}}}\n{{"id": "c2", "card": {2**63 - 1}}}\n'
    result = run(store, write(tmp_path, lines.encode(), "people.jsonl"))
    assert [str(error) for error in result.shown] == [
        "line 1: 'card' is an integer wider than 64 bits; give it as a string"
    ]
    assert store.customers.get("c1") is None
    assert store.customers.get("c2").attributes["card"] == 2**63 - 1


def test_every_rejected_row_is_written_beside_the_file_when_more_than_are_shown(
    sqlite_store, tmp_path
):
    bad = [f"b{n},0601234567,,\n" for n in range(SHOWN_REJECTS + 10)]
    path = write(tmp_path, (HEADER + ANN + "".join(bad)).encode())
    result = run(sqlite_store, path, batch=7)
    assert (result.imported, result.rejected) == (1, SHOWN_REJECTS + 10)
    assert [error.line for error in result.shown] == list(range(3, 3 + SHOWN_REJECTS))
    assert result.rejects_file == default_rejects_path(path) == tmp_path / "people.csv.rejects.txt"
    written = result.rejects_file.read_text().splitlines()
    assert len(written) == SHOWN_REJECTS + 10
    assert written[0] == f"{path}:line 3: {NATIONAL}"
    assert written[-1].startswith(f"{path}:line {SHOWN_REJECTS + 12}: ")


def test_a_few_rejects_stay_on_screen_unless_a_file_is_asked_for(sqlite_store, tmp_path):
    path = write(tmp_path, (HEADER + ANN + "c9,0601234567,,\n").encode())
    assert run(sqlite_store, path).rejects_file is None
    assert not default_rejects_path(path).exists()

    asked = tmp_path / "out" / "rejects.txt"
    asked.parent.mkdir()
    assert run(sqlite_store, path, rejects_file=asked).rejects_file == asked
    assert asked.read_text() == f"{path}:line 3: {NATIONAL}\n"

    clean = write(tmp_path, (HEADER + ANN).encode(), "clean.csv")
    assert run(sqlite_store, clean, rejects_file=asked).rejects_file == asked
    assert asked.read_text() == ""  # asked for: written, empty, not a stale list


@pytest.mark.parametrize(
    ("rejects", "message"),
    [
        # the file imported itself: opening it for the list would empty it
        ("people.csv", "the rejects file cannot be the file imported"),
        # a folder that is not there
        ("gone/rejects.txt", "rejected rows could not be written there"),
    ],
)
def test_a_rejects_file_that_cannot_be_written_is_refused_before_importing(
    sqlite_store, tmp_path, rejects, message
):
    path = write(tmp_path, (HEADER + ANN).encode())
    with pytest.raises(InputError, match=message):
        run(sqlite_store, path, rejects_file=tmp_path / rejects)
    assert sqlite_store.customers.get("c1") is None
    assert path.read_bytes() == (HEADER + ANN).encode()


def test_progress_is_reported_in_bytes_up_to_the_size(sqlite_store, tmp_path):
    path = write(tmp_path, (HEADER + ANN * 3 + ZOE).encode())
    seen = []
    with progress.watching(lambda stage, count, total: seen.append((stage, count, total))):
        run(sqlite_store, path, batch=2)
    size = path.stat().st_size
    assert {(stage, total) for stage, _, total in seen} == {("importing people.csv", size)}
    assert sum(count for _, count, _ in seen) == size


def test_first_lines_remember_where_an_id_was_first():
    lines = FirstLines()
    assert [lines.claim(id, line) for id, line in [("a", 2), ("b", 3), ("a", 4), ("a", 5)]] == [
        None,
        None,
        2,
        2,
    ]
    lines.close()


def test_rejects_open_their_file_once_past_the_limit(tmp_path):
    target = tmp_path / "r.txt"
    with Rejects(Path("in.csv"), target, always=False, shown=2) as rejects:
        rejects.add(RowError(2, "a"))
        rejects.add(RowError(3, "b"))
        assert rejects.written is None and not target.exists()
        rejects.add(RowError(4, "c"))
    assert rejects.count == 3
    assert [error.line for error in rejects.shown] == [2, 3]
    assert target.read_text() == "in.csv:line 2: a\nin.csv:line 3: b\nin.csv:line 4: c\n"
