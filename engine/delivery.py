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
import queue
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from engine.store import SendRow, Store

logger = logging.getLogger("scenarist.delivery")

REPORT_WINDOW = timedelta(days=4)
WAITING = "waiting for its send"
TOO_LATE = "reported more than 4 days after dispatch: not tracked"
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
        return Verdict(False, TOO_LATE)
    if current_status in FINAL_STATUSES:
        return Verdict(False, f"the send already has a final status ({current_status})")
    if report_status not in FINAL_STATUSES and current_status is not None:
        return Verdict(False, "an intermediate status after another one changes nothing")
    return Verdict(True)


def report_rows(reports: Sequence[Any], received_at: datetime) -> list[dict[str, Any]]:
    """Parsed reports (DeliveryReport objects) as rows of the delivery_reports table."""
    rows = []
    for report in reports:
        # vars(), not dataclasses.asdict: asdict deep-copies every value, and that was
        # most of the time a webhook request took.
        row = dict(vars(report))
        row["reported_at"] = row.pop("at")
        rows.append({**row, "received_at": received_at, "state": "pending"})
    return rows


# One applier at a time in a process (the webhook's report writer, a tick). Across
# processes, applying checks in its transaction that its reports are still pending, so a
# report two appliers read at once is applied by one and the other's attempt is undone.
_applying = threading.Lock()


def apply_pending_reports(
    store: Store, event_name: str, now: datetime, limit: int = 5000
) -> Counter:
    """Match pending reports to their sends and apply them; returns counts by outcome."""
    with _applying:
        return _apply_pending(store, event_name, now, limit)


class ReportWriter:
    """The one thread that writes delivery reports in a webhook process.

    A request hands over its parsed reports and waits until they are committed (stored
    before acknowledged). The writer takes whatever requests arrived meanwhile and stores
    and applies their reports in one transaction (`store_and_apply`), then answers them;
    reports still waiting for their sends are applied by later passes or the tick. One
    writer means no request waits for another's SQLite write lock, and a burst of requests
    costs one commit rather than one each: what lets the webhook keep up with providers
    posting on many connections at once. A transaction that fails is retried in halves,
    down to the request that fails it: a bad report never fails other requests' reports.
    """

    # Requests stored per transaction at most: bounds how long the first one waits.
    MAX_REQUESTS = 64

    def __init__(self, store: Store, event_name: str, now: Callable[[], datetime]):
        self._store, self._event_name, self._now = store, event_name, now
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._start = threading.Lock()
        self._thread: threading.Thread | None = None

    def store(self, reports: Sequence[Any], received_at: datetime) -> Future[int]:
        """Queue reports for storing; the future gives how many were new once committed."""
        return self._submit(_Request(report_rows(reports, received_at)))

    def settle(self, timeout: float = 30.0) -> bool:
        """Wait until the reports handed over before this call are stored and applied
        (one still waiting for its send stays pending); False on timeout."""
        try:
            self._submit(_Request(None)).result(timeout)
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=30)
            self._thread = None

    def _submit(self, request: _Request) -> Future[int]:
        with self._start:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="scenarist-report-writer", daemon=True
                )
                self._thread.start()
        self._queue.put(request)
        return request.done

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self.MAX_REQUESTS and not self._queue.empty():
                batch.append(self._queue.get())
            requests = [request for request in batch if request is not None]
            self._store_and_apply(requests)
            if len(requests) < len(batch):  # closing
                return

    def _store_and_apply(self, requests: list[_Request]) -> None:
        writes = [request for request in requests if request.rows is not None]
        pending_left = bool(writes) and self._write(writes)
        try:
            while pending_left:
                outcomes = apply_pending_reports(self._store, self._event_name, self._now())
                # Done when nothing is left, or only reports still waiting for their sends.
                pending_left = bool(sum(n for what, n in outcomes.items() if what != WAITING))
        except Exception:  # stored reports are not lost: the next request or tick applies
            logger.exception("delivery reports stored but not applied yet")
        for request in requests:
            if request.rows is None:
                request.done.set_result(0)

    def _write(self, writes: list[_Request]) -> bool:
        """Store and apply the requests' reports in one transaction, and answer them;
        returns whether stored reports may still be pending (then the re-reading path
        runs). When the transaction fails, nothing was written: the requests are written
        again in halves, so one request's bad report fails that request alone."""
        batches = [request.rows or [] for request in writes]
        try:
            counts, outcomes = store_and_apply(self._store, batches, self._event_name, self._now())
        except Exception:
            if len(writes) > 1:
                logger.warning("%d requests' reports failed together, retried apart", len(writes))
                half = len(writes) // 2
                return self._write(writes[:half]) | self._write(writes[half:])
            logger.exception("delivery reports could not be applied on arrival")
            return self._store_pending(writes[0])
        for request, count in zip(writes, counts, strict=True):
            request.done.set_result(count)
        return bool(outcomes[WAITING])

    def _store_pending(self, request: _Request) -> bool:
        """Store one request's reports as they came, pending, to be applied apart (a report
        that cannot be applied must still be stored and acknowledged); if even that fails,
        nothing is stored and the request answers with the error. True when stored."""
        try:
            [count] = self._store.reports.store([request.rows or []])
        except Exception as exc:
            request.done.set_exception(exc)
            return False
        request.done.set_result(count)
        return True


