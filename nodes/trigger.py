"""The trigger: where customers enter a scenario.

- `kind: launch`: the audience enters once, when the scenario is launched;
- `kind: event`: a customer enters each time they track `event` (optionally only when
  `condition` holds on the event's properties and the customer's attributes);
- `kind: schedule`: the audience enters at one date-time (`at`) or at every fire of a
  cron expression (`cron`), both read in `timezone`.

`reentry` decides whether a customer already in the scenario can enter again: `never`
(once ever), `after_finish` (again once the previous journey ended), `always`.

A trigger does no batch work: enrolment places customers straight on its next node.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from pydantic import field_validator, model_validator

from engine.schedule import ZoneName, cron_error, next_cron_fire, parse_zone
from engine.templates import expression_error
from nodes.base import JourneyItem, Move, NodeConfig

if TYPE_CHECKING:
    from engine.runtime import NodeContext


class TriggerNode(NodeConfig):
    """Where customers enter: on launch, on a customer event, or on a schedule."""

    type: Literal["trigger"]
    kind: Literal["launch", "event", "schedule"]
    event: str | None = None
    condition: str | None = None
    at: datetime | None = None
    cron: str | None = None
    timezone: ZoneName = "UTC"
    reentry: Literal["never", "after_finish", "always"] = "after_finish"

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None and (error := cron_error(value)):
            raise ValueError(f"cron '{value}' is invalid: {error}")
        return value

    @field_validator("condition")
    @classmethod
    def _condition(cls, value: str | None) -> str | None:
        if value is not None and (error := expression_error(value)):
            raise ValueError(f"not a valid expression: {error}")
        return value

    @model_validator(mode="after")
    def _kind_fields(self) -> TriggerNode:
        if self.kind == "event" and not self.event:
            raise ValueError("an event trigger needs `event`: the event type that enrols")
        if self.kind != "event" and (self.event or self.condition):
            raise ValueError("`event` and `condition` belong to event triggers only")
        if self.kind == "schedule":
            if (self.at is None) == (self.cron is None):
                raise ValueError("a schedule trigger needs exactly one of `at` or `cron`")
        elif self.at or self.cron:
            raise ValueError("`at` and `cron` belong to schedule triggers only")
        return self

    def run(self, ctx: NodeContext, items: list[JourneyItem]) -> list[Move]:
        """Enrolment places customers after the trigger; one found here goes on."""
        return [Move(item) for item in items]

    def next_fire(self, after: datetime) -> datetime | None:
        """The first scheduled enrolment strictly after `after`, or None when none is left."""
        if self.cron is not None:
            return next_cron_fire(self.cron, parse_zone(self.timezone), after)
        if self.at is not None:
            at = self.at if self.at.tzinfo else self.at.replace(tzinfo=parse_zone(self.timezone))
            at = at.astimezone(UTC)
            return at if at > after else None
        return None
