"""The database under the store: engine set-up, schema check, and the bulk mechanics the
hot paths need (one-parameter IN lists, driver-level executemany).

SQLite (WAL) is the embedded default, PostgreSQL works through the same URL. Statements
are SQLAlchemy's, with bound parameters; no SQL is ever assembled from strings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson
from sqlalchemy import (
    ARRAY,
    JSON,
    Connection,
    Engine,
    Table,
    any_,
    bindparam,
    create_engine,
    event,
    func,
    inspect,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import SQLModel

from engine.errors import ConfigError
from engine.store.models import UtcDateTime

T = TypeVar("T")


def create_database_engine(url: str) -> Engine:
    if url.startswith("sqlite:///") and ":memory:" not in url:
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    # orjson: JSON columns (attributes, event properties) are on every hot path, and it is
    # several times faster than the standard library at both ends.
    engine = create_engine(
        url,
        json_serializer=json_dumps,
        json_deserializer=orjson.loads,
    )
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


_BUCKET_TEXT = {"minute": 16, "hour": 13, "day": 10}  # "YYYY-MM-DD HH:MM", "... HH", "..."


def bucket_start(value: Any) -> datetime:
    """A `Database.time_bucket` value as an aware UTC instant."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC)
    text = str(value)
    padded = text + {10: " 00:00", 13: ":00", 16: ""}[len(text)]
    return datetime.fromisoformat(padded).replace(tzinfo=UTC)


