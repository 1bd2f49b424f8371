"""The journey store: every read and write the engine makes, as named operations.

Hot paths (enrolment, claims, moves, sends, campaign events) are bulk Core statements:
one statement per batch, never one ORM object per row. The database itself (SQLite or
PostgreSQL, the schema check, bulk mechanics) is `engine/database.py`.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Table,
    any_,
    bindparam,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)

from engine.database import Database, bucket_start
from engine.dispatch import without_sends
from engine.models import (
    CampaignEvent,
    Consent,
    ConsentChange,
    Customer,
    CustomerEvent,
    DeliveryReportRecord,
    Dispatch,
    InboundMessageRecord,
    Journey,
    PhoneOptOut,
    ProjectSecret,
    ScenarioRecord,
    ScenarioVersion,
    Send,
    ShortLink,
)
from engine.phones import phone_region

CUSTOMERS: Table = Customer.__table__  # type: ignore[assignment]
CONSENTS: Table = Consent.__table__  # type: ignore[assignment]
CONSENT_CHANGES: Table = ConsentChange.__table__  # type: ignore[assignment]
EVENTS: Table = CustomerEvent.__table__  # type: ignore[assignment]
SCENARIOS: Table = ScenarioRecord.__table__  # type: ignore[assignment]
VERSIONS: Table = ScenarioVersion.__table__  # type: ignore[assignment]
JOURNEYS: Table = Journey.__table__  # type: ignore[assignment]
DISPATCHES: Table = Dispatch.__table__  # type: ignore[assignment]
SENDS: Table = Send.__table__  # type: ignore[assignment]
CAMPAIGN_EVENTS: Table = CampaignEvent.__table__  # type: ignore[assignment]
REPORTS: Table = DeliveryReportRecord.__table__  # type: ignore[assignment]
INBOUND: Table = InboundMessageRecord.__table__  # type: ignore[assignment]
OPT_OUTS: Table = PhoneOptOut.__table__  # type: ignore[assignment]
SECRETS: Table = ProjectSecret.__table__  # type: ignore[assignment]
SHORT_LINKS: Table = ShortLink.__table__  # type: ignore[assignment]

ACTIVE, DONE, FAILED = "active", "done", "failed"
# The scenario id under which keyword replies' sends and campaign events are recorded:
# they belong to no scenario, and no frequency policy counts them.
KEYWORD_REPLIES = "keyword-replies"
# What the runtime reads of a customer.
_CUSTOMER_FIELDS = (
    CUSTOMERS.c.id,
    CUSTOMERS.c.phone,
    CUSTOMERS.c.region,
    CUSTOMERS.c.timezone,
    CUSTOMERS.c.attributes,
)
# Ids per `IN (...)`: well under SQLite's limit of 32,766 bound parameters.
_IN_CHUNK = 5000


@dataclass(frozen=True)
class ClaimedJourney:
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


@dataclass(frozen=True)
class JourneyMove:
    """The new position of one journey, written by `Store.move_journeys`."""

    id: int
    node_id: str
    state: str
    due_at: datetime
    error: str | None = None
    keep_claim: bool = False


def _evaluated(scenario_id: str) -> tuple[Any, ...]:
    """The campaign events the evaluation counts: the scenario's, test sends left out."""
    return (CAMPAIGN_EVENTS.c.scenario_id == scenario_id, CAMPAIGN_EVENTS.c.test.is_(False))


def _code(value: int | str | None) -> str | None:
    return None if value is None else str(value)


