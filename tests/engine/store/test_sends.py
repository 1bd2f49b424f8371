"""Sends in the store: intents, frequency counts and tracking, on SQLite and on
PostgreSQL (see conftest.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.errors import ConcurrentUpdate
from tests.conftest import NOW
from tests.engine.store.rows import send_row


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
    assert {k: (s.dispatch_key, s.state) for k, s in sends.items()} == {
        "k0": ("other", "pending"),
        "k1": ("other", "pending"),
        "k2": ("other", "pending"),
        "k3": ("mixed", "pending"),
        "k5": (None, "suppressed"),
    }
    taken, _ = store.dispatches.take("mixed", NOW, NOW)
    assert taken.payload == {
        "body": "Hi ${p1}",
        "recipients": ["+12025550003"],
        "send_keys": ["k3"],
        "parameters": {"p1": {"+12025550003": "Ann3"}},
    }
    # A request with nobody of its own is not stored at all.
    assert store.dispatches.unresolved_keys(["other", "mixed", "theirs"]) == {"other", "mixed"}
    assert store.dispatches.take("other", NOW, NOW)[0].payload["send_keys"] == ["k0", "k1", "k2"]

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


EVENT = {
    "name": "campaign",
    "customer_id": "c1",
    "scenario_id": "s",
    "status": "enqueued",
    "send_key": "k1",
    "timestamp": NOW,
    "properties": {"action_type": "sms"},
}


def test_campaign_events_are_appended_once_per_send(store):
    store.sends.record([send_row("k1", "c1", "enqueued", NOW)])
    event = EVENT
    store.sends.track([event])
    assert store.sends.by_key(["k1"])["k1"].tracked
    with pytest.raises(ConcurrentUpdate, match="tracked concurrently"):
        store.sends.track([event])
    assert store.evaluation.event_counts("s") == [("sms", "enqueued", 1)]


def test_decisions_before_any_request_are_recorded_with_their_events_once(store):
    failed = send_row("k1", "c1", "enqueue_failed", NOW, error="invalid_phone", tracked=True)
    suppressed = send_row("k2", "c2", "suppressed", NOW, reason="no consent: sms", tracked=True)
    event = {**EVENT, "status": "enqueue_failed"}
    store.sends.record([failed, suppressed], [event])
    # A retried attempt decides them again: the stored decisions and their event stand.
    store.sends.record([{**failed, "error": "other"}], [{**event, "status": "other"}])
    sends = store.sends.by_key(["k1", "k2"])
    assert (sends["k1"].error, sends["k2"].reason) == ("invalid_phone", "no consent: sms")
    assert store.evaluation.event_counts("s") == [("sms", "enqueue_failed", 1)]
