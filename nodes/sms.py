"""SMS: send a personalised text message through the project's SMS integration.

The steps every message node shares (policies, send, tracking) are in `nodes/messaging.py`.
This node's own part: the text (Jinja, at most 1,600 characters), its links rewritten
(`engine/links.py`), its GSM-7/UCS-2 segmentation, and requests where each template
expression, and each short link, rides as a Sinch parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from engine.dispatch import Outgoing, PlannedDispatch, plan_dispatches
from engine.errors import TemplateError
from engine.links import LinkRules, rewrite
from engine.segments import segment
from engine.sending import Composed, Draft, Message, Refused
from engine.templates import SplitTemplate, render_many, split_template, template_error
from nodes.base import NonBlank
from nodes.messaging import MAX_TEXT_LENGTH, MessageNode

if TYPE_CHECKING:
    from engine.scenario import Scenario
    from engine.settings import Sender, Settings


class SmsNode(MessageNode):
    """Send an SMS to each customer, personalised with Jinja."""

    channel = "sms"

    type: Literal["sms"]
    text: NonBlank

    def problems(self, settings: Settings) -> list[tuple[str, str]]:
        found = super().problems(settings)
        if error := template_error(self.text):
            found.append(("text", error))
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
        self, settings: Settings, scenario: Scenario, drafts: Sequence[Draft]
    ) -> list[Composed | Refused]:
        """Each customer's text (links rewritten), encoding and part count, or the failure
        that stops it. `shape` and `values` are what the text is made of, for `plan`."""
        split = split_template(self.text)
        contexts = [draft.item.template_context() for draft in drafts]
        if split is not None:
            rendered = [
                result if isinstance(result, TemplateError) else (split, result)
                for result in split.values_many(contexts)
            ]
        else:  # the rendered text is one literal of its own
            rendered = [
                result if isinstance(result, TemplateError) else (SplitTemplate((result,), ()), ())
                for result in render_many(self.text, contexts)
            ]
        sender = self.sender_for(settings, scenario)
        rules = self.link_rules(settings, scenario)
        return [
            self._composed(draft, result, sender, settings.max_message_parts, rules)
            for draft, result in zip(drafts, rendered, strict=True)
        ]

    def _composed(
        self,
        draft: Draft,
        rendered: Any,
        sender: Sender | None,
        max_parts: int | None,
        rules: LinkRules | None,
    ) -> Composed | Refused:
        if failure := self.recipient_failure(draft.item, sender):
            return failure
        if isinstance(rendered, TemplateError):
            return Refused("template_error", str(rendered))
        shape, values = rendered
        links = ()
        if rules is not None:
            shape, values, links = rewrite(rules, shape, values, draft.link_codes())
        text = shape.join(values)
        if len(text) > MAX_TEXT_LENGTH:
            return Refused(
                "text_too_long",
                f"rendered text has {len(text)} characters; the maximum is {MAX_TEXT_LENGTH}",
            )
        segmentation = segment(text)
        if max_parts is not None and segmentation.parts > max_parts:
            return Refused(
                "too_many_parts",
                f"rendered text needs {segmentation.parts} {segmentation.encoding} parts; "
                f"the project allows {max_parts}",
            )
        # Sinch reads `${name}` in a body as a placeholder (split_template refuses templates
        # holding one): a rendered text holding one cannot ride with parameters.
        parameterizable = not any("${" in literal for literal in shape.literals)
        return Composed(
            text=text,
            shape=shape,
            values=values if parameterizable else None,
            links=links,
            parts=segmentation.parts,
            encoding=segmentation.encoding,
            segmentation=segmentation,
        )

    def plan(self, settings: Settings, messages: Sequence[Message]) -> list[PlannedDispatch]:
        """Messages of one shape share requests: with a literal-and-expressions text, the
        whole batch, short links included."""
        by_shape: dict[SplitTemplate | None, list[Outgoing]] = {}
        for message in messages:
            composed = message.composed
            by_shape.setdefault(composed.shape, []).append(
                Outgoing(message.send_key, message.phone, composed.text, composed.values)
            )
        return [plan for shape, group in by_shape.items() for plan in plan_dispatches(group, shape)]
