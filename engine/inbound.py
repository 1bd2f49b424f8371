"""Inbound messages: what a customer's text (or MMS) does, exactly once.

For each inbound message a provider posts (`integrations.webhooks.inbound` parses them):
1. it is stored once: a provider's retry of the same message id changes nothing;
2. its text parts are scanned for a keyword (`engine.keywords`): a STOP-family keyword
   revokes the project's keyword consent category for every customer with that phone, a
   START-family one restores it, each as a ledger entry whose source is the keyword, the
   phone, our number, the message id and the time. The phone itself is also opted out
   until it texts START: a customer who gets that phone later, or whose consent collected
   before the STOP is imported after it, is not sent that category either;
3. it becomes a customer event (`keywords.inbound_event`) of each of those customers, so
   it can trigger a scenario;
4. a keyword with an answer (STOP, START, HELP, the project's auto-responses) gets a
   reply from the number the customer wrote to. The same keyword message again from the
   same phone within a minute, with no other keyword between, is stored but not acted on
   twice: the Conversation API delivers an MMS of three images captioned STOP as three
   messages, and the customer asked once. The reply's intent is written with the
   rest, in one transaction, and sent after the webhook is acknowledged, through the same
   exactly-once path as campaign sends; it is tracked as a campaign event under the
   `keyword-replies` id and its delivery reports are applied like any other.
A sender that dies between storing and sending leaves the intent pending: the tick sends
it later, looking it up at the provider first.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError

from engine.delivery import number_or_code
from engine.dispatch import dispatch_key
from engine.keywords import KeywordMatch, match_keyword
from engine.segments import segment
from engine.sending import send_dispatch
from engine.settings import Settings, integration_api
from engine.store import KEYWORD_REPLIES, SendOutcome, Store
from integrations.gateways import GatewayPool

if TYPE_CHECKING:
    from integrations.webhooks.inbound import InboundMessage

logger = logging.getLogger("scenarist.inbound")

# The same keyword message from the same phone within this, with no other between, is the
# same request (see the module docstring).
REPEAT_WINDOW = timedelta(minutes=1)
# A reply intent unanswered for this long was left by a sender that died; the tick
# sends it (a live webhook process sends its replies within a second or two).
ABANDONED_AFTER = timedelta(minutes=1)


@dataclass(frozen=True)
class InboundEffects:
    """The rows one new inbound message writes."""

    message: dict[str, Any]
    consent_changes: list[dict[str, Any]] = field(default_factory=list)
    phone_change: dict[str, Any] | None = None  # STOP or START by this phone, for everyone
    events: list[dict[str, Any]] = field(default_factory=list)
    dispatch: dict[str, Any] | None = None
    send: dict[str, Any] | None = None


@dataclass(frozen=True)
class InboundResult:
    """What a batch of inbound messages did."""

    received: int
    new: int
    replies: list[str]  # the replies' send keys: send them with `send_replies`
    event_types: set[str]  # customer event types tracked (scenarios may listen to them)


def reply_integration(settings: Settings, provider: str) -> str | None:
    """The SMS integration a reply goes through: the configured one, else one speaking
    the API the message came in on, else the project's default SMS provider."""
    configured = settings.keywords.reply_integration
    if configured is not None:
        return configured
    for name, integration in settings.integrations.items():
        if integration_api(integration) == provider and "sms" in settings.channels(name):
            return name
    return settings.default_sms_provider


