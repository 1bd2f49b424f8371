"""Inbound messages: a phone writes to one of our numbers, and the simulator posts what the
provider would post for it, so keywords, replies and consent changes can be tried on one
machine. The bodies are the shapes `integrations.webhooks.inbound` reads (its module doc says
where each was confirmed).

    POST /_simulator/inbound
        {"api": "sinch_sms" | "infobip_sms" | "infobip_mms" | "sinch_mms" |
         "sinch_conversation", "from": "+15551234567", "to": "40404" or "+12025550100",
         "texts": ["STOP"], "media": ["https://..."], "subject": null, "postback": null,
         "copies": 1}
        -> {"posted": 2, "statuses": [200, 200], "message_id": "...", "message_ids": [...]}
        Posts synchronously to `inbound_urls[api]` (else `report_urls[api]`), signed and with
        credentials as that API's delivery reports are (`report_signing_secret`,
        `report_basic_auth`), each body `copies` times in a row (a provider's retry: the
        same body, the same message id). Each POST is made once; `statuses` says what the
        receiver answered, 0 for no answer. 400 `{"code": "invalid_inbound", "text"}`
        naming the field for an unknown api, a bad field, a part the api cannot carry, or
        an api with no URL configured.
    GET  /_simulator/inbound/{part}.txt
        A Sinch MMS MO text part (text/plain): the postback carries every part as a file
        URL, so the simulator serves its text parts itself (the text is in the URL).

What each api can carry and posts (one body per message, `message_ids` in order):

    sinch_sms           at most one text: `mo_text`; with media or a subject: `mo_media`
                        (MMS through the SMS API; each media item `Uploaded`, code 0)
    infobip_sms         exactly one text: a `results[]` of one, numbers without "+"
    infobip_mms         texts and media: `message[]` with the media first, then the texts
    sinch_mms           texts, media, subject: an `MMS_MO` N401 postback whose `content`
                        lists the media files, then a `.txt` file per text
    sinch_conversation  at most one text, media, or a postback: a MESSAGE_INBOUND per
                        media item (media_message; with a text, media_card_message with the
                        text as every caption), else one text_message, or one
                        choice_response_message. Channel MMS when there is media, else SMS
                        (a plain text reaches the app on the SMS channel, as seed 003 says).
                        The contact and conversation ids are stable per phone.

Ids are drawn from the state's generator (ULIDs; Infobip messageIds in UUID layout).
"""

from __future__ import annotations

import base64
import hashlib
import mimetypes
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from engine.segments import segment
from integrations.simulator.reports import (
    _CROCKFORD,
    CONVERSATION,
    INFOBIP_MMS,
    INFOBIP_SMS,
    PRICE,
    SINCH_MMS,
    SINCH_SMS,
    _infobip_time,
    _seconds_z,
)
from integrations.simulator.sinch_sms import sinch_error
from integrations.simulator.state import (
    SimulatorState,
    digits_of,
    is_msisdn,
    json_bytes,
    json_response,
    timestamp,
)

MAX_COPIES = 10
APP_ID = "simulator-app"  # the Conversation app and project of `SimulatorProcess`
PROJECT_ID = "simulator-project"
TEXT_PART_PATH = "/_simulator/inbound/"


class BadInbound(Exception):
    """A `POST /_simulator/inbound` the simulator cannot post; the message names the field."""


