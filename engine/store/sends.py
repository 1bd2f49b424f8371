"""Message decisions per send key, the intents written before a request, and
the campaign events that track them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, func, select, update

from engine.dispatch import without_sends
from engine.errors import ConcurrentUpdate
from engine.store.database import Database
from engine.store.links import insert_short_links
from engine.store.tables import CAMPAIGN_EVENTS, DISPATCHES, KEYWORD_REPLIES, SENDS


class SendRow(NamedTuple):
    """One stored message decision (see `models.Send` for what each field means)."""

    key: str
    scenario_id: str
    node_id: str
    customer_id: str
    journey_id: int
    phone: str | None
    dispatch_key: str | None
    state: str
    reason: str | None
    parts: int | None
    encoding: str | None
    status_code: str | None
    error: str | None
    comment: str | None
    tracked: bool
    delivery_status: str | None
    test: bool
    created_at: datetime


# Selected in the order of SendRow's fields, so a row tuple builds one directly.
SEND_COLUMNS = tuple(SENDS.c[name] for name in SendRow._fields)


class SendOutcome(NamedTuple):
    """What a send's campaign event needs of it: whose it is and how it was decided.
    Returned by the statement that records the decision, so only these columns."""

    key: str
    node_id: str
    customer_id: str
    phone: str | None
    state: str
    reason: str | None
    parts: int | None
    status_code: str | None
    error: str | None
    comment: str | None
    test: bool


OUTCOME_COLUMNS = tuple(SENDS.c[name] for name in SendOutcome._fields)


class Sends:
    """Sends, their intents and their tracking."""

    def __init__(self, db: Database):
        self.db = db

    def by_key(self, keys: Sequence[str]) -> dict[str, SendRow]:
        rows = self.db.values(select(*SEND_COLUMNS).where(self.db.in_(SENDS.c.key, keys)), SendRow)
        return {row.key: row for row in rows}

    def record(self, rows: Sequence[dict[str, Any]], events: Sequence[dict[str, Any]] = ()) -> None:
        """Record message decisions made before any provider call (suppressed, failed),
        with their campaign events, in one transaction. A decision already stored (an
        earlier attempt's) is kept, and so is its event: the new one is not appended."""
        if not rows:
            return
        columns = {name for row in rows for name in row}
        rows = [{name: row.get(name) for name in columns} for row in rows]
        with self.db.engine.begin() as connection:
            statement = self.db.insert(SENDS).on_conflict_do_nothing().returning(SENDS.c.key)
            inserted = set(connection.execute(statement, rows).scalars())
            self.db.bulk_insert(
                connection, CAMPAIGN_EVENTS, [e for e in events if e["send_key"] in inserted]
            )

    def sent_since(self, customer_ids: Sequence[str], since: datetime) -> dict[str, int]:
        """Messages handed to a provider per customer since `since`, across all scenarios."""
        with self.db.engine.connect() as connection:
            rows = connection.execute(
                select(SENDS.c.customer_id, func.count())
                .where(
                    self.db.in_(SENDS.c.customer_id, list(customer_ids)),
                    SENDS.c.state == "enqueued",
                    SENDS.c.test.is_(False),
                    SENDS.c.scenario_id != KEYWORD_REPLIES,
                    SENDS.c.created_at >= since,
                )
                .group_by(SENDS.c.customer_id)
            )
            return {row[0]: row[1] for row in rows}

    def record_intents(
        self,
        dispatches: Sequence[dict[str, Any]],
        sends: Sequence[dict[str, Any]],
        links: Sequence[dict[str, Any]] = (),
    ) -> None:
        """Write the intent (dispatch payloads, their pending sends and the short links in
        their texts) before any HTTP call.

        A send already stored belongs to the request its row names: another worker that
        held the same journey (its claim lease ran out) put it in a request of its own, or
        decided it otherwise. It is left out of the payload of the request given here (its
        links are that request's), and a request left with nobody is not stored, so no
        message goes out in two requests.
        """
        # In key order: two workers writing intents with the same sends at once lock their
        # rows in the same order on PostgreSQL, rather than each waiting for the other.
        dispatches = sorted(dispatches, key=lambda row: row["key"])
        sends = sorted(sends, key=lambda row: row["key"])
        with self.db.engine.begin() as connection:
            self.db.insert_ignoring_conflicts(connection, DISPATCHES, dispatches)
            inserted = self.db.insert_ignoring_conflicts(connection, SENDS, sends, count=True)
            theirs = self._keep_own_sends(connection, sends) if inserted != len(sends) else set()
            insert_short_links(
                self.db, connection, [link for link in links if link["send_key"] not in theirs]
            )

    def _keep_own_sends(self, connection: Connection, sends: Sequence[dict[str, Any]]) -> set[str]:
        """Take the sends whose stored row names another request (or none) out of the
        payloads of the pending requests `sends` were meant for, deleting those left with
        nobody; returns those sends' keys."""
        meant = {send["key"]: send["dispatch_key"] for send in sends}
        stored = connection.execute(
            select(SENDS.c.key, SENDS.c.dispatch_key).where(self.db.in_(SENDS.c.key, list(meant)))
        )
        others: dict[str, set[str]] = {}
        for key, dispatch_key in stored:
            if dispatch_key != meant[key]:
                others.setdefault(meant[key], set()).add(key)
        if not others:
            return set()
        requests = connection.execute(
            select(DISPATCHES.c.key, DISPATCHES.c.payload).where(
                self.db.in_(DISPATCHES.c.key, list(others)), DISPATCHES.c.state == "pending"
            )
        ).all()
        for dispatch_key, payload in requests:
            kept = without_sends(payload, others[dispatch_key])
            if len(kept["send_keys"]) == len(payload["send_keys"]):
                continue  # stored by an earlier attempt that left them out already
            this = DISPATCHES.c.key == dispatch_key
            if kept["send_keys"]:
                connection.execute(update(DISPATCHES).where(this).values(payload=kept))
            else:
                connection.execute(DISPATCHES.delete().where(this))
        return {key for keys in others.values() for key in keys}

    def track(self, events: Sequence[dict[str, Any]]) -> None:
        """Append campaign events and mark their sends tracked, in one transaction.

        Only sends not yet tracked are marked, so a retried step never appends twice.
        """
        if not events:
            return
        keys = [e["send_key"] for e in events if e.get("send_key")]
        with self.db.engine.begin() as connection:
            if keys:
                result = connection.execute(
                    update(SENDS)
                    .where(self.db.in_(SENDS.c.key, keys), SENDS.c.tracked.is_(False))
                    .values(tracked=True)
                )
                if result.rowcount != len(keys):
                    # Another attempt tracked some of these meanwhile; raising rolls this
                    # transaction back and the step is retried with what is left.
                    raise ConcurrentUpdate("campaign events were tracked concurrently; retry")
            self.db.bulk_insert(connection, CAMPAIGN_EVENTS, events)
