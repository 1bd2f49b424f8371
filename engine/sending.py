"""The send protocol: from a batch of customers at a message node to tracked sends, once.

Message nodes (`nodes/sms.py`, `nodes/mms.py`), test sends and keyword replies all send
through here. A node says what one customer receives (`compose`) and how messages group
into provider requests (`plan`); everything else is this module's:

1. resume: a customer whose message an earlier attempt decided goes on with that
   decision; one whose request an earlier attempt stored but never saw answered (a
   crash, a claim lease run out) has it looked up at the provider before anything is
   sent again;
2. the policies, pure functions over the batch: consent (`engine.consent`), the frequency
   cap (`over_frequency_cap`), silent hours (`engine.silent_hours`); a refused customer is
   recorded as `suppressed` with the reason and goes on; one inside silent hours stays
   at the node until they end;
3. compose, in Jinja's sandbox: a customer whose message cannot be composed is recorded as
   `enqueue_failed` with its campaign event (a template error also fails the journey);
4. the intent: every request's payload and its messages are stored before any request
   is made;
5. each request is taken (`Dispatches.take`), its recipients' consent checked once more
   (a STOP may arrive while a batch's earlier requests go out), made, and its answer
   recorded together with each message's campaign event, in one transaction.

A message's decision is never read back from the database after it is written: the
outcome of each request comes back from `send_dispatch`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from engine.consent import consent_refusal
from engine.delivery import number_or_code
from engine.dispatch import PlannedDispatch, without_sends
from engine.errors import ProviderError
from engine.journey import JourneyItem, Move
from engine.links import LINK_SECRET, Link, clashing, short_code
from engine.silent_hours import silent_until
from engine.store import DispatchRow, SendOutcome, Store

if TYPE_CHECKING:
    from engine.runtime import NodeContext
    from engine.scenario import Scenario
    from engine.segments import Segmentation
    from engine.settings import FrequencyPolicy, Sender, Settings
    from engine.templates import SplitTemplate
    from integrations.gateways import GatewayPool

# Failures of the message itself: the journey fails with them. Anything else that stops
# a message (no phone, a sender that cannot reach the country, a provider's refusal) is
# tracked as enqueue_failed and the journey goes on.
COMPOSITION_ERRORS = ("template_error", "text_too_long", "too_many_parts")


# -- typed values ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Draft:
    """One customer's message before it is composed: whose, its send key (None in a
    preview) and what names its short links."""

    item: JourneyItem
    send_key: str | None
    link_salt: int = 0
    link_secret: str = ""

    def link_codes(self) -> Callable[[int], str]:
        """Names the message's short links from its send key, so a retried compose makes
        the same links; a preview has no send key and gets obviously fake codes."""
        return partial(short_code, self.send_key, salt=self.link_salt, secret=self.link_secret)


@dataclass(frozen=True, slots=True)
class Composed:
    """What one customer receives. `shape` and `values` are what an SMS text is made of
    (its literals and expression values), for planning requests with parameters."""

    text: str
    parts: int | None = None
    encoding: str | None = None
    segmentation: Segmentation | None = None
    links: tuple[Link, ...] = ()
    shape: SplitTemplate | None = None
    values: tuple[str, ...] | None = None
    fallback_text: str | None = None


@dataclass(frozen=True, slots=True)
class Refused:
    """Why one customer's message cannot be sent: an error code and an explanation."""

    error: str
    comment: str

    @property
    def fails_journey(self) -> bool:
        return self.error in COMPOSITION_ERRORS


@dataclass(frozen=True, slots=True)
class Message:
    """A composed message to one customer, ready to be planned into a request."""

    draft: Draft
    composed: Composed

    @property
    def send_key(self) -> str:
        assert self.draft.send_key is not None, "a message to send has a send key"
        return self.draft.send_key

    @property
    def phone(self) -> str:
        return self.draft.item.phone or ""


