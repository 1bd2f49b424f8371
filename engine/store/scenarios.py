"""Launched scenarios, their versions' definitions, and where their triggers stand."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import insert, select, update

from engine.store.database import Database
from engine.store.tables import SCENARIOS, VERSIONS


class ScenarioRow(NamedTuple):
    """A launched scenario: its running version and where its trigger stands (see
    `models.ScenarioRecord`)."""

    id: str
    name: str
    version: str
    source: str
    status: str
    launched_at: datetime
    event_cursor: int
    next_fire_at: datetime | None


# Selected in the order of ScenarioRow's fields, so a row tuple builds one directly.
_COLUMNS = tuple(SCENARIOS.c[name] for name in ScenarioRow._fields)


class Scenarios:
    """Scenario records (one per scenario id: its running version and trigger state) and
    the definitions of every version launched."""

    def __init__(self, db: Database):
        self.db = db
        self._trigger_events: dict[tuple[str, str], frozenset[str | None]] = {}

    def save(
        self,
        *,
        scenario_id: str,
        name: str,
        version: str,
        source: str,
        definition: dict[str, Any],
        now: datetime,
        event_cursor: int,
        next_fire_at: datetime | None,
    ) -> bool:
        """Register a scenario version and make it the running one.

        Returns False when this exact version was already running (a repeated launch),
        in which case the cursor and schedule are left as they were.
        """
        with self.db.engine.begin() as connection:
            self.db.insert_ignoring_conflicts(
                connection,
                VERSIONS,
                [
                    {
                        "scenario_id": scenario_id,
                        "version": version,
                        "definition": definition,
                        "created_at": now,
                    }
                ],
            )
            current = connection.execute(
                select(SCENARIOS.c.version, SCENARIOS.c.status).where(SCENARIOS.c.id == scenario_id)
            ).first()
            if current is not None and current.version == version:
                connection.execute(
                    update(SCENARIOS).where(SCENARIOS.c.id == scenario_id).values(status="running")
                )
                return False
            values = {
                "name": name,
                "version": version,
                "source": source,
                "status": "running",
                "launched_at": now,
                "event_cursor": event_cursor,
                "next_fire_at": next_fire_at,
            }
            if current is None:
                connection.execute(insert(SCENARIOS), [{"id": scenario_id, **values}])
            else:
                connection.execute(
                    update(SCENARIOS).where(SCENARIOS.c.id == scenario_id).values(**values)
                )
            return True

    def record(self, scenario_id: str) -> ScenarioRow | None:
        found = self.db.values(select(*_COLUMNS).where(SCENARIOS.c.id == scenario_id), ScenarioRow)
        return found[0] if found else None

    def records(self, status: str | None = None) -> list[ScenarioRow]:
        query = select(*_COLUMNS).order_by(SCENARIOS.c.id)
        if status is not None:
            query = query.where(SCENARIOS.c.status == status)
        return self.db.values(query, ScenarioRow)

    def definition(self, scenario_id: str, version: str) -> dict[str, Any]:
        with self.db.engine.connect() as connection:
            return connection.execute(
                select(VERSIONS.c.definition).where(
                    VERSIONS.c.scenario_id == scenario_id, VERSIONS.c.version == version
                )
            ).scalar_one()

    def update(self, scenario_id: str, **values: Any) -> None:
        """Set status, event_cursor or next_fire_at of one scenario."""
        allowed = {"status", "event_cursor", "next_fire_at"}
        if unknown := set(values) - allowed:
            raise ValueError(f"cannot update scenario fields {sorted(unknown)}")
        with self.db.engine.begin() as connection:
            connection.execute(
                update(SCENARIOS).where(SCENARIOS.c.id == scenario_id).values(**values)
            )

    def triggered_by(self, event_types: Iterable[str]) -> list[str]:
        """Running scenarios whose trigger listens for one of `event_types`."""
        wanted = set(event_types)
        found = []
        for record in self.records(status="running"):
            version = (record.id, record.version)
            # A version never changes, so its trigger events are read once per process.
            if version not in self._trigger_events:
                nodes = self.definition(*version).get("nodes", [])
                self._trigger_events[version] = frozenset(
                    node.get("event") for node in nodes if node.get("type") == "trigger"
                )
            if self._trigger_events[version] & wanted:
                found.append(record.id)
        return found
