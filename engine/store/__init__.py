"""The journey store: every read and write the engine makes, as named operations on small
repositories by domain, behind one facade that opens the database once.

    store = Store(url)
    store.customers     customers, consents, phone opt-outs, customer events
    store.scenarios     scenario records and their versions' definitions
    store.journeys      enrolment, claims and moves
    store.sends         message decisions, intents, tracking
    store.dispatches    stored provider requests: taken, answered, withheld
    store.reports       delivery reports
    store.inbound       inbound messages and what they cause
    store.links         short links and clicks
    store.evaluation    what evaluations read

Hot paths (enrolment, claims, moves, sends, campaign events) are bulk Core statements:
one statement per batch, never one ORM object per row. The database itself (SQLite or
PostgreSQL, the schema check, bulk mechanics) is `database.py`, the tables `models.py`.
A write that finds another process wrote the same rows first raises `ConcurrentUpdate`
and writes nothing.

Rows come out typed (`CustomerRow`, `ScenarioRow`, `ClaimedJourney`, `SendRow`,
`SendOutcome`, `DispatchRow`): named tuples, immutable and built straight from the row
tuple. Not frozen dataclasses: their `__init__` sets each field through
`object.__setattr__`, 3 us for an 18-field send against 0.3 us for a named tuple, paid per
row on the hot reads.
"""

from __future__ import annotations

import secrets

from sqlalchemy import Engine, select

from engine.store.customers import CustomerRow, Customers
from engine.store.database import Database
from engine.store.dispatches import Dispatches, DispatchRow
from engine.store.evaluation import Evaluation
from engine.store.inbound import Inbound
from engine.store.journeys import ClaimedJourney, JourneyMove, Journeys
from engine.store.links import Links
from engine.store.reports import Reports
from engine.store.scenarios import ScenarioRow, Scenarios
from engine.store.sends import SendOutcome, SendRow, Sends
from engine.store.tables import ACTIVE, DONE, FAILED, KEYWORD_REPLIES, SECRETS

__all__ = [
    "ACTIVE",
    "DONE",
    "FAILED",
    "KEYWORD_REPLIES",
    "ClaimedJourney",
    "CustomerRow",
    "DispatchRow",
    "JourneyMove",
    "ScenarioRow",
    "SendOutcome",
    "SendRow",
    "Store",
]


class Store:
    """One database and its repositories."""

    def __init__(self, url: str):
        self.url = url
        self.db = Database(url)
        self.customers = Customers(self.db)
        self.scenarios = Scenarios(self.db)
        self.journeys = Journeys(self.db)
        self.sends = Sends(self.db)
        self.dispatches = Dispatches(self.db)
        self.reports = Reports(self.db)
        self.inbound = Inbound(self.db)
        self.links = Links(self.db)
        self.evaluation = Evaluation(self.db)
        self._secrets: dict[str, str] = {}

    @property
    def engine(self) -> Engine:
        return self.db.engine

    @property
    def is_postgres(self) -> bool:
        return self.db.is_postgres

    def close(self) -> None:
        self.db.close()

    def secret(self, name: str) -> str:
        """The project's secret `name`, made at random the first time it is asked for."""
        if name not in self._secrets:
            with self.engine.begin() as connection:
                self.db.insert_ignoring_conflicts(
                    connection, SECRETS, [{"name": name, "value": secrets.token_hex(32)}]
                )
                self._secrets[name] = connection.execute(
                    select(SECRETS.c.value).where(SECRETS.c.name == name)
                ).scalar_one()
        return self._secrets[name]
