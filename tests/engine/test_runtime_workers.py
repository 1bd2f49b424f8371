"""Several workers ticking one scenario at the same moment, on SQLite and on PostgreSQL.

Each worker is a process of its own running the runtime's tick straight (no Prefect to
serialise them), all released together by a barrier once every journey is due. The
simulator's own per-recipient count says whether anyone was sent twice, or not at all.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from engine.runtime import Runtime, launch, tick_scenario
from engine.scenario import parse_scenario
from engine.settings import Settings
from engine.store import Store
from integrations.simulator.server import SimulatorProcess
from tests.conftest import NOW, project_settings

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


def worker_settings(database_url: str, simulator_url: str) -> Settings:
    return project_settings(
        database_url=database_url,
        integrations={"simulator": {"type": "simulator", "url": simulator_url}},
        default_sms_provider="simulator",
        default_mms_provider=None,
        claim_size=CLAIM_SIZE,
        batch_size=CLAIM_SIZE,
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


def enrolled_and_waiting(store: Store, settings: Settings) -> None:
    """The audience launched at NOW and moved to the wait, due again at NOW + 1h."""
    ids = [f"c{n:04d}" for n in range(CUSTOMERS)]
    store.upsert_customers(
        [
            {"id": cid, "phone": f"+1202{3_000_000 + n:07d}", "attributes": {"first_name": cid}}
            for n, cid in enumerate(ids)
        ],
        NOW,
    )
    store.change_consents(
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
    assert store.journey_counts("workers") == [("hello", "done", CUSTOMERS)]
