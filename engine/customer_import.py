"""Importing a customers file into the store, streamed: memory stays flat in its size.

Before anything is written the whole file is decoded once (`check_decodes`) and a CSV
header is checked (`read_customers`); either failing raises InputError and imports
nothing. Then rows are upserted in batches; a row that fails, or repeats an id an earlier
row of the file already imported, is rejected with its line and reason and the rest
import. The first SHOWN_REJECTS rejects are kept for the screen; all of them go to a
rejects file when there are more (or whenever one is asked for).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Collection
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import IO

from engine import progress
from engine.customers import (
    CustomerRow,
    RowError,
    check_decodes,
    file_encoding,
    read_customers,
)
from engine.errors import InputError
from engine.store import Store

SHOWN_REJECTS = 50


def default_rejects_path(path: Path) -> Path:
    """Where the rejects of `path` are written unless told: beside it."""
    return path.with_name(f"{path.name}.rejects.txt")


@dataclass(frozen=True)
class ImportResult:
    imported: int
    rejected: int
    shown: list[RowError]  # the first SHOWN_REJECTS rejected rows, in file order
    rejects_file: Path | None  # every rejected row, when written


class FirstLines:
    """The line each customer id was first imported from, for one file.

    Kept in a private temporary SQLite database (on disk once past its small page cache),
    so a file of millions of customers needs no more memory than one of thousands.
    """

    def __init__(self) -> None:
        # Autocommit: in one long transaction SQLite would keep every page in memory.
        self._db = sqlite3.connect("", isolation_level=None)
        self._db.execute("CREATE TABLE seen (id TEXT PRIMARY KEY, line INTEGER) WITHOUT ROWID")

    def claim(self, customer_id: str, line: int) -> int | None:
        """None when `customer_id` is new (now claimed by `line`), else its first line."""
        claimed = self._db.execute("INSERT OR IGNORE INTO seen VALUES (?, ?)", (customer_id, line))
        if claimed.rowcount:
            return None
        (first,) = self._db.execute("SELECT line FROM seen WHERE id = ?", (customer_id,)).fetchone()
        return first

    def close(self) -> None:
        self._db.close()


class Rejects:
    """Rejected rows of `source`: the first `shown` kept; every one written to `path`, as
    `source:line N: reason`, once there are more, or in any case when `always`."""

    def __init__(self, source: Path, path: Path, *, always: bool, shown: int = SHOWN_REJECTS):
        self.source, self.path, self.always, self.limit = source, path, always, shown
        self.shown: list[RowError] = []
        self.count = 0
        self._file: IO[str] | None = None

    def add(self, error: RowError) -> None:
        self.count += 1
        if self.count <= self.limit:
            self.shown.append(error)
            return
        if self._file is None:
            self._open()
        assert self._file is not None
        self._file.write(self._line(error))

    def _open(self) -> None:
        self._file = self.path.open("w", encoding="utf-8", newline="\n")
        self._file.writelines(self._line(error) for error in self.shown)

    def _line(self, error: RowError) -> str:
        return f"{self.source}:{error}\n"

    @property
    def written(self) -> Path | None:
        return self.path if self._file is not None else None

    def __enter__(self) -> Rejects:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Asked for, the file is written whatever the count; not when the import failed.
        if self._file is None and self.always and kind is None:
            self._open()
        if self._file is not None:
            self._file.close()


def import_customers(
    path: Path,
    store: Store,
    categories: Collection[str],
    now: Callable[[], datetime],
    *,
    encoding: str | None = None,
    delimiter: str | None = None,
    batch: int = 1000,
    rejects_file: Path | None = None,
) -> ImportResult:
    """Upsert the customers of a CSV or JSON-lines file and their consents (source
    `import:<file name>`), `batch` rows per transaction; progress is reported in bytes.
    Raises InputError, having imported nothing, when the file cannot be decoded, its header
    cannot be imported or its rejects could not be written."""
    encoding = file_encoding(path, encoding)
    check_decodes(path, encoding)
    target = rejects_target(path, rejects_file)
    size = path.stat().st_size
    stage = f"importing {path.name}"
    pending: list[CustomerRow] = []
    imported = done = 0

    def flush(position: int) -> None:
        nonlocal imported, done
        _write(store, path, pending, now())
        imported += len(pending)
        pending.clear()
        progress.advance(stage, position - done, size)
        done = position

    with (
        closing(FirstLines()) as first_lines,
        path.open(encoding=encoding, newline="") as stream,
        Rejects(path, target, always=rejects_file is not None) as rejects,
    ):
        for row in read_customers(path, stream, categories, delimiter):
            if isinstance(row, CustomerRow):
                first = first_lines.claim(row.id, row.line)
                if first is None:
                    pending.append(row)
                else:
                    reason = f"duplicate id '{row.id}' (first on line {first}, imported)"
                    rejects.add(RowError(row.line, reason))
            else:
                rejects.add(row)
            if len(pending) >= batch:
                flush(stream.buffer.tell())
        flush(size)
    return ImportResult(imported, rejects.count, rejects.shown, rejects.written)


def rejects_target(path: Path, rejects_file: Path | None) -> Path:
    """Where the rejects of `path` would go, checked before anything is imported: a list
    that could not be written after some batches were would be lost."""
    target = rejects_file or default_rejects_path(path)
    if target.resolve() == path.resolve():
        raise InputError(f"{target}: the rejects file cannot be the file imported")
    folder_writable = target.parent.is_dir() and os.access(target.parent, os.W_OK)
    if not folder_writable or (target.exists() and not os.access(target, os.W_OK)):
        raise InputError(
            f"{target}: rejected rows could not be written there; name a file with --rejects"
        )
    return target


def _write(store: Store, path: Path, rows: list[CustomerRow], moment: datetime) -> None:
    store.customers.upsert(
        [
            {"id": r.id, "phone": r.phone, "timezone": r.timezone, "attributes": r.attributes}
            for r in rows
        ],
        moment,
    )
    store.customers.change_consents(
        [
            {
                "customer_id": r.id,
                "category": category,
                "granted": granted,
                "source": f"import:{path.name}",
                "at": moment,
                "details": {"line": r.line},
            }
            for r in rows
            for category, granted in r.consents.items()
        ]
    )
