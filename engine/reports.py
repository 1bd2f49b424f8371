"""What operators and designers look at: journeys per node, events per status, the funnel.

Each report is a title, column names and rows, so the CLI can draw it with rich and the
flows can publish the same numbers as Prefect table artifacts.
"""

from __future__ import annotations

from dataclasses import dataclass

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
        list(store.journey_counts(scenario_id)),
    )


def campaign_events_report(store: Store, scenario_id: str) -> Report:
    return Report(
        f"Campaign events of {scenario_id}",
        ("action_type", "status", "events"),
        list(store.campaign_event_counts(scenario_id)),
    )


def funnel_report(store: Store, scenario_id: str) -> Report:
    """Entered, then what became of each message: not sent and why, enqueued, failed,
    delivered, and who clicked its links (the customers; every click in another row)."""
    journeys = store.journey_counts(scenario_id)
    entered = sum(count for _node, _state, count in journeys)
    rows: list[tuple] = [("entered the scenario", entered)]
    waiting = {node: count for node, state, count in journeys if state == "active"}
    rows += [
        (f"waiting at {node} (a wait, silent hours, or not yet due)", count)
        for node, count in sorted(waiting.items())
    ]
    rows += [
        (f"not sent: {reason}", count) for reason, count in store.suppression_counts(scenario_id)
    ]
    rows += [
        (f"{action_type} {status}", count)
        for action_type, status, count in store.campaign_event_counts(scenario_id)
        if status != "clicked"  # clicks are counted per customer below
    ]
    waiting = store.delivery_counts(scenario_id, NO_DELIVERY_REPORT_COUNTRIES)
    rows += [
        (stage, count)
        for stage, count in sorted(waiting.items())
        if stage not in ("delivered", "failed", "rejected")
    ]
    links, clickers, clicks = store.click_counts(scenario_id)
    if links:
        rows += [("clicked a link", clickers), ("link clicks (every click)", clicks)]
    return Report(f"Evaluation of {scenario_id}", ("stage", "customers"), rows)


def scenario_reports(store: Store, scenario_id: str) -> list[Report]:
    return [
        funnel_report(store, scenario_id),
        journeys_report(store, scenario_id),
        campaign_events_report(store, scenario_id),
    ]
