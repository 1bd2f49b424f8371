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

import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from engine.store import Store

logger = logging.getLogger("scenarist.delivery")

REPORT_WINDOW = timedelta(days=4)
WAITING = "waiting for its send"
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
        # vars(), not dataclasses.asdict: asdict deep-copies every value, and that was
        # most of the time a webhook request took.
        row = dict(vars(report))
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


class ReportApplier:
    """Applies stored reports in one background thread, so a webhook request only stores
    its reports and answers. Reports that arrive together are applied together: a few
    large transactions instead of one per request, which is what lets the webhook keep up
    with providers posting from many connections at once.

    `poke()` after storing; `settle()` waits until everything stored before it that can be
    applied has been (a report still waiting for its send stays pending for later).
    """

    def __init__(self, store: Store, event_name: str, now: Callable[[], datetime]):
        self._store, self._event_name, self._now = store, event_name, now
        self._changed = threading.Condition()
        self._requested = self._served = 0
        self._closing = False
        self._thread: threading.Thread | None = None

    def poke(self) -> None:
        with self._changed:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="scenarist-report-applier", daemon=True
                )
                self._thread.start()
            self._requested += 1
            self._changed.notify_all()

    def settle(self, timeout: float = 30.0) -> bool:
        """Wait until the reports stored before this call are applied; False on timeout."""
        with self._changed:
            target = self._requested
            return self._changed.wait_for(lambda: self._served >= target, timeout)

    def close(self) -> None:
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._requested > self._served or self._closing)
                if self._closing and self._requested == self._served:
                    return
                target = self._requested
            self._drain()
            with self._changed:
                self._served = target
                self._changed.notify_all()

    def _drain(self) -> None:
        try:
            while True:
                outcomes = apply_pending_reports(self._store, self._event_name, self._now())
                if not sum(n for what, n in outcomes.items() if what != WAITING):
                    return  # nothing left, or only reports still waiting for their sends
        except Exception:  # stored reports are not lost: the next poke or tick applies them
            logger.exception("delivery reports stored but not applied yet")


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
            outcomes[WAITING] += 1
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
        "status_code": number_or_code(report["status_code"]),
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


def number_or_code(value: str | None) -> int | str | None:
    """A stored status code as campaign events carry it: numbers (HTTP and delivery
    statuses) as numbers, codes such as "E110" as text."""
    return int(value) if value is not None and value.isdigit() else value
