"""Silent hours: a customer who arrives inside them waits until they end.

The window is a daily time range (which may cross midnight), whole weekdays, or both,
evaluated in a fixed zone or each customer's own (`timezone: customer`). The rule itself
is `engine.silent_hours.silent_until`; SMS nodes apply the scenario's silent hours too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from engine.silent_hours import SilentHours, silent_until
from nodes.base import JourneyItem, Move, NodeConfig

if TYPE_CHECKING:
    from engine.runtime import NodeContext


class SilentHoursNode(SilentHours, NodeConfig):
    """Hold customers who arrive inside the silent hours until they end."""

    type: Literal["silent_hours"]

    def run(self, ctx: NodeContext, items: list[JourneyItem]) -> list[Move]:
        moves = []
        for item in items:
            until = silent_until(self, ctx.now, ctx.zone(item, self.timezone))
            reason = "held: silent hours" if until is not None else None
            moves.append(Move(item, "next", due_at=until, reason=reason))
        return moves