@dataclass
class _Request:
    """Reports to store (rows), or None: a marker answered once everything before it is
    stored and applied."""

    rows: list[dict[str, Any]] | None
    done: Future[int] = field(default_factory=Future)


@dataclass
class _Decisions:
    """What a batch of reports does: each report's state (None: still waiting for its
    send) and note, the sends' new delivery statuses, the campaign events to append, and
    the statuses the sends had when this was decided."""

    states: list[tuple[str | None, str | None]] = field(default_factory=list)
    send_updates: dict[str, str] = field(default_factory=dict)
    read_statuses: dict[str, str | None] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)


def _decide(
    store: Store, reports: Sequence[dict[str, Any]], event_name: str, now: datetime
) -> _Decisions:
    """Match reports to their sends and judge each, in order (the rules above)."""
    sends = store.reports.sends_for(reports)
    enqueue_events = store.reports.enqueue_events([send.key for send in sends if send])
    decided = _Decisions()
    for report, send in zip(reports, sends, strict=True):
        if send is None or send.key not in enqueue_events:
            # Early: the send (or its enqueue event) is not recorded yet; matched later.
            decided.states.append((None, None))
            decided.outcomes[WAITING] += 1
            continue
        decided.read_statuses.setdefault(send.key, send.delivery_status)
        current = decided.send_updates.get(send.key, send.delivery_status)
        verdict = judge(report["status"], current, send.created_at, report["received_at"])
        if not verdict.apply:
            decided.states.append(("ignored", verdict.note))
            decided.outcomes["ignored"] += 1
            if verdict.note == TOO_LATE:
                logger.info("delivery report for %s: %s", send.key, TOO_LATE)
            continue
        decided.send_updates[send.key] = report["status"]
        decided.states.append(("applied", None))
        decided.outcomes[report["status"]] += 1
        if report["status"] in FINAL_STATUSES:
            enqueued = enqueue_events[send.key]
            decided.events.append(_campaign_event(enqueued, event_name, send, report, now))
    return decided


def _apply_pending(store: Store, event_name: str, now: datetime, limit: int) -> Counter:
    reports = store.reports.pending(limit)
    if not reports:
        return Counter()
    decided = _decide(store, reports, event_name, now)
    resolutions = [
        (report["id"], state, note)
        for report, (state, note) in zip(reports, decided.states, strict=True)
        if state is not None
    ]
    store.reports.apply(resolutions, decided.send_updates, decided.events)
    return decided.outcomes


def store_and_apply(
    store: Store, batches: Sequence[Sequence[dict[str, Any]]], event_name: str, now: datetime
) -> tuple[list[int], Counter]:
    """Store batches of report rows (one per request) and apply the new ones, in one
    transaction: each new report goes in already applied, ignored, or pending when its
    send is not recorded yet, so none is read back. Returns how many of each batch were
    new, and the outcomes. Holds the applier lock: one applier at a time."""
    with _applying:
        seen = store.reports.stored_keys({row["dedupe_key"] for rows in batches for row in rows})
        fresh, counts = [], []
        for rows in batches:
            before = len(fresh)
            for row in rows:
                if row["dedupe_key"] not in seen:  # stored already, or twice in this batch
                    seen.add(row["dedupe_key"])
                    fresh.append(row)
            counts.append(len(fresh) - before)
        decided = _decide(store, fresh, event_name, now)
        rows = [
            {**row, "state": state or "pending", "note": note}
            for row, (state, note) in zip(fresh, decided.states, strict=True)
        ]
        store.reports.record(rows, decided.send_updates, decided.events, decided.read_statuses)
        return counts, decided.outcomes


def _campaign_event(
    enqueued: dict[str, Any],
    event_name: str,
    send: SendRow,
    report: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    properties = {
        **enqueued["properties"],
        "status": report["status"],
        "status_code": number_or_code(report["status_code"]),
        "error": report["error"],
        "comment": report["comment"],
        "number_of_message_parts": report["parts"] or send.parts,
    }
    if report["type"] is not None and properties.get("action_type") == "mms":
        properties["type"] = report["type"]
    return {
        "name": event_name,
        "customer_id": send.customer_id,
        "scenario_id": send.scenario_id,
        "status": report["status"],
        "send_key": None,  # the enqueue event holds the send key; reports are extra events
        "test": send.test,
        "timestamp": report["reported_at"] or now,
        "properties": properties,
    }


def number_or_code(value: str | None) -> int | str | None:
    """A stored status code as campaign events carry it: numbers (HTTP and delivery
    statuses) as numbers, codes such as "E110" as text."""
    return int(value) if value is not None and value.isdigit() else value
