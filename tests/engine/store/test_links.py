"""Short links in the store, on SQLite and on PostgreSQL (see conftest.py): written with
their send's intent, idempotent, never two owners for one code; clicks counted."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.errors import ConcurrentUpdate
from tests.conftest import NOW


def link(code: str, send_key: str = "s/v/n/c1/launch", position: int = 1, **values) -> dict:
    return {
        "code": code,
        "send_key": send_key,
        "position": position,
        "customer_id": "c1",
        "scenario_id": "s",
        "node_id": "n",
        "url": "https://x.com/a?utm_medium=sms",
        "identity": "first_click",
        "test": False,
        "created_at": NOW,
        **values,
    }


def send(key: str) -> dict:
    return {
        "key": key,
        "scenario_id": "s",
        "node_id": "n",
        "customer_id": "c1",
        "journey_id": 1,
        "phone": "+12025550001",
        "state": "pending",
        "dispatch_key": "d1",
        "tracked": False,
        "test": False,
        "created_at": NOW,
    }


def dispatch() -> dict:
    return {
        "key": "d1",
        "integration": "simulator",
        "state": "pending",
        "payload": {},
        "created_at": NOW,
        "updated_at": NOW,
    }


def click_event(at) -> dict:
    return {
        "name": "campaign",
        "customer_id": "c1",
        "scenario_id": "s",
        "status": "clicked",
        "send_key": None,
        "test": False,
        "timestamp": at,
        "properties": {"status": "clicked"},
    }


def test_links_round_trip_with_their_intent_and_a_retry_adds_nothing(store):
    rows = [link("AAAAAAAAAA"), link("BBBBBBBBBB", position=2)]
    store.sends.record_intents([dispatch()], [send("s/v/n/c1/launch")], rows)
    store.sends.record_intents([dispatch()], [send("s/v/n/c1/launch")], rows)  # retried
    stored = store.links.get("AAAAAAAAAA")
    assert stored["url"] == "https://x.com/a?utm_medium=sms" and stored["clicks"] == 0
    assert stored["created_at"] == NOW and stored["first_clicked_at"] is None
    assert store.links.owners(["AAAAAAAAAA", "BBBBBBBBBB", "CCCCCCCCCC"]) == {
        "AAAAAAAAAA": ("s/v/n/c1/launch", 1),
        "BBBBBBBBBB": ("s/v/n/c1/launch", 2),
    }
    assert store.links.get("CCCCCCCCCC") is None
    assert store.evaluation.click_counts("s") == (2, 0, 0)


def test_a_code_taken_by_another_message_rolls_the_whole_intent_back(store):
    store.sends.record_intents([], [], [link("AAAAAAAAAA", send_key="other/send")])
    with pytest.raises(ConcurrentUpdate, match="taken concurrently"):
        store.sends.record_intents([dispatch()], [send("s/v/n/c1/launch")], [link("AAAAAAAAAA")])
    assert store.sends.by_key(["s/v/n/c1/launch"]) == {}  # no send without its links
    assert store.dispatches.unresolved_keys(["d1"]) == set()
    assert store.links.get("AAAAAAAAAA")["send_key"] == "other/send"


def test_clicks_are_counted_and_only_the_first_is_first(store):
    store.sends.record_intents([], [], [link("AAAAAAAAAA"), link("BBBBBBBBBB", position=2)])
    later = NOW + timedelta(minutes=5)
    assert store.links.record_click("AAAAAAAAAA", NOW, click_event(NOW)) is True
    assert store.links.record_click("AAAAAAAAAA", later, click_event(later)) is False
    stored = store.links.get("AAAAAAAAAA")
    assert stored["clicks"] == 2 and stored["first_clicked_at"] == NOW
    assert [e["status"] for e in store.evaluation.campaign_events("s")] == ["clicked", "clicked"]
    assert store.evaluation.click_counts("s") == (2, 1, 2)  # two links, one customer, two clicks


def test_test_links_are_left_out_of_the_counts(store):
    store.sends.record_intents([], [], [link("AAAAAAAAAA", test=True)])
    store.links.record_click("AAAAAAAAAA", NOW, click_event(NOW))
    assert store.evaluation.click_counts("s") == (0, 0, 0)