class Inbound(BaseModel):
    """One message from a phone (`sender`, the JSON's `from`) to one of our numbers or short
    codes (`to`), as `POST /_simulator/inbound` takes it."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    api: str
    sender: str = Field(alias="from")
    to: str
    texts: tuple[str, ...] = ()
    media: tuple[str, ...] = ()
    subject: str | None = None
    postback: str | None = None
    copies: int = Field(default=1, ge=1, le=MAX_COPIES)

    @field_validator("api")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in APIS:
            raise ValueError(f"unknown api {value!r}; one of {list(APIS)}")
        return value

    @field_validator("sender")
    @classmethod
    def _phone(cls, value: str) -> str:
        if not is_msisdn(digits_of(value)):
            raise ValueError(f"{value!r} is not a phone number")
        return value

    @field_validator("to")
    @classmethod
    def _ours(cls, value: str) -> str:
        digits = digits_of(value)
        if not (3 <= len(digits) <= 15 and digits.isascii() and digits.isdigit()):
            raise ValueError(f"{value!r} is neither a phone number nor a short code")
        return value

    @field_validator("texts")
    @classmethod
    def _not_empty(cls, texts: tuple[str, ...]) -> tuple[str, ...]:
        if any(not text for text in texts):
            raise ValueError("a text part is empty")
        return texts

    @field_validator("media")
    @classmethod
    def _urls(cls, media: tuple[str, ...]) -> tuple[str, ...]:
        for url in media:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{url!r} is not an http(s) URL")
        return media


@dataclass(frozen=True)
class Origin:
    """What a body needs besides the message: fresh ids, the time, and the simulator's own
    base URL (for the Sinch MMS text part files)."""

    new_id: Callable[[], str]
    new_uuid: Callable[[], str]
    now: datetime
    base_url: str


Build = Callable[[Inbound, Origin], list[tuple[str, dict[str, Any]]]]


# -- the bodies ----------------------------------------------------------------------------


def _content_type(url: str) -> str:
    return mimetypes.guess_type(url)[0] or "application/octet-stream"


def _sinch_sms(msg: Inbound, origin: Origin) -> list[tuple[str, dict[str, Any]]]:
    message_id = origin.new_id()
    body: dict[str, Any] = {
        "id": message_id,
        "from": "+" + digits_of(msg.sender),
        "to": digits_of(msg.to),
        "received_at": timestamp(origin.now),
        "sent_at": timestamp(origin.now),
    }
    if msg.media or msg.subject:
        media = [
            {"url": url, "content_type": _content_type(url), "status": "Uploaded", "code": 0}
            for url in msg.media
        ]
        content: dict[str, Any] = {"media": media}
        if msg.subject:
            content["subject"] = msg.subject
        if msg.texts:
            content["message"] = msg.texts[0]
        body.update(type="mo_media", body=content)
    else:
        body.update(type="mo_text", body=msg.texts[0])
    return [(message_id, body)]


def _infobip_envelope(result: dict[str, Any]) -> dict[str, Any]:
    return {"results": [result], "messageCount": 1, "pendingMessageCount": 0}


def _infobip_result(msg: Inbound, origin: Origin) -> dict[str, Any]:
    return {
        "messageId": origin.new_uuid(),
        "from": digits_of(msg.sender),
        "to": digits_of(msg.to),
        "receivedAt": _infobip_time(origin.now),
        "price": PRICE,
    }


def _infobip_sms(msg: Inbound, origin: Origin) -> list[tuple[str, dict[str, Any]]]:
    result = _infobip_result(msg, origin)
    (text,) = msg.texts
    # No keyword is registered on a simulated number: `cleanText` is the whole text.
    result.update(text=text, cleanText=text, smsCount=segment(text).parts)
    return [(result["messageId"], _infobip_envelope(result))]


def _infobip_mms(msg: Inbound, origin: Origin) -> list[tuple[str, dict[str, Any]]]:
    result = _infobip_result(msg, origin)
    result["message"] = [
        *({"contentType": _content_type(url), "url": url} for url in msg.media),
        *({"contentType": "text/plain", "value": text} for text in msg.texts),
    ]
    return [(result["messageId"], _infobip_envelope(result))]


def text_part_url(base_url: str, text: str) -> str:
    """Where the simulator serves one Sinch MMS MO text part: the text, base64url-encoded."""
    token = base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")
    return f"{base_url}{TEXT_PART_PATH}{token}.txt"


def _sinch_mms(msg: Inbound, origin: Origin) -> list[tuple[str, dict[str, Any]]]:
    tracking_id = origin.new_id()
    files = [*msg.media, *(text_part_url(origin.base_url, text) for text in msg.texts)]
    body: dict[str, Any] = {
        "origin": "MMS_MO",
        "code": "N401",
        "from": digits_of(msg.sender),
        "to": digits_of(msg.to),
        "tracking-id": tracking_id,
        "timestamp": _seconds_z(origin.now),
        "message-subject": msg.subject or "",
        "content": [{"file": url} for url in files],
    }
    return [(tracking_id, body)]


def _stable_id(*parts: str) -> str:
    """A ULID-shaped id that is always the same for the same `parts`."""
    value = int.from_bytes(hashlib.blake2b("|".join(parts).encode(), digest_size=16).digest())
    return "".join(_CROCKFORD[(value >> s) & 31] for s in range(125, -1, -5))


def _conversation(msg: Inbound, origin: Origin) -> list[tuple[str, dict[str, Any]]]:
    if msg.postback is not None:
        # The simulator does not know which of our messages offered the choice.
        contents = [
            {
                "choice_response_message": {
                    "message_id": origin.new_id(),
                    "postback_data": msg.postback,
                }
            }
        ]
    elif msg.media and msg.texts:
        contents = [
            {"media_card_message": {"url": url, "caption": msg.texts[0]}} for url in msg.media
        ]
    elif msg.media:
        contents = [{"media_message": {"url": url}} for url in msg.media]
    else:
        contents = [{"text_message": {"text": msg.texts[0]}}]
    phone = digits_of(msg.sender)
    channel = "MMS" if msg.media else "SMS"
    moment = timestamp(origin.now)
    out = []
    for content in contents:
        message_id = origin.new_id()
        message = {
            "id": message_id,
            "direction": "TO_APP",
            "channel_identity": {"channel": channel, "identity": phone, "app_id": APP_ID},
            "conversation_id": _stable_id("conversation", phone, digits_of(msg.to)),
            "contact_id": _stable_id("contact", phone),
            "sender_id": digits_of(msg.to),
            "metadata": "",
            "accept_time": moment,
            "processing_mode": "CONVERSATION",
            "injected": False,
            "contact_message": content,
        }
        body = {
            "app_id": APP_ID,
            "accepted_time": moment,
            "event_time": moment,
            "project_id": PROJECT_ID,
            "message": message,
            "message_metadata": "",
        }
        out.append((message_id, body))
    return out


@dataclass(frozen=True)
class Api:
    """How one API's inbound messages are built, and which parts it can carry."""

    build: Build
    max_texts: int | None = None  # None: any number
    media: bool = True
    subject: bool = False
    postback: bool = False


