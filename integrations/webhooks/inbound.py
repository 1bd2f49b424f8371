"""Inbound message webhooks, parsed: each provider's callback body for a message a customer
sent us (mobile originated, MO) into `InboundMessage`s. Pure functions: no I/O (but a
log line for a message whose time could not be used).

One URL may receive both delivery reports and inbound messages (every provider allows it),
so `is_inbound` tells them apart before a parser is chosen: `INBOUND_PARSERS` here, or
`integrations.webhooks.reports.PARSERS`.

A malformed body raises `InputError` naming the field, e.g. "results[0].from is missing";
what is checked, and what could not be stored, is in `integrations.webhooks.fields`. One
exception: a message whose provider time is unusable (not a timestamp, or out of range)
is taken with `at` None, so the time it was received stands in (see `_provider_time`).
`(provider, message_id)` identifies a message: a provider that posts it again (they retry,
and rebuild the body when they do) posts the same id.

What each provider sends, and where it was confirmed:

    sinch_sms           `mo_text` (`body` the text), `mo_binary` (`body` base64 with `udh`:
                        no text part) and `mo_media` (`body: {subject, message, media[{url,
                        content_type, status, code}]}`, MMS), `from` with "+", `to` digits;
                        Sinch's SDK fixtures (sinch-sdk-java `openapi-contracts/.../sms/v1/
                        inbounds/MOTextDto.json`, `InboundMediaDto.json`, `MOBinaryDto.json`)
                        and the Python and Node SDKs' `MOMediaItem` (`url` absent when the
                        upload failed, `code` non-zero).
    infobip_sms         `{"results": [{messageId, from, to, text, cleanText, keyword,
                        receivedAt, smsCount, price, callbackData}], "messageCount",
                        "pendingMessageCount"}`, numbers without "+"; Infobip's "Receive
                        inbound SMS messages" webhook reference (format MO_JSON_2).
    infobip_mms         the same envelope, each result with `message: [{contentType, url} |
                        {contentType: "text/plain", value}]` and no subject; Infobip's
                        MO_MMS_2 model (`MmsWebhookInboundReport` in infobip-api-java-client,
                        and the webhook example in infobip-api-python-client's MMS tests).
    sinch_mms           the MMS JSON API's MO postback `{"origin": "MMS_MO", "code": "N401",
                        from, to, keyword, tracking-id, operator-id, timestamp,
                        message-subject, content: [{"file": url}]}`; Sinch's "MMS MO
                        postbacks" reference. Every part, text ones included, is a file on
                        Sinch's servers (the reference's example ends with `file2.txt`), so
                        its text parts are URLs in `media`: reading them is I/O, left to
                        the caller. A part given inline as `{"text": ...}` (not in the
                        reference; taken so a STOP in that shape is not lost) is a text
                        part.
    sinch_conversation  MESSAGE_INBOUND `{app_id, accepted_time, event_time, message: {id,
                        direction: "TO_APP", channel_identity: {channel, identity, app_id},
                        contact_id, conversation_id, sender_id, accept_time, contact_message:
                        {text_message | media_message | media_card_message |
                        choice_response_message}}}`; sinch-sdk-java's
                        `MessageInboundEventDto.json` and the MMS channel page (seed 003),
                        whose examples put `channel` on `message` and leave out
                        `channel_identity`. One attachment per event: an MMS with three
                        images is three media messages, with a text three media cards with
                        the same caption. `sender_id` read as the number the contact wrote to
                        is from the API reference's field description; no example shows it
                        (unverified). Events on channels other than SMS and MMS yield nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.errors import InputError
from integrations.webhooks import fields
from integrations.webhooks.reports import (
    CONVERSATION,
    INFOBIP_MMS,
    INFOBIP_SMS,
    SINCH_MMS,
    SINCH_SMS,
)

logger = logging.getLogger("scenarist.webhooks")

SHORT_CODE_DIGITS = 7
"""Our numbers with at most this many digits are short codes, kept as bare digits."""


@dataclass(frozen=True)
class InboundMessage:
    """One message a customer sent us, as one provider reported it."""

    # "sinch_sms" | "infobip_sms" | "infobip_mms" | "sinch_mms" | "sinch_conversation"
    provider: str
    message_id: str  # the provider's id of this message; (provider, message_id) dedupes
    sender: str | None  # the customer's phone, E.164 with "+" (None when not said)
    recipient: str | None  # our number, E.164 with "+", or a short code's bare digits
    channel: str  # "sms" | "mms"
    texts: tuple[str, ...]  # every text part, in order (the subject is not one); ()
    media: tuple[str, ...]  # media URLs, in order
    subject: str | None  # MMS subject when given
    postback: str | None  # Conversation choice_response postback_data
    contact_id: str | None  # Conversation contact id
    at: datetime | None  # when the provider says it received it (aware, UTC)


def _recipient(value: str | None, field: str) -> str | None:
    """Our number as E.164, or a short code (at most SHORT_CODE_DIGITS digits) as digits."""
    if value is None:
        return None
    number = fields.e164(value, field)
    return number[1:] if len(number) - 1 <= SHORT_CODE_DIGITS else number


def _parts(*texts: str | None) -> tuple[str, ...]:
    """The text parts given, in order; empty and absent ones are no part."""
    return tuple(text for text in texts if text)


def _content(
    parts: list[tuple[str, dict[str, Any]]], text_key: str, url_key: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The text parts and media URLs of an MMS's parts, in order: a part with `text_key`
    is a text part, one with `url_key` media."""
    texts: list[str] = []
    media: list[str] = []
    for path, part in parts:
        value = fields.get(part, text_key, path, str)
        url = fields.text(part, url_key, path)
        if value is not None:
            texts.extend(_parts(value))
        elif url is not None:
            media.append(fields.url(url, fields.join(path, url_key)))
        else:
            raise InputError(f"{path} has neither {text_key} nor {url_key}")
    return tuple(texts), tuple(media)


