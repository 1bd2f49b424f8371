"""A customer at a node, as node types see them, and the move a node decides for them.

Plain values with no dependencies: nodes, the send protocol and the runtime all use them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class JourneyItem:
    """One customer at one node: who they are and what enrolled them."""

    journey_id: int
    customer_id: str
    entry: str
    version: str
    attributes: dict[str, Any]
    event: dict[str, Any]
    phone: str | None = None
    timezone: str | None = None
    region: str | None = None  # the phone's country

    def template_context(self) -> dict[str, Any]:
        """What templates and expressions see: `customer` and the triggering `event`."""
        customer = dict(self.attributes)
        customer.setdefault("id", self.customer_id)
        customer.setdefault("phone", self.phone)
        return {"customer": customer, "event": self.event}


@dataclass(frozen=True, slots=True)
class Move:
    """Where one journey goes after a node, and why.

    - `output` set: follow the edge with that branch name (no edge: the journey is done);
    - `output` None: stay at this node until `due_at`;
    - `error` set: the journey fails with this error.
    `due_at` None means now. `reason` is what the node's task log counts the move under
    ("sent", "suppressed: consent", "held: silent hours", ...); None counts it by its
    branch.
    """

    item: JourneyItem
    output: str | None = "next"
    due_at: datetime | None = None
    error: str | None = None
    reason: str | None = None

    @classmethod
    def stay(cls, item: JourneyItem, until: datetime, reason: str = "waiting") -> Move:
        return cls(item, output=None, due_at=until, reason=reason)

    @classmethod
    def fail(cls, item: JourneyItem, error: str, reason: str = "failed") -> Move:
        return cls(item, output=None, error=error, reason=reason)

    @property
    def counted_as(self) -> str:
        """The move's reason, or its branch when the node gave none."""
        return self.reason or self.output or "waiting"
