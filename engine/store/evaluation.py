"""What a scenario's evaluation reads: campaign events, suppressions, deliveries,
clicks. Test sends are left out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from engine.store.database import Database, bucket_start
from engine.store.tables import CAMPAIGN_EVENTS, CUSTOMERS, SENDS, SHORT_LINKS


def _evaluated(scenario_id: str) -> tuple[Any, ...]:
    """The campaign events the evaluation counts: the scenario's, test sends left out."""
    return (CAMPAIGN_EVENTS.c.scenario_id == scenario_id, CAMPAIGN_EVENTS.c.test.is_(False))


class Evaluation:
    """Read-only counts and events for evaluations and tests."""

    def __init__(self, db: Database):
        self.db = db

    def event_counts(self, scenario_id: str) -> list[tuple[str, str, int]]:
        """(action_type, status, count) for one scenario."""
        action_type = CAMPAIGN_EVENTS.c.properties["action_type"].as_string()
        with self.db.engine.connect() as connection:
            rows = connection.execute(
                select(action_type, CAMPAIGN_EVENTS.c.status, func.count())
                .where(*_evaluated(scenario_id))
                .group_by(action_type, CAMPAIGN_EVENTS.c.status)
                .order_by(CAMPAIGN_EVENTS.c.status)
            )
            return [(row[0], row[1], row[2]) for row in rows]

    def event_span(self, scenario_id: str) -> tuple[datetime, datetime] | None:
        """The first and last campaign event times of one scenario (tests left out)."""
        with self.db.engine.connect() as connection:
            first, last = connection.execute(
                select(
                    func.min(CAMPAIGN_EVENTS.c.timestamp), func.max(CAMPAIGN_EVENTS.c.timestamp)
                ).where(*_evaluated(scenario_id))
            ).one()
        if first is None:
            return None
        return bucket_start(first), bucket_start(last)

    def timeline(self, scenario_id: str, unit: str) -> list[tuple[datetime, str, int]]:
        """(bucket start, status, events) per `unit` ("minute", "hour", "day") of one
        scenario's campaign events, in time order (tests left out)."""
        bucket = self.db.time_bucket(CAMPAIGN_EVENTS.c.timestamp, unit).label("bucket")
        with self.db.engine.connect() as connection:
            rows = connection.execute(
                select(bucket, CAMPAIGN_EVENTS.c.status, func.count())
                .where(*_evaluated(scenario_id))
                .group_by(bucket, CAMPAIGN_EVENTS.c.status)
                .order_by(bucket)
            )
            return [(bucket_start(row[0]), row[1], row[2]) for row in rows]

    def campaign_events(self, scenario_id: str) -> list[dict[str, Any]]:
        return self.db.rows(
            select(CAMPAIGN_EVENTS)
            .where(CAMPAIGN_EVENTS.c.scenario_id == scenario_id)
            .order_by(CAMPAIGN_EVENTS.c.id)
        )

    def campaign_event_for(self, send_key: str) -> dict[str, Any] | None:
        return self.db.first(select(CAMPAIGN_EVENTS).where(CAMPAIGN_EVENTS.c.send_key == send_key))

    def suppression_counts(self, scenario_id: str) -> list[tuple[str, int]]:
        """(reason, count) of messages not sent by a policy, for one scenario."""
        with self.db.engine.connect() as connection:
            rows = connection.execute(
                select(SENDS.c.reason, func.count())
                .where(SENDS.c.scenario_id == scenario_id, SENDS.c.state == "suppressed")
                .group_by(SENDS.c.reason)
            )
            return [(row[0], row[1]) for row in rows]

    def delivery_counts(self, scenario_id: str, silent_regions: frozenset[str]) -> dict[str, int]:
        """Enqueued sends of a scenario by what their delivery reports said, with those to
        countries that send no reports counted apart."""
        region = CUSTOMERS.c.region
        silent = region.in_(sorted(silent_regions))
        query = (
            select(SENDS.c.delivery_status, silent.label("silent"), func.count())
            .select_from(SENDS.outerjoin(CUSTOMERS, CUSTOMERS.c.id == SENDS.c.customer_id))
            .where(
                SENDS.c.scenario_id == scenario_id,
                SENDS.c.state == "enqueued",
                SENDS.c.test.is_(False),
            )
            .group_by(SENDS.c.delivery_status, silent)
        )
        counts: dict[str, int] = {}
        with self.db.engine.connect() as connection:
            for status, is_silent, count in connection.execute(query):
                if status in ("delivered", "failed", "rejected"):
                    name = status
                elif is_silent:
                    name = "no delivery reports in the recipient's country"
                else:
                    name = "awaiting a delivery report"
                counts[name] = counts.get(name, 0) + count
        return counts

    def click_counts(self, scenario_id: str) -> tuple[int, int, int]:
        """Short links sent by a scenario, customers who clicked one, and every click; test
        sends left out."""
        links = SHORT_LINKS.c
        clicked = links.clicks > 0
        query = select(
            func.count(),
            func.count(links.customer_id.distinct()).filter(clicked),
            func.coalesce(func.sum(links.clicks), 0),
        ).where(links.scenario_id == scenario_id, links.test.is_(False))
        with self.db.engine.connect() as connection:
            sent, customers, clicks = connection.execute(query).one()
            return sent, customers, clicks