def _provider_time(body: dict[str, Any], key: str, path: str) -> datetime | None:
    """When the provider says it received a message; None when unusable, logged."""
    # choice: a message is never refused for its time. A refused body is re-posted as it
    # was, refused again and lost, and losing a STOP is worse than a wrong time: with `at`
    # None, the time it reached us stands in (`engine.inbound.plan_inbound`).
    try:
        return fields.timestamp(body, key, path)
    except InputError as exc:
        logger.warning("inbound message time ignored (another or its arrival stands in): %s", exc)
        return None


# -- Sinch SMS ---------------------------------------------------------------------------

_SINCH_CHANNELS = {"mo_text": "sms", "mo_binary": "sms", "mo_media": "mms"}


def parse_sinch_sms(body: dict) -> list[InboundMessage]:
    """A Sinch SMS inbound callback: one message. `mo_text` has its `body` as the one text
    part; `mo_binary` has none (its `body` is base64 octets for a handset application, not
    text); `mo_media` (channel "mms") has `body.message` as its text part, `body.subject`,
    and the `url` of each `body.media[]` item that was stored (a failed upload has none)."""
    body = fields.obj(body, "body")
    kind = fields.need(body, "type", "", str)
    channel = fields.lookup(_SINCH_CHANNELS, kind, "type")
    texts: tuple[str, ...] = ()
    media: tuple[str, ...] = ()
    subject = None
    if kind == "mo_text":
        content = fields.get(body, "body", "", str)
        if content is None:
            raise InputError("body is missing")
        texts = _parts(content)
    elif kind == "mo_media":
        content = fields.get(body, "body", "", dict)
        if content is None:
            raise InputError("body is missing")
        texts = _parts(fields.text(content, "message", "body"))
        subject = fields.text(content, "subject", "body")
        media = tuple(
            fields.url(url, f"{path}.url")
            for path, item in fields.items(content, "media", "body")
            if (url := fields.text(item, "url", path)) is not None
        )
    return [
        InboundMessage(
            provider=SINCH_SMS,
            message_id=fields.need(body, "id", "", str),
            sender=fields.e164(fields.need(body, "from", "", str), "from"),
            recipient=_recipient(fields.need(body, "to", "", str), "to"),
            channel=channel,
            texts=texts,
            media=media,
            subject=subject,
            postback=None,
            contact_id=None,
            at=_provider_time(body, "received_at", ""),
        )
    ]


