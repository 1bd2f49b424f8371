"""Condition: two branches, `true` and `false`, chosen by an expression.

The expression is Jinja, evaluated in the sandbox on `customer` (attributes) and `event`
(the triggering event's properties), e.g. `customer.vip and event.total > 100`. A
customer for whom it cannot be evaluated (say, a missing attribute) fails with the error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import field_validator

from engine.errors import TemplateError
from engine.templates import evaluate, expression_error
from nodes.base import JourneyItem, Move, NodeConfig

if TYPE_CHECKING:
    from engine.runtime import NodeContext


class ConditionNode(NodeConfig):
    """Route each customer to `true` or `false` by an expression."""

    outputs: ClassVar[tuple[str, ...]] = ("true", "false")

    type: Literal["condition"]
    expression: str

    @field_validator("expression")
    @classmethod
    def _parses(cls, value: str) -> str:
        if error := expression_error(value):
            raise ValueError(f"not a valid expression: {error}")
        return value

    def run(self, ctx: NodeContext, items: list[JourneyItem]) -> list[Move]:
        moves = []
        for item in items:
            try:
                branch = "true" if evaluate(self.expression, item.template_context()) else "false"
            except TemplateError as exc:
                moves.append(Move.fail(item, f"condition '{self.id}': {exc}"))
                continue
            moves.append(Move(item, branch))
        return moves
