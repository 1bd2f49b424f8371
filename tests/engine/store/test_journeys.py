"""Journeys in the store: enrolment, claims and moves, on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from engine.store import ACTIVE, DONE, JourneyMove
from tests.conftest import NOW
from tests.engine.store.rows import add_customers


def test_enrolment_is_idempotent_and_once_at_a_time(store):
    ids = add_customers(store, 3)
    entries = [(cid, "launch", {}) for cid in ids]
    kwargs = dict(scenario_id="s", version="v1", node_id="n1", due_at=NOW)
    assert store.journeys.enrol(entries=entries, once_at_a_time=False, **kwargs) == 3
    assert store.journeys.enrol(entries=entries, once_at_a_time=False, **kwargs) == 0
    # A new entry (another event) for a customer whose journey is active is skipped.
    assert (
        store.journeys.enrol(entries=[("c000", "event:9", {})], once_at_a_time=True, **kwargs) == 0
    )
    assert (
        store.journeys.enrol(entries=[("c000", "event:9", {})], once_at_a_time=False, **kwargs) == 1
    )


def enrol_at_launch(store, ids: list[str]) -> None:
    """Enrol `ids` into scenario `s` at node `n1`, due now."""
    store.journeys.enrol(
        scenario_id="s",
        version="v1",
        node_id="n1",
        entries=[(cid, "launch", {}) for cid in ids],
        due_at=NOW,
        once_at_a_time=False,
    )


def test_claims_are_leased_until_moved(store):
    ids = add_customers(store, 5)
    enrol_at_launch(store, ids)
    first = store.journeys.claim_due("s", NOW, 3, timedelta(minutes=10))
    second = store.journeys.claim_due("s", NOW, 10, timedelta(minutes=10))
    assert len(first) == 3 and len(second) == 2
    assert {j.id for j in first}.isdisjoint({j.id for j in second})
    assert first[0].phone.startswith("+1202555") and "n" in first[0].attributes
    assert store.journeys.claim_due("s", NOW, 10, timedelta(minutes=10)) == []
    # After the lease a dead worker's journeys are due again.
    assert (
        len(store.journeys.claim_due("s", NOW + timedelta(minutes=11), 10, timedelta(minutes=10)))
        == 5
    )


def test_moves_release_claims_and_set_due_times(store):
    ids = add_customers(store, 2)
    enrol_at_launch(store, ids)
    claimed = store.journeys.claim_due("s", NOW, 10, timedelta(minutes=10))
    later = NOW + timedelta(hours=2)
    store.journeys.move(
        [
            JourneyMove(claimed[0].id, "n2", ACTIVE, later),
            JourneyMove(claimed[1].id, "n1", DONE, NOW),
        ],
        NOW,
        NOW + timedelta(minutes=10),
    )
    assert store.journeys.next_due("s") == later
    assert sorted(store.journeys.counts("s")) == [("n1", "done", 1), ("n2", "active", 1)]
    assert [j.node_id for j in store.journeys.claim_due("s", later, 10, timedelta(minutes=1))] == [
        "n2"
    ]