# -- Infobip -----------------------------------------------------------------------------


def _infobip_results(body: dict) -> list[tuple[str, dict[str, Any]]]:
    body = fields.obj(body, "body")
    if fields.get(body, "results", "", list) is None:
        raise InputError("results is missing")
    return fields.items(body, "results", "")


def _infobip_message(
    provider: str, item: dict[str, Any], path: str, texts: tuple[str, ...], media: tuple[str, ...]
) -> InboundMessage:
    return InboundMessage(
        provider=provider,
        message_id=fields.need(item, "messageId", path, str),
        sender=fields.e164(fields.need(item, "from", path, str), f"{path}.from"),
        recipient=_recipient(fields.text(item, "to", path), f"{path}.to"),
        channel="sms" if provider == INFOBIP_SMS else "mms",
        texts=texts,
        media=media,
        subject=None,
        postback=None,
        contact_id=None,
        at=_provider_time(item, "receivedAt", path),
    )


def parse_infobip_sms(body: dict) -> list[InboundMessage]:
    """An Infobip inbound SMS webhook: one message per `results[]` item, its `text` (the
    keyword included; `cleanText` is what follows the keyword) the one text part."""
    return [
        _infobip_message(INFOBIP_SMS, item, path, _parts(fields.text(item, "text", path)), ())
        for path, item in _infobip_results(body)
    ]


def parse_infobip_mms(body: dict) -> list[InboundMessage]:
    """An Infobip inbound MMS webhook: one message per `results[]` item. Its `message[]`
    parts are read in order: a part with a `value` is a text part, one with a `url` media."""
    return [
        _infobip_message(
            INFOBIP_MMS, item, path, *_content(fields.items(item, "message", path), "value", "url")
        )
        for path, item in _infobip_results(body)
    ]


# -- Sinch MMS ---------------------------------------------------------------------------


def parse_sinch_mms(body: dict) -> list[InboundMessage]:
    """A Sinch MMS MO postback (`origin` MMS_MO): one message, identified by its
    `tracking-id`. `media` is every `content[].file` URL in order, the text parts' files
    (text/plain) among them: the postback carries no text itself (see the module doc),
    unless a part is inline (`content[].text`): then it is a text part."""
    body = fields.obj(body, "body")
    origin = fields.need(body, "origin", "", str)
    if origin != "MMS_MO":
        raise InputError(f"origin is {origin!r}, not an inbound MMS (MMS_MO)")
    texts, media = _content(fields.items(body, "content", ""), "text", "file")
    return [
        InboundMessage(
            provider=SINCH_MMS,
            message_id=fields.need(body, "tracking-id", "", str),
            sender=fields.e164(fields.need(body, "from", "", str), "from"),
            recipient=_recipient(fields.text(body, "to", ""), "to"),
            channel="mms",
            texts=texts,
            media=media,
            subject=fields.text(body, "message-subject", ""),
            postback=None,
            contact_id=None,
            at=_provider_time(body, "timestamp", ""),
        )
    ]


# -- Conversation API --------------------------------------------------------------------

_CONVERSATION_CHANNELS = {"SMS": "sms", "MMS": "mms"}
_CONTACT_MESSAGES = (
    "text_message",
    "media_message",
    "media_card_message",
    "choice_response_message",
)


