"""What every node type shares: its config base class.

The customer a node works on (`JourneyItem`) and the move it decides for them (`Move`)
are in `engine/journey.py`.

A node type is one file in `nodes/`: a pydantic model whose fields are the node's YAML
schema, and `run`, which decides a `Move` for every customer of a batch. The tick runs
each node batch as one Prefect task run (`flows/batches.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict

from engine.journey import JourneyItem, Move

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

    def run(self, ctx: NodeContext, items: list[JourneyItem]) -> list[Move]:
        """Decide where each customer of a batch goes: one move per item, in any order."""
        raise NotImplementedError

    def problems(self, settings: Settings) -> list[tuple[str, str]]:
        """Checks that need the project settings: (field, message) pairs."""
        return []


__all__ = ["JourneyItem", "Move", "NodeConfig", "NonBlank"]
