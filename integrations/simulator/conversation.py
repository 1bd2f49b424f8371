"""The simulated Sinch Conversation API, MMS channel only:

    POST /oauth2/token
        client credentials (HTTP Basic `key_id:key_secret`, or `client_id` and
        `client_secret` form fields) -> `{"access_token", "token_type", "expires_in", "scope"}`
    POST /v1/projects/{project_id}/messages:send
        `Authorization: Bearer {token}` (or Basic `key_id:key_secret`)
        -> `{"message_id", "accepted_time"}`

Errors have Google's shape, `{"error": {"code", "message", "status", "details"}}`: 401
`UNAUTHENTICATED` (unknown or expired token), 400 `INVALID_ARGUMENT` (the simulator checks
`app_id`, a recipient `identified_by.channel_identities` entry on channel `MMS` with a
phone number, `channel_priority_order` containing `MMS`, exactly one message kind,
`channel_properties` strings and a `correlation_id` of at most 128 characters), 429
`RESOURCE_EXHAUSTED`, 503 `UNAVAILABLE` and 504 `DEADLINE_EXCEEDED` for the injected faults
(and 429 `RESOURCE_EXHAUSTED` when the rate limiter refuses a message).

The message kinds and what the handset gets (the `body` of the message entry):

- `text_message`, `media_message` and `card_message` (a title of at most 80 characters,
  the MMS subject; its description is the text) go as they are;
- `choice_message` (an optional `text_message`, at most 10 `text_message` or
  `url_message` choices), `location_message` (`title`, optional `label`, `coordinates`
  in range) and `carousel_message` (1 to 10 cards of a title, a description and/or a
  media with at most 10 choices each, then at most 3 outer choices) are transcoded to
  text, as Sinch does on MMS: choices and locations as `engine.dispatch.rich_text` reads,
  a carousel card by card (its title, description and media URL, then its choices),
  blank lines between cards, the outer choices last, numbered on across cards.

`list_message`, `template_message`, `contact_info_message`, choices other than text and
URL ones, and `recipient.contact_id` are not implemented (400).

`channel_properties.MMS_SENDER` is the sender (None in the message entry when absent: the
app's default sender). A `reject_prefixes` number is
accepted and counted as failed, as a later `FAILED` delivery report would say. Issued
tokens live `TOKEN_SECONDS` and are forgotten by `/_simulator/reset`.

With `report_urls["sinch_conversation"]` each accepted message gets its MESSAGE_DELIVERY
event (see `reports.py`): its `message_id`, the request's `message_metadata` as
`metadata` (and `message_metadata`), its `correlation_id`, and `FAILED` for a
`reject_prefixes` number.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import orjson
from fastapi import APIRouter, Request, Response

from engine.dispatch import Choice, Location, choice_lines, rich_text
from integrations.simulator.state import (
    RateLimited,
    SimulatorState,
    digits_of,
    is_msisdn,
    json_response,
    now_timestamp,
)

PROVIDER = "sinch_conversation"
TOKEN_SECONDS = 3600
MAX_TITLE = 80
MAX_CORRELATION_ID = 128
MAX_CHOICES = 10  # a choice message's, and a carousel card's
MAX_CARDS = 10
MAX_OUTER_CHOICES = 3  # a carousel's own
OTHER_KINDS = ("list_message", "template_message", "contact_info_message")
CHOICE_KINDS = ("text_message", "url_message")
OTHER_CHOICE_KINDS = (
    "call_message",
    "location_message",
    "calendar_message",
    "share_location_message",
)


def conversation_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    """A Conversation API error: `{"error": {"code", "message", "status", "details"}}`."""
    body = {"error": {"code": status, "message": message, "status": code, "details": []}}
    return json_response(orjson.dumps(body), status, headers)


def _oauth_error(status: int, error: str, description: str) -> Response:
    return json_response(orjson.dumps({"error": error, "error_description": description}), status)


class _BadRequest(Exception):
    def __init__(self, message: str):
        self.message = message


def _basic(request: Request) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    key_id, sep, secret = decoded.partition(":")
    return (key_id, secret) if sep else None


def _url(value: Any, where: str) -> str:
    url = value.get("url") if isinstance(value, dict) else None
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise _BadRequest(f"{where}.url must be an http(s) URL")
    return url


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _BadRequest(f"{where} must be an object")
    return value


def _string(body: dict[str, Any], name: str, where: str, *, required: bool = False) -> str:
    """`body[name]` as a string ("" when absent and not required)."""
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise _BadRequest(f"{where}.{name} must " + ("not be empty" if required else "be a string"))
    return value


def _choice(item: Any, where: str) -> Choice:
    item = _object(item, where)
    kinds = [kind for kind in (*CHOICE_KINDS, *OTHER_CHOICE_KINDS) if kind in item]
    if len(kinds) != 1:
        raise _BadRequest(f"{where} must set exactly one choice kind, got {kinds or 'none'}")
    (kind,) = kinds
    if kind in OTHER_CHOICE_KINDS:
        raise _BadRequest(f"the simulator implements {', '.join(CHOICE_KINDS)} choices, not {kind}")
    body = _object(item[kind], f"{where}.{kind}")
    postback = _string(item, "postback_data", where) or None
    if kind == "text_message":
        return Choice(
            text=_string(body, "text", f"{where}.{kind}", required=True), postback_data=postback
        )
    title = _string(body, "title", f"{where}.{kind}", required=True)
    return Choice(text=title, url=_url(body, f"{where}.{kind}"), postback_data=postback)


def _choices(value: Any, where: str, limit: int) -> list[Choice]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > limit:
        raise _BadRequest(f"{where} must be a list of at most {limit} choices")
    return [_choice(item, f"{where}[{i}]") for i, item in enumerate(value)]


def _coordinate(coordinates: dict[str, Any], name: str, bound: int, where: str) -> float:
    value = coordinates.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or abs(value) > bound:
        raise _BadRequest(f"{where}.coordinates.{name} must be a number from -{bound} to {bound}")
    return float(value)


def _location(body: dict[str, Any], where: str) -> Location:
    coordinates = _object(body.get("coordinates"), f"{where}.coordinates")
    return Location(
        title=_string(body, "title", where, required=True),
        label=_string(body, "label", where) or None,
        latitude=_coordinate(coordinates, "latitude", 90, where),
        longitude=_coordinate(coordinates, "longitude", 180, where),
    )


Content = tuple[str | None, str, str | None]  # subject, text, media URL


def _text(body: dict[str, Any], where: str) -> Content:
    return None, _string(body, "text", where, required=True), None


def _media(body: dict[str, Any], where: str) -> Content:
    return None, "", _url(body, where)


def _location_text(body: dict[str, Any], where: str) -> Content:
    return None, rich_text("", location=_location(body, where)), None


def _choice_text(body: dict[str, Any], where: str) -> Content:
    text_message = body.get("text_message")
    at = f"{where}.text_message"
    text = _string(_object(text_message, at), "text", at) if text_message is not None else ""
    choices = _choices(body.get("choices"), f"{where}.choices", MAX_CHOICES)
    if not (text or choices):
        raise _BadRequest(f"{where} needs a text or choices")
    return None, rich_text(text, choices), None


def _carousel_text(body: dict[str, Any], where: str) -> Content:
    """The cards one after the other, then the outer choices; choices numbered on."""
    cards = body.get("cards")
    if not isinstance(cards, list) or not 1 <= len(cards) <= MAX_CARDS:
        raise _BadRequest(f"{where}.cards must hold 1 to {MAX_CARDS} cards")
    blocks: list[str] = []
    number = 1
    for i, card in enumerate(cards):
        at = f"{where}.cards[{i}]"
        card = _object(card, at)
        media = card.get("media_message")
        lines = [_string(card, "title", at), _string(card, "description", at)]
        lines.append(_url(media, f"{at}.media_message") if media is not None else "")
        if not any(lines):
            raise _BadRequest(f"{at} needs a title, a description or media")
        choices = _choices(card.get("choices"), f"{at}.choices", MAX_CHOICES)
        blocks.append("\n".join([*filter(None, lines), *choice_lines(choices, number)]))
        number += len(choices)
    outer = _choices(body.get("choices"), f"{where}.choices", MAX_OUTER_CHOICES)
    if outer:
        blocks.append("\n".join(choice_lines(outer, number)))
    return None, "\n\n".join(blocks), None


def _card(body: dict[str, Any], where: str) -> Content:
    title, description = _string(body, "title", where), _string(body, "description", where)
    if len(title) > MAX_TITLE:
        raise _BadRequest(f"{where}.title is longer than {MAX_TITLE} characters")
    media = body.get("media_message")
    url = _url(media, f"{where}.media_message") if media is not None else None
    if not (title or description or url):
        raise _BadRequest(f"{where} needs a title, a description or media")
    return title or None, description, url


# What each message kind reads as on the handset.
CONTENT: dict[str, Callable[[dict[str, Any], str], Content]] = {
    "text_message": _text,
    "media_message": _media,
    "card_message": _card,
    "choice_message": _choice_text,
    "location_message": _location_text,
    "carousel_message": _carousel_text,
}


def _content(message: Any) -> Content:
    """(subject, text, media URL) the handset gets from the one message kind the request
    carries; the kinds MMS lacks come as text (see the module docstring)."""
    if not isinstance(message, dict):
        raise _BadRequest("message is required")
    kinds = [kind for kind in (*CONTENT, *OTHER_KINDS) if kind in message]
    if len(kinds) != 1:
        raise _BadRequest(f"message must set exactly one message kind, got {kinds or 'none'}")
    (kind,) = kinds
    if kind in OTHER_KINDS:
        raise _BadRequest(f"the simulator implements {', '.join(CONTENT)}, not {kind}")
    where = f"message.{kind}"
    return CONTENT[kind](_object(message[kind], where), where)


def _mms_identity(recipient: Any) -> str:
    """The digits of the recipient's MMS channel identity."""
    if not isinstance(recipient, dict):
        raise _BadRequest("recipient is required")
    if "contact_id" in recipient:
        raise _BadRequest("the simulator implements recipient.identified_by only")
    identified = recipient.get("identified_by")
    identities = identified.get("channel_identities") if isinstance(identified, dict) else None
    if not isinstance(identities, list) or not identities:
        raise _BadRequest("recipient.identified_by.channel_identities must not be empty")
    for entry in identities:
        if isinstance(entry, dict) and entry.get("channel") == "MMS":
            identity = entry.get("identity")
            digits = digits_of(identity) if isinstance(identity, str) else ""
            if not is_msisdn(digits):
                raise _BadRequest(f"invalid MMS channel identity {identity!r}")
            return digits
    raise _BadRequest("the simulator implements the MMS channel only")


