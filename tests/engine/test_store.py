"""The journey store, on SQLite and on PostgreSQL (see conftest.py)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest

from engine.errors import ConcurrentUpdate
from engine.store import ACTIVE, DONE, JourneyMove
from tests.conftest import NOW


def add_customers(store, count: int) -> list[str]:
    rows = [
        {"id": f"c{n:03d}", "phone": f"+1202555{n:04d}", "attributes": {"n": n}}
        for n in range(count)
    ]
    store.customers.upsert(rows, NOW)
    return [row["id"] for row in rows]


def test_upsert_merges_attributes_and_keeps_aware_times(store):
    store.customers.upsert([{"id": "c1", "phone": "+12025550001", "attributes": {"a": 1}}], NOW)
    later = NOW + timedelta(hours=1)
    store.customers.upsert([{"id": "c1", "attributes": {"b": 2}}], later)
    customer = store.customers.get("c1")
    assert customer["attributes"] == {"a": 1, "b": 2, "phone": "+12025550001"}
    assert customer["phone"] == "+12025550001"
    assert customer["updated_at"] == later  # aware UTC in, aware UTC out


def test_naive_datetimes_are_refused(store):
    with pytest.raises(Exception, match="naive datetime"):
        store.customers.upsert([{"id": "c1"}], datetime(2026, 1, 1))


def test_customer_pages_cover_everyone_once(store):
    ids = add_customers(store, 25)
    pages = list(store.customers.pages(10))
    assert [len(page) for page in pages] == [10, 10, 5]
    assert [c["id"] for page in pages for c in page] == sorted(ids)


def test_consents_keep_the_current_state_and_the_ledger(store):
    add_customers(store, 2)
    store.customers.change_consents(
        [
            {
                "customer_id": "c000",
                "category": "sms",
                "granted": True,
                "source": "import",
                "at": NOW,
                "details": {},
            },
            {
                "customer_id": "c001",
                "category": "sms",
                "granted": True,
                "source": "import",
                "at": NOW,
                "details": {},
            },
        ]
    )
    store.customers.change_consents(
        [
            {
                "customer_id": "c001",
                "category": "sms",
                "granted": False,
                "source": "keyword:STOP",
                "at": NOW + timedelta(minutes=1),
                "details": {"message_id": "m1"},
            }
        ]
    )
    assert store.customers.consented(["c000", "c001"], "sms") == {"c000"}
    history = store.customers.consent_history("c001")
    assert [(h["granted"], h["source"]) for h in history] == [
        (True, "import"),
        (False, "keyword:STOP"),
    ]


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


def test_claims_are_leased_until_moved(store):
    ids = add_customers(store, 5)
    store.journeys.enrol(
        scenario_id="s",
        version="v1",
        node_id="n1",
        entries=[(cid, "launch", {}) for cid in ids],
        due_at=NOW,
        once_at_a_time=False,
    )
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
    store.journeys.enrol(
        scenario_id="s",
        version="v1",
        node_id="n1",
        entries=[(cid, "launch", {}) for cid in ids],
        due_at=NOW,
        once_at_a_time=False,
    )
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


def send_row(key: str, customer: str, state: str, at: datetime, **extra) -> dict:
    return {
        "key": key,
        "scenario_id": "s",
        "node_id": "sms",
        "customer_id": customer,
        "journey_id": 1,
        "state": state,
        "created_at": at,
        "tracked": False,
        **extra,
    }


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
    store.dispatches.resolve(
        "d1",
        enqueued=False,
        now=NOW,
        status_code=400,
        error="syntax_invalid_parameter_format",
        comment="bad to[0]",
    )
    sends = store.sends.by_key(["k1", "k2"])
    assert {s["state"] for s in sends.values()} == {"enqueue_failed"}
    assert sends["k1"]["status_code"] == "400"  # kept as the provider gave it
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
    store.dispatches.withhold_sends("d1", kept, {"k1": "no consent: sms", "k2": "STOP"}, NOW)
    sends = store.sends.by_key([f"k{n}" for n in range(5)])
    assert {k: (s["state"], s["reason"]) for k, s in sends.items()} == {
        "k0": ("pending", None),
        "k1": ("suppressed", "no consent: sms"),
        "k2": ("suppressed", "STOP"),
        "k3": ("pending", None),
        "k4": ("pending", None),
    }
    taken, abandoned = store.dispatches.take("d1", NOW, NOW)
    assert taken["payload"] == kept and not abandoned
    # With nobody left, the request is never made.
    store.dispatches.withhold_sends("d1", {**payload, "recipients": [], "send_keys": []}, {}, NOW)
    assert store.dispatches.unresolved_keys(["d1"]) == set()
    assert store.dispatches.take("d1", NOW + timedelta(hours=1), NOW + timedelta(hours=1)) is None


LEASE = timedelta(minutes=5)


def stored_dispatch(store, key: str, state: str, taken_at: datetime) -> None:
    """A request in `state`, its state last changed (for `sending`: taken) at `taken_at`."""
    store.sends.record_intents(
        [
            {
                "key": key,
                "integration": "sim",
                "state": state,
                "payload": {"body": "hi", "recipients": ["+12025550001"], "send_keys": ["k"]},
                "created_at": NOW - timedelta(hours=1),
                "updated_at": taken_at,
            }
        ],
        [],
    )


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
    assert (row["key"], row["state"], row["updated_at"]) == ("d1", "sending", NOW)
    assert row["payload"]["send_keys"] == ["k"]
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
    assert sorted(d["key"] for d in stale) == ["abandoned", "fresh"]
    assert store.dispatches.stale_pending("other", NOW, NOW) == []


def intent(key: str, *numbers: int) -> tuple[list[dict], list[dict]]:
    """A request to customers `numbers`, with a parameter per recipient, and its sends."""
    phones = [f"+1202555{n:04d}" for n in numbers]
    payload = {
        "body": "Hi ${p1}",
        "recipients": phones,
        "send_keys": [f"k{n}" for n in numbers],
        "parameters": {"p1": {phone: f"Ann{n}" for n, phone in zip(numbers, phones, strict=True)}},
    }
    dispatch = {
        "key": key,
        "integration": "sim",
        "state": "pending",
        "payload": payload,
        "created_at": NOW,
        "updated_at": NOW,
    }
    sends = [
        send_row(f"k{n}", f"c{n}", "pending", NOW, dispatch_key=key, phone=phone)
        for n, phone in zip(numbers, phones, strict=True)
    ]
    return [dispatch], sends


def test_a_message_another_request_holds_is_left_out_of_a_new_one(store):
    # Another worker, whose claim covered customers 1 and 2 as well, stored its intent
    # first; customer 5 was suppressed by it.
    store.sends.record_intents(*intent("other", 0, 1, 2))
    store.sends.record([send_row("k5", "c5", "suppressed", NOW, reason="no consent: sms")])

    mixed, mixed_sends = intent("mixed", 1, 3, 5)
    theirs, theirs_sends = intent("theirs", 2)
    store.sends.record_intents(mixed + theirs, mixed_sends + theirs_sends)

    sends = store.sends.by_key([f"k{n}" for n in range(6)])
    assert {k: (s["dispatch_key"], s["state"]) for k, s in sends.items()} == {
        "k0": ("other", "pending"),
        "k1": ("other", "pending"),
        "k2": ("other", "pending"),
        "k3": ("mixed", "pending"),
        "k5": (None, "suppressed"),
    }
    taken, _ = store.dispatches.take("mixed", NOW, NOW)
    assert taken["payload"] == {
        "body": "Hi ${p1}",
        "recipients": ["+12025550003"],
        "send_keys": ["k3"],
        "parameters": {"p1": {"+12025550003": "Ann3"}},
    }
    # A request with nobody of its own is not stored at all.
    assert store.dispatches.unresolved_keys(["other", "mixed", "theirs"]) == {"other", "mixed"}
    assert store.dispatches.take("other", NOW, NOW)[0]["payload"]["send_keys"] == ["k0", "k1", "k2"]

    # Written again (a retried step), the intents stay as they are.
    store.sends.record_intents(mixed + theirs, mixed_sends + theirs_sends)
    assert store.dispatches.unresolved_keys(["mixed", "theirs"]) == {"mixed"}


def test_a_message_another_request_holds_keeps_its_links(store):
    link = {
        "code": "AAAAAAAAAA",
        "position": 1,
        "customer_id": "c1",
        "scenario_id": "s",
        "node_id": "sms",
        "url": "https://x.com",
        "identity": "disabled",
        "test": False,
        "created_at": NOW,
    }
    store.sends.record_intents(*intent("other", 1), [{**link, "send_key": "k1"}])
    # This worker derived another code for the same message (its render saw a clash).
    mixed, sends = intent("mixed", 1, 3)
    store.sends.record_intents(mixed, sends, [{**link, "code": "BBBBBBBBBB", "send_key": "k1"}])
    assert store.links.owners(["AAAAAAAAAA", "BBBBBBBBBB"]) == {"AAAAAAAAAA": ("k1", 1)}


def test_frequency_counts_only_enqueued_sends_in_the_window(store):
    store.sends.record(
        [
            send_row("a", "c1", "enqueued", NOW - timedelta(hours=1)),
            send_row("b", "c1", "enqueued", NOW - timedelta(days=2)),
            send_row("c", "c1", "suppressed", NOW),
            send_row("d", "c2", "enqueue_failed", NOW),
        ]
    )
    assert store.sends.sent_since(["c1", "c2"], NOW - timedelta(days=1)) == {"c1": 1}


def test_campaign_events_are_appended_once_per_send(store):
    store.sends.record([send_row("k1", "c1", "enqueued", NOW)])
    event = {
        "name": "campaign",
        "customer_id": "c1",
        "scenario_id": "s",
        "status": "enqueued",
        "send_key": "k1",
        "timestamp": NOW,
        "properties": {"action_type": "sms"},
    }
    store.sends.track([event])
    assert store.sends.untracked(["k1"]) == []
    with pytest.raises(ConcurrentUpdate, match="tracked concurrently"):
        store.sends.track([event])
    assert store.evaluation.event_counts("s") == [("sms", "enqueued", 1)]


def test_scenario_versions_and_repeated_launch(store):
    kwargs = dict(
        scenario_id="s", name="S", source="s.yaml", now=NOW, event_cursor=7, next_fire_at=None
    )
    assert store.scenarios.save(version="v1", definition={"a": 1}, **kwargs) is True
    store.scenarios.update("s", event_cursor=12)
    assert store.scenarios.save(version="v1", definition={"a": 1}, **kwargs) is False
    assert store.scenarios.record("s")["event_cursor"] == 12  # a relaunch keeps the cursor
    assert store.scenarios.save(version="v2", definition={"a": 2}, **kwargs) is True
    assert store.scenarios.definition("s", "v1") == {"a": 1}
    assert store.scenarios.record("s")["version"] == "v2"
    with pytest.raises(ValueError, match="cannot update"):
        store.scenarios.update("s", name="x")
    assert store.scenarios.record("s")["launched_at"] == NOW


def test_a_project_secret_is_made_once_and_kept(store, database_url):
    from engine.store import Store

    first = store.secret("short_links")
    assert len(first) == 64 and first == store.secret("short_links")
    again = Store(database_url)  # another process of the same project
    assert again.secret("short_links") == first
    assert again.secret("another") != first
    again.close()
