"""Customers and consents in the store, on SQLite and on PostgreSQL (see conftest.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.conftest import NOW
from tests.engine.store.rows import add_customers


def test_upsert_merges_attributes_and_keeps_aware_times(store):
    store.customers.upsert([{"id": "c1", "phone": "+12025550001", "attributes": {"a": 1}}], NOW)
    later = NOW + timedelta(hours=1)
    store.customers.upsert([{"id": "c1", "attributes": {"b": 2}}], later)
    customer = store.customers.get("c1")
    assert customer.attributes == {"a": 1, "b": 2, "phone": "+12025550001"}
    assert customer.phone == "+12025550001"
    assert customer.updated_at == later  # aware UTC in, aware UTC out


def test_naive_datetimes_are_refused(store):
    with pytest.raises(Exception, match="naive datetime"):
        store.customers.upsert([{"id": "c1"}], datetime(2026, 1, 1))


def test_customer_pages_cover_everyone_once(store):
    ids = add_customers(store, 25)
    pages = list(store.customers.pages(10))
    assert [len(page) for page in pages] == [10, 10, 5]
    assert [c.id for page in pages for c in page] == sorted(ids)


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
