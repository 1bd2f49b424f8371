"""What every node type shares: its config base class, the batch it works on, the moves it
returns.

A node type is one file in `nodes/`: a pydantic model whose fields are the node's YAML
schema, with `steps()` returning the functions that process a batch, in order. The tick
runs each step as one Prefect task run per batch. A step receives the live items and
returns the ones still live plus the moves it decided; the last step decides every item.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict

if TYPE_CHECKING:
    from engine.runtime import NodeContext
    from engine.settings import Settings


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or only spaces")
    return value


# A node id or a message text: one of spaces only would validate and say nothing.
NonBlank = Annotated[str, AfterValidator(_not_blank)]


class NodeConfig(BaseModel):
    """Base of every node's config model: `id`, `type`, and the node's own fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The branch names a node can route customers to; edges name one with `when`.
    outputs: ClassVar[tuple[str, ...]] = ("next",)
    # True for nodes that send a message: they get an action_id in campaign events.
    is_action: ClassVar[bool] = False

    id: NonBlank
    type: str

    def steps(self) -> Sequence[Step]:
        """The functions that process a batch at this node, in order."""
        raise NotImplementedError

    def problems(self, settings: Settings) -> list[tuple[str, str]]:
        """Checks that need the project settings: (field, message) pairs."""
        return []


@dataclass
class JourneyItem:
    """One customer at one node: what a step reads and annotates."""

    journey_id: int
    customer_id: str
    entry: str
    version: str
    attributes: dict[str, Any]
    event: dict[str, Any]
    phone: str | None = None
    timezone: str | None = None
    region: str | None = None  # the phone's country
    # Annotations that earlier steps of the same node leave for later ones.
    notes: dict[str, Any] = field(default_factory=dict)

    def template_context(self) -> dict[str, Any]:
        """What templates and expressions see: `customer` and the triggering `event`."""
        customer = dict(self.attributes)
        customer.setdefault("id", self.customer_id)
        customer.setdefault("phone", self.phone)
        return {"customer": customer, "event": self.event}


@dataclass(frozen=True)
class Move:
    """Where one journey goes after a node.

    - `output` set: follow the edge with that branch name (no edge: the journey is done);
    - `output` None: stay at this node until `due_at`;
    - `error` set: the journey fails with this error.
    `due_at` None means now.
    """

    item: JourneyItem
    output: str | None = "next"
    due_at: datetime | None = None
    error: str | None = None

    @classmethod
    def stay(cls, item: JourneyItem, until: datetime) -> Move:
        return cls(item, output=None, due_at=until)

    @classmethod
    def fail(cls, item: JourneyItem, error: str) -> Move:
        return cls(item, output=None, error=error)


@dataclass
class StepResult:
    """Items still undecided after a step, and the moves it decided."""

    live: list[JourneyItem]
    moves: list[Move] = field(default_factory=list)


StepFunction = Callable[["NodeContext", list[JourneyItem]], StepResult]


@dataclass(frozen=True)
class Step:
    """One named function of a node; the tick runs it as a Prefect task per batch."""

    name: str
    run: StepFunction
