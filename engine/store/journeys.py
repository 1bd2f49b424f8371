"""Journeys: each customer's place in a scenario, claimed by workers and moved on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import any_, func, or_, select, update

from engine.store.database import Database
from engine.store.tables import ACTIVE, CUSTOMERS, JOURNEYS

# Ids per `IN (...)`: well under SQLite's limit of 32,766 bound parameters.
_IN_CHUNK = 5000


class ClaimedJourney(NamedTuple):
    """A due journey with the customer data its node needs."""

    id: int
    customer_id: str
    entry: str
    version: str
    node_id: str
    event: dict[str, Any]
    phone: str | None
    region: str | None
    timezone: str | None
    attributes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class JourneyMove:
    """The new position of one journey, written by `Journeys.move`."""

    id: int
    node_id: str
    state: str
    due_at: datetime
    error: str | None = None
    keep_claim: bool = False


class Journeys:
    """Enrolment, claims and moves of journeys."""

    def __init__(self, db: Database):
        self.db = db

    def enrol(
        self,
        *,
        scenario_id: str,
        version: str,
        node_id: str,
        entries: Sequence[tuple[str, str, dict[str, Any]]],
        due_at: datetime,
        once_at_a_time: bool,
    ) -> int:
        """Start journeys for (customer_id, entry, event) triples; returns how many started.

        An entry that already exists is skipped (the unique key makes enrolment
        idempotent). With `once_at_a_time`, a customer whose journey in this scenario is
        still active is skipped too.
        """
        if not entries:
            return 0
        with self.db.engine.begin() as connection:
            if once_at_a_time:
                busy = set(
                    connection.execute(
                        select(JOURNEYS.c.customer_id).where(
                            JOURNEYS.c.scenario_id == scenario_id,
                            JOURNEYS.c.state == ACTIVE,
                            self.db.in_(JOURNEYS.c.customer_id, {e[0] for e in entries}),
                        )
                    ).scalars()
                )
                seen: set[str] = set()
                kept = []
                for entry in entries:
                    if entry[0] not in busy and entry[0] not in seen:
                        seen.add(entry[0])
                        kept.append(entry)
                entries = kept
            rows = [
                {
                    "scenario_id": scenario_id,
                    "version": version,
                    "customer_id": customer_id,
                    "entry": entry,
                    "node_id": node_id,
                    "state": ACTIVE,
                    "due_at": due_at,
                    "event": event_properties,
                    "updated_at": due_at,
                }
                for customer_id, entry, event_properties in entries
            ]
            return self.db.insert_ignoring_conflicts(connection, JOURNEYS, rows, count=True) or 0

    def claim_due(
        self, scenario_id: str, now: datetime, limit: int, lease: timedelta
    ) -> list[ClaimedJourney]:
        """Take up to `limit` due journeys for this worker until `now + lease`.

        The claim is one `UPDATE ... RETURNING`, so two workers never take the same
        journey: SQLite takes its write lock before the statement reads which journeys
        are due; PostgreSQL locks the chosen rows and skips those another worker holds
        (`FOR UPDATE SKIP LOCKED`), choosing them once (`= ANY(ARRAY(...))` is evaluated
        once, where a plain `IN (...)` may be rescanned and choose again).
        """
        due = (
            select(JOURNEYS.c.id)
            .where(
                JOURNEYS.c.scenario_id == scenario_id,
                JOURNEYS.c.state == ACTIVE,
                JOURNEYS.c.due_at <= now,
                or_(JOURNEYS.c.claimed_until.is_(None), JOURNEYS.c.claimed_until < now),
            )
            .order_by(JOURNEYS.c.due_at, JOURNEYS.c.id)
            .limit(limit)
        )
        if self.db.is_postgres:
            chosen = JOURNEYS.c.id == any_(
                func.array(due.with_for_update(skip_locked=True).scalar_subquery())
            )
        else:
            chosen = JOURNEYS.c.id.in_(due.scalar_subquery())
        with self.db.engine.begin() as connection:
            ids = list(
                connection.execute(
                    update(JOURNEYS)
                    .where(chosen)
                    .values(claimed_until=now + lease)
                    .returning(JOURNEYS.c.id)
                ).scalars()
            )
            if not ids:
                return []
            rows = connection.execute(
                select(
                    JOURNEYS.c.id,
                    JOURNEYS.c.customer_id,
                    JOURNEYS.c.entry,
                    JOURNEYS.c.version,
                    JOURNEYS.c.node_id,
                    JOURNEYS.c.event,
                    CUSTOMERS.c.phone,
                    CUSTOMERS.c.region,
                    CUSTOMERS.c.timezone,
                    CUSTOMERS.c.attributes,
                )
                .select_from(
                    JOURNEYS.outerjoin(CUSTOMERS, CUSTOMERS.c.id == JOURNEYS.c.customer_id)
                )
                .where(self.db.in_(JOURNEYS.c.id, ids))
                .order_by(JOURNEYS.c.id)
            )
            return [
                ClaimedJourney(
                    id=row.id,
                    customer_id=row.customer_id,
                    entry=row.entry,
                    version=row.version,
                    node_id=row.node_id,
                    event=row.event or {},
                    phone=row.phone,
                    region=row.region,
                    timezone=row.timezone,
                    attributes=row.attributes or {},
                )
                for row in rows
            ]

    def move(self, moves: Sequence[JourneyMove], now: datetime, lease: datetime) -> None:
        """Write where journeys went; those still moving this tick keep their claim.

        Moves that share a destination (most of a batch) are one UPDATE ... WHERE id IN,
        so a batch costs a few statements rather than a parameter set per journey.
        """
        groups: dict[tuple, list[int]] = {}
        for move in moves:
            claim = lease if move.keep_claim else None
            groups.setdefault(
                (move.node_id, move.state, move.due_at, move.error, claim), []
            ).append(move.id)
        with self.db.engine.begin() as connection:
            for (node_id, state, due_at, error, claim), ids in groups.items():
                for start in range(0, len(ids), _IN_CHUNK):
                    connection.execute(
                        update(JOURNEYS)
                        .where(self.db.in_(JOURNEYS.c.id, ids[start : start + _IN_CHUNK]))
                        .values(
                            node_id=node_id,
                            state=state,
                            due_at=due_at,
                            error=error,
                            claimed_until=claim,
                            updated_at=now,
                        )
                    )

    def release_claims(self, journey_ids: Sequence[int]) -> None:
        if journey_ids:
            with self.db.engine.begin() as connection:
                connection.execute(
                    update(JOURNEYS)
                    .where(self.db.in_(JOURNEYS.c.id, list(journey_ids)))
                    .values(claimed_until=None)
                )

    def next_due(self, scenario_id: str) -> datetime | None:
        with self.db.engine.connect() as connection:
            return connection.execute(
                select(func.min(JOURNEYS.c.due_at)).where(
                    JOURNEYS.c.scenario_id == scenario_id, JOURNEYS.c.state == ACTIVE
                )
            ).scalar_one()

    def counts(self, scenario_id: str) -> list[tuple[str, str, int]]:
        """(node_id, state, count) for one scenario."""
        with self.db.engine.connect() as connection:
            rows = connection.execute(
                select(JOURNEYS.c.node_id, JOURNEYS.c.state, func.count())
                .where(JOURNEYS.c.scenario_id == scenario_id)
                .group_by(JOURNEYS.c.node_id, JOURNEYS.c.state)
                .order_by(JOURNEYS.c.node_id, JOURNEYS.c.state)
            )
            return [(row[0], row[1], row[2]) for row in rows]

    def of_customer(self, customer_id: str) -> list[dict[str, Any]]:
        return self.db.rows(select(JOURNEYS).where(JOURNEYS.c.customer_id == customer_id))