class MessageSource(Protocol):
    """What the protocol needs of a message node."""

    id: str
    type: str
    channel: ClassVar[str]
    integration: str | None

    def compose(
        self, settings: Settings, scenario: Scenario, drafts: Sequence[Draft]
    ) -> list[Composed | Refused]: ...

    def plan(self, settings: Settings, messages: Sequence[Message]) -> list[PlannedDispatch]: ...

    def sender_for(self, settings: Settings, scenario: Scenario) -> Sender | None: ...


def send_key(scenario_id: str, node_id: str, item: JourneyItem) -> str:
    """Scenario version, node, customer and journey entry: unique per message."""
    return f"{scenario_id}/{item.version}/{node_id}/{item.customer_id}/{item.entry}"


# -- the policies: pure rules over a batch -----------------------------------------------


def over_frequency_cap(
    customer_ids: Sequence[str], sent: dict[str, int], policy: FrequencyPolicy
) -> list[bool]:
    """Per customer, in order, whether the policy's cap refuses their message, given what
    each was sent within its window. Counted as it goes: one customer may hold two
    entries in the same batch."""
    counts = Counter(sent)
    refused = []
    for customer_id in customer_ids:
        over = counts[customer_id] >= policy.max_messages
        refused.append(over)
        if not over:
            counts[customer_id] += 1
    return refused


def outcome_reason(state: str, error: str | None = None, reason: str | None = None) -> str:
    """How a node's task log counts one decided message."""
    if state == "enqueued":
        return "sent"
    if state == "suppressed":
        return f"suppressed: {reason}"
    return f"{state}: {error}"


# -- one message node's batch --------------------------------------------------------------


def deliver(
    ctx: NodeContext, node: MessageSource, items: list[JourneyItem], *, test: bool = False
) -> list[Move]:
    """Every step above for one batch at `node`; one move per customer.

    A test send (`test=True`) skips the policies and is marked `test` everywhere.
    """
    batch = MessageBatch(ctx, node, test)
    keyed = {send_key(ctx.scenario.id, node.id, item): item for item in items}
    live = batch.resume(keyed)
    if not test:
        live = batch.apply_policies(live)
    batch.send(batch.compose(live))
    return batch.moves