class Store:
    """Named reads and writes over one database."""

    def __init__(self, url: str):
        self.url = url
        self.db = Database(url)
        self.engine = self.db.engine
        self._trigger_events: dict[tuple[str, str], frozenset[str | None]] = {}
        self._secrets: dict[str, str] = {}

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

    # -- customers -------------------------------------------------------------------

    def upsert_customers(self, rows: Sequence[dict[str, Any]], now: datetime) -> None:
        """Insert or update customers; given attributes are merged into the stored ones."""
        if not rows:
            return
        ids = [row["id"] for row in rows]
        with self.engine.begin() as connection:
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

    def customer(self, customer_id: str) -> dict[str, Any] | None:
        return self.db.first(select(CUSTOMERS).where(CUSTOMERS.c.id == customer_id))

    def customer_pages(self, page_size: int) -> Iterator[list[dict[str, Any]]]:
        """Every customer, in pages, by keyset on the id so memory stays flat."""
        after = ""
        columns = _CUSTOMER_FIELDS
        while True:
            page = self.db.rows(
                select(*columns)
                .where(CUSTOMERS.c.id > after)
                .order_by(CUSTOMERS.c.id)
                .limit(page_size)
            )
            if not page:
                return
            yield page
            after = page[-1]["id"]

    def customers_by_id(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        columns = _CUSTOMER_FIELDS
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(*columns).where(self.db.in_(CUSTOMERS.c.id, list(ids)))
            )
            return {row.id: dict(row._mapping) for row in rows}

    def customers_by_phone(self, phones: Iterable[str]) -> dict[str, list[str]]:
        """The ids of the customers with each phone (several customers may share one)."""
        found: dict[str, list[str]] = {}
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(CUSTOMERS.c.phone, CUSTOMERS.c.id)
                .where(self.db.in_(CUSTOMERS.c.phone, list(phones)))
                .order_by(CUSTOMERS.c.id)
            )
            for phone, customer_id in rows:
                found.setdefault(phone, []).append(customer_id)
        return found

    def count_customers(self) -> int:
        with self.engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(CUSTOMERS)).scalar_one()

    # -- consents --------------------------------------------------------------------

    def change_consents(self, changes: Sequence[dict[str, Any]]) -> None:
        """Record grants and revocations: the current state and the ledger, together.

        Each change: customer_id, category, granted, source, at, details.
        """
        if changes:
            with self.engine.begin() as connection:
                self._write_consents(connection, changes)

    def _write_consents(self, connection: Connection, changes: Sequence[dict[str, Any]]) -> None:
        connection.execute(insert(CONSENT_CHANGES), list(changes))
        statement = self.db.insert(CONSENTS)
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

    def consented(self, customer_ids: Sequence[str], category: str) -> set[str]:
        """The customers among `customer_ids` who currently grant `category`."""
        with self.engine.connect() as connection:
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
        with self.engine.connect() as connection:
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

    # -- customer events -------------------------------------------------------------

    def track_events(self, rows: Sequence[dict[str, Any]]) -> None:
        """Append customer events: customer_id, type, properties, at."""
        if rows:
            with self.engine.begin() as connection:
                connection.execute(insert(EVENTS), list(rows))

    def event_triggered_scenarios(self, event_types: Iterable[str]) -> list[str]:
        """Running scenarios whose trigger listens for one of `event_types`."""
        wanted = set(event_types)
        found = []
        for record in self.scenario_records(status="running"):
            version = (record["id"], record["version"])
            # A version never changes, so its trigger events are read once per process.
            if version not in self._trigger_events:
                nodes = self.scenario_definition(*version).get("nodes", [])
                self._trigger_events[version] = frozenset(
                    node.get("event") for node in nodes if node.get("type") == "trigger"
                )
            if self._trigger_events[version] & wanted:
                found.append(record["id"])
        return found

    def last_event_id(self) -> int:
        with self.engine.connect() as connection:
            return connection.execute(select(func.coalesce(func.max(EVENTS.c.id), 0))).scalar_one()

    def events_after(self, event_type: str, after_id: int, limit: int) -> list[dict[str, Any]]:
        return self.db.rows(
            select(EVENTS)
            .where(EVENTS.c.type == event_type, EVENTS.c.id > after_id)
            .order_by(EVENTS.c.id)
            .limit(limit)
        )

    # -- scenarios -------------------------------------------------------------------

    def save_scenario(
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
        with self.engine.begin() as connection:
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

    def scenario_record(self, scenario_id: str) -> dict[str, Any] | None:
        return self.db.first(select(SCENARIOS).where(SCENARIOS.c.id == scenario_id))

    def scenario_records(self, status: str | None = None) -> list[dict[str, Any]]:
        query = select(SCENARIOS).order_by(SCENARIOS.c.id)
        if status is not None:
            query = query.where(SCENARIOS.c.status == status)
        return self.db.rows(query)

    def scenario_definition(self, scenario_id: str, version: str) -> dict[str, Any]:
        with self.engine.connect() as connection:
            return connection.execute(
                select(VERSIONS.c.definition).where(
                    VERSIONS.c.scenario_id == scenario_id, VERSIONS.c.version == version
                )
            ).scalar_one()

    def update_scenario(self, scenario_id: str, **values: Any) -> None:
        """Set status, event_cursor or next_fire_at of one scenario."""
        allowed = {"status", "event_cursor", "next_fire_at"}
        if unknown := set(values) - allowed:
            raise ValueError(f"cannot update scenario fields {sorted(unknown)}")
        with self.engine.begin() as connection:
            connection.execute(
                update(SCENARIOS).where(SCENARIOS.c.id == scenario_id).values(**values)
            )

    # -- journeys --------------------------------------------------------------------

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
        with self.engine.begin() as connection:
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
        if self.is_postgres:
            chosen = JOURNEYS.c.id == any_(
                func.array(due.with_for_update(skip_locked=True).scalar_subquery())
            )
        else:
            chosen = JOURNEYS.c.id.in_(due.scalar_subquery())
        with self.engine.begin() as connection:
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

    def move_journeys(self, moves: Sequence[JourneyMove], now: datetime, lease: datetime) -> None:
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
        with self.engine.begin() as connection:
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
            with self.engine.begin() as connection:
                connection.execute(
                    update(JOURNEYS)
                    .where(self.db.in_(JOURNEYS.c.id, list(journey_ids)))
                    .values(claimed_until=None)
                )

    def next_due(self, scenario_id: str) -> datetime | None:
        with self.engine.connect() as connection:
            return connection.execute(
                select(func.min(JOURNEYS.c.due_at)).where(
                    JOURNEYS.c.scenario_id == scenario_id, JOURNEYS.c.state == ACTIVE
                )
            ).scalar_one()

    def journey_counts(self, scenario_id: str) -> list[tuple[str, str, int]]:
        """(node_id, state, count) for one scenario."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(JOURNEYS.c.node_id, JOURNEYS.c.state, func.count())
                .where(JOURNEYS.c.scenario_id == scenario_id)
                .group_by(JOURNEYS.c.node_id, JOURNEYS.c.state)
                .order_by(JOURNEYS.c.node_id, JOURNEYS.c.state)
            )
            return [(row[0], row[1], row[2]) for row in rows]

    def journeys_of(self, customer_id: str) -> list[dict[str, Any]]:
        return self.db.rows(select(JOURNEYS).where(JOURNEYS.c.customer_id == customer_id))

    # -- sends -----------------------------------------------------------------------

    def sends_by_key(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        rows = self.db.rows(select(SENDS).where(self.db.in_(SENDS.c.key, keys)))
        return {row["key"]: row for row in rows}

    def record_sends(self, rows: Sequence[dict[str, Any]]) -> None:
        """Record message decisions made before any provider call (suppressed, failed)."""
        with self.engine.begin() as connection:
            self.db.insert_ignoring_conflicts(connection, SENDS, rows)

    def messages_sent_since(self, customer_ids: Sequence[str], since: datetime) -> dict[str, int]:
        """Messages handed to a provider per customer since `since`, across all scenarios."""
        with self.engine.connect() as connection:
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

    def record_dispatch_intents(
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
        with self.engine.begin() as connection:
            self.db.insert_ignoring_conflicts(connection, DISPATCHES, dispatches)
            inserted = self.db.insert_ignoring_conflicts(connection, SENDS, sends, count=True)
            theirs = self._keep_own_sends(connection, sends) if inserted != len(sends) else set()
            self._insert_short_links(
                connection, [link for link in links if link["send_key"] not in theirs]
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

    def withdrawn_consents(self, dispatch_key: str, category: str) -> list[tuple[str, bool, bool]]:
        """The pending sends of one stored request (test sends left out) whose customer no
        longer grants `category` or whose phone has texted STOP for it: (send key,
        granted, stopped). One query, on the sends' dispatch index and the consents' and
        opt-outs' keys, made just before the request."""
        granted = (
            select(CONSENTS.c.customer_id)
            .where(
                CONSENTS.c.customer_id == SENDS.c.customer_id,
                CONSENTS.c.category == category,
                CONSENTS.c.granted.is_(True),
            )
            .exists()
        )
        stopped = (
            select(OPT_OUTS.c.phone)
            .where(OPT_OUTS.c.phone == SENDS.c.phone, OPT_OUTS.c.category == category)
            .exists()
        )
        query = select(SENDS.c.key, granted, stopped).where(
            SENDS.c.dispatch_key == dispatch_key,
            SENDS.c.state == "pending",
            SENDS.c.test.is_(False),
            or_(~granted, stopped),
        )
        with self.engine.connect() as connection:
            return [(key, bool(ok), bool(stop)) for key, ok, stop in connection.execute(query)]

    def withhold_sends(
        self, dispatch_key: str, payload: dict[str, Any], reasons: dict[str, str], now: datetime
    ) -> None:
        """Take sends out of a stored request before it is made, in one transaction: each
        is suppressed with its reason (as the consent step records it) and the request
        keeps `payload`, the rest; with nobody left it is `withheld`, never made."""
        with self.engine.begin() as connection:
            self.db.update_many(
                connection,
                SENDS,
                "key",
                [
                    {"key": key, "state": "suppressed", "reason": reason, "tracked": True}
                    for key, reason in reasons.items()
                ],
            )
            # The request is held by its taker (`take_dispatch`): it stays so, unless
            # nobody is left in it.
            withheld = {} if payload["recipients"] else {"state": "withheld"}
            connection.execute(
                update(DISPATCHES)
                .where(DISPATCHES.c.key == dispatch_key)
                .values(payload=payload, updated_at=now, **withheld)
            )

    def unresolved_dispatch_keys(self, keys: Sequence[str]) -> set[str]:
        """The keys among `keys` of requests stored and not yet answered: pending, or
        being made (`sending`)."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(DISPATCHES.c.key).where(
                    self.db.in_(DISPATCHES.c.key, list(keys)),
                    DISPATCHES.c.state.in_(("pending", "sending")),
                )
            )
            return set(rows.scalars())

    def take_dispatch(
        self, key: str, now: datetime, taken_before: datetime
    ) -> tuple[dict[str, Any], bool] | None:
        """Take one stored request to make it now, or None when it is not to be made by
        this process: answered, withheld, or being made by another.

        A compare-and-set on its state, so one process only takes it: `pending` becomes
        `sending` at `now`; so does a `sending` taken before `taken_before`, whose taker
        died mid-request (True: the provider may have it, it must be reconciled).
        Returns the request's row and that flag.
        """
        attempts = (
            (DISPATCHES.c.state == "pending", False),
            ((DISPATCHES.c.state == "sending") & (DISPATCHES.c.updated_at < taken_before), True),
        )
        with self.engine.begin() as connection:
            for unclaimed, abandoned in attempts:
                row = connection.execute(
                    update(DISPATCHES)
                    .where(DISPATCHES.c.key == key, unclaimed)
                    .values(state="sending", updated_at=now)
                    .returning(*DISPATCHES.c)
                ).first()
                if row is not None:
                    return dict(row._mapping), abandoned
        return None

    def resolve_dispatch(
        self,
        key: str,
        *,
        enqueued: bool,
        now: datetime,
        provider_id: str | None = None,
        status_code: int | str | None = None,
        error: str | None = None,
        comment: str | None = None,
        refused: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        """Record a provider's answer for one dispatch and all of its sends, together.

        `refused` names recipients (by phone) that the provider refused inside a request
        it otherwise accepted, each with its status_code, error and comment.
        """
        outcome = {"status_code": _code(status_code), "error": error, "comment": comment}
        with self.engine.begin() as connection:
            connection.execute(
                update(DISPATCHES)
                .where(DISPATCHES.c.key == key)
                .values(
                    state="enqueued" if enqueued else "failed",
                    provider_id=provider_id,
                    updated_at=now,
                    **outcome,
                )
            )
            if refused:
                connection.execute(
                    update(SENDS)
                    .where(
                        SENDS.c.dispatch_key == key,
                        SENDS.c.phone == bindparam("_phone"),
                        SENDS.c.state == "pending",
                    )
                    .values(
                        state="enqueue_failed",
                        status_code=bindparam("_status_code"),
                        error=bindparam("_error"),
                        comment=bindparam("_comment"),
                    ),
                    [
                        {
                            "_phone": phone,
                            "_status_code": _code(why.get("status_code")),
                            "_error": why.get("error"),
                            "_comment": why.get("comment"),
                        }
                        for phone, why in refused.items()
                    ],
                )
            connection.execute(
                update(SENDS)
                .where(SENDS.c.dispatch_key == key, SENDS.c.state == "pending")
                .values(state="enqueued" if enqueued else "enqueue_failed", **outcome)
            )

    def untracked_sends(self, keys: Sequence[str]) -> list[dict[str, Any]]:
        """What a campaign event needs of each send not yet tracked: answered, or still
        `pending` (its request is being made by another process)."""
        columns = [
            SENDS.c[name]
            for name in (
                "key",
                "customer_id",
                "phone",
                "state",
                "parts",
                "status_code",
                "error",
                "comment",
                "test",
            )
        ]
        return self.db.rows(
            select(*columns).where(
                self.db.in_(SENDS.c.key, keys),
                SENDS.c.tracked.is_(False),
                SENDS.c.state.in_(("pending", "enqueued", "enqueue_failed")),
            )
        )

    def track_campaign_events(self, events: Sequence[dict[str, Any]]) -> None:
        """Append campaign events and mark their sends tracked, in one transaction.

        Only sends not yet tracked are marked, so a retried step never appends twice.
        """
        if not events:
            return
        keys = [e["send_key"] for e in events if e.get("send_key")]
        with self.engine.begin() as connection:
            if keys:
                result = connection.execute(
                    update(SENDS)
                    .where(self.db.in_(SENDS.c.key, keys), SENDS.c.tracked.is_(False))
                    .values(tracked=True)
                )
                if result.rowcount != len(keys):
                    # Another attempt tracked some of these meanwhile; raising rolls this
                    # transaction back and the step is retried with what is left.
                    raise RuntimeError("campaign events were tracked concurrently; retry")
            self.db.bulk_insert(connection, CAMPAIGN_EVENTS, events)

    def campaign_event_counts(self, scenario_id: str) -> list[tuple[str, str, int]]:
        """(action_type, status, count) for one scenario."""
        action_type = CAMPAIGN_EVENTS.c.properties["action_type"].as_string()
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(action_type, CAMPAIGN_EVENTS.c.status, func.count())
                .where(*_evaluated(scenario_id))
                .group_by(action_type, CAMPAIGN_EVENTS.c.status)
                .order_by(CAMPAIGN_EVENTS.c.status)
            )
            return [(row[0], row[1], row[2]) for row in rows]

    def campaign_event_span(self, scenario_id: str) -> tuple[datetime, datetime] | None:
        """The first and last campaign event times of one scenario (tests left out)."""
        with self.engine.connect() as connection:
            first, last = connection.execute(
                select(
                    func.min(CAMPAIGN_EVENTS.c.timestamp), func.max(CAMPAIGN_EVENTS.c.timestamp)
                ).where(*_evaluated(scenario_id))
            ).one()
        if first is None:
            return None
        return bucket_start(first), bucket_start(last)

    def campaign_event_timeline(
        self, scenario_id: str, unit: str
    ) -> list[tuple[datetime, str, int]]:
        """(bucket start, status, events) per `unit` ("minute", "hour", "day") of one
        scenario's campaign events, in time order (tests left out)."""
        bucket = self.db.time_bucket(CAMPAIGN_EVENTS.c.timestamp, unit).label("bucket")
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(bucket, CAMPAIGN_EVENTS.c.status, func.count())
                .where(*_evaluated(scenario_id))
                .group_by(bucket, CAMPAIGN_EVENTS.c.status)
                .order_by(bucket)
            )
            return [(bucket_start(row[0]), row[1], row[2]) for row in rows]

    def campaign_events(self, scenario_id: str) -> list[dict[str, Any]]:
        return self.db.rows(
            select(CAMPAIGN_EVENTS)
            .where(CAMPAIGN_EVENTS.c.scenario_id == scenario_id)
            .order_by(CAMPAIGN_EVENTS.c.id)
        )

    def campaign_events_for(self, send_keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The properties of the campaign event tracked for each send key (its enqueue
        event), as {"properties": ...}: what later events of the send copy."""
        if not send_keys:
            return {}
        query = select(CAMPAIGN_EVENTS.c.send_key, CAMPAIGN_EVENTS.c.properties).where(
            self.db.in_(CAMPAIGN_EVENTS.c.send_key, send_keys)
        )
        return {row["send_key"]: row for row in self.db.rows(query)}

    def campaign_event_for(self, send_key: str) -> dict[str, Any] | None:
        return self.db.first(select(CAMPAIGN_EVENTS).where(CAMPAIGN_EVENTS.c.send_key == send_key))

    def suppression_counts(self, scenario_id: str) -> list[tuple[str, int]]:
        """(reason, count) of messages not sent by a policy, for one scenario."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(SENDS.c.reason, func.count())
                .where(SENDS.c.scenario_id == scenario_id, SENDS.c.state == "suppressed")
                .group_by(SENDS.c.reason)
            )
            return [(row[0], row[1]) for row in rows]

    # -- delivery reports ------------------------------------------------------------

    def store_delivery_reports(self, batches: Sequence[Sequence[dict[str, Any]]]) -> list[int]:
        """Store batches of reports (one per webhook request) in one transaction; a
        duplicate (same dedupe key) is stored once. Returns how many of each were new."""
        with self.engine.begin() as connection:
            return [
                self.db.insert_ignoring_conflicts(connection, REPORTS, rows, count=True) or 0
                for rows in batches
            ]

    def pending_delivery_reports(self, limit: int) -> list[dict[str, Any]]:
        # The literal (a constant, not input) matches the partial index's condition, which
        # a bound parameter would not.
        pending = REPORTS.c.state == literal_column("'pending'")
        return self.db.rows(select(REPORTS).where(pending).order_by(REPORTS.c.id).limit(limit))

    def stored_report_keys(self, dedupe_keys: Iterable[str]) -> set[str]:
        """The dedupe keys among `dedupe_keys` of reports already stored."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(REPORTS.c.dedupe_key).where(
                    self.db.in_(REPORTS.c.dedupe_key, list(dedupe_keys))
                )
            )
            return set(rows.scalars())

    def record_delivery_reports(
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
        with self.engine.begin() as connection:
            inserted = self.db.insert_ignoring_conflicts(connection, REPORTS, rows, count=True)
            if inserted != len(rows):
                raise RuntimeError("delivery reports were stored concurrently; nothing applied")
            # The insert holds SQLite's write lock; PostgreSQL locks the sends' rows.
            now_statuses = select(SENDS.c.key, SENDS.c.delivery_status).where(
                self.db.in_(SENDS.c.key, list(read_statuses))
            )
            if self.is_postgres:
                now_statuses = now_statuses.with_for_update()
            current = {key: status for key, status in connection.execute(now_statuses)}
            if current != read_statuses:
                raise RuntimeError("sends were updated concurrently; nothing applied")
            self._apply_reports(connection, [], send_statuses, events)

    def sends_for_reports(self, reports: Sequence[dict[str, Any]]) -> list[dict[str, Any] | None]:
        """The send each report is about (None when not recorded), in the order of
        `reports`: by its send key, or by the dispatch key and recipient (Sinch SMS reports
        name the request and the number)."""
        columns = [
            SENDS.c[name]
            for name in (
                "key",
                "customer_id",
                "scenario_id",
                "phone",
                "dispatch_key",
                "parts",
                "created_at",
                "delivery_status",
                "tracked",
                "test",
            )
        ]
        keys = {r["send_key"] for r in reports if r["send_key"]}
        dispatches = {r["dispatch_key"] for r in reports if r["dispatch_key"] and not r["send_key"]}
        by_key: dict[str, dict[str, Any]] = {}
        by_dispatch: dict[tuple[str, str], dict[str, Any]] = {}
        if keys:
            for send in self.db.rows(select(*columns).where(self.db.in_(SENDS.c.key, keys))):
                by_key[send["key"]] = send
        if dispatches:
            query = select(*columns).where(self.db.in_(SENDS.c.dispatch_key, dispatches))
            for send in self.db.rows(query):
                by_dispatch[(send["dispatch_key"], send["phone"])] = send
        return [
            by_key.get(report["send_key"])
            or by_dispatch.get((report["dispatch_key"], report["recipient"]))
            for report in reports
        ]

    def apply_delivery_reports(
        self,
        resolutions: Sequence[tuple[int, str, str | None]],
        send_statuses: dict[str, str],
        events: Sequence[dict[str, Any]],
    ) -> None:
        """Mark pending reports applied or ignored, set their sends' delivery status and
        append their campaign events, in one transaction. If another process (a tick, a
        webhook) applied any of them meanwhile, nothing is written: their events would be
        doubled."""
        with self.engine.begin() as connection:
            ids = [report_id for report_id, _state, _note in resolutions]
            still_pending = select(REPORTS.c.id).where(
                self.db.in_(REPORTS.c.id, ids), REPORTS.c.state == "pending"
            )
            if self.is_postgres:  # a second applier waits here, then finds them applied
                still_pending = still_pending.with_for_update()
            if len(connection.execute(still_pending).all()) != len(set(ids)):
                raise RuntimeError("delivery reports were applied concurrently; nothing applied")
            self._apply_reports(connection, resolutions, send_statuses, events)

    def _apply_reports(
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

    def delivery_counts(self, scenario_id: str, silent_regions: frozenset[str]) -> dict[str, int]:
        """Enqueued sends of a scenario by what their delivery reports said, with those to
        countries that send no reports counted apart."""
        region = CUSTOMERS.c.region
        silent = region.in_(sorted(silent_regions))
        query = (
            select(SENDS.c.delivery_status, silent.label("silent"), func.count())
            .select_from(SENDS.outerjoin(CUSTOMERS, CUSTOMERS.c.id == SENDS.c.customer_id))
            .where(
                SENDS.c.scenario_id == scenario_id,
                SENDS.c.state == "enqueued",
                SENDS.c.test.is_(False),
            )
            .group_by(SENDS.c.delivery_status, silent)
        )
        counts: dict[str, int] = {}
        with self.engine.connect() as connection:
            for status, is_silent, count in connection.execute(query):
                if status in ("delivered", "failed", "rejected"):
                    name = status
                elif is_silent:
                    name = "no delivery reports in the recipient's country"
                else:
                    name = "awaiting a delivery report"
                counts[name] = counts.get(name, 0) + count
        return counts

    # -- inbound messages ------------------------------------------------------------

    def known_inbound(self, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """The (provider, message_id) pairs among `keys` already received."""
        wanted = set(keys)
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(INBOUND.c.provider, INBOUND.c.message_id).where(
                    self.db.in_(INBOUND.c.message_id, [message_id for _, message_id in wanted])
                )
            )
            return {(provider, message_id) for provider, message_id in rows} & wanted

    def record_inbound(
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
        with self.engine.begin() as connection:
            connection.execute(insert(INBOUND), list(messages))
            if consent_changes:
                self._write_consents(connection, consent_changes)
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

    def inbound_messages(self, limit: int = 50) -> list[dict[str, Any]]:
        """The latest inbound messages, newest first, each with its reply's `reply_state`
        (pending, enqueued, enqueue_failed, or None when none was due)."""
        return self.db.rows(
            select(INBOUND, SENDS.c.state.label("reply_state"))
            .join(SENDS, SENDS.c.key == INBOUND.c.reply_key, isouter=True)
            .order_by(INBOUND.c.id.desc())
            .limit(limit)
        )

    def stale_pending_dispatches(
        self, scenario_id: str, before: datetime, taken_before: datetime
    ) -> list[dict[str, Any]]:
        """Dispatches of `scenario_id`'s sends their sender left unanswered: still pending
        since before `before`, or taken (`sending`) before `taken_before` (see
        `take_dispatch`)."""
        of_scenario = (
            select(SENDS.c.key)
            .where(SENDS.c.dispatch_key == DISPATCHES.c.key, SENDS.c.scenario_id == scenario_id)
            .exists()
        )
        pending = (DISPATCHES.c.state == "pending") & (DISPATCHES.c.created_at < before)
        abandoned = (DISPATCHES.c.state == "sending") & (DISPATCHES.c.updated_at < taken_before)
        return self.db.rows(select(DISPATCHES).where(or_(pending, abandoned), of_scenario))

    # -- links -----------------------------------------------------------------------

    def _insert_short_links(self, connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
        """Insert short links; a retried send step's are there already. A code another
        message took meanwhile (two workers, the same new code) raises, rolling the whole
        intent back: the next attempt's render sees the code taken and derives another."""
        if not rows:
            return
        self.db.insert_ignoring_conflicts(connection, SHORT_LINKS, rows)
        owners = self._short_link_owners(connection, [row["code"] for row in rows])
        if any(owners.get(row["code"]) != (row["send_key"], row["position"]) for row in rows):
            raise RuntimeError("a short link code was taken concurrently; retry")

    def short_link_owners(self, codes: Sequence[str]) -> dict[str, tuple[str, int]]:
        """The send key and position of each stored link among `codes`."""
        if not codes:
            return {}
        with self.engine.connect() as connection:
            return self._short_link_owners(connection, codes)

    def _short_link_owners(
        self, connection: Connection, codes: Sequence[str]
    ) -> dict[str, tuple[str, int]]:
        rows = connection.execute(
            select(SHORT_LINKS.c.code, SHORT_LINKS.c.send_key, SHORT_LINKS.c.position).where(
                self.db.in_(SHORT_LINKS.c.code, list(codes))
            )
        )
        return {row.code: (row.send_key, row.position) for row in rows}

    def short_link(self, code: str) -> dict[str, Any] | None:
        return self.db.first(select(SHORT_LINKS).where(SHORT_LINKS.c.code == code))

    def record_click(self, code: str, now: datetime, event: dict[str, Any]) -> bool:
        """Count a click on `code` and append its campaign event, in one transaction.
        Returns whether it was the link's first click (decided by the database, so two
        clicks at once cannot both be first)."""
        with self.engine.begin() as connection:
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

    def click_counts(self, scenario_id: str) -> tuple[int, int, int]:
        """Short links sent by a scenario, customers who clicked one, and every click; test
        sends left out."""
        links = SHORT_LINKS.c
        clicked = links.clicks > 0
        query = select(
            func.count(),
            func.count(links.customer_id.distinct()).filter(clicked),
            func.coalesce(func.sum(links.clicks), 0),
        ).where(links.scenario_id == scenario_id, links.test.is_(False))
        with self.engine.connect() as connection:
            sent, customers, clicks = connection.execute(query).one()
            return sent, customers, clicks
