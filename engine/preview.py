"""What each message of a scenario looks like for one real customer, before anything is sent.

Used by `scenarist preview` and `scenarist send-test`: the same composition the send
path runs (Jinja in the sandbox, the sender's countries, segmentation), for one customer.
An MMS's text is shown as the handset reads it, with its choices or location as lines of
text; an MMS left to the Conversation API app's default sender shows that as its sender.
Short links show the obviously fake code `preview001` (`preview002`, ...) at the length
of a real one, so lengths and parts are the real message's: a preview stores no link.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.journey import JourneyItem
from engine.scenario import Scenario
from engine.segments import Segmentation, split_gsm_text
from engine.sending import Draft, Refused
from engine.settings import Settings
from engine.store import CustomerRow
from nodes.messaging import MessageNode
from nodes.mms import MmsNode

APP_DEFAULT_SENDER = "(the app's default sender)"


@dataclass(frozen=True)
class MessagePreview:
    """One message node for one customer. For an MMS, `text` is what the handset reads and
    `segmentation` is its fallback SMS's."""

    node_id: str
    channel: str
    sender: str
    text: str | None
    segmentation: Segmentation | None
    failure: tuple[str, str] | None  # (error code, explanation)
    # An MMS's fallback SMS, cut as it is sent: 160 characters alone, 153 per part.
    fallback_pieces: list[str] | None = None


def customer_item(customer: CustomerRow, event: dict[str, Any], entry: str) -> JourneyItem:
    """A journey item for a stored customer, outside any journey."""
    return JourneyItem(
        journey_id=0,
        customer_id=customer.id,
        entry=entry,
        version="",
        attributes=customer.attributes,
        event=event,
        phone=customer.phone,
        timezone=customer.timezone,
        region=customer.region,
    )


def message_nodes(scenario: Scenario) -> list[MessageNode]:
    return [node for node in scenario.nodes.values() if isinstance(node, MessageNode)]


def preview_messages(
    settings: Settings, scenario: Scenario, customer: CustomerRow, event: dict[str, Any]
) -> list[MessagePreview]:
    """Compose every message node of `scenario` for `customer`, in file order."""
    previews = []
    for node in message_nodes(scenario):
        item = customer_item(customer, event, "preview")
        [result] = node.compose(settings, scenario, [Draft(item, send_key=None)])
        sender = node.sender_for(settings, scenario)
        sender_name = sender.name if sender is not None else APP_DEFAULT_SENDER
        if isinstance(result, Refused):
            previews.append(
                MessagePreview(
                    node.id, node.channel, sender_name, None, None, (result.error, result.comment)
                )
            )
            continue
        text = result.text
        if isinstance(node, MmsNode):
            text = node.handset_text(text)
        previews.append(
            MessagePreview(
                node_id=node.id,
                channel=node.channel,
                sender=sender_name,
                text=text,
                segmentation=result.segmentation,
                failure=None,
                fallback_pieces=(
                    split_gsm_text(result.fallback_text) if result.fallback_text else None
                ),
            )
        )
    return previews
