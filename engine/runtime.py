"""The runtime: enrol customers, claim due journeys, move them through the graph.

Journeys are rows (DESIGN.md decision 1). A tick of one scenario claims the due journeys,
groups them by node, and runs each node on batches (`NodeBatch`). Because the graph is a
DAG and nodes run in topological order, a customer moves through every zero-wait node in
the same tick. Where a journey goes is written at the end of its batch.

Nothing here imports Prefect: the flows pass a `BatchRunner` that runs each node batch as
one task run; tests pass one that just calls it.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from engine import progress
from engine.delivery import apply_pending_reports
from engine.errors import TemplateError
from engine.scenario import Scenario, parse_scenario
from engine.settings import Settings
from engine.store import (
    ACTIVE,
    DONE,
    FAILED,
    ClaimedJourney,
    CustomerRow,
    JourneyMove,
    ScenarioRow,
    Store,
)
from engine.templates import evaluate
from integrations.gateways import GatewayPool
from nodes.base import JourneyItem, Move, NodeConfig

logger = logging.getLogger("scenarist")

# Runs one node batch (`NodeBatch.run`) and returns its outcome counts.
BatchRunner = Callable[["NodeBatch"], Counter[str]]


def run_batch_directly(batch: NodeBatch) -> Counter[str]:
    """The BatchRunner without Prefect."""
    return batch.run()


def utc_now() -> datetime:
    return datetime.now(UTC)


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


@dataclass
class NodeContext:
    """What a node batch can use: settings, store, its scenario, the tick's time, gateways.

    `now` is the time the batch's journeys were claimed at, the batch's time for every
    record; `clock` reads the time as it passes (a batch's requests go out over minutes),
    which a request is taken at (`Dispatches.take`).
    """

    settings: Settings
    store: Store
    scenario: Scenario
    now: datetime
    gateways: GatewayPool
    clock: Callable[[], datetime] = utc_now

    def zone(self, item: JourneyItem, setting: str = "customer") -> ZoneInfo:
        """`setting` names a zone, or "customer" for the customer's own (project's if unset)."""
        if setting != "customer":
            zone = _zone(setting)
        else:
            zone = _zone(item.timezone) if item.timezone else None
        return zone or _zone(self.settings.timezone) or ZoneInfo("UTC")


@dataclass
class TickSummary:
    """What one tick did: customers enrolled, moves per node and outcome (`welcome`,
    `next->one_day`), and per node and reason (`welcome`, `sent`)."""

    enrolled: int = 0
    moves: Counter[tuple[str, str]] = field(default_factory=Counter)
    reasons: Counter[tuple[str, str]] = field(default_factory=Counter)

    @property
    def processed(self) -> int:
        return sum(self.moves.values())

    def add(self, other: TickSummary) -> None:
        self.enrolled += other.enrolled
        self.moves.update(other.moves)
        self.reasons.update(other.reasons)


@dataclass
class NodeBatch:
    """One batch of customers at one node: the unit a tick runs (as one Prefect task
    run, `welcome #1`). `run` decides every customer's move and writes where each journey
    goes; the customers who go on within this tick are left in `continuing`, and the
    counts by outcome are returned: nothing per customer leaves the batch but them."""

    ctx: NodeContext
    node: NodeConfig
    number: int
    items: list[JourneyItem]
    lease: datetime
    summary: TickSummary = field(default_factory=TickSummary)
    continuing: list[tuple[str, JourneyItem]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.node.id} #{self.number}"

    def run(self) -> Counter[str]:
        ctx, node = self.ctx, self.node
        moves = node.run(ctx, self.items)
        # A node that leaves someone undecided has a bug, not bad data: they fail.
        decided = {id(move.item) for move in moves}
        moves += [
            Move.fail(item, f"node '{node.id}' made no decision")
            for item in self.items
            if id(item) not in decided
        ]
        reasons: Counter[str] = Counter()
        journey_moves = []
        for move in moves:
            journey_move, continues = _resolve(ctx.scenario, node.id, move, ctx.now)
            journey_moves.append(journey_move)
            reasons[move.counted_as] += 1
            self.summary.moves[(node.id, _outcome(move, journey_move))] += 1
            if continues:
                self.continuing.append((journey_move.node_id, move.item))
        ctx.store.journeys.move(journey_moves, ctx.now, self.lease)
        self.summary.reasons.update({(node.id, reason): n for reason, n in reasons.items()})
        return reasons


class Runtime:
    """Settings, store and gateways of one project, opened once per process."""

    def __init__(
        self, settings: Settings, store: Store | None = None, gateways: GatewayPool | None = None
    ):
        self.settings = settings
        self.store = store or Store(settings.database_url)
        self.gateways = gateways or GatewayPool(settings)
        self._compiled: dict[tuple[str, str], Scenario] = {}

    def close(self) -> None:
        self.gateways.close()
        self.store.close()

    def scenario(self, scenario_id: str, version: str) -> Scenario:
        """A stored scenario version, compiled once per process."""
        key = (scenario_id, version)
        if key not in self._compiled:
            definition = self.store.scenarios.definition(scenario_id, version)
            record = self.store.scenarios.record(scenario_id)
            source = record.source if record else scenario_id
            self._compiled[key] = _compile_definition(definition, source, self.settings)
        return self._compiled[key]

    def remember(self, scenario: Scenario) -> None:
        self._compiled[(scenario.id, scenario.version)] = scenario

    def context(
        self, scenario: Scenario, now: datetime, clock: Callable[[], datetime] = utc_now
    ) -> NodeContext:
        return NodeContext(self.settings, self.store, scenario, now, self.gateways, clock)


def _compile_definition(definition: dict, source: str, settings: Settings) -> Scenario:
    return parse_scenario(yaml.safe_dump(definition, sort_keys=False), source, settings)


# -- enrolment ---------------------------------------------------------------------------


def _matches(expression: str | None, context: dict) -> bool:
    if expression is None:
        return True
    return bool(evaluate(expression, context))


def enrol_audience(runtime: Runtime, scenario: Scenario, entry: str, now: datetime) -> int:
    """Enrol every customer matching the audience filter; returns how many started.

    Customers are read in pages, so memory stays flat in the audience size. A customer
    for whom the filter cannot be evaluated is not enrolled, and the first such error
    is logged with the count.
    """
    store = runtime.store
    first_node = scenario.next_node(scenario.trigger.id, "next")
    if first_node is None:
        return 0
    started = 0
    errors = 0
    first_error = ""
    total = store.customers.count()
    for page in store.customers.pages(runtime.settings.claim_size):
        entries = []
        for customer in page:
            try:
                if scenario.audience is None or _matches(
                    scenario.audience, _item_for(customer).template_context()
                ):
                    entries.append((customer.id, entry, {}))
            except TemplateError as exc:
                errors += 1
                first_error = first_error or f"customer {customer.id}: {exc}"
        started += _enrol(runtime, scenario, first_node, entries, now, once_at_a_time=False)
        progress.advance("customers evaluated", len(page), total)
    if errors:
        logger.warning(
            "%d customers skipped by the audience filter's errors; %s", errors, first_error
        )
    return started


def _enrol(
    runtime: Runtime,
    scenario: Scenario,
    first_node: str,
    entries: list[tuple[str, str, dict]],
    now: datetime,
    once_at_a_time: bool,
) -> int:
    return runtime.store.journeys.enrol(
        scenario_id=scenario.id,
        version=scenario.version,
        node_id=first_node,
        entries=entries,
        due_at=now,
        once_at_a_time=once_at_a_time,
    )


def enrol_from_events(
    runtime: Runtime, scenario: Scenario, record: ScenarioRow, now: datetime
) -> int:
    """Enrol customers whose events arrived since the scenario's cursor."""
    trigger = scenario.trigger
    assert trigger.event is not None
    store = runtime.store
    first_node = scenario.next_node(trigger.id, "next")
    if first_node is None:
        return 0
    cursor = record.event_cursor
    started = 0
    while True:
        events = store.customers.events_after(trigger.event, cursor, runtime.settings.claim_size)
        if not events:
            break
        customers = store.customers.by_id({e["customer_id"] for e in events})
        entries = []
        for event in events:
            customer = customers.get(event["customer_id"])
            if customer is None:
                continue
            context = _item_for(customer, event["properties"]).template_context()
            try:
                if _matches(trigger.condition, context) and _matches(scenario.audience, context):
                    entry = "once" if trigger.reentry == "never" else f"event:{event['id']}"
                    entries.append((customer.id, entry, event["properties"]))
            except TemplateError as exc:
                logger.warning("event %s not enrolled: %s", event["id"], exc)
        once_at_a_time = trigger.reentry == "after_finish"
        started += _enrol(runtime, scenario, first_node, entries, now, once_at_a_time)
        cursor = events[-1]["id"]
        store.scenarios.update(scenario.id, event_cursor=cursor)
    return started


