"""What operators and designers look at: journeys per node, events per status, the funnel,
and delivery over time.

Each report is a title, column names and rows, so the CLI can draw it with rich and the
flows can publish the same numbers as Prefect table artifacts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from engine.delivery import NO_DELIVERY_REPORT_COUNTRIES
from engine.store import Store


@dataclass(frozen=True)
class Report:
    title: str
    columns: tuple[str, ...]
    rows: list[tuple]

    def markdown(self) -> str:
        lines = [f"### {self.title}", "", "| " + " | ".join(self.columns) + " |"]
        lines.append("|" + "---|" * len(self.columns))
        lines += ["| " + " | ".join(str(value) for value in row) + " |" for row in self.rows]
        return "\n".join(lines)


def journeys_report(store: Store, scenario_id: str) -> Report:
    return Report(
        f"Journeys of {scenario_id}",
        ("node", "state", "customers"),
        list(store.journeys.counts(scenario_id)),
    )


def campaign_events_report(store: Store, scenario_id: str) -> Report:
    return Report(
        f"Campaign events of {scenario_id}",
        ("action_type", "status", "events"),
        list(store.evaluation.event_counts(scenario_id)),
    )


def funnel_report(store: Store, scenario_id: str) -> Report:
    """Entered, then what became of each message: not sent and why, enqueued, failed,
    delivered, and who clicked its links (the customers; every click in another row)."""
    journeys = store.journeys.counts(scenario_id)
    entered = sum(count for _node, _state, count in journeys)
    rows: list[tuple] = [("entered the scenario", entered)]
    waiting = {node: count for node, state, count in journeys if state == "active"}
    rows += [
        (f"waiting at {node} (a wait, silent hours, or not yet due)", count)
        for node, count in sorted(waiting.items())
    ]
    rows += [
        (f"not sent: {reason}", count)
        for reason, count in store.evaluation.suppression_counts(scenario_id)
    ]
    rows += [
        (f"{action_type} {status}", count)
        for action_type, status, count in store.evaluation.event_counts(scenario_id)
        if status != "clicked"  # clicks are counted per customer below
    ]
    waiting = store.evaluation.delivery_counts(scenario_id, NO_DELIVERY_REPORT_COUNTRIES)
    rows += [
        (stage, count)
        for stage, count in sorted(waiting.items())
        if stage not in ("delivered", "failed", "rejected")
    ]
    links, clickers, clicks = store.evaluation.click_counts(scenario_id)
    if links:
        rows += [("clicked a link", clickers), ("link clicks (every click)", clicks)]
    return Report(f"Evaluation of {scenario_id}", ("stage", "customers"), rows)


# The statuses a timeline shows, in the order a message goes through them.
TIMELINE_STATUSES = ("enqueued", "enqueue_failed", "delivered", "failed", "rejected", "clicked")
BAR_WIDTH = 24
_LABELS = {"minute": "%Y-%m-%d %H:%M", "hour": "%Y-%m-%d %H:00", "day": "%Y-%m-%d"}


def timeline_unit(first: datetime, last: datetime) -> str:
    """The time step that shows a span in at most about 30 rows."""
    span = last - first
    if span <= timedelta(minutes=30):
        return "minute"
    if span <= timedelta(hours=30):
        return "hour"
    return "day"


def timeline_report(
    scenario_id: str, rows: Sequence[tuple[datetime, str, int]], unit: str
) -> Report:
    """Campaign events per time step and status, with a bar chart of deliveries (of sends,
    while no delivery report has come yet), from (step start, status, events) rows."""
    steps: dict[datetime, Counter[str]] = {}
    for start, status, count in rows:
        steps.setdefault(start, Counter())[status] += count
    seen = {status for counts in steps.values() for status in counts}
    statuses = [status for status in TIMELINE_STATUSES if status in seen]
    charted = "delivered" if "delivered" in seen else "enqueued"
    peak = max((counts[charted] for counts in steps.values()), default=0)
    table = []
    for start, counts in sorted(steps.items()):
        bar = "█" * round(counts[charted] / peak * BAR_WIDTH) if peak else ""
        table.append((start.strftime(_LABELS[unit]), *(counts[s] for s in statuses), bar))
    return Report(
        f"Delivery over time of {scenario_id} (UTC, per {unit})",
        ("time", *statuses, f"chart: {charted}"),
        table,
    )


def delivery_timeline(store: Store, scenario_id: str) -> Report | None:
    """The timeline of one scenario's campaign events; None before the first."""
    span = store.evaluation.event_span(scenario_id)
    if span is None:
        return None
    unit = timeline_unit(*span)
    return timeline_report(scenario_id, store.evaluation.timeline(scenario_id, unit), unit)


def scenario_reports(store: Store, scenario_id: str) -> list[Report]:
    timeline = delivery_timeline(store, scenario_id)
    return [
        funnel_report(store, scenario_id),
        journeys_report(store, scenario_id),
        campaign_events_report(store, scenario_id),
        *([timeline] if timeline is not None else []),
    ]