def parse_conversation(body: dict) -> list[InboundMessage]:
    """A Conversation API MESSAGE_INBOUND callback: one message, or none when it came on a
    channel other than SMS and MMS. A `text_message` has its text as its text part, a
    `media_message` its `url` as media, a `media_card_message` both (its `caption` the
    text part), a `choice_response_message` its `postback_data` as `postback` and no text.
    The channel is `channel_identity.channel`, else `channel` (as the seed's MMS channel
    examples place it); `at` is `message.accept_time`, else `event_time`, else
    `accepted_time`."""
    body = fields.obj(body, "body")
    message = fields.get(body, "message", "", dict)
    if message is None:
        raise InputError("message is missing")
    path = "message"
    direction = fields.text(message, "direction", path)
    if direction not in (None, "TO_APP"):
        raise InputError(f"{path}.direction is {direction!r}, not an inbound message (TO_APP)")
    ipath = f"{path}.channel_identity"
    identity = fields.get(message, "channel_identity", path, dict) or {}
    channel = fields.text(identity, "channel", ipath) or fields.text(message, "channel", path)
    if channel is None:
        raise InputError(f"{ipath}.channel is missing")
    if channel not in _CONVERSATION_CHANNELS:
        return []
    cpath = f"{path}.contact_message"
    contact = fields.get(message, "contact_message", path, dict)
    if contact is None:
        raise InputError(f"{cpath} is missing")
    kinds = [kind for kind in _CONTACT_MESSAGES if contact.get(kind) is not None]
    if len(kinds) != 1:
        raise InputError(f"{cpath} needs exactly one of {', '.join(_CONTACT_MESSAGES)}")
    (kind,) = kinds
    kpath = f"{cpath}.{kind}"
    content = fields.obj(contact[kind], kpath)
    texts: tuple[str, ...] = ()
    media: tuple[str, ...] = ()
    postback = None
    if kind == "text_message":
        texts = _parts(fields.need(content, "text", kpath, str))
    elif kind == "choice_response_message":
        postback = fields.need(content, "postback_data", kpath, str)
    else:
        media = (fields.url(fields.need(content, "url", kpath, str), f"{kpath}.url"),)
        if kind == "media_card_message":
            texts = _parts(fields.text(content, "caption", kpath))
    number = fields.text(identity, "identity", ipath)
    return [
        InboundMessage(
            provider=CONVERSATION,
            message_id=fields.need(message, "id", path, str),
            sender=None if number is None else fields.e164(number, f"{ipath}.identity"),
            recipient=_recipient(fields.text(message, "sender_id", path), f"{path}.sender_id"),
            channel=_CONVERSATION_CHANNELS[channel],
            texts=texts,
            media=media,
            subject=None,
            postback=postback,
            contact_id=fields.text(message, "contact_id", path),
            at=_provider_time(message, "accept_time", path)
            or _provider_time(body, "event_time", "")
            or _provider_time(body, "accepted_time", ""),
        )
    ]


INBOUND_PARSERS: dict[str, Callable[[dict], list[InboundMessage]]] = {
    SINCH_SMS: parse_sinch_sms,
    INFOBIP_SMS: parse_infobip_sms,
    INFOBIP_MMS: parse_infobip_mms,
    SINCH_MMS: parse_sinch_mms,
    CONVERSATION: parse_conversation,
}


# -- inbound or delivery report ----------------------------------------------------------


def _infobip_inbound(body: dict[str, Any]) -> bool:
    # A delivery report result always has a `status`; an inbound result never does.
    results = body.get("results")
    if not isinstance(results, list) or not results:
        return "pendingMessageCount" in body
    first = results[0]
    return isinstance(first, dict) and "status" not in first


_INBOUND_TESTS: dict[str, Callable[[dict[str, Any]], bool]] = {
    SINCH_SMS: lambda body: isinstance(body.get("type"), str) and body["type"] in _SINCH_CHANNELS,
    INFOBIP_SMS: _infobip_inbound,
    INFOBIP_MMS: _infobip_inbound,
    SINCH_MMS: lambda body: body.get("origin") == "MMS_MO",
    CONVERSATION: lambda body: "message" in body,
}


def is_inbound(provider: str, body: Any) -> bool:
    """Whether a callback body posted to /webhooks/{provider} is an inbound message (vs a
    delivery report): one URL may receive both, as providers allow. Only the shape that
    tells them apart is looked at (Sinch SMS `type` mo_*, Infobip results without a
    `status`, Sinch MMS `origin` MMS_MO, a Conversation `message`); anything else,
    malformed bodies and unknown providers included, is not inbound, so the delivery
    report parser gets to say what is wrong with it."""
    test = _INBOUND_TESTS.get(provider)
    return test is not None and isinstance(body, dict) and test(body)