APIS: dict[str, Api] = {
    SINCH_SMS: Api(_sinch_sms, max_texts=1, subject=True),
    INFOBIP_SMS: Api(_infobip_sms, max_texts=1, media=False),
    INFOBIP_MMS: Api(_infobip_mms),
    SINCH_MMS: Api(_sinch_mms, subject=True),
    CONVERSATION: Api(_conversation, max_texts=1, postback=True),
}


def build(msg: Inbound, origin: Origin) -> list[tuple[str, dict[str, Any]]]:
    """The (message id, body) of every message `msg` becomes for its api, in posting order;
    BadInbound naming the field when the api cannot carry it."""
    api = APIS[msg.api]
    if api.max_texts is not None and len(msg.texts) > api.max_texts:
        raise BadInbound(f"texts: {msg.api} carries at most {api.max_texts} text part")
    for field, allowed in (("media", api.media), ("subject", api.subject)):
        if getattr(msg, field) and not allowed:
            raise BadInbound(f"{field}: {msg.api} inbound messages carry no {field}")
    if msg.postback is not None and not api.postback:
        raise BadInbound(f"postback: only sinch_conversation carries a postback, not {msg.api}")
    if msg.postback is not None and (msg.texts or msg.media):
        raise BadInbound("postback: a choice response carries no texts or media")
    if not (msg.texts or msg.media or msg.subject or msg.postback is not None):
        raise BadInbound("texts: the message needs a text, media, a subject or a postback")
    if not msg.texts and not api.media:
        raise BadInbound(f"texts: {msg.api} inbound messages need a text")
    return api.build(msg, origin)


# -- the endpoints ---------------------------------------------------------------------------


def _validation_text(exc: ValidationError) -> str:
    """Each problem as "field: what is wrong" (our own checks' words without pydantic's
    "Value error, " in front)."""
    problems = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "body"
        what = error["ctx"]["error"] if error["type"] == "value_error" else error["msg"]
        problems.append(f"{field}: {what}")
    return "; ".join(problems)


def router(state: SimulatorState) -> APIRouter:
    """`POST /_simulator/inbound` and the Sinch MMS text part files it links to."""
    api = APIRouter()

    @api.post("/_simulator/inbound")
    async def inbound(request: Request) -> Response:
        try:
            msg = Inbound.model_validate_json(await request.body())
            url = state.config.inbound_url(msg.api)
            if url is None:
                raise BadInbound(f"api: no inbound_urls or report_urls entry for {msg.api}")
            base_url = str(request.base_url).rstrip("/")
            origin = Origin(state.new_ulid, state.new_uuid, datetime.now(UTC), base_url)
            messages = build(msg, origin)
        except ValidationError as exc:
            return sinch_error(400, "invalid_inbound", _validation_text(exc))
        except BadInbound as exc:
            return sinch_error(400, "invalid_inbound", str(exc))
        statuses = []
        for _, body in messages:
            raw = orjson.dumps(body)
            for _ in range(msg.copies):
                statuses.append(await state.reporter.post_once(msg.api, url, raw))
        ids = [message_id for message_id, _ in messages]
        answer = {"posted": len(statuses), "statuses": statuses, "message_id": ids[0]}
        return json_response(json_bytes({**answer, "message_ids": ids}))

    @api.get(TEXT_PART_PATH + "{token}.txt")
    async def text_part(token: str) -> Response:
        try:
            text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        except ValueError:  # not base64 of UTF-8 text: no such part
            return Response(status_code=404)
        return Response(text, media_type="text/plain; charset=utf-8")

    return api