def plan_inbound(
    message: InboundMessage,
    customer_ids: Sequence[str],
    settings: Settings,
    received_at: datetime,
    repeat_of: str | None = None,
) -> InboundEffects:
    """The rows one new inbound message writes (pure: no I/O). `repeat_of` names the
    message this one repeats: its keyword changes no consent and gets no reply."""
    keywords = settings.keywords
    match = match_keyword(message.texts, keywords.table)
    at = message.at or received_at
    details = {
        "keyword": match.keyword if match else None,
        "sender": message.sender,
        "recipient": message.recipient,
        "message_id": message.message_id,
        "provider": message.provider,
    }
    consent_changes = []
    phone_change = None
    if match is not None and match.family in ("stop", "start") and repeat_of is None:
        if message.sender is not None:
            phone_change = {
                "phone": message.sender,
                "category": keywords.consent_category,
                "opted_out": match.family == "stop",
                "message_id": message.message_id,
                "at": at,
            }
        consent_changes = [
            {
                "customer_id": customer_id,
                "category": keywords.consent_category,
                "granted": match.family == "start",
                "source": "keyword",
                "at": at,
                "details": details,
            }
            for customer_id in customer_ids
        ]
    properties = {
        "text": "\n".join(message.texts),
        "texts": list(message.texts),
        "media": list(message.media),
        "subject": message.subject,
        "postback": message.postback,
        "channel": message.channel,
        "keyword": match.keyword if match else None,
        "keyword_family": match.family if match else None,
        **details,
    }
    events = [
        {"customer_id": customer_id, "type": keywords.inbound_event, "properties": properties}
        | {"at": at}
        for customer_id in customer_ids
    ]
    dispatch, send = (
        _reply(message, match, customer_ids, settings, received_at)
        if repeat_of is None
        else (None, None)
    )
    record = {
        "provider": message.provider,
        "message_id": message.message_id,
        "sender": message.sender,
        "recipient": message.recipient,
        "channel": message.channel,
        "texts": list(message.texts),
        "media": list(message.media),
        "subject": message.subject,
        "postback": message.postback,
        "keyword": match.keyword if match else None,
        "keyword_family": match.family if match else None,
        "customer_ids": list(customer_ids),
        "reply_key": send["key"] if send else None,
        "repeat_of": repeat_of,
        "at": message.at,
        "received_at": received_at,
    }
    return InboundEffects(record, consent_changes, phone_change, events, dispatch, send)


