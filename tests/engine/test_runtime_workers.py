"""Several workers ticking one scenario at the same moment, on SQLite and on PostgreSQL.

Each worker is a process of its own running the runtime's tick straight (no Prefect to
serialise them), all released together by a barrier once every journey is due. The
simulator's own per-recipient count says whether anyone was sent twice, or not at all.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from engine.runtime import Runtime, TickSummary, launch, tick_scenario
from engine.scenario import parse_scenario
from engine.settings import Settings
from engine.store import Store
from integrations.gateways import GatewayPool, open_gateway
from integrations.simulator.server import SimulatorProcess
from tests.conftest import NOW, project_settings
from tests.engine.seams import before_first_request

CUSTOMERS = 400
# Small claims and batches: each worker claims many times, so claims interleave.
CLAIM_SIZE = 25
WAIT_THEN_SMS = """
id: workers
name: Workers
settings: {consent_category: sms_marketing, silent_hours: none}
nodes:
  - {id: start, type: trigger, kind: launch}
  - {id: later, type: wait, duration: 1h}
  - {id: hello, type: sms, text: "Hi {{ customer.first_name }}"}
edges:
  - {from: start, to: later}
  - {from: later, to: hello}
"""
# Every journey has passed the wait when the workers tick.
DUE = NOW + timedelta(hours=2)
START_TIMEOUT = 120.0


def worker_settings(
    database_url: str, simulator_url: str, claim_size: int = CLAIM_SIZE
) -> Settings:
    return project_settings(
        database_url=database_url,
        integrations={"simulator": {"type": "simulator", "url": simulator_url}},
        default_sms_provider="simulator",
        default_mms_provider=None,
        claim_size=claim_size,
        batch_size=claim_size,
    )


def tick_worker(database_url: str, simulator_url: str, start: Any, results: Any) -> None:
    """One worker process: open the project, wait for the others, tick once."""
    runtime = Runtime(worker_settings(database_url, simulator_url))
    try:
        start.wait(START_TIMEOUT)
        summary = tick_scenario(runtime, "workers", now=lambda: DUE)
        results.put(summary.processed)
    finally:
        runtime.close()


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorProcess]:
    with SimulatorProcess(port=0) as process:
        yield process


def consenting_customers(store: Store, count: int) -> None:
    ids = [f"c{n:04d}" for n in range(count)]
    store.customers.upsert(
        [
            {"id": cid, "phone": f"+1202{3_000_000 + n:07d}", "attributes": {"first_name": cid}}
            for n, cid in enumerate(ids)
        ],
        NOW,
    )
    store.customers.change_consents(
        [
            {
                "customer_id": cid,
                "category": "sms_marketing",
                "granted": True,
                "source": "test",
                "at": NOW,
                "details": {},
            }
            for cid in ids
        ]
    )


def enrolled_and_waiting(store: Store, settings: Settings) -> None:
    """The audience launched at NOW and moved to the wait, due again at NOW + 1h."""
    consenting_customers(store, CUSTOMERS)
    runtime = Runtime(settings, store)
    scenario = parse_scenario(WAIT_THEN_SMS, "workers.yaml", settings)
    launch(runtime, scenario, NOW)
    summary = tick_scenario(runtime, scenario.id, now=lambda: NOW)
    runtime.gateways.close()
    assert summary.moves[("later", "next->hello")] == CUSTOMERS


@pytest.mark.parametrize("workers", [2, 3])
def test_workers_ticking_at_once_send_each_message_once(store, database_url, simulator, workers):
    simulator.reset()
    enrolled_and_waiting(store, worker_settings(database_url, simulator.url))

    context = multiprocessing.get_context("spawn")
    start = context.Barrier(workers)
    results = context.Queue()
    processes = [
        context.Process(target=tick_worker, args=(database_url, simulator.url, start, results))
        for _ in range(workers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(START_TIMEOUT * 2)

    stats = simulator.stats()
    assert stats["repeat_recipients"] == 0  # nobody sent twice
    assert stats["recipients"] == CUSTOMERS  # nobody missing
    assert stats["max_per_recipient"] == 1 and stats["messages"] == CUSTOMERS
    assert [process.exitcode for process in processes] == [0] * workers
    moves = [results.get(timeout=5) for _ in range(workers)]
    # Each journey was moved by one worker only.
    assert sum(moves) == CUSTOMERS
    assert store.journeys.counts("workers") == [("hello", "done", CUSTOMERS)]


# -- a worker whose claim lease runs out mid-batch --------------------------------------------
#
# Two runtimes on one database, in this process, each with its own virtual clock: the first
# claims the journeys, and its batch takes longer than the claim lease, so the second claims
# the same journeys while the first is still at work. A hook puts the second's tick exactly
# where the first would be overtaken: before its send step, or while it makes a request.

LEASE = timedelta(minutes=5)  # the default claim lease
HELLO = """
id: lease
name: Lease
settings: {consent_category: sms_marketing, silent_hours: none}
nodes:
  - {id: start, type: trigger, kind: launch}
  - {id: hello, type: sms, text: "Hi {{ customer.first_name }}"}