class Conversation:
    """The Conversation side of the ledger: issued tokens and their expiry."""

    provider = PROVIDER
    channel = "mms"
    requests = ("oauth_token", "conversation_post")

    def __init__(self, state: SimulatorState):
        self.state = state
        self.reset()

    def reset(self) -> None:
        self.tokens: dict[str, float] = {}  # access token -> time.monotonic() it expires at

    def stats(self) -> dict[str, Any]:
        return {}

    def issue(self) -> str:
        token = secrets.token_urlsafe(32)
        self.tokens[token] = time.monotonic() + TOKEN_SECONDS
        return token

    def key_matches(self, key_id: str | None, secret: str | None) -> bool:
        expected = self.state.config.conversation_keys.get(key_id or "")
        return expected is not None and secrets.compare_digest(expected, secret or "")

    def authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer":
            expires = self.tokens.get(token.strip())
            return expires is not None and time.monotonic() < expires
        basic = _basic(request)
        return basic is not None and self.key_matches(*basic)

    def accept(self, raw: bytes, project_id: str = "") -> tuple[bytes, bool]:
        """Validate and record one `messages:send` of `project_id`; return (answer, whether
        to hang). Raises _BadRequest, before recording anything, when the request is
        invalid, or RateLimited (one token) when the rate limiter refuses it."""
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise _BadRequest("Invalid JSON payload received") from None
        if not isinstance(payload, dict):
            raise _BadRequest("the request body must be a JSON object")
        app_id = payload.get("app_id")
        if not isinstance(app_id, str) or not app_id.strip():
            raise _BadRequest("app_id is required")
        digits = _mms_identity(payload.get("recipient"))
        subject, text, media_url = _content(payload.get("message"))
        order = payload.get("channel_priority_order")
        if order is not None and (not isinstance(order, list) or "MMS" not in order):
            raise _BadRequest("channel_priority_order must include MMS")
        properties = payload.get("channel_properties") or {}
        if not isinstance(properties, dict) or not all(
            isinstance(v, str) for v in properties.values()
        ):
            raise _BadRequest("channel_properties must map names to strings")
        correlation_id = payload.get("correlation_id")
        if correlation_id is not None and (
            not isinstance(correlation_id, str) or len(correlation_id) > MAX_CORRELATION_ID
        ):
            raise _BadRequest(f"correlation_id must be at most {MAX_CORRELATION_ID} characters")
        metadata = payload.get("message_metadata")
        if metadata is not None and not isinstance(metadata, str):
            raise _BadRequest("message_metadata must be a string")

        state = self.state
        state.admit(1)
        message_id = state.new_ulid()
        prefixes = state.reject_prefixes
        if prefixes and digits.startswith(prefixes):
            state.failed += 1  # accepted now, FAILED in the delivery report
            outcome = "refused"
        else:
            outcome = state.deliver_mms(
                PROVIDER,
                digits,
                message_id=message_id,
                client_reference=correlation_id or metadata or None,
                sender=properties.get("MMS_SENDER"),
                subject=subject,
                text=text,
                media_url=media_url,
            )
        accepted_time = now_timestamp()
        url = state.reporter.url(PROVIDER)
        if url:
            state.reporter.conversation(
                url,
                app_id=app_id,
                project_id=project_id,
                message_id=message_id,
                identity=digits,
                metadata=metadata,
                correlation_id=correlation_id,
                accepted_time=accepted_time,
                outcome=outcome,
            )
        answer = {"message_id": message_id, "accepted_time": accepted_time}
        return orjson.dumps(answer), state.accepted_request()