def _reply(
    message: InboundMessage,
    match: KeywordMatch | None,
    customer_ids: Sequence[str],
    settings: Settings,
    now: datetime,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The reply's dispatch intent and send row, or (None, None) when there is none."""
    if match is None or message.sender is None:
        return None, None
    text = settings.keywords.response(match.family, match.keyword)
    default_sender = settings.sender(None)
    number = message.recipient or (default_sender.number if default_sender else None)
    integration = reply_integration(settings, message.provider)
    if text is None or number is None or integration is None:
        return None, None
    key = f"reply/{message.provider}/{message.message_id}"
    dispatch = dispatch_key([key])
    segmentation = segment(text)
    send = {
        "key": key,
        "scenario_id": KEYWORD_REPLIES,
        "node_id": match.keyword,
        # The first customer with the phone; a stranger's reply is sent but not tracked.
        "customer_id": customer_ids[0] if customer_ids else "",
        "journey_id": 0,
        "phone": message.sender,
        "dispatch_key": dispatch,
        "state": "pending",
        "parts": segmentation.parts,
        "encoding": segmentation.encoding,
        "tracked": not customer_ids,
        "test": False,
        "created_at": now,
    }
    intent = {
        "key": dispatch,
        "integration": integration,
        "state": "pending",
        "payload": {
            "sender": number,
            "body": text,
            "recipients": [message.sender],
            "send_keys": [key],
            "parameters": None,
        },
        "created_at": now,
        "updated_at": now,
    }
    return intent, send


def receive_inbound(
    store: Store, settings: Settings, messages: Sequence[InboundMessage], received_at: datetime
) -> InboundResult:
    """Store new inbound messages with everything they cause, in one transaction."""
    for attempt in range(2):
        known = store.inbound.known([(m.provider, m.message_id) for m in messages])
        fresh: dict[tuple[str, str], InboundMessage] = {}
        for message in messages:
            key = (message.provider, message.message_id)
            if key not in known:
                fresh.setdefault(key, message)  # a copy within one request counts once
        phones = {m.sender for m in fresh.values() if m.sender}
        customers = store.customers.by_phone(phones) if phones else {}
        latest = (
            store.inbound.latest_keywords(phones, received_at - REPEAT_WINDOW) if phones else {}
        )
        effects = []
        for message in fresh.values():
            repeat_of = _repeats(message, latest, settings)
            ids = customers.get(message.sender or "", [])
            effects.append(plan_inbound(message, ids, settings, received_at, repeat_of))
        try:
            store.inbound.record(
                [e.message for e in effects],
                [change for e in effects for change in e.consent_changes],
                [event for e in effects for event in e.events],
                [e.dispatch for e in effects if e.dispatch],
                [e.send for e in effects if e.send],
                [e.phone_change for e in effects if e.phone_change],
            )
        except IntegrityError:
            # Another request stored one of these meanwhile: nothing was written; the
            # next pass sees it as known.
            if attempt:
                raise
            continue
        return InboundResult(
            received=len(messages),
            new=len(effects),
            replies=[e.send["key"] for e in effects if e.send],
            event_types={event["type"] for e in effects for event in e.events},
        )
    raise AssertionError("unreachable")


def _repeats(
    message: InboundMessage, latest: dict[str, tuple[str, list[str], str]], settings: Settings
) -> str | None:
    """The id of the message this one repeats, if any (the one acted on); notes this one
    as its phone's latest keyword message."""
    match = match_keyword(message.texts, settings.keywords.table)
    if match is None or message.sender is None:
        return None
    texts = list(message.texts)
    earlier = latest.get(message.sender)
    repeat_of = (
        earlier[2] if earlier is not None and earlier[:2] == (match.keyword, texts) else None
    )
    latest[message.sender] = (match.keyword, texts, repeat_of or message.message_id)
    return repeat_of


def send_replies(
    store: Store,
    gateways: GatewayPool,
    settings: Settings,
    reply_keys: Sequence[str],
    now: datetime,
    reconcile: bool = False,
) -> None:
    """Send the replies' stored intents (by their send keys), each tracked as a campaign
    event with its answer, once. A reply another process is sending is tracked by it."""
    pending = store.sends.by_key(reply_keys).values()
    for key in dict.fromkeys(send.dispatch_key for send in pending if send.state == "pending"):
        if key is None:
            continue
        send_dispatch(
            store,
            gateways,
            key,
            reconcile=reconcile,
            now=now,
            lease=settings.claim_lease,
            track=partial(reply_event, settings, now=now),
        )


def send_abandoned_replies(
    store: Store, gateways: GatewayPool, settings: Settings, now: datetime
) -> int:
    """Send reply intents a dead sender left unanswered (pending, or taken longer ago than
    the claim lease), looked up at the provider first; returns how many."""
    abandoned = store.dispatches.stale_pending(
        KEYWORD_REPLIES, now - ABANDONED_AFTER, now - settings.claim_lease
    )
    keys = [key for dispatch in abandoned for key in dispatch.payload["send_keys"]]
    send_replies(store, gateways, settings, keys, now, reconcile=True)
    return len(abandoned)


def reply_event(settings: Settings, send: SendOutcome, now: datetime) -> dict[str, Any]:
    """The campaign event of one keyword reply."""
    properties = {
        "action_type": "sms",
        "status": send.state,
        "action_name": f"keyword {send.node_id}",
        "campaign_id": KEYWORD_REPLIES,
        "campaign_name": "Keyword replies",
        "keyword": send.node_id,
        "status_code": number_or_code(send.status_code),
        "error": send.error,
        "comment": send.comment,
        "number_of_message_parts": send.parts,
        "recipient": send.phone,
    }
    return {
        "name": settings.campaign_event_name,
        "customer_id": send.customer_id,
        "scenario_id": KEYWORD_REPLIES,
        "status": send.state,
        "send_key": send.key,
        "test": False,
        "timestamp": now,
        "properties": properties,
    }