edges:
  - {from: start, to: hello}
"""
AUDIENCE = 10


class Clock:
    """A worker's time, moved on by the test."""

    def __init__(self, at: datetime):
        self.at = at

    def __call__(self) -> datetime:
        return self.at


class WorkerDied(Exception):
    """A worker process ends here (killed, its machine lost)."""


class Interrupted:
    """The integration's gateway, with `meanwhile` run as its first request is about to be
    made; then the worker makes it and lives on, or dies before it, or dies once the
    provider has accepted it (before the answer is stored)."""

    def __init__(self, gateway: Any, meanwhile: Callable[[], None], fate: str):
        self.name = gateway.name
        self.gateway = gateway
        self.meanwhile: Callable[[], None] | None = meanwhile
        self.fate = fate

    def send(self, key: str, payload: dict[str, Any], *, reconcile: bool = False) -> Any:
        meanwhile, self.meanwhile = self.meanwhile, None
        if meanwhile is None:
            return self.gateway.send(key, payload, reconcile=reconcile)
        meanwhile()
        if self.fate == "dies before the request":
            raise WorkerDied
        outcome = self.gateway.send(key, payload, reconcile=reconcile)
        if self.fate == "dies after the provider accepted":
            raise WorkerDied
        return outcome

    def close(self) -> None:
        self.gateway.close()


def worker(
    database_url: str,
    simulator_url: str,
    claim_size: int = AUDIENCE,
    interrupted: Callable[[Any], Interrupted] | None = None,
) -> Runtime:
    """A worker's runtime: its own settings, database connections and gateways."""
    settings = worker_settings(database_url, simulator_url, claim_size)
    opened = {}
    if interrupted is not None:
        opened["simulator"] = interrupted(open_gateway(settings, "simulator"))
    return Runtime(settings, Store(database_url), GatewayPool(settings, opened))


def launched(store: Store, database_url: str, simulator_url: str) -> None:
    """AUDIENCE customers at the SMS node, due at NOW."""
    consenting_customers(store, AUDIENCE)
    runtime = worker(database_url, simulator_url)
    launch(runtime, parse_scenario(HELLO, "lease.yaml", runtime.settings), NOW)
    runtime.close()


def assert_everyone_sent_once_and_tracked(store: Store, simulator: SimulatorProcess) -> None:
    stats = simulator.stats()
    assert stats["repeat_recipients"] == 0  # nobody sent twice
    assert stats["recipients"] == AUDIENCE  # nobody missing
    assert stats["max_per_recipient"] == 1 and stats["messages"] == AUDIENCE
    events = store.evaluation.campaign_events("lease")
    assert sorted(e["customer_id"] for e in events) == [f"c{n:04d}" for n in range(AUDIENCE)]
    assert {e["status"] for e in events} == {"enqueued"}
    assert store.journeys.counts("lease") == [("hello", "done", AUDIENCE)]