def enrol_scheduled(
    runtime: Runtime, scenario: Scenario, record: ScenarioRow, now: datetime
) -> int:
    """Enrol the audience when the schedule's next fire has come.

    After downtime, only the latest missed fire enrols: a campaign is not sent several
    times in a row to catch up.
    """
    fire = record.next_fire_at
    if fire is None or fire > now:
        return 0
    trigger = scenario.trigger
    following = trigger.next_fire(fire)
    while following is not None and following <= now:
        fire, following = following, trigger.next_fire(following)
    started = enrol_audience(runtime, scenario, f"schedule:{fire.isoformat()}", now)
    runtime.store.scenarios.update(scenario.id, next_fire_at=following)
    return started


def launch(runtime: Runtime, scenario: Scenario, now: datetime) -> int:
    """Make `scenario` the running version and enrol a launch trigger's audience.

    Launching the same scenario again is harmless: enrolment is keyed per customer and
    entry, so nobody enters twice and every message keeps its send key. An event trigger
    only considers events tracked after its first launch; a schedule trigger starts from
    its next fire after now.
    """
    trigger = scenario.trigger
    runtime.store.scenarios.save(
        scenario_id=scenario.id,
        name=scenario.name,
        version=scenario.version,
        source=scenario.source,
        definition=scenario.definition,
        now=now,
        event_cursor=runtime.store.customers.last_event_id() if trigger.kind == "event" else 0,
        next_fire_at=trigger.next_fire(now) if trigger.kind == "schedule" else None,
    )
    runtime.remember(scenario)
    if trigger.kind != "launch":
        return 0
    return enrol_audience(runtime, scenario, "launch", now)


