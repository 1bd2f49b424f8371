"""Rows the store tests write: customers, sends, stored requests."""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.conftest import NOW


def add_customers(store, count: int) -> list[str]:
    rows = [
        {"id": f"c{n:03d}", "phone": f"+1202555{n:04d}", "attributes": {"n": n}}
        for n in range(count)
    ]
    store.customers.upsert(rows, NOW)
    return [row["id"] for row in rows]


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


def event_for(send) -> dict:
    """A campaign event for one decided send, as the send protocol's tracker builds it."""
    return {
        "name": "campaign",
        "customer_id": send.customer_id,
        "scenario_id": "s",
        "status": send.state,
        "send_key": send.key,
        "timestamp": NOW,
        "properties": {"action_type": "sms", "error": send.error},
    }
