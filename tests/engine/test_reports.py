"""Reports: delivery over time, its time step and its bars, from the store on SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.reports import delivery_timeline, timeline_report, timeline_unit
from tests.conftest import NOW


@pytest.mark.parametrize(
    ("span", "unit"),
    [
        (timedelta(0), "minute"),
        (timedelta(minutes=30), "minute"),
        (timedelta(minutes=31), "hour"),
        (timedelta(hours=30), "hour"),
        (timedelta(hours=31), "day"),
        (timedelta(days=40), "day"),
    ],
)
def test_the_time_step_keeps_a_timeline_short(span, unit):
    assert timeline_unit(NOW, NOW + span) == unit


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 23, hour, minute, tzinfo=UTC)


def test_the_timeline_counts_each_status_per_step_and_charts_deliveries():
    rows = [
        (at(15), "enqueued", 100),
        (at(15), "delivered", 40),
        (at(16), "delivered", 60),
        (at(16), "failed", 2),
        (at(17), "clicked", 5),
    ]
    report = timeline_report("promo", rows, "hour")
    assert report.columns == (
        "time",
        "enqueued",
        "delivered",
        "failed",
        "clicked",
        "chart: delivered",
    )
    assert report.rows == [
        ("2026-11-23 15:00", 100, 40, 0, 0, "█" * 16),  # 40 of the peak 60: 16 of 24
        ("2026-11-23 16:00", 0, 60, 2, 0, "█" * 24),
        ("2026-11-23 17:00", 0, 0, 0, 5, ""),
    ]


def test_before_any_delivery_report_the_sends_are_charted():
    report = timeline_report(
        "promo", [(at(15, 1), "enqueued", 3), (at(15, 2), "enqueued", 6)], "minute"
    )
    assert report.columns[-1] == "chart: enqueued"
    assert [row[-1] for row in report.rows] == ["█" * 12, "█" * 24]
    assert report.rows[0][0] == "2026-11-23 15:01"


def test_the_timeline_from_the_store(store):
    events = [
        (NOW, "enqueued"),
        (NOW + timedelta(minutes=20), "delivered"),
        (NOW + timedelta(hours=2), "delivered"),
        (NOW + timedelta(hours=2, minutes=5), "clicked"),
    ]
    store.sends.track(
        [
            {
                "name": "campaign",
                "customer_id": f"c{n}",
                "scenario_id": "promo",
                "status": status,
                "test": False,
                "timestamp": when,
                "properties": {"action_type": "sms", "status": status},
            }
            for n, (when, status) in enumerate(events)
        ]
        + [
            {  # a test send is never in the evaluation
                "name": "campaign",
                "customer_id": "t",
                "scenario_id": "promo",
                "status": "enqueued",
                "test": True,
                "timestamp": NOW - timedelta(days=3),
                "properties": {"action_type": "sms", "status": "enqueued", "test": True},
            }
        ]
    )
    report = delivery_timeline(store, "promo")
    assert report is not None and report.title == "Delivery over time of promo (UTC, per hour)"
    assert [row[:4] for row in report.rows] == [
        ("2026-11-23 15:00", 1, 1, 0),
        ("2026-11-23 17:00", 0, 1, 1),
    ]
    assert delivery_timeline(store, "nothing") is None