def _converted(value: Any, convert: Callable[[Any], Any] | None) -> Any:
    return value if convert is None or value is None else convert(value)


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    # WAL lets readers (status, the UI) run while a tick writes; NORMAL is durable in WAL
    # mode across process crashes, which is what the exactly-once guarantee needs.
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class Database:
    """One database: its engine, and the few operations every table's writes share."""

    def __init__(self, url: str):
        self.url = url
        self.engine = create_database_engine(url)
        self._compiled_inserts: dict[tuple, tuple[str, tuple[str, ...], tuple[Any, ...]]] = {}
        SQLModel.metadata.create_all(self.engine)
        self._check_schema()

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def close(self) -> None:
        self.engine.dispose()

    def _check_schema(self) -> None:
        """A database made by an older Scenarist lacks columns: say which, rather than fail
        on the first query that needs one."""
        inspector = inspect(self.engine)
        missing = [
            f"{table.name}.{column.name}"
            for table in SQLModel.metadata.sorted_tables
            for column in table.columns
            if column.name not in {c["name"] for c in inspector.get_columns(table.name)}
        ]
        if missing:
            raise ConfigError(
                f"the database {self.engine.url.render_as_string(hide_password=True)} was made "
                f"by an older Scenarist and lacks {', '.join(missing)}; start a new database "
                "(database_url) and import the customers again"
            )

    def rows(self, query: Any) -> list[dict[str, Any]]:
        """Run a read and return its rows as dicts."""
        with self.engine.connect() as connection:
            result = connection.execute(query)
            # zip over plain tuples: RowMapping per row costs more than the query on the
            # hot reads (delivery reports, sends, campaign events).
            keys = tuple(result.keys())
            return [dict(zip(keys, row, strict=True)) for row in result]

    def values(self, query: Any, make: Callable[..., T]) -> list[T]:
        """Run a read and build one typed value per row, from its columns in order."""
        with self.engine.connect() as connection:
            return [make(*row) for row in connection.execute(query)]

    def first(self, query: Any) -> dict[str, Any] | None:
        rows = self.rows(query.limit(1))
        return rows[0] if rows else None

    def in_(self, column: Any, values: Iterable[Any]) -> Any:
        """`column IN (values)` with the whole batch as ONE bound parameter.

        A plain `IN (...)` binds each of a batch's thousands of values separately, which
        costs SQLAlchemy more than the query itself. PostgreSQL takes an array
        (`= ANY(:values)`); SQLite a JSON array read by `json_each`.
        """
        name = f"in_{column.name}"
        values = list(values)
        if self.is_postgres:
            return column == any_(bindparam(name, value=values, type_=ARRAY(column.type)))
        members = select(literal_column("value")).select_from(
            func.json_each(bindparam(name, value=json_dumps(values)))
        )
        return column.in_(members.scalar_subquery())

    def time_bucket(self, column: Any, unit: str) -> Any:
        """`column` (a UTC instant) cut to its `unit` ("minute", "hour", "day"). PostgreSQL
        truncates the timestamp; SQLite keeps instants as ISO text, so a prefix of it is
        the bucket ("2026-11-22 03:41"), which `bucket_start` reads back."""
        if self.is_postgres:
            return func.date_trunc(unit, column)
        return func.substr(column, 1, _BUCKET_TEXT[unit])

    def insert(self, table: Table) -> Any:
        """An INSERT that can take ON CONFLICT clauses in this dialect."""
        dialect = postgresql if self.is_postgres else sqlite
        return dialect.insert(table)

    def insert_ignoring_conflicts(
        self,
        connection: Connection,
        table: Table,
        rows: Sequence[dict[str, Any]],
        count: bool = False,
    ) -> int | None:
        """Insert the rows that do not collide with a unique key.

        With `count`, returns how many went in; without, returns None and saves that work.
        """
        if not rows:
            return 0
        if count and self.is_postgres:
            # psycopg reports no rowcount for executemany: count what RETURNING gives back.
            key = next(iter(table.primary_key.columns))
            statement = self.insert(table).on_conflict_do_nothing().returning(key)
            return len(connection.execute(statement, list(rows)).all())
        inserted = self.bulk_insert(connection, table, rows, ignore_conflicts=True)
        return inserted if count else None

    def bulk_insert(
        self,
        connection: Connection,
        table: Table,
        rows: Sequence[dict[str, Any]],
        ignore_conflicts: bool = False,
    ) -> int:
        """Insert many rows through the driver's executemany; returns the driver's rowcount.

        The statement is SQLAlchemy's, compiled once per table and columns; only the
        per-row work is done here, because SQLAlchemy's own per-row parameter processing
        costs more than the insert on the hot paths (journeys, sends, campaign events).
        Values are converted as the column types would: UTC instants to naive UTC (text on
        SQLite), JSON to text.
        """
        if not rows:
            return 0
        given = tuple(rows[0])
        # Python-side defaults (SQLModel's `= False` and the like) that the rows leave out.
        defaults = {
            column.name: column.default.arg
            for column in table.columns
            if column.name not in given and column.default is not None and column.default.is_scalar
        }
        columns = given + tuple(defaults)
        sql, order, converters = self._compiled_insert(table, columns, ignore_conflicts)
        # Column by column: one conversion per distinct instant, list comprehensions.
        values: dict[str, list[Any]] = {}
        for name, converter in zip(columns, converters, strict=True):
            if name in defaults:
                column = [defaults[name]] * len(rows)
            else:
                column = [row[name] for row in rows]
            if converter is json_dumps:
                column = [None if v is None else converter(v) for v in column]
            elif converter is not None:
                distinct = {v: converter(v) for v in set(column) if v is not None}
                column = [distinct.get(v) for v in column]
            values[name] = column
        if self.is_postgres:
            parameters: list[Any] = [
                dict(zip(columns, row, strict=True)) for row in zip(*values.values(), strict=True)
            ]
        else:
            parameters = list(zip(*(values[name] for name in order), strict=True))
        result = connection.exec_driver_sql(sql, parameters)
        return max(result.rowcount, 0)

    def update_many(
        self, connection: Connection, table: Table, key: str, rows: Sequence[dict[str, Any]]
    ) -> None:
        """`UPDATE table SET ... WHERE key = ...` once per row, through the driver's
        executemany as `bulk_insert` does (each row: the key's value and the new values)."""
        if not rows:
            return
        columns = tuple(rows[0])
        sql, order, converters = self._compiled_update(table, key, columns)
        convert = dict(zip(columns, converters, strict=True))
        names = columns if self.is_postgres else tuple(name[1:] for name in order)
        values = [tuple(_converted(row[name], convert[name]) for name in names) for row in rows]
        if self.is_postgres:
            bound = tuple(f"_{name}" for name in names)
            parameters: list[Any] = [dict(zip(bound, row, strict=True)) for row in values]
        else:
            parameters = values
        connection.exec_driver_sql(sql, parameters)

    def _compiled_update(
        self, table: Table, key: str, columns: tuple[str, ...]
    ) -> tuple[str, tuple[str, ...], tuple[Any, ...]]:
        cache = (table.name, "update", key, columns)
        if cache not in self._compiled_inserts:
            # Bound names are prefixed: SQLAlchemy reserves the column names for SET.
            statement = (
                update(table)
                .where(table.c[key] == bindparam(f"_{key}"))
                .values({c: bindparam(f"_{c}") for c in columns if c != key})
            )
            compiled = statement.compile(dialect=self.engine.dialect)
            order = tuple(compiled.positiontup or ())
            converters = tuple(self._converter(table.c[name]) for name in columns)
            self._compiled_inserts[cache] = (str(compiled), order, converters)
        return self._compiled_inserts[cache]

    def _compiled_insert(
        self, table: Table, columns: tuple[str, ...], ignore_conflicts: bool
    ) -> tuple[str, tuple[str, ...], tuple[Any, ...]]:
        key = (table.name, columns, ignore_conflicts)
        if key not in self._compiled_inserts:
            statement = self.insert(table).values({c: bindparam(c) for c in columns})
            if ignore_conflicts:
                statement = statement.on_conflict_do_nothing()
            compiled = statement.compile(dialect=self.engine.dialect)
            order = tuple(compiled.positiontup or columns)
            converters = tuple(self._converter(table.c[name]) for name in columns)
            self._compiled_inserts[key] = (str(compiled), order, converters)
        return self._compiled_inserts[key]

    def _converter(self, column: Any) -> Any:
        if isinstance(column.type, UtcDateTime):
            if self.is_postgres:
                return lambda value: value.astimezone(UTC).replace(tzinfo=None)
            # SQLAlchemy's SQLite DATETIME text form, so stored values compare as one.
            return lambda value: value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        if isinstance(column.type, JSON):
            return json_dumps
        return None
