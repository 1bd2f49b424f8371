"""SMS: send a personalised text message through the project's SMS integration.

The steps every message node shares (policies, send, tracking) are in `nodes/messaging.py`.
This node's own part: the text (Jinja, at most 1,600 characters), its GSM-7/UCS-2
segmentation, and requests where each template expression rides as a Sinch parameter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from engine.dispatch import Outgoing, PlannedDispatch, plan_dispatches
from engine.errors import TemplateError
from engine.segments import segment
from engine.templates import render_many, split_template, syntax_error
from nodes.base import JourneyItem
from nodes.messaging import MAX_TEXT_LENGTH, MessageNode

if TYPE_CHECKING:
    from engine.runtime import NodeContext
    from engine.scenario import Scenario
    from engine.settings import Sender, Settings


class SmsNode(MessageNode):
    """Send an SMS to each customer, personalised with Jinja."""

    channel = "sms"

    type: Literal["sms"]
    text: str = Field(min_length=1)

    def problems(self, settings: Settings) -> list[tuple[str, str]]:
        found = super().problems(settings)
        if error := syntax_error(self.text):
            found.append(("text", f"template syntax error at {error}"))
        if len(self.text) > MAX_TEXT_LENGTH:
            found.append(
                ("text", f"text has {len(self.text)} characters; the maximum is {MAX_TEXT_LENGTH}")
            )
        literal = self._literal_text()
        if settings.max_message_parts is not None and literal is not None:
            parts = segment(literal).parts
            if parts > settings.max_message_parts:
                found.append(
                    (
                        "text",
                        f"text needs at least {parts} parts; the project allows "
                        f"{settings.max_message_parts} (max_message_parts)",
                    )
                )
        return found

    def _literal_text(self) -> str | None:
        """The text without its expressions (a lower bound of every rendered text), when
        the template is literal text and expressions only."""
        split = split_template(self.text)
        return "".join(split.literals) if split is not None else None

    def compose(
        self, settings: Settings, scenario: Scenario, items: list[JourneyItem]
    ) -> list[dict[str, Any]]:
        """Each customer's text, encoding and part count, or the failure that stops it."""
        split = split_template(self.text)
        contexts = [item.template_context() for item in items]
        if split is not None:
            rendered = [
                result if isinstance(result, TemplateError) else (split.join(result), result)
                for result in split.values_many(contexts)
            ]
        else:
            rendered = [
                result if isinstance(result, TemplateError) else (result, None)
                for result in render_many(self.text, contexts)
            ]
        sender = self.sender_for(settings, scenario)
        return [
            self._composed(item, result, sender, settings.max_message_parts)
            for item, result in zip(items, rendered, strict=True)
        ]

    def _composed(
        self, item: JourneyItem, rendered: Any, sender: Sender, max_parts: int | None
    ) -> dict[str, Any]:
        if failure := self.recipient_failure(item, sender):
            return {"failure": failure}
        if isinstance(rendered, TemplateError):
            return {"failure": ("template_error", str(rendered))}
        text, values = rendered
        if len(text) > MAX_TEXT_LENGTH:
            return {
                "failure": (
                    "text_too_long",
                    f"rendered text has {len(text)} characters; the maximum is {MAX_TEXT_LENGTH}",
                )
            }
        segmentation = segment(text)
        if max_parts is not None and segmentation.parts > max_parts:
            return {
                "failure": (
                    "too_many_parts",
                    f"rendered text needs {segmentation.parts} {segmentation.encoding} parts; "
                    f"the project allows {max_parts}",
                )
            }
        return {
            "text": text,
            "values": values,
            "parts": segmentation.parts,
            "encoding": segmentation.encoding,
            "segmentation": segmentation,
        }

    def plan(self, ctx: NodeContext, items: list[JourneyItem]) -> list[PlannedDispatch]:
        return plan_dispatches(
            [
                Outgoing(self.send_key(ctx, i), i.phone or "", i.notes["text"], i.notes["values"])
                for i in items
            ],
            split_template(self.text),
        )
