"""What every message node shares: the steps from policies to tracking, exactly once.

A message node (SMS, MMS) is a `MessageNode` with its own fields, its own `compose` (what
one customer receives, or why they cannot) and its own `plan` (how messages group into
provider requests). Each batch goes through these steps, one Prefect task run each:

1. `resume`: customers whose message was already decided by an earlier attempt skip the
   policies (a retried tick re-checks nothing it already decided, and sends nothing twice);
2. `consent`: no grant in the scenario's consent category: not sent, reason recorded;
3. `frequency_policy`: at or over the policy's cap: not sent, reason recorded;
4. `silent_hours`: inside the scenario's silent hours: held at this node until they end;
5. `render`: the node's `compose`, in Jinja's sandbox with StrictUndefined; a customer
   whose message cannot be composed fails alone, not the batch;
6. `send`: the intent (every request's payload) is written first, then each request is
   sent and its answer recorded; just before each request its recipients' consent is
   checked again, and those who withdrew it since step 2 (a STOP, a revocation) are taken
   out and recorded as not sent, with step 2's reason; an intent left by a crash is
   reconciled with the provider before anything is sent again; a request another process
   is making (it claimed these journeys before, and its claim lease ran out) is left to it;
7. `track`: one campaign event per send (enqueued or enqueue_failed), exactly once; a
   customer whose request another process is making stays at the node, and a later tick
   tracks them once it is answered.

`integration` names the project integration to send through; left out, the project's
default provider for the node's channel is used at send time, so changing the default
re-routes every node of every scenario without editing scenario files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from engine.consent import consent_refusal
from engine.delivery import number_or_code
from engine.dispatch import PlannedDispatch
from engine.links import LINK_SECRET, Link, LinkRules, clashing, link_rules, short_code
from engine.senders import sender_refusal
from engine.sending import send_dispatch
from engine.settings import integration_api
from engine.silent_hours import silent_until
from engine.store import SendOutcome, SendRow
from nodes.base import JourneyItem, Move, NodeConfig, Step, StepResult

if TYPE_CHECKING:
    from engine.runtime import NodeContext
    from engine.scenario import Scenario
    from engine.settings import Sender, Settings

MAX_TEXT_LENGTH = 1600
# APIs that send without a sender of ours: the Conversation API app has a default sender
# (seed 003: "used when {{YOUR_MMS_SENDER}} in a message is empty").
APIS_WITH_DEFAULT_SENDER = frozenset({"sinch_conversation"})
# Failures of the message itself: the journey fails with them. Anything else that stops
# a message (no phone, a sender that cannot reach the country, a provider's refusal) is
# tracked as enqueue_failed and the journey goes on.
COMPOSITION_ERRORS = ("template_error", "text_too_long", "too_many_parts")


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
        self, settings: Settings, scenario: Scenario, items: list[JourneyItem]
    ) -> list[dict[str, Any]]:
        """Per customer, the notes `plan` needs (`text`, `parts`, ...), or a `failure`:
        (error code, explanation)."""
        raise NotImplementedError

    def provider_api(self, settings: Settings) -> str | None:
        """The API this node sends through now: its integration's, else the default
        provider's for its channel (None when neither is configured)."""
        name = self.integration or settings.default_provider(self.channel)
        if name not in settings.integrations:
            return None
        return integration_api(settings.integrations[name])

    def recipient_failure(self, item: JourneyItem, sender: Sender | None) -> tuple[str, str] | None:
        """Why this customer cannot be sent this node's message at all, or None. Without a
        sender (the provider's default sender), its countries are the provider's affair."""
        if not item.phone:
            return ("invalid_phone", "customer has no phone in international format")
        if failure := self.channel_failure(item):
            return failure
        if sender is not None and (
            refusal := sender_refusal(sender.name, sender.type, item.region)
        ):
            return ("sender_not_allowed", refusal)
        return None

    def channel_failure(self, item: JourneyItem) -> tuple[str, str] | None:
        """A channel's own limit on who can receive it (MMS: US and CA only)."""
        return None

    def plan(self, ctx: NodeContext, items: list[JourneyItem]) -> list[PlannedDispatch]:
        """The provider requests that carry the composed messages of `items`."""
        raise NotImplementedError

    def steps(self) -> Sequence[Step]:
        return (
            Step("resume", self.resume),
            Step("consent", self.check_consent),
            Step("frequency_policy", self.apply_frequency_policy),
            Step("silent_hours", self.apply_silent_hours),
            Step("render", self.render),
            Step("send", self.send),
            Step("track", self.track),
        )

    # -- steps -------------------------------------------------------------------------

    def send_key(self, ctx: NodeContext, item: JourneyItem) -> str:
        """Scenario version, node, customer and journey entry: unique per message."""
        key = item.notes.get("send_key")
        if key is None:
            key = f"{ctx.scenario.id}/{item.version}/{self.id}/{item.customer_id}/{item.entry}"
            item.notes["send_key"] = key
        return key

    def resume(self, ctx: NodeContext, items: list[JourneyItem]) -> StepResult:
        prior = ctx.store.sends.by_key([self.send_key(ctx, item) for item in items])
        live, moves = [], []
        for item in items:
            send = prior.get(self.send_key(ctx, item))
            if send is None:
                live.append(item)
            elif send.state in ("pending", "enqueued", "enqueue_failed") and not send.tracked:
                item.notes["resumed"] = send.state
                live.append(item)
            else:
                moves.append(self._after_send(item, send))
        return StepResult(live, moves)

    def check_consent(self, ctx: NodeContext, items: list[JourneyItem]) -> StepResult:
        category = ctx.scenario.settings.consent_category
        fresh = [item for item in items if "resumed" not in item.notes]
        granted = ctx.store.customers.consented([item.customer_id for item in fresh], category)
        phones = {item.phone for item in fresh if item.phone}
        stopped = ctx.store.customers.opted_out_phones(phones, category) if phones else set()
        refused = []
        for item in fresh:
            reason = consent_refusal(category, item.customer_id in granted, item.phone in stopped)
            if reason is not None:
                refused.append((item, reason))
        return self._suppress(ctx, items, refused)

    def apply_frequency_policy(self, ctx: NodeContext, items: list[JourneyItem]) -> StepResult:
        name = ctx.scenario.settings.frequency_policy
        if name is None:
            return StepResult(items)
        policy = ctx.settings.frequency_policies[name]
        fresh = [item for item in items if "resumed" not in item.notes]
        sent = ctx.store.sends.sent_since(
            [item.customer_id for item in fresh], ctx.now - policy.window
        )
        over = []
        for item in fresh:
            # Counted as we go: one customer may hold two entries in the same batch.
            if sent.get(item.customer_id, 0) >= policy.max_messages:
                over.append(item)
            else:
                sent[item.customer_id] = sent.get(item.customer_id, 0) + 1
        return self._suppress(ctx, items, [(item, f"frequency policy: {name}") for item in over])

    def apply_silent_hours(self, ctx: NodeContext, items: list[JourneyItem]) -> StepResult:
        rule = ctx.scenario.silent_hours(ctx.settings)
        if rule is None:
            return StepResult(items)
        live, moves = [], []
        for item in items:
            until = None
            if "resumed" not in item.notes:
                until = silent_until(rule, ctx.now, ctx.zone(item, rule.timezone))
            if until is None:
                live.append(item)
            else:
                moves.append(Move.stay(item, until))
        return StepResult(live, moves)

    def render(self, ctx: NodeContext, items: list[JourneyItem]) -> StepResult:
        fresh = [item for item in items if "resumed" not in item.notes]
        secret = ctx.store.secret(LINK_SECRET)
        for item in fresh:
            self.send_key(ctx, item)  # each short link's code is derived from it
            item.notes["link_secret"] = secret
        composing = fresh
        while composing:
            for item, composed in zip(
                composing, self.compose(ctx.settings, ctx.scenario, composing), strict=True
            ):
                item.notes.update(composed)
            composing = self._link_clashes(ctx, fresh)
        ctx.store.sends.record(
            [
                self._send_row(ctx, item, "enqueue_failed", error=failure[0], comment=failure[1])
                for item in fresh
                if (failure := item.notes.get("failure"))
            ]
        )
        return StepResult(items)

    def link_rules(self, settings: Settings, scenario: Scenario) -> LinkRules | None:
        """How this node's links are rewritten (`engine/links.py`); None: as written."""
        return link_rules(settings, scenario.settings.links, scenario.name, self.channel)

    def link_codes(self, item: JourneyItem) -> Callable[[int], str]:
        """Names the item's short links from its send key, so a retried render makes the
        same links; a preview has no send key and gets obviously fake codes."""
        return partial(
            short_code,
            item.notes.get("send_key"),
            salt=item.notes.get("link_salt", 0),
            secret=item.notes.get("link_secret", ""),
        )

    def _link_clashes(self, ctx: NodeContext, items: list[JourneyItem]) -> list[JourneyItem]:
        """The items whose short link codes another link holds, each given the next salt
        so that composing it again derives other codes."""
        messages = [(item.notes["send_key"], item.notes.get("links", ())) for item in items]
        codes = [link.code for _key, links in messages for link in links]
        if not codes:
            return []
        keys = clashing(messages, ctx.store.links.owners(codes))
        again = [item for item in items if item.notes["send_key"] in keys]
        for item in again:
            item.notes["link_salt"] = item.notes.get("link_salt", 0) + 1
        return again

    def sender_for(self, settings: Settings, scenario: Scenario) -> Sender | None:
        """The node's sender, else the scenario's, else the project's default; None when
        there is none, which validation allows only through an API with a default sender
        of its own (`APIS_WITH_DEFAULT_SENDER`)."""
        return settings.sender(self.sender or scenario.settings.sender)

    def send(self, ctx: NodeContext, items: list[JourneyItem]) -> StepResult:
        integration = self.integration or ctx.settings.default_provider(self.channel)
        sender = self.sender_for(ctx.settings, ctx.scenario)

        to_send = [i for i in items if "text" in i.notes and "failure" not in i.notes]
        plans = self.plan(ctx, to_send)
        resumed = [self.send_key(ctx, i) for i in items if i.notes.get("resumed") == "pending"]
        keys = [plan.key for plan in plans]
        keys += [send.dispatch_key for send in ctx.store.sends.by_key(resumed).values()]
        # Intents already stored were written by an earlier attempt (a crash, a retried
        # task): the provider may have them, so they are looked up before any resend.
        earlier = ctx.store.dispatches.unresolved_keys(keys)

        by_key = {self.send_key(ctx, item): item for item in to_send}
        ctx.store.sends.record_intents(
            [
                {
                    "key": plan.key,
                    "integration": integration,
                    "state": "pending",
                    "payload": plan.payload(sender.number if sender else None),
                    "created_at": ctx.now,
                    "updated_at": ctx.now,
                }
                for plan in plans
            ],
            [
                self._send_row(ctx, by_key[key], "pending", dispatch_key=plan.key)
                for plan in plans
                for key in plan.send_keys
            ],
            [
                self._link_row(ctx, item, link)
                for item in to_send
                for link in item.notes.get("links", ())
            ],
        )
        # Each request re-checks its recipients' consent just before it is made: a STOP
        # may arrive while the batch's earlier requests go out.
        for key in dict.fromkeys(keys):
            send_dispatch(
                ctx.store,
                ctx.gateways,
                key,
                reconcile=key in earlier,
                now=ctx.clock(),
                lease=ctx.settings.claim_lease,
                consent_category=ctx.scenario.settings.consent_category,
            )
        return StepResult(items)

    def track(self, ctx: NodeContext, items: list[JourneyItem]) -> StepResult:
        sends = ctx.store.sends.untracked([self.send_key(ctx, item) for item in items])
        answered = [send for send in sends if send.state != "pending"]
        ctx.store.sends.track([self.campaign_event(ctx, send) for send in answered])
        by_key = {send.key: send for send in sends}
        moves = []
        for item in items:
            send = by_key.get(self.send_key(ctx, item))
            if send is not None and send.state == "pending":
                # Its request is another process's to make: the next tick looks again.
                moves.append(Move.stay(item, ctx.now))
            else:
                moves.append(self._after_send(item, send))
        return StepResult([], moves)

    # -- helpers -----------------------------------------------------------------------

    def campaign_event(self, ctx: NodeContext, send: SendOutcome) -> dict[str, Any]:
        """The seeds' campaign event for one send, with the scenario's tracking attributes."""
        scenario = ctx.scenario
        properties = {
            **scenario.settings.tracking,
            "action_type": self.channel,
            "status": send.state,
            "action_id": scenario.action_ids[self.id],
            "action_name": self.id,
            "campaign_id": scenario.id,
            "campaign_name": scenario.name,
            "campaign_policy": scenario.settings.frequency_policy,
            "consent_category": scenario.settings.consent_category,
            "status_code": number_or_code(send.status_code),
            "error": send.error,
            "comment": send.comment,
            "number_of_message_parts": send.parts,
            "recipient": send.phone,
        }
        if send.test:
            properties["test"] = True
        return {
            "name": ctx.settings.campaign_event_name,
            "customer_id": send.customer_id,
            "scenario_id": scenario.id,
            "status": send.state,
            "send_key": send.key,
            "test": send.test,
            "timestamp": ctx.now,
            "properties": properties,
        }

    def _suppress(
        self, ctx: NodeContext, items: list[JourneyItem], refused: list[tuple[JourneyItem, str]]
    ) -> StepResult:
        """Record each refused customer's message as not sent, with its reason; they go on
        to the next node, the others stay in the batch."""
        if not refused:
            return StepResult(items)
        ctx.store.sends.record(
            [
                self._send_row(ctx, item, "suppressed", reason=reason, tracked=True)
                for item, reason in refused
            ]
        )
        refused_ids = {id(item) for item, _ in refused}
        return StepResult(
            [item for item in items if id(item) not in refused_ids],
            [Move(item, "next") for item, _ in refused],
        )

    def _send_row(self, ctx: NodeContext, item: JourneyItem, state: str, **values: Any) -> dict:
        return {
            "key": self.send_key(ctx, item),
            "scenario_id": ctx.scenario.id,
            "node_id": self.id,
            "customer_id": item.customer_id,
            "journey_id": item.journey_id,
            "phone": item.phone,
            "state": state,
            "parts": item.notes.get("parts"),
            "encoding": item.notes.get("encoding"),
            "tracked": False,
            "test": bool(item.notes.get("test")),
            "created_at": ctx.now,
            **values,
        }

    def _link_row(self, ctx: NodeContext, item: JourneyItem, link: Link) -> dict:
        return {
            "code": link.code,
            "send_key": self.send_key(ctx, item),
            "position": link.position,
            "customer_id": item.customer_id,
            "scenario_id": ctx.scenario.id,
            "node_id": self.id,
            "url": link.target,
            "identity": link.identity,
            "test": bool(item.notes.get("test")),
            "created_at": ctx.now,
        }

    def _after_send(self, item: JourneyItem, send: SendRow | SendOutcome | None) -> Move:
        if send is not None and send.error in COMPOSITION_ERRORS:
            return Move.fail(item, f"{self.type} '{self.id}': {send.comment}")
        return Move(item, "next")
