"""Short links in sent messages and the clicks on them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from engine.errors import ConcurrentUpdate
from engine.store.database import Database
from engine.store.tables import CAMPAIGN_EVENTS, SHORT_LINKS


def insert_short_links(
    db: Database, connection: Connection, rows: Sequence[dict[str, Any]]
) -> None:
    """Insert short links, in the transaction of their messages' intent; a retried send
    step's are there already. A code another message took meanwhile (two workers, the
    same new code) raises, rolling the whole intent back: the next attempt's render sees
    the code taken and derives another."""
    if not rows:
        return
    db.insert_ignoring_conflicts(connection, SHORT_LINKS, rows)
    owners = _owners(db, connection, [row["code"] for row in rows])
    if any(owners.get(row["code"]) != (row["send_key"], row["position"]) for row in rows):
        raise ConcurrentUpdate("a short link code was taken concurrently; retry")


def _owners(
    db: Database, connection: Connection, codes: Sequence[str]
) -> dict[str, tuple[str, int]]:
    rows = connection.execute(
        select(SHORT_LINKS.c.code, SHORT_LINKS.c.send_key, SHORT_LINKS.c.position).where(
            db.in_(SHORT_LINKS.c.code, list(codes))
        )
    )
    return {row.code: (row.send_key, row.position) for row in rows}


class Links:
    """Short links by code, who owns each, and their clicks."""

    def __init__(self, db: Database):
        self.db = db

    def owners(self, codes: Sequence[str]) -> dict[str, tuple[str, int]]:
        """The send key and position of each stored link among `codes`."""
        if not codes:
            return {}
        with self.db.engine.connect() as connection:
            return _owners(self.db, connection, codes)

    def get(self, code: str) -> dict[str, Any] | None:
        return self.db.first(select(SHORT_LINKS).where(SHORT_LINKS.c.code == code))

    def record_click(self, code: str, now: datetime, event: dict[str, Any]) -> bool:
        """Count a click on `code` and append its campaign event, in one transaction.
        Returns whether it was the link's first click (decided by the database, so two
        clicks at once cannot both be first)."""
        with self.db.engine.begin() as connection:
            first = connection.execute(
                update(SHORT_LINKS)
                .where(SHORT_LINKS.c.code == code, SHORT_LINKS.c.first_clicked_at.is_(None))
                .values(first_clicked_at=now)
            ).rowcount
            connection.execute(
                update(SHORT_LINKS)
                .where(SHORT_LINKS.c.code == code)
                .values(clicks=SHORT_LINKS.c.clicks + 1)
            )
            connection.execute(insert(CAMPAIGN_EVENTS), [event])
            return first == 1
