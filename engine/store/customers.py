"""Customers, their consents and phone opt-outs, and the events they cause."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, func, insert, select

from engine.phones import phone_region
from engine.store.database import Database
from engine.store.tables import CONSENT_CHANGES, CONSENTS, CUSTOMERS, EVENTS, OPT_OUTS


class CustomerRow(NamedTuple):
    """One stored customer: phone and timezone are in `attributes` too, where templates
    read them; `region` is the phone's country, worked out on import."""

    id: str
    phone: str | None
    region: str | None
    timezone: str | None
    attributes: dict[str, Any]
    updated_at: datetime


# Selected in the order of CustomerRow's fields, so a row tuple builds one directly.
_COLUMNS = tuple(CUSTOMERS.c[name] for name in CustomerRow._fields)


def write_consents(db: Database, connection: Connection, changes: Sequence[dict[str, Any]]) -> None:
    """Append consent changes to the ledger and set the current state, in `connection`'s
    transaction (inbound STOP replies write them with their messages)."""
    connection.execute(insert(CONSENT_CHANGES), list(changes))
    statement = db.insert(CONSENTS)
    statement = statement.on_conflict_do_update(
        index_elements=[CONSENTS.c.customer_id, CONSENTS.c.category],
        set_={
            "granted": statement.excluded.granted,
            "updated_at": statement.excluded.updated_at,
        },
    )
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for change in changes:
        latest[(change["customer_id"], change["category"])] = {
            "customer_id": change["customer_id"],
            "category": change["category"],
            "granted": change["granted"],
            "updated_at": change["at"],
        }
    connection.execute(statement, list(latest.values()))


class Customers:
    """Customers, consents, opt-outs and customer events."""

    def __init__(self, db: Database):
        self.db = db

    def upsert(self, rows: Sequence[dict[str, Any]], now: datetime) -> None:
        """Insert or update customers; given attributes are merged into the stored ones."""
        if not rows:
            return
        ids = [row["id"] for row in rows]
        with self.db.engine.begin() as connection:
            stored = dict(
                connection.execute(
                    select(CUSTOMERS.c.id, CUSTOMERS.c.attributes).where(
                        self.db.in_(CUSTOMERS.c.id, ids)
                    )
                ).all()
            )
            values = []
            for row in rows:
                # phone and timezone live in the attributes too (templates read them there)
                # and in their own columns (the send path reads those).
                given = {k: row[k] for k in ("phone", "timezone") if row.get(k) is not None}
                attributes = {**stored.get(row["id"], {}), **row.get("attributes", {}), **given}
                phone = attributes.get("phone")
                values.append(
                    {
                        "id": row["id"],
                        "phone": phone,
                        "region": phone_region(phone) if phone else None,
                        "timezone": attributes.get("timezone"),
                        "attributes": attributes,
                        "updated_at": now,
                    }
                )
            statement = self.db.insert(CUSTOMERS)
            statement = statement.on_conflict_do_update(
                index_elements=[CUSTOMERS.c.id],
                set_={
                    "phone": statement.excluded.phone,
                    "region": statement.excluded.region,
                    "timezone": statement.excluded.timezone,
                    "attributes": statement.excluded.attributes,
                    "updated_at": statement.excluded.updated_at,
                },
            )
            connection.execute(statement, values)

    def get(self, customer_id: str) -> CustomerRow | None:
        found = self.db.values(select(*_COLUMNS).where(CUSTOMERS.c.id == customer_id), CustomerRow)
        return found[0] if found else None

    def pages(self, page_size: int) -> Iterator[list[CustomerRow]]:
        """Every customer, in pages, by keyset on the id so memory stays flat."""
        after = ""
        while True:
            page = self.db.values(
                select(*_COLUMNS)
                .where(CUSTOMERS.c.id > after)
                .order_by(CUSTOMERS.c.id)
                .limit(page_size),
                CustomerRow,
            )
            if not page:
                return
            yield page
            after = page[-1].id

    def by_id(self, ids: Iterable[str]) -> dict[str, CustomerRow]:
        query = select(*_COLUMNS).where(self.db.in_(CUSTOMERS.c.id, list(ids)))
        return {row.id: row for row in self.db.values(query, CustomerRow)}

    def by_phone(self, phones: Iterable[str]) -> dict[str, list[str]]:
        """The ids of the customers with each phone (several customers may share one)."""
        found: dict[str, list[str]] = {}
        with self.db.engine.connect() as connection:
            rows = connection.execute(
                select(CUSTOMERS.c.phone, CUSTOMERS.c.id)
                .where(self.db.in_(CUSTOMERS.c.phone, list(phones)))
                .order_by(CUSTOMERS.c.id)
            )
            for phone, customer_id in rows:
                found.setdefault(phone, []).append(customer_id)
        return found

    def count(self) -> int:
        with self.db.engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(CUSTOMERS)).scalar_one()

    # -- consents and opt-outs ---------------------------------------------------------

    def change_consents(self, changes: Sequence[dict[str, Any]]) -> None:
        """Record grants and revocations: the current state and the ledger, together.

        Each change: customer_id, category, granted, source, at, details.
        """
        if changes:
            with self.db.engine.begin() as connection:
                write_consents(self.db, connection, changes)

    def consented(self, customer_ids: Sequence[str], category: str) -> set[str]:
        """The customers among `customer_ids` who currently grant `category`."""
        with self.db.engine.connect() as connection:
            rows = connection.execute(
                select(CONSENTS.c.customer_id).where(
                    self.db.in_(CONSENTS.c.customer_id, customer_ids),
                    CONSENTS.c.category == category,
                    CONSENTS.c.granted.is_(True),
                )
            )
            return {row.customer_id for row in rows}

    def opted_out_phones(self, phones: Iterable[str], category: str) -> set[str]:
        """The phones among `phones` that texted STOP for `category` and not START since."""
        with self.db.engine.connect() as connection:
            rows = connection.execute(
                select(OPT_OUTS.c.phone).where(
                    self.db.in_(OPT_OUTS.c.phone, list(phones)), OPT_OUTS.c.category == category
                )
            )
            return set(rows.scalars())

    def consent_history(self, customer_id: str) -> list[dict[str, Any]]:
        return self.db.rows(
            select(CONSENT_CHANGES)
            .where(CONSENT_CHANGES.c.customer_id == customer_id)
            .order_by(CONSENT_CHANGES.c.id)
        )

    # -- customer events ---------------------------------------------------------------

    def track_events(self, rows: Sequence[dict[str, Any]]) -> None:
        """Append customer events: customer_id, type, properties, at."""
        if rows:
            with self.db.engine.begin() as connection:
                connection.execute(insert(EVENTS), list(rows))

    def last_event_id(self) -> int:
        with self.db.engine.connect() as connection:
            return connection.execute(select(func.coalesce(func.max(EVENTS.c.id), 0))).scalar_one()

    def events_after(self, event_type: str, after_id: int, limit: int) -> list[dict[str, Any]]:
        return self.db.rows(
            select(EVENTS)
            .where(EVENTS.c.type == event_type, EVENTS.c.id > after_id)
            .order_by(EVENTS.c.id)
            .limit(limit)
        )
