"""Wait: hold each customer for a duration, or until a time of day (and date).

`duration: 2h` waits two hours. `until: "09:00"` waits for the next 09:00 in `timezone`
(`customer`: each customer's own zone, falling back to the project's), optionally on
`date`; a date-time already past lets the customer through at once.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Literal

from pydantic import model_validator

from engine.schedule import Duration, ZoneOrCustomer, next_time_of_day
from nodes.base import JourneyItem, Move, NodeConfig

if TYPE_CHECKING:
    from engine.runtime import NodeContext


class WaitNode(NodeConfig):
    """Hold customers for a duration or until a local time of day."""

    type: Literal["wait"]
    duration: Duration | None = None
    until: dt.time | None = None
    date: dt.date | None = None
    timezone: ZoneOrCustomer = "customer"

    @model_validator(mode="after")
    def _one_kind(self) -> WaitNode:
        if (self.duration is None) == (self.until is None):
            raise ValueError("a wait needs exactly one of `duration` or `until`")
        if self.date is not None and self.until is None:
            raise ValueError("`date` needs `until`, the time of day on that date")
        return self

    def run(self, ctx: NodeContext, items: list[JourneyItem]) -> list[Move]:
        moves = []
        for item in items:
            if self.duration is not None:
                due = ctx.now + self.duration
            else:
                assert self.until is not None
                zone = ctx.zone(item, self.timezone)
                due = next_time_of_day(ctx.now, self.until, zone, self.date)
            moves.append(Move(item, "next", due_at=due, reason="waiting"))
        return moves