def router(state: SimulatorState) -> APIRouter:
    """The OAuth2 token and Conversation endpoints, their bookkeeping attached to `state`."""
    conversation = Conversation(state)
    state.attach(conversation)
    api = APIRouter()

    @api.post("/oauth2/token")
    async def token(request: Request) -> Response:
        state.requests["oauth_token"] += 1
        await state.delay()
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        key_id, secret = _basic(request) or (
            form.get("client_id", [None])[0],
            form.get("client_secret", [None])[0],
        )
        if not conversation.key_matches(key_id, secret):
            return _oauth_error(401, "invalid_client", "Client authentication failed")
        if form.get("grant_type", [None])[0] != "client_credentials":
            return _oauth_error(400, "unsupported_grant_type", "Use client_credentials")
        body = {
            "access_token": conversation.issue(),
            "token_type": "bearer",
            "expires_in": TOKEN_SECONDS,
            "scope": "",
        }
        return json_response(orjson.dumps(body))

    @api.post("/v1/projects/{project_id}/messages:send")
    async def send(project_id: str, request: Request) -> Response:
        state.requests["conversation_post"] += 1
        cfg = state.config
        await state.delay()
        if not conversation.authorized(request):
            return conversation_error(
                401, "UNAUTHENTICATED", "Request had invalid authentication credentials."
            )
        fault = state.draw_fault()
        if fault == "429":
            headers = {"Retry-After": f"{cfg.retry_after_seconds:g}"}
            return conversation_error(429, "RESOURCE_EXHAUSTED", "Too many requests", headers)
        if fault == "5xx":
            return conversation_error(503, "UNAVAILABLE", "The service is currently unavailable.")
        raw = await request.body()
        if fault == "timeout":
            await asyncio.sleep(cfg.hang_seconds)
            return conversation_error(504, "DEADLINE_EXCEEDED", "Deadline exceeded")
        try:
            answer, hang = conversation.accept(raw, project_id)
        except _BadRequest as exc:
            return conversation_error(400, "INVALID_ARGUMENT", exc.message)
        except RateLimited as exc:
            headers = {"Retry-After": exc.header}
            return conversation_error(429, "RESOURCE_EXHAUSTED", "Too many requests", headers)
        if hang:
            await asyncio.sleep(cfg.hang_seconds)
        return json_response(answer)

    return api