# -- ticks -------------------------------------------------------------------------------


def _item_for(customer: CustomerRow, event: dict | None = None) -> JourneyItem:
    return JourneyItem(
        journey_id=0,
        customer_id=customer.id,
        entry="",
        version="",
        attributes=customer.attributes,
        event=event or {},
        phone=customer.phone,
        timezone=customer.timezone,
        region=customer.region,
    )


def _journey_item(journey: ClaimedJourney) -> JourneyItem:
    return JourneyItem(
        journey_id=journey.id,
        customer_id=journey.customer_id,
        entry=journey.entry,
        version=journey.version,
        attributes=journey.attributes,
        event=journey.event,
        phone=journey.phone,
        timezone=journey.timezone,
        region=journey.region,
    )


def _chunks(items: Sequence[JourneyItem], size: int) -> Iterator[list[JourneyItem]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def run_claimed(
    runtime: Runtime,
    scenario: Scenario,
    journeys: Sequence[ClaimedJourney],
    now: datetime,
    run_batch: BatchRunner,
    clock: Callable[[], datetime] = utc_now,
) -> TickSummary:
    """Move claimed journeys (all on `scenario`'s version) as far as they go now."""
    ctx = runtime.context(scenario, now, clock)
    lease = now + runtime.settings.claim_lease
    summary = TickSummary()
    at_node: dict[str, list[JourneyItem]] = {}
    for journey in journeys:
        at_node.setdefault(journey.node_id, []).append(_journey_item(journey))

    unknown = [
        item
        for node_id, items in at_node.items()
        if node_id not in scenario.nodes
        for item in items
    ]
    if unknown:
        runtime.store.journeys.move(
            [JourneyMove(i.journey_id, "", FAILED, now, "node no longer exists") for i in unknown],
            now,
            lease,
        )

    for node_id in scenario.order:
        items = at_node.pop(node_id, [])
        node = scenario.nodes[node_id]
        for number, chunk in enumerate(_chunks(items, runtime.settings.batch_size), start=1):
            batch = NodeBatch(ctx, node, number, chunk, lease)
            run_batch(batch)
            summary.add(batch.summary)
            for target, item in batch.continuing:
                at_node.setdefault(target, []).append(item)
            progress.advance(f"{node_id} processed", len(chunk))
    return summary


def _resolve(
    scenario: Scenario, node_id: str, move: Move, now: datetime
) -> tuple[JourneyMove, bool]:
    """The journey row's new position, and whether it moves on within this tick."""
    journey_id = move.item.journey_id
    if move.error is not None:
        return JourneyMove(journey_id, node_id, FAILED, now, move.error), False
    if move.output is None:
        return JourneyMove(journey_id, node_id, ACTIVE, move.due_at or now), False
    target = scenario.next_node(node_id, move.output)
    if target is None:
        return JourneyMove(journey_id, node_id, DONE, now), False
    due = move.due_at or now
    continues = due <= now
    return JourneyMove(journey_id, target, ACTIVE, due, keep_claim=continues), continues


def _outcome(move: Move, journey_move: JourneyMove) -> str:
    if move.error is not None:
        return "failed"
    if move.output is None:
        return "held"
    if journey_move.state == DONE:
        return "finished"
    return f"{move.output}->{journey_move.node_id}"


def tick_scenario(
    runtime: Runtime,
    scenario_id: str,
    run_batch: BatchRunner = run_batch_directly,
    now: Callable[[], datetime] = utc_now,
) -> TickSummary:
    """One tick of one running scenario: enrol what triggers fired, move what is due."""
    summary = TickSummary()
    record = runtime.store.scenarios.record(scenario_id)
    if record is None or record.status != "running":
        return summary
    current = runtime.scenario(scenario_id, record.version)
    started = now()
    if current.trigger.kind == "event":
        summary.enrolled += enrol_from_events(runtime, current, record, started)
    elif current.trigger.kind == "schedule":
        summary.enrolled += enrol_scheduled(runtime, current, record, started)

    seen: set[int] = set()
    while True:
        tick_time = now()
        claimed = runtime.store.journeys.claim_due(
            scenario_id, tick_time, runtime.settings.claim_size, runtime.settings.claim_lease
        )
        # A journey comes back within one tick only if a node held it until a time that
        # has already passed; it waits for the next tick rather than spinning here. Only
        # it is given back: the others are run under this claim.
        claimed_again = [journey.id for journey in claimed if journey.id in seen]
        if claimed_again:
            runtime.store.journeys.release_claims(claimed_again)
            claimed = [journey for journey in claimed if journey.id not in seen]
        if not claimed:
            break
        seen.update(journey.id for journey in claimed)
        by_version: dict[str, list[ClaimedJourney]] = {}
        for journey in claimed:
            by_version.setdefault(journey.version, []).append(journey)
        for version, journeys in by_version.items():
            scenario = runtime.scenario(scenario_id, version)
            summary.add(run_claimed(runtime, scenario, journeys, tick_time, run_batch, now))
    # Delivery reports that came before their sends were tracked can be matched now. They
    # are stored: if another process is applying them at this moment, the next tick will.
    try:
        apply_pending_reports(runtime.store, runtime.settings.campaign_event_name, now())
    except Exception:
        logger.exception("pending delivery reports not applied in this tick")
    return summary