@pytest.mark.parametrize(
    "first_worker", ["finishes", "dies before the request", "dies after the provider accepted"]
)
def test_a_request_being_made_is_left_to_the_worker_making_it(
    store, database_url, simulator, first_worker, monkeypatch
):
    """The first worker's batch reaches its request after the claim lease; the second
    claims the same journeys meanwhile, finds their request being made, and holds them at
    the node. A later tick tracks them, reconciling the request if its maker died."""
    simulator.reset()
    launched(store, database_url, simulator.url)
    first_clock, second_clock = Clock(NOW), Clock(NOW + LEASE + timedelta(seconds=2))
    second = worker(database_url, simulator.url)
    overtaking: list[TickSummary] = []

    def second_ticks() -> None:
        overtaking.append(tick_scenario(second, "lease", now=second_clock))

    first = worker(
        database_url,
        simulator.url,
        interrupted=lambda gateway: Interrupted(gateway, second_ticks, first_worker),
    )

    def slow_until_send() -> None:  # the batch took longer than the lease to get here
        first_clock.at = NOW + LEASE + timedelta(seconds=1)

    before_first_request(monkeypatch, slow_until_send)
    if first_worker == "finishes":
        tick_scenario(first, "lease", now=first_clock)
    else:
        with pytest.raises(WorkerDied):
            tick_scenario(first, "lease", now=first_clock)
    # Once the first worker has held the request for longer than the lease, it is taken
    # to have died: the second reconciles it with the provider.
    second_clock.at = NOW + 2 * LEASE + timedelta(seconds=2)
    tick_scenario(second, "lease", now=second_clock)
    first.close()
    second.close()

    assert_everyone_sent_once_and_tracked(store, simulator)
    assert overtaking[0].moves == {("hello", "held"): AUDIENCE}


@pytest.mark.parametrize("second_worker", ["finishes", "dies after the provider accepted"])
def test_a_message_in_another_workers_request_is_left_out_of_this_one(
    store, database_url, simulator, second_worker, monkeypatch
):
    """The first worker's batch reaches its send step after the claim lease; meanwhile the
    second, claiming fewer journeys at a time, put the first half of that batch in a
    request of its own (and sent the rest too, or died once the provider had accepted its
    first request). The first worker's request carries only the messages no other holds."""
    simulator.reset()
    launched(store, database_url, simulator.url)
    first_clock, second_clock = Clock(NOW), Clock(NOW + LEASE + timedelta(seconds=1))
    half = AUDIENCE // 2

    def dies(gateway: Any) -> Interrupted:
        return Interrupted(gateway, lambda: None, "dies after the provider accepted")

    second = worker(
        database_url,
        simulator.url,
        claim_size=half,
        interrupted=dies if second_worker != "finishes" else None,
    )
    first = worker(database_url, simulator.url)

    died: list[bool] = []

    def overtaken_before_send() -> None:
        try:
            tick_scenario(second, "lease", now=second_clock)
            died.append(False)
        except WorkerDied:
            died.append(True)

    before_first_request(monkeypatch, overtaken_before_send)
    overtaken = tick_scenario(first, "lease", now=first_clock)
    # The dead worker's request, held longer than the lease, is reconciled by a later tick.
    first_clock.at = NOW + 2 * LEASE + timedelta(seconds=2)
    tick_scenario(first, "lease", now=first_clock)
    first.close()
    second.close()

    assert died == [second_worker != "finishes"]
    assert_everyone_sent_once_and_tracked(store, simulator)
    # The first worker sent nobody the second held, and held at the node those whose
    # request the dead worker was making.
    if second_worker == "finishes":
        assert overtaken.moves == {("hello", "finished"): AUDIENCE}
    else:
        assert overtaken.moves == {("hello", "finished"): half, ("hello", "held"): half}
