"""Inbound messages (keywords, replies) and everything they cause."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select

from engine.store.customers import write_consents
from engine.store.database import Database
from engine.store.tables import DISPATCHES, EVENTS, INBOUND, OPT_OUTS, SENDS


class Inbound:
    """Inbound messages."""

    def __init__(self, db: Database):
        self.db = db

    def known(self, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """The (provider, message_id) pairs among `keys` already received."""
        wanted = set(keys)
        with self.db.engine.connect() as connection:
            rows = connection.execute(
                select(INBOUND.c.provider, INBOUND.c.message_id).where(
                    self.db.in_(INBOUND.c.message_id, [message_id for _, message_id in wanted])
                )
            )
            return {(provider, message_id) for provider, message_id in rows} & wanted

    def record(
        self,
        messages: Sequence[dict[str, Any]],
        consent_changes: Sequence[dict[str, Any]],
        events: Sequence[dict[str, Any]],
        dispatches: Sequence[dict[str, Any]],
        sends: Sequence[dict[str, Any]],
        phone_changes: Sequence[dict[str, Any]] = (),
    ) -> None:
        """Inbound messages and all they cause, in one transaction: consent changes, phone
        opt-outs (`opted_out` True: STOP, False: START), customer events, and the replies'
        intents (sent after). A message received meanwhile by another request breaks its
        unique key and rolls everything back."""
        if not messages:
            return
        with self.db.engine.begin() as connection:
            connection.execute(insert(INBOUND), list(messages))
            if consent_changes:
                write_consents(self.db, connection, consent_changes)
            for change in phone_changes:  # a few per request, in order: STOP then START
                key = (OPT_OUTS.c.phone == change["phone"]) & (
                    OPT_OUTS.c.category == change["category"]
                )
                connection.execute(OPT_OUTS.delete().where(key))
                if change["opted_out"]:
                    row = {k: change[k] for k in ("phone", "category", "message_id", "at")}
                    connection.execute(insert(OPT_OUTS), [row])
            if events:
                connection.execute(insert(EVENTS), list(events))
            self.db.insert_ignoring_conflicts(connection, DISPATCHES, dispatches)
            self.db.insert_ignoring_conflicts(connection, SENDS, sends)

    def latest_keywords(
        self, phones: Iterable[str], since: datetime
    ) -> dict[str, tuple[str, list[str], str]]:
        """Per phone, its latest keyword message received since `since`: (keyword, text
        parts, the id of the message acted on: its own, or the one it repeats)."""
        acted_on = func.coalesce(INBOUND.c.repeat_of, INBOUND.c.message_id).label("acted_on")
        rows = self.db.rows(
            select(INBOUND.c.sender, INBOUND.c.keyword, INBOUND.c.texts, acted_on)
            .where(
                self.db.in_(INBOUND.c.sender, list(phones)),
                INBOUND.c.received_at >= since,
                INBOUND.c.keyword.is_not(None),
            )
            .order_by(INBOUND.c.id)
        )
        return {row["sender"]: (row["keyword"], row["texts"], row["acted_on"]) for row in rows}

    def messages(self, limit: int = 50) -> list[dict[str, Any]]:
        """The latest inbound messages, newest first, each with its reply's `reply_state`
        (pending, enqueued, enqueue_failed, or None when none was due)."""
        return self.db.rows(
            select(INBOUND, SENDS.c.state.label("reply_state"))
            .join(SENDS, SENDS.c.key == INBOUND.c.reply_key, isouter=True)
            .order_by(INBOUND.c.id.desc())
            .limit(limit)
        )
