"""Delivery reports: what the providers say became of each message, applied exactly once.

The rules (the seeds' and the usual ones of real-world delivery):
- a report is stored before it is acknowledged, and a re-posted duplicate is stored once;
- a final status (delivered, failed, rejected) is never overwritten, so a late
  intermediate status, or a second final one, changes nothing;
- a report that arrives before its send is recorded stays pending and is matched later;
- a report more than 4 days after dispatch is not tracked (kept, with the reason);
- recipients in countries without delivery reports are not awaited: the evaluation counts
  them apart instead of as missing.
A final report becomes a campaign event (delivered, failed or rejected) with the enqueue
event's properties (action, campaign, custom tracking attributes) and the report's status
code, error, comment, message parts and, for MMS, the `type` it was delivered as.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from engine.store import Store

REPORT_WINDOW = timedelta(days=4)
FINAL_STATUSES = frozenset({"delivered", "failed", "rejected"})
# The seeds' list of countries whose operators send no SMS delivery reports (ISO 3166).
NO_DELIVERY_REPORT_COUNTRIES = frozenset(
    {
        "BD", "BJ", "BR", "BI", "KH", "DE", "GP", "GU", "HK", "ID", "KW", "MY", "MH", "MR",
        "MX", "NR", "MP", "PK", "PA", "PG", "PE", "WS", "SB", "SS", "LK", "SD", "TJ", "TL",
        "TO", "TV", "UZ", "VE", "VN", "WF",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Verdict:
    """What to do with one report for its send: apply it or not, and why not."""

    apply: bool
    note: str | None = None


def judge(
    report_status: str, current_status: str | None, dispatched_at: datetime, received_at: datetime
) -> Verdict:
    """Whether a report changes its send (pure; the rules in the module docstring)."""
    if received_at - dispatched_at > REPORT_WINDOW:
        return Verdict(False, "reported more than 4 days after dispatch: not tracked")
    if current_status in FINAL_STATUSES:
        return Verdict(False, f"the send already has a final status ({current_status})")
    if report_status not in FINAL_STATUSES and current_status is not None:
        return Verdict(False, "an intermediate status after another one changes nothing")
    return Verdict(True)


def store_reports(store: Store, reports: Sequence[Any], received_at: datetime) -> int:
    """Store parsed reports (DeliveryReport objects); returns how many were new."""
    rows = []
    for report in reports:
        row = asdict(report)
        row["reported_at"] = row.pop("at")
        rows.append({**row, "received_at": received_at, "state": "pending"})
    return store.store_delivery_reports(rows)


# Webhook requests apply reports from a thread pool: one applier at a time, so two never
# apply the same pending report. (Several webhook processes would need the reports claimed
# in the database, as journeys are; one process serves them today.)
_applying = threading.Lock()


def apply_pending_reports(
    store: Store, event_name: str, now: datetime, limit: int = 5000
) -> Counter:
    """Match pending reports to their sends and apply them; returns counts by outcome."""
    with _applying:
        return _apply_pending(store, event_name, now, limit)


def _apply_pending(store: Store, event_name: str, now: datetime, limit: int) -> Counter:
    outcomes: Counter[str] = Counter()
    reports = store.pending_delivery_reports(limit)
    if not reports:
        return outcomes
    sends = store.sends_for_reports(reports)
    enqueue_events = store.campaign_events_for([send["key"] for send in sends.values()])
    resolutions, send_updates, events = [], {}, []
    for report in reports:
        send = sends.get(report["id"])
        if send is None or send["key"] not in enqueue_events:
            # Early: the send (or its enqueue event) is not recorded yet; matched later.
            outcomes["waiting for its send"] += 1
            continue
        current = send_updates.get(send["key"], send["delivery_status"])
        verdict = judge(report["status"], current, send["created_at"], report["received_at"])
        if not verdict.apply:
            resolutions.append((report["id"], "ignored", verdict.note))
            outcomes["ignored"] += 1
            continue
        send_updates[send["key"]] = report["status"]
        resolutions.append((report["id"], "applied", None))
        outcomes[report["status"]] += 1
        if report["status"] in FINAL_STATUSES:
            enqueued = enqueue_events[send["key"]]
            events.append(_campaign_event(enqueued, event_name, send, report, now))
    store.apply_delivery_reports(resolutions, send_updates, events)
    return outcomes


def _campaign_event(
    enqueued: dict[str, Any],
    event_name: str,
    send: dict[str, Any],
    report: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    properties = {
        **enqueued["properties"],
        "status": report["status"],
        "status_code": _number_or_code(report["status_code"]),
        "error": report["error"],
        "comment": report["comment"],
        "number_of_message_parts": report["parts"] or send["parts"],
    }
    if report["type"] is not None and properties.get("action_type") == "mms":
        properties["type"] = report["type"]
    return {
        "name": event_name,
        "customer_id": send["customer_id"],
        "scenario_id": send["scenario_id"],
        "status": report["status"],
        "send_key": None,  # the enqueue event holds the send key; reports are extra events
        "test": send["test"],
        "timestamp": report["reported_at"] or now,
        "properties": properties,
    }


def _number_or_code(value: str | None) -> int | str | None:
    return int(value) if value is not None and value.isdigit() else value