class MessageBatch:
    """One batch's way through the protocol; `moves` collects each customer's."""

    def __init__(self, ctx: NodeContext, node: MessageSource, test: bool):
        self.ctx = ctx
        self.node = node
        self.test = test
        self.moves: list[Move] = []

    # -- 1. resume -----------------------------------------------------------------------

    def resume(self, keyed: dict[str, JourneyItem]) -> dict[str, JourneyItem]:
        """The customers with no decision yet; the others are moved on (or held)."""
        store = self.ctx.store
        prior = store.sends.by_key(list(keyed))
        live = {}
        pending: dict[str, list[str]] = {}
        for key, item in keyed.items():
            send = prior.get(key)
            if send is None:
                live[key] = item
            elif send.state == "pending" and send.dispatch_key is not None:
                pending.setdefault(send.dispatch_key, []).append(key)
            else:
                self.moves.append(self.after_send(item, send))
        # Stored, never seen answered: the provider may have them, so they are looked
        # up before anything is resent.
        for dispatch_key, keys in pending.items():
            outcomes = self.send_request(dispatch_key, reconcile=True, messages=None)
            self._settle([keyed[key] for key in keys], keys, outcomes)
        return live

    # -- 2. the policies -----------------------------------------------------------------

    def apply_policies(self, live: dict[str, JourneyItem]) -> dict[str, JourneyItem]:
        ctx = self.ctx
        settings = ctx.scenario.settings
        refused: dict[str, str] = {}
        category = settings.consent_category
        items = list(live.values())
        granted = ctx.store.customers.consented([i.customer_id for i in items], category)
        phones = {item.phone for item in items if item.phone}
        stopped = ctx.store.customers.opted_out_phones(phones, category) if phones else set()
        for key, item in live.items():
            reason = consent_refusal(category, item.customer_id in granted, item.phone in stopped)
            if reason is not None:
                refused[key] = reason

        if settings.frequency_policy is not None:
            policy = ctx.settings.frequency_policies[settings.frequency_policy]
            candidates = [(key, item) for key, item in live.items() if key not in refused]
            sent = ctx.store.sends.sent_since(
                [item.customer_id for _key, item in candidates], ctx.now - policy.window
            )
            over = over_frequency_cap([item.customer_id for _k, item in candidates], sent, policy)
            for (key, _item), refuse in zip(candidates, over, strict=True):
                if refuse:
                    refused[key] = f"frequency policy: {settings.frequency_policy}"

        ctx.store.sends.record(
            [
                self.send_row(live[key], key, "suppressed", reason=reason, tracked=True)
                for key, reason in refused.items()
            ]
        )
        for key, reason in refused.items():
            self.moves.append(
                Move(live[key], "next", reason=outcome_reason("suppressed", reason=reason))
            )

        rule = ctx.scenario.silent_hours(ctx.settings)
        left = {}
        for key, item in live.items():
            if key in refused:
                continue
            until = silent_until(rule, ctx.now, ctx.zone(item, rule.timezone)) if rule else None
            if until is None:
                left[key] = item
            else:
                self.moves.append(Move.stay(item, until, reason="held: silent hours"))
        return left

    # -- 3. compose ----------------------------------------------------------------------

    def compose(self, live: dict[str, JourneyItem]) -> list[Message]:
        """Each customer's message; those refused are recorded with their events."""
        ctx = self.ctx
        secret = ctx.store.secret(LINK_SECRET)
        drafts = {key: Draft(item, key, link_secret=secret) for key, item in live.items()}
        composed: dict[str, Composed | Refused] = {}
        composing = list(drafts.values())
        while composing:
            results = self.node.compose(ctx.settings, ctx.scenario, composing)
            for draft, result in zip(composing, results, strict=True):
                assert draft.send_key is not None
                composed[draft.send_key] = result
                drafts[draft.send_key] = draft
            composing = self._link_clashes(drafts, composed)

        refused = [(key, result) for key, result in composed.items() if isinstance(result, Refused)]
        rows = [
            self.send_row(
                live[key], key, "enqueue_failed", error=why.error, comment=why.comment, tracked=True
            )
            for key, why in refused
        ]
        ctx.store.sends.record(rows, [self.campaign_event(_outcome_of(row)) for row in rows])
        for key, why in refused:
            self.moves.append(self.after_refusal(live[key], why))
        return [
            Message(drafts[key], result)
            for key, result in composed.items()
            if isinstance(result, Composed)
        ]

    def _link_clashes(
        self, drafts: dict[str, Draft], composed: dict[str, Composed | Refused]
    ) -> list[Draft]:
        """The drafts whose short link codes another message's link holds, each given
        the next salt so that composing it again derives other codes."""
        messages = [
            (key, result.links) for key, result in composed.items() if isinstance(result, Composed)
        ]
        codes = [link.code for _key, links in messages for link in links]
        if not codes:
            return []
        keys = clashing(messages, self.ctx.store.links.owners(codes))
        return [replace(drafts[key], link_salt=drafts[key].link_salt + 1) for key in keys]

    # -- 4. and 5. the intent and the requests ------------------------------------------------

    def send(self, messages: list[Message]) -> None:
        if not messages:
            return
        ctx = self.ctx
        integration = self.node.integration or ctx.settings.default_provider(self.node.channel)
        sender = self.node.sender_for(ctx.settings, ctx.scenario)
        plans = self.node.plan(ctx.settings, messages)
        by_key = {message.send_key: message for message in messages}
        # An intent already stored was written by an earlier attempt: the provider may
        # have it, so it is looked up before any resend.
        earlier = ctx.store.dispatches.unresolved_keys([plan.key for plan in plans])
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
                self.send_row(
                    by_key[key].draft.item,
                    key,
                    "pending",
                    dispatch_key=plan.key,
                    parts=by_key[key].composed.parts,
                    encoding=by_key[key].composed.encoding,
                )
                for plan in plans
                for key in plan.send_keys
            ],
            [
                self.link_row(message, link)
                for message in messages
                for link in message.composed.links
            ],
        )
        for plan in plans:
            keys = list(plan.send_keys)
            outcomes = self.send_request(
                plan.key, reconcile=plan.key in earlier, messages={k: by_key[k] for k in keys}
            )
            self._settle([by_key[key].draft.item for key in keys], keys, outcomes)

    def send_request(
        self, dispatch_key: str, *, reconcile: bool, messages: dict[str, Message] | None
    ) -> dict[str, SendOutcome] | None:
        ctx = self.ctx
        return send_dispatch(
            ctx.store,
            ctx.gateways,
            dispatch_key,
            reconcile=reconcile,
            now=ctx.clock(),
            lease=ctx.settings.claim_lease,
            track=self.campaign_event,
            consent_category=None if self.test else ctx.scenario.settings.consent_category,
        )

    def _settle(
        self,
        items: list[JourneyItem],
        keys: list[str],
        outcomes: dict[str, SendOutcome] | None,
    ) -> None:
        """Move the customers of one request by its outcomes. A message the request did not
        decide was another process's: a request it is making (None), or one of its own
        that carries the message. Its stored decision moves the customer on; with none
        yet, the customer stays at the node and a later tick looks again."""
        outcomes = outcomes or {}
        elsewhere = [key for key in keys if key not in outcomes]
        decided = self.ctx.store.sends.by_key(elsewhere) if elsewhere else {}
        for item, key in zip(items, keys, strict=True):
            outcome = outcomes.get(key)
            send = decided.get(key)
            if outcome is not None:
                reason = outcome_reason(outcome.state, outcome.error, outcome.reason)
                self.moves.append(Move(item, "next", reason=reason))
            elif send is not None and send.state != "pending":
                self.moves.append(self.after_send(item, send))
            else:
                self.moves.append(Move.stay(item, self.ctx.now, reason="held: request elsewhere"))

    # -- rows and events -------------------------------------------------------------------

    def send_row(self, item: JourneyItem, key: str, state: str, **values: Any) -> dict[str, Any]:
        return {
            "key": key,
            "scenario_id": self.ctx.scenario.id,
            "node_id": self.node.id,
            "customer_id": item.customer_id,
            "journey_id": item.journey_id,
            "phone": item.phone,
            "state": state,
            "parts": None,
            "encoding": None,
            "tracked": False,
            "test": self.test,
            "created_at": self.ctx.now,
            **values,
        }

    def link_row(self, message: Message, link: Link) -> dict[str, Any]:
        item = message.draft.item
        return {
            "code": link.code,
            "send_key": message.send_key,
            "position": link.position,
            "customer_id": item.customer_id,
            "scenario_id": self.ctx.scenario.id,
            "node_id": self.node.id,
            "url": link.target,
            "identity": link.identity,
            "test": self.test,
            "created_at": self.ctx.now,
        }

    def campaign_event(self, send: SendOutcome) -> dict[str, Any]:
        """The seeds' campaign event for one send, with the scenario's tracking attributes."""
        ctx = self.ctx
        scenario = ctx.scenario
        properties = {
            **scenario.settings.tracking,
            "action_type": self.node.channel,
            "status": send.state,
            "action_id": scenario.action_ids[self.node.id],
            "action_name": self.node.id,
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

    def after_send(self, item: JourneyItem, send: Any) -> Move:
        """The move of a customer whose message an earlier attempt decided."""
        if send.error in COMPOSITION_ERRORS:
            return Move.fail(
                item, f"{self.node.type} '{self.node.id}': {send.comment}", f"failed: {send.error}"
            )
        return Move(item, "next", reason=outcome_reason(send.state, send.error, send.reason))

    def after_refusal(self, item: JourneyItem, why: Refused) -> Move:
        if why.fails_journey:
            return Move.fail(
                item, f"{self.node.type} '{self.node.id}': {why.comment}", f"failed: {why.error}"
            )
        return Move(item, "next", reason=outcome_reason("enqueue_failed", why.error))


def _outcome_of(row: dict[str, Any]) -> SendOutcome:
    return SendOutcome(*(row.get(name) for name in SendOutcome._fields))


# -- one stored request ------------------------------------------------------------------------


def send_dispatch(
    store: Store,
    gateways: GatewayPool,
    key: str,
    *,
    reconcile: bool,
    now: datetime,
    lease: timedelta,
    track: Callable[[SendOutcome], dict[str, Any]],
    consent_category: str | None = None,
) -> dict[str, SendOutcome] | None:
    """Take one stored request, send it through its integration and record the answer
    with each message's campaign event (built by `track`); returns each message's
    outcome by send key.

    The intent (the dispatch row and its pending sends) is always written first. A
    request is taken before it is made (`Dispatches.take`), so two processes that both
    hold its intent (a worker whose claim lease ran out mid-batch and the one that
    claimed its journeys next, a webhook process and the tick) never make it both: not
    taken (answered, or being made by another process for less than `lease`), it is
    left alone and None is returned. Taken from a process that has held it for longer,
    it is reconciled: that process is taken to have died mid-request, and the gateway
    looks the request up at the provider before it sends anything again. With
    `consent_category` (a campaign's message, not a keyword reply or a test), the
    consent of its recipients is checked once more just before the request (see
    `withhold_opted_out`).
    """
    taken = store.dispatches.take(key, now, now - lease)
    if taken is None:
        return None
    dispatch, abandoned = taken
    reconcile = reconcile or abandoned
    withheld: dict[str, SendOutcome] = {}
    if consent_category is not None and not reconcile:
        dispatch, withheld = withhold_opted_out(store, dispatch, consent_category, now)
        if dispatch is None:
            return withheld
    gateway = gateways.get(dispatch.integration)
    try:
        outcome = gateway.send(dispatch.key, dispatch.payload, reconcile=reconcile)
    except ProviderError as exc:
        answered = store.dispatches.resolve(
            dispatch.key,
            enqueued=False,
            now=now,
            status_code=exc.status_code,
            error=exc.code or ("provider_unreachable" if exc.retryable else "rejected"),
            comment=exc.text,
            track=track,
        )
    else:
        answered = store.dispatches.resolve(
            dispatch.key,
            enqueued=True,
            provider_id=outcome.provider_id,
            refused=outcome.refused,
            now=now,
            track=track,
        )
    return {**withheld, **{send.key: send for send in answered}}


def withhold_opted_out(
    store: Store, dispatch: DispatchRow, category: str, now: datetime
) -> tuple[DispatchRow | None, dict[str, SendOutcome]]:
    """The request without the recipients who withdrew consent or texted STOP since the
    consent policy (a batch's requests go out over seconds, a rate limit's pace), and
    those recipients' outcomes: recorded as suppressed with the consent policy's reasons.
    None: nobody is left to send.

    A request being reconciled is not checked: the provider may have it already, and the
    record must say what it has.
    """
    withdrawn = store.dispatches.withdrawn_consents(dispatch.key, category)
    reasons = {
        key: reason
        for key, granted, stopped in withdrawn
        if (reason := consent_refusal(category, granted, stopped)) is not None
    }
    if not reasons:
        return dispatch, {}
    payload = without_sends(dispatch.payload, reasons)
    suppressed = store.dispatches.withhold_sends(dispatch.key, payload, reasons, now)
    left = dispatch._replace(payload=payload) if payload["recipients"] else None
    return left, {send.key: send for send in suppressed}
