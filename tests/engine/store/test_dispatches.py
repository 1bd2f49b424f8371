"""Stored requests: answered, withheld, taken by one process only, found when stale; on
SQLite and on PostgreSQL (see conftest.py)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from tests.conftest import NOW
from tests.engine.store.rows import LEASE, add_customers, event_for, send_row, stored_dispatch


def test_dispatch_outcome_updates_every_pending_send(store):
    store.sends.record_intents(
        [
            {
                "key": "d1",
                "integration": "sim",
                "state": "pending",
                "payload": {"body": "hi"},
                "created_at": NOW,
                "updated_at": NOW,
            }
        ],
        [
            send_row("k1", "c1", "pending", NOW, dispatch_key="d1"),
            send_row("k2", "c2", "pending", NOW, dispatch_key="d1"),
        ],
    )
    assert store.dispatches.unresolved_keys(["d1", "d2"]) == {"d1"}
    answered = store.dispatches.resolve(
        "d1",
        enqueued=False,
        now=NOW,
        status_code=400,
        error="syntax_invalid_parameter_format",
        comment="bad to[0]",
        track=event_for,
    )
    assert sorted((s.key, s.state, s.error) for s in answered) == [
        (k, "enqueue_failed", "syntax_invalid_parameter_format") for k in ("k1", "k2")
    ]
    sends = store.sends.by_key(["k1", "k2"])
    assert {s.state for s in sends.values()} == {"enqueue_failed"}
    assert all(s.tracked for s in sends.values())  # each with its event, in the answer's write
    assert store.evaluation.event_counts("s") == [("sms", "enqueue_failed", 2)]
    assert sends["k1"].status_code == "400"  # kept as the provider gave it
    assert store.dispatches.unresolved_keys(["d1"]) == set()
    assert store.dispatches.take("d1", NOW, NOW) is None  # answered: never made again


def test_withdrawn_consents_are_found_per_request_and_withheld(store):
    ids = add_customers(store, 5)
    grant = {"category": "sms", "source": "import", "at": NOW, "details": {}}
    store.customers.change_consents([{"customer_id": c, "granted": True, **grant} for c in ids])
    store.customers.change_consents(
        [
            {"customer_id": "c001", "granted": False, **grant},  # revoked
            {"customer_id": "c004", "granted": False, **grant},  # revoked, but a test send
        ]
    )
    # c002's phone texted STOP; c002 still grants the category (an older import).
    stop = {"phone": "+12025550002", "category": "sms", "message_id": "m", "at": NOW}
    message = {
        "provider": "sinch_sms",
        "message_id": "m",
        "channel": "sms",
        "texts": ["STOP"],
        "media": [],
        "customer_ids": [],
        "received_at": NOW,
    }
    store.inbound.record([message], [], [], [], [], [{**stop, "opted_out": True}])
    payload = {
        "body": "hi",
        "recipients": [f"+1202555{n:04d}" for n in range(5)],
        "send_keys": [f"k{n}" for n in range(5)],
        "parameters": None,
    }
    dispatch = {"integration": "sim", "state": "pending", "created_at": NOW, "updated_at": NOW}
    store.sends.record_intents(
        [{"key": "d1", "payload": payload, **dispatch}],
        [
            send_row(
                f"k{n}",
                ids[n],
                "pending",
                NOW,
                dispatch_key="d1",
                phone=f"+1202555{n:04d}",
                test=n == 4,
            )
            for n in range(5)
        ],
    )

    withdrawn = store.dispatches.withdrawn_consents("d1", "sms")
    assert sorted(withdrawn) == [("k1", False, False), ("k2", True, True)]
    assert sorted(store.dispatches.withdrawn_consents("d1", "other")) == [  # nobody grants another
        (f"k{n}", False, False) for n in range(4)
    ]

    kept = {**payload, "recipients": ["+12025550000", "+12025550003"], "send_keys": ["k0", "k3"]}
    withheld = store.dispatches.withhold_sends(
        "d1", kept, {"k1": "no consent: sms", "k2": "STOP"}, NOW
    )
    assert sorted((s.key, s.state, s.reason) for s in withheld) == [
        ("k1", "suppressed", "no consent: sms"),
        ("k2", "suppressed", "STOP"),
    ]
    sends = store.sends.by_key([f"k{n}" for n in range(5)])
    assert {k: (s.state, s.reason) for k, s in sends.items()} == {
        "k0": ("pending", None),
        "k1": ("suppressed", "no consent: sms"),
        "k2": ("suppressed", "STOP"),
        "k3": ("pending", None),
        "k4": ("pending", None),
    }
    taken, abandoned = store.dispatches.take("d1", NOW, NOW)
    assert taken.payload == kept and not abandoned
    # With nobody left, the request is never made.
    store.dispatches.withhold_sends("d1", {**payload, "recipients": [], "send_keys": []}, {}, NOW)
    assert store.dispatches.unresolved_keys(["d1"]) == set()
    assert store.dispatches.take("d1", NOW + timedelta(hours=1), NOW + timedelta(hours=1)) is None


@pytest.mark.parametrize(
    ("state", "taken_ago", "outcome"),
    [
        ("pending", None, "taken"),
        ("sending", timedelta(minutes=1), None),  # its taker is making it
        ("sending", LEASE, None),  # held for exactly the lease: not yet given up
        ("sending", LEASE + timedelta(seconds=1), "abandoned"),  # its taker died mid-request
        ("enqueued", timedelta(hours=1), None),
        ("failed", timedelta(hours=1), None),
        ("withheld", timedelta(hours=1), None),
        (None, None, None),  # no such request
    ],
)
def test_a_request_is_taken_from_pending_or_from_a_taker_that_held_it_too_long(
    store, state, taken_ago, outcome
):
    if state is not None:
        stored_dispatch(store, "d1", state, NOW - (taken_ago or timedelta(hours=1)))
    taken = store.dispatches.take("d1", NOW, NOW - LEASE)
    if outcome is None:
        assert taken is None
        return
    row, abandoned = taken
    assert (row.key, row.state, row.updated_at) == ("d1", "sending", NOW)
    assert row.payload["send_keys"] == ["k"]
    assert abandoned is (outcome == "abandoned")
    assert store.dispatches.unresolved_keys(["d1"]) == {"d1"}
    # Taken now, nobody else takes it until the lease has passed again.
    assert store.dispatches.take("d1", NOW + LEASE, NOW) is None


def test_one_process_only_takes_a_request_however_many_try_at_once(store, database_url):
    from engine.store import Store

    keys = [f"d{n}" for n in range(5)]
    for key in keys:
        stored_dispatch(store, key, "pending", NOW)
    stored_dispatch(store, "stale", "sending", NOW - LEASE - timedelta(minutes=1))
    workers = 6
    stores = [Store(database_url) for _ in range(workers)]
    start = threading.Barrier(workers)
    taken: list[list[str]] = [[] for _ in range(workers)]

    def take_all(number: int) -> None:
        start.wait()
        for key in [*keys, "stale"]:
            if stores[number].dispatches.take(key, NOW, NOW - LEASE) is not None:
                taken[number].append(key)

    threads = [threading.Thread(target=take_all, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for opened in stores:
        opened.close()
    assert sorted(key for keys_taken in taken for key in keys_taken) == sorted([*keys, "stale"])


def test_stale_intents_are_those_pending_too_long_or_taken_too_long_ago(store):
    for key, state, taken_at in [
        ("fresh", "pending", NOW),
        ("sending", "sending", NOW - timedelta(minutes=1)),
        ("abandoned", "sending", NOW - timedelta(minutes=10)),
        ("answered", "enqueued", NOW - timedelta(minutes=10)),
    ]:
        stored_dispatch(store, key, state, taken_at)
        store.sends.record([send_row(f"k-{key}", "c1", "pending", NOW, dispatch_key=key)])
    stale = store.dispatches.stale_pending("s", NOW - timedelta(minutes=30), NOW - LEASE)
    # Every intent here was written an hour ago: the pending one is stale by its age.
    assert sorted(d.key for d in stale) == ["abandoned", "fresh"]
    assert store.dispatches.stale_pending("other", NOW, NOW) == []
