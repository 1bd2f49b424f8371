"""Delivery reports: stored as they arrive, applied to their sends once decided."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, literal_column, select

from engine.errors import ConcurrentUpdate
from engine.store.database import Database
from engine.store.sends import SEND_COLUMNS, SendRow
from engine.store.tables import CAMPAIGN_EVENTS, REPORTS, SENDS


class Reports:
    """Delivery reports and the sends they are about."""

    def __init__(self, db: Database):
        self.db = db

    def store(self, batches: Sequence[Sequence[dict[str, Any]]]) -> list[int]:
        """Store batches of reports (one per webhook request) in one transaction; a
        duplicate (same dedupe key) is stored once. Returns how many of each were new."""
        with self.db.engine.begin() as connection:
            return [
                self.db.insert_ignoring_conflicts(connection, REPORTS, rows, count=True) or 0
                for rows in batches
            ]

    def pending(self, limit: int) -> list[dict[str, Any]]:
        # The literal (a constant, not input) matches the partial index's condition, which
        # a bound parameter would not.
        pending = REPORTS.c.state == literal_column("'pending'")
        return self.db.rows(select(REPORTS).where(pending).order_by(REPORTS.c.id).limit(limit))

    def stored_keys(self, dedupe_keys: Iterable[str]) -> set[str]:
        """The dedupe keys among `dedupe_keys` of reports already stored."""
        with self.db.engine.connect() as connection:
            rows = connection.execute(
                select(REPORTS.c.dedupe_key).where(
                    self.db.in_(REPORTS.c.dedupe_key, list(dedupe_keys))
                )
            )
            return set(rows.scalars())

    def record(
        self,
        rows: Sequence[dict[str, Any]],
        send_statuses: dict[str, str],
        events: Sequence[dict[str, Any]],
        read_statuses: dict[str, str | None],
    ) -> None:
        """New reports, already decided (state applied, ignored or pending), with their
        sends' delivery statuses and campaign events, in one transaction. A report stored
        meanwhile by someone else, or a send whose status changed since `read_statuses`
        were read (another applier), rolls it all back: the decisions would be stale."""
        with self.db.engine.begin() as connection:
            inserted = self.db.insert_ignoring_conflicts(connection, REPORTS, rows, count=True)
            if inserted != len(rows):
                raise ConcurrentUpdate("delivery reports were stored concurrently; nothing applied")
            # The insert holds SQLite's write lock; PostgreSQL locks the sends' rows.
            now_statuses = select(SENDS.c.key, SENDS.c.delivery_status).where(
                self.db.in_(SENDS.c.key, list(read_statuses))
            )
            if self.db.is_postgres:
                now_statuses = now_statuses.with_for_update()
            current = {key: status for key, status in connection.execute(now_statuses)}
            if current != read_statuses:
                raise ConcurrentUpdate("sends were updated concurrently; nothing applied")
            self._apply(connection, [], send_statuses, events)

    def sends_for(self, reports: Sequence[dict[str, Any]]) -> list[SendRow | None]:
        """The send each report is about (None when not recorded), in the order of
        `reports`: by its send key, or by the dispatch key and recipient (Sinch SMS reports
        name the request and the number)."""
        keys = {r["send_key"] for r in reports if r["send_key"]}
        dispatches = {r["dispatch_key"] for r in reports if r["dispatch_key"] and not r["send_key"]}
        by_key: dict[str, SendRow] = {}
        by_dispatch: dict[tuple[str | None, str | None], SendRow] = {}
        if keys:
            query = select(*SEND_COLUMNS).where(self.db.in_(SENDS.c.key, keys))
            for send in self.db.values(query, SendRow):
                by_key[send.key] = send
        if dispatches:
            query = select(*SEND_COLUMNS).where(self.db.in_(SENDS.c.dispatch_key, dispatches))
            for send in self.db.values(query, SendRow):
                by_dispatch[(send.dispatch_key, send.phone)] = send
        return [
            by_key.get(report["send_key"])
            or by_dispatch.get((report["dispatch_key"], report["recipient"]))
            for report in reports
        ]

    def enqueue_events(self, send_keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The properties of the campaign event tracked for each send key (its enqueue
        event), as {"properties": ...}: what later events of the send copy."""
        if not send_keys:
            return {}
        query = select(CAMPAIGN_EVENTS.c.send_key, CAMPAIGN_EVENTS.c.properties).where(
            self.db.in_(CAMPAIGN_EVENTS.c.send_key, send_keys)
        )
        return {row["send_key"]: row for row in self.db.rows(query)}

    def apply(
        self,
        resolutions: Sequence[tuple[int, str, str | None]],
        send_statuses: dict[str, str],
        events: Sequence[dict[str, Any]],
    ) -> None:
        """Mark pending reports applied or ignored, set their sends' delivery status and
        append their campaign events, in one transaction. If another process (a tick, a
        webhook) applied any of them meanwhile, nothing is written: their events would be
        doubled."""
        with self.db.engine.begin() as connection:
            ids = [report_id for report_id, _state, _note in resolutions]
            still_pending = select(REPORTS.c.id).where(
                self.db.in_(REPORTS.c.id, ids), REPORTS.c.state == "pending"
            )
            if self.db.is_postgres:  # a second applier waits here, then finds them applied
                still_pending = still_pending.with_for_update()
            if len(connection.execute(still_pending).all()) != len(set(ids)):
                raise ConcurrentUpdate(
                    "delivery reports were applied concurrently; nothing applied"
                )
            self._apply(connection, resolutions, send_statuses, events)

    def _apply(
        self,
        connection: Connection,
        resolutions: Sequence[tuple[int, str, str | None]],
        send_statuses: dict[str, str],
        events: Sequence[dict[str, Any]],
    ) -> None:
        self.db.update_many(
            connection,
            REPORTS,
            "id",
            [{"id": i, "state": state, "note": note} for i, state, note in resolutions],
        )
        self.db.update_many(
            connection,
            SENDS,
            "key",
            [{"key": k, "delivery_status": status} for k, status in send_statuses.items()],
        )
        self.db.bulk_insert(connection, CAMPAIGN_EVENTS, events)
