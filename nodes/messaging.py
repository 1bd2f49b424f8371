"""What every message node shares: its settings, its sender and integration, its checks.

A message node (SMS, MMS) is a `MessageNode` with its own fields, its own `compose` (what
one customer receives, or why they cannot) and its own `plan` (how messages group into
provider requests). `run` hands the batch to the send protocol (`engine/sending.py`):
resume, consent, frequency policy, silent hours, compose, intent, send and track, each
message exactly once.

`integration` names the project integration to send through; left out, the project's
default provider for the node's channel is used at send time, so changing the default
re-routes every node of every scenario without editing scenario files.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from engine.dispatch import PlannedDispatch
from engine.links import LinkRules, link_rules
from engine.senders import sender_refusal
from engine.sending import Composed, Draft, Message, Refused, deliver
from engine.settings import integration_api
from nodes.base import JourneyItem, Move, NodeConfig

if TYPE_CHECKING:
    from engine.runtime import NodeContext
    from engine.scenario import Scenario
    from engine.settings import Sender, Settings

MAX_TEXT_LENGTH = 1600
# APIs that send without a sender of ours: the Conversation API app has a default sender
# (seed 003: "used when {{YOUR_MMS_SENDER}} in a message is empty").
APIS_WITH_DEFAULT_SENDER = frozenset({"sinch_conversation"})


class MessageNode(NodeConfig):
    """Base of the nodes that send a message to each customer."""

    is_action: ClassVar[bool] = True
    # The campaign events' action_type, and which default provider the node uses.
    channel: ClassVar[str]

    sender: str | None = None
    integration: str | None = None

    def problems(self, settings: Settings) -> list[tuple[str, str]]:
        found = []
        if self.sender is not None and settings.sender(self.sender) is None:
            found.append(("sender", f"sender '{self.sender}' is not a predefined sender"))
        if not settings.senders and self.provider_api(settings) not in APIS_WITH_DEFAULT_SENDER:
            found.append(
                (
                    "sender",
                    "the project has no predefined senders to send from (only the Sinch "
                    "Conversation API sends without one, from its app's default sender)",
                )
            )
        if self.integration is not None:
            if self.integration not in settings.integrations:
                found.append(("integration", f"integration '{self.integration}' is not configured"))
            elif self.channel not in settings.channels(self.integration):
                found.append(
                    (
                        "integration",
                        f"integration '{self.integration}' does not send {self.channel}",
                    )
                )
        elif settings.default_provider(self.channel) is None:
            found.append(
                ("integration", f"no integration given and no default_{self.channel}_provider set")
            )
        return found

    def compose(
        self, settings: Settings, scenario: Scenario, drafts: Sequence[Draft]
    ) -> list[Composed | Refused]:
        """Per customer, what they receive, or why they cannot be sent this message."""
        raise NotImplementedError

    def provider_api(self, settings: Settings) -> str | None:
        """The API this node sends through now: its integration's, else the default
        provider's for its channel (None when neither is configured)."""
        name = self.integration or settings.default_provider(self.channel)
        if name not in settings.integrations:
            return None
        return integration_api(settings.integrations[name])

    def recipient_failure(self, item: JourneyItem, sender: Sender | None) -> Refused | None:
        """Why this customer cannot be sent this node's message at all, or None. Without a
        sender (the provider's default sender), its countries are the provider's affair."""
        if not item.phone:
            return Refused("invalid_phone", "customer has no phone in international format")
        if failure := self.channel_failure(item):
            return failure
        if sender is not None and (
            refusal := sender_refusal(sender.name, sender.type, item.region)
        ):
            return Refused("sender_not_allowed", refusal)
        return None

    def channel_failure(self, item: JourneyItem) -> Refused | None:
        """A channel's own limit on who can receive it (MMS: US and CA only)."""
        return None

    def plan(self, settings: Settings, messages: Sequence[Message]) -> list[PlannedDispatch]:
        """The provider requests that carry the composed messages of `items`."""
        raise NotImplementedError

    def sender_for(self, settings: Settings, scenario: Scenario) -> Sender | None:
        """The node's sender, else the scenario's, else the project's default; None when
        there is none, which validation allows only through an API with a default sender
        of its own (`APIS_WITH_DEFAULT_SENDER`)."""
        return settings.sender(self.sender or scenario.settings.sender)

    def link_rules(self, settings: Settings, scenario: Scenario) -> LinkRules | None:
        """How this node's links are rewritten (`engine/links.py`); None: as written."""
        return link_rules(settings, scenario.settings.links, scenario.name, self.channel)

    def run(self, ctx: NodeContext, items: list[JourneyItem]) -> list[Move]:
        return deliver(ctx, self, items)
