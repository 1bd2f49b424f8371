"""The simulated Infobip SMS and MMS APIs (`Authorization: App {key}`, the same keys):

    POST /sms/3/messages        validate (400 `E400` with violations), answer 200 with a status
                                per destination: PENDING_ACCEPTED, REJECTED_DESTINATION for a
                                `reject_prefixes` number, REJECTED_PREFIX_MISSING for something
                                that is not a phone number, REJECTED_DUPLICATE_MESSAGE_ID for a
                                messageId accepted before (not counted again)
    POST /mms/2/messages        the same for MMS: `messages[]` with `sender`,
                                `destinations[{to, messageId}]`, `content{title (<= 66),
                                messageSegments[TEXT{text} | LINK{contentType, contentUrl}]}`
                                and `options.smsFailover{sender, text}`; the answer has the
                                SMS v3 shape, each destination with `details.messageCount` 1

Both take the bulk id from `options.schedule.bulkId` (made up when absent) and share the
fault injection of the other endpoints (401 `E401`, 429 `E429` with `Retry-After`, 500
`E500`, a hang then 504 `E504`, hang after accept) and the rate limiter (429 `E429`, one
token per destination of a valid request, counting destinations it refuses one by one).
Each API remembers the messageIds it accepted on its own: an SMS messageId does not make
the same MMS messageId a duplicate, nor the reverse.

Each accepted SMS `messages[]` element keeps its sender, text and accepted destinations.
Each accepted MMS destination goes through `SimulatorState.deliver_mms` (provider
"infobip_mms", subject = title, body = the TEXT segments joined by newlines, media = the
first LINK's `contentUrl`): with `mms_fallback_rate` it is delivered as an SMS carrying
the `smsFailover` text (from its sender), or fails when the message has no smsFailover
(still PENDING_ACCEPTED in the answer: Infobip would report the failure later).

Delivery reports (see `reports.py`) go to each message's `webhooks.delivery.url`, its
legacy `notifyUrl`, or `report_urls["infobip_sms" | "infobip_mms"]`: one result per accepted
or REJECTED_* destination (none for a duplicate messageId), up to 100 results a POST.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import orjson
from fastapi import APIRouter, Request, Response

from engine.segments import segment
from integrations.simulator.reports import InfobipResult, InfobipTarget
from integrations.simulator.state import (
    FALLBACK_SMS,
    MMS_ACCEPTED,
    RateLimited,
    SimulatorState,
    is_msisdn,
    json_response,
    now_timestamp,
)

PROVIDER = "infobip_sms"
MMS_PROVIDER = "infobip_mms"
MAX_MESSAGE_ID = 200
MAX_BULK_ID = 100  # Infobip clips longer bulk ids
MAX_TITLE = 66  # `content.title` of an MMS
MAX_SEGMENT_TEXT = 4096  # a TEXT segment, in Infobip's MMS schema
MMS_DETAILS = {"messageCount": 1}


def _status(group_id: int, group: str, status_id: int, name: str, text: str):
    return {
        "groupId": group_id,
        "groupName": group,
        "id": status_id,
        "name": name,
        "description": text,
    }


PENDING_ACCEPTED = _status(1, "PENDING", 26, "PENDING_ACCEPTED", "Message sent to next instance")
REJECTED_DESTINATION = _status(5, "REJECTED", 14, "REJECTED_DESTINATION", "By Destination")
REJECTED_PREFIX_MISSING = _status(
    5, "REJECTED", 8, "REJECTED_PREFIX_MISSING", "Number prefix missing"
)
REJECTED_DUPLICATE = _status(
    5, "REJECTED", 23, "REJECTED_DUPLICATE_MESSAGE_ID", "Rejected duplicate message ID"
)


def infobip_error(
    status: int,
    code: str,
    description: str,
    action: str | None = None,
    violations: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """An Infobip v3 error answer: `{"errorCode", "description", "action", "violations",
    "resources"}`."""
    body = {
        "errorCode": code,
        "description": description,
        "action": action,
        "violations": violations or [],
        "resources": [],
    }
    return json_response(orjson.dumps(body), status, headers)


class _Violations(Exception):
    """An Infobip request that fails validation: `[{"property", "violation"}]`."""

    def __init__(self, violations: list[dict[str, str]]):
        self.violations = violations


class _InfobipMessage:
    """One `messages[]` element of an accepted Infobip request, with the destinations it
    delivered to as (digits, messageId). `client_reference` is the bulkId the client
    chose (None when the simulator made one up)."""

    __slots__ = ("bulk_id", "client_reference", "sender", "text", "created_at", "delivered")

    def __init__(
        self, bulk_id: str, client_reference: str | None, sender: str, text: str, created_at: str
    ):
        self.bulk_id = bulk_id
        self.client_reference = client_reference
        self.sender = sender
        self.text = text
        self.created_at = created_at
        self.delivered: list[tuple[str, str]] = []

    def received(self, digits: str, nth: int) -> dict[str, Any]:
        ids = [mid for number, mid in self.delivered if number == digits]
        return {
            "provider": PROVIDER,
            "channel": "sms",
            "batch_id": self.bulk_id,
            "client_reference": self.client_reference,
            "message_id": ids[min(nth, len(ids) - 1)],
            "from": self.sender,
            "body": self.text,
            "created_at": self.created_at,
        }


def _parts(text: str) -> int:
    """SMS parts of `text`. Up to 70 ASCII characters, or 35 of any kind, always fit in one
    part (GSM-7 or UCS-2), which skips the full count for most texts."""
    if len(text) <= 35 or (len(text) <= 70 and text.isascii()):
        return 1
    return segment(text).parts


Bad = Callable[[str, str], None]


def _sms_content(message: dict[str, Any], where: str, bad: Bad) -> None:
    """An SMS `content`: a non-blank `text`."""
    content = message.get("content")
    text = content.get("text") if isinstance(content, dict) else None
    if not isinstance(content, dict):
        bad(f"{where}.content", "must not be null")
    elif not isinstance(text, str) or not text:
        bad(f"{where}.content.text", "must not be blank")


def _is_http_url(url: Any) -> bool:
    return isinstance(url, str) and url.startswith(("https://", "http://")) and url == url.strip()


def _mms_content(message: dict[str, Any], where: str, bad: Bad) -> None:
    """An MMS `content` (title, TEXT and LINK segments) and message `options.smsFailover`."""
    content = message.get("content")
    if not isinstance(content, dict):
        bad(f"{where}.content", "must not be null")
    else:
        title = content.get("title")
        if title is not None and not isinstance(title, str):
            bad(f"{where}.content.title", "must be a string")
        elif title is not None and len(title) > MAX_TITLE:
            bad(f"{where}.content.title", f"size must be between 0 and {MAX_TITLE}")
        segments = content.get("messageSegments")
        if not isinstance(segments, list) or not segments:
            bad(f"{where}.content.messageSegments", "must not be empty")
            segments = []
        for k, item in enumerate(segments):
            at = f"{where}.content.messageSegments[{k}]"
            if not isinstance(item, dict):
                bad(at, "must be an object")
                continue
            kind = item.get("type")
            if kind == "TEXT":
                text = item.get("text")
                if not isinstance(text, str) or not text:
                    bad(f"{at}.text", "must not be blank")
                elif len(text) > MAX_SEGMENT_TEXT:
                    bad(f"{at}.text", f"size must be between 0 and {MAX_SEGMENT_TEXT}")
            elif kind == "LINK":
                url = item.get("contentUrl")
                if not isinstance(url, str) or not url.strip():
                    bad(f"{at}.contentUrl", "must not be blank")
                elif not _is_http_url(url):
                    bad(f"{at}.contentUrl", "must be a valid http(s) URL")
                kind_of = item.get("contentType")
                if kind_of is not None and (not isinstance(kind_of, str) or "/" not in kind_of):
                    bad(f"{at}.contentType", "must be a MIME type")
            else:
                bad(f"{at}.type", "the simulator implements TEXT and LINK segments")
    options = message.get("options")
    if options is None:
        return
    if not isinstance(options, dict):
        bad(f"{where}.options", "must be an object")
        return
    failover = options.get("smsFailover")
    if failover is None:
        return
    if not isinstance(failover, dict):
        bad(f"{where}.options.smsFailover", "must be an object")
        return
    text = failover.get("text")
    if not isinstance(text, str) or not text.strip():
        bad(f"{where}.options.smsFailover.text", "must not be blank")
    sender = failover.get("sender")
    if sender is not None and (not isinstance(sender, str) or not sender.strip()):
        bad(f"{where}.options.smsFailover.sender", "must not be blank")


def _validate(
    payload: Any, check_content: Callable[[dict[str, Any], str, Bad], None]
) -> tuple[list[dict[str, Any]], str | None, bool]:
    """(messages, bulkId or None, includeSmsCountInResponse) of a valid request body;
    `check_content` checks what is particular to SMS or MMS in each message.

    Collects every violation, as Infobip does, and raises _Violations if there is any.
    """
    if not isinstance(payload, dict):
        raise _Violations([{"property": "", "violation": "must be a JSON object"}])
    violations: list[dict[str, str]] = []

    def bad(prop: str, violation: str) -> None:
        violations.append({"property": prop, "violation": violation})

    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        bad("messages", "must not be empty" if isinstance(messages, list) else "must not be null")
        messages = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            bad(where, "must be an object")
            continue
        sender = message.get("sender")
        if not isinstance(sender, str) or not sender.strip():
            bad(f"{where}.sender", "must not be blank")
        check_content(message, where, bad)
        destinations = message.get("destinations")
        if not isinstance(destinations, list) or not destinations:
            bad(f"{where}.destinations", "must not be empty")
            continue
        for j, destination in enumerate(destinations):
            if type(destination) is not dict:
                bad(f"{where}.destinations[{j}]", "must be an object")
                continue
            to = destination.get("to")
            if type(to) is not str or not to:
                bad(f"{where}.destinations[{j}].to", "must not be blank")
            mid = destination.get("messageId")
            if mid is not None and (type(mid) is not str or len(mid) > MAX_MESSAGE_ID):
                bad(
                    f"{where}.destinations[{j}].messageId",
                    f"size must be between 0 and {MAX_MESSAGE_ID}",
                )

    options = payload.get("options")
    bulk_id: str | None = None
    with_count = False
    if options is not None:
        if not isinstance(options, dict):
            bad("options", "must be an object")
        else:
            with_count = options.get("includeSmsCountInResponse") is True
            schedule = options.get("schedule")
            found = schedule.get("bulkId") if isinstance(schedule, dict) else None
            if found is not None and not isinstance(found, str):
                bad("options.schedule.bulkId", "must be a string")
            elif found:
                bulk_id = found[:MAX_BULK_ID]
    if violations:
        raise _Violations(violations)
    return messages, bulk_id, with_count


def _parse(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _Violations([{"property": "", "violation": "malformed JSON"}]) from None


class _Outgoing(Protocol):
    """How one API takes one valid `messages[]` element: what each destination's answer
    adds (`details`), what accepting a destination does, and its delivery report result."""

    details: dict[str, Any] | None

    def deliver(self, digits: str, mid: str) -> str:
        """Record the message for an accepted destination; how it went ("" for SMS)."""

    def result(self, to: str, mid: str, status: dict[str, Any], kind: str) -> InfobipResult:
        """The delivery report result of a destination that was not a duplicate."""


@dataclass(frozen=True)
class _Request:
    """What every message of one request shares: the bulk id (the client's, or one made
    up: `client_reference` is None then), when it arrived, whether to count SMS parts."""

    bulk_id: str
    client_reference: str | None
    created_at: str
    with_count: bool


class _InfobipApi:
    """What the Infobip SMS and MMS sides share: the `App` key check, the messageIds this
    API accepted so far (a second use is refused with status 23), and `accept`, which
    validates a request, answers each destination and reports on it; each side says how
    it takes one message (`outgoing`)."""

    provider: str
    channel: Literal["sms", "mms"]
    requests: tuple[str, ...]
    check_content: Callable[[dict[str, Any], str, Bad], None]

    def __init__(self, state: SimulatorState):
        self.state = state
        self.reset()

    def reset(self) -> None:
        self.message_ids: set[str] = set()
        self.bulks = 0
        self.duplicate_message_ids = 0

    def authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        return scheme.lower() == "app" and key.strip() in self.state.config.infobip_api_keys

    def outgoing(self, message: dict[str, Any], request: _Request) -> _Outgoing:
        raise NotImplementedError

    def accept(self, raw: bytes) -> tuple[bytes, bool]:
        """Validate and record one request; return (answer, whether to hang).

        Raises _Violations when the request is invalid, or RateLimited (one token per
        destination), before recording anything.
        """
        messages, bulk_id, with_count = _validate(_parse(raw), self.check_content)

        state = self.state
        state.admit(sum(len(message["destinations"]) for message in messages))
        request = _Request(bulk_id or state.new_uuid(), bulk_id, now_timestamp(), with_count)
        seen = self.message_ids
        prefixes = state.reject_prefixes
        answers: list[dict[str, Any]] = []
        reported: list[tuple[InfobipTarget, list[InfobipResult]]] = []
        failed = duplicates = 0
        for message in messages:
            outgoing = self.outgoing(message, request)
            target = state.reporter.infobip_target(self.provider, message)
            results: list[InfobipResult] | None = None
            if target is not None:
                results = []
                reported.append((target, results))
            for destination in message["destinations"]:
                to = destination["to"]
                mid = destination.get("messageId") or state.new_uuid()
                digits = to[1:] if to[:1] == "+" else to
                kind = ""
                if mid in seen:
                    status = REJECTED_DUPLICATE
                    duplicates += 1
                elif not is_msisdn(digits):
                    status = REJECTED_PREFIX_MISSING
                    failed += 1
                elif prefixes and digits.startswith(prefixes):
                    status = REJECTED_DESTINATION
                    failed += 1
                else:
                    status = PENDING_ACCEPTED
                    seen.add(mid)
                    kind = outgoing.deliver(digits, mid)
                answer = {"messageId": mid, "status": status, "destination": to}
                if outgoing.details is not None:
                    answer["details"] = outgoing.details
                answers.append(answer)
                if results is not None and status is not REJECTED_DUPLICATE:
                    results.append(outgoing.result(to, mid, status, kind))
        state.failed += failed
        self.duplicate_message_ids += duplicates
        self.bulks += 1
        if reported:
            state.reporter.infobip(self.provider, request.bulk_id, datetime.now(UTC), reported)
        body = orjson.dumps({"bulkId": request.bulk_id, "messages": answers})
        return body, state.accepted_request()


class _OutgoingSms:
    """An SMS `messages[]` element: its accepted destinations share one `_InfobipMessage`
    record, made at the first; its parts are counted only when asked for."""

    def __init__(self, state: SimulatorState, message: dict[str, Any], request: _Request):
        self.state = state
        self.message = message
        self.request = request
        self.text: str = message["content"]["text"]
        self.record: _InfobipMessage | None = None
        self.index = -1
        self.details = {"messageCount": self.parts} if request.with_count else None

    @functools.cached_property
    def parts(self) -> int:
        return _parts(self.text)

    def deliver(self, digits: str, mid: str) -> str:
        state = self.state
        if self.record is None:
            request = self.request
            self.record = _InfobipMessage(
                request.bulk_id,
                request.client_reference,
                self.message["sender"],
                self.text,
                request.created_at,
            )
            self.index = state.add_record(self.record)
        self.record.delivered.append((digits, mid))
        state.receive(int(digits), self.index)
        state.messages += 1
        state.provider_messages[PROVIDER] += 1
        return ""

    def result(self, to: str, mid: str, status: dict[str, Any], kind: str) -> InfobipResult:
        outcome = "sent" if status is PENDING_ACCEPTED else "rejected"
        return InfobipResult(to, mid, outcome, self.parts, self.message["sender"], status)


class _OutgoingMms:
    """An MMS `messages[]` element: each accepted destination is one `deliver_mms`."""

    details = MMS_DETAILS

    def __init__(self, state: SimulatorState, message: dict[str, Any], request: _Request):
        self.state = state
        self.message = message
        self.request = request
        content = message["content"]
        segments = content["messageSegments"]
        self.subject: str | None = content.get("title") or None
        self.text = "\n".join(s["text"] for s in segments if s["type"] == "TEXT")
        self.media_url = next((s["contentUrl"] for s in segments if s["type"] == "LINK"), None)
        self.failover: dict[str, Any] | None = (message.get("options") or {}).get("smsFailover")

    def deliver(self, digits: str, mid: str) -> str:
        failover = self.failover
        return self.state.deliver_mms(
            MMS_PROVIDER,
            digits,
            message_id=mid,
            client_reference=self.request.client_reference,
            sender=self.message["sender"],
            subject=self.subject,
            text=self.text,
            media_url=self.media_url,
            fallback_text=failover["text"] if failover else None,
            fallback_disabled=failover is None,
            fallback_sender=failover.get("sender") if failover else None,
        )

    def result(self, to: str, mid: str, status: dict[str, Any], kind: str) -> InfobipResult:
        return _mms_result(self.message, self.failover, to, mid, status, kind)


class InfobipSms(_InfobipApi):
    """The Infobip SMS side of the ledger: `POST /sms/3/messages`."""

    provider = PROVIDER
    channel = "sms"
    requests = ("infobip_post",)
    check_content = staticmethod(_sms_content)

    def stats(self) -> dict[str, Any]:
        """`bulks`: answered requests; `duplicate_message_ids`: destinations refused with
        status 23 because their messageId had been accepted before (not sent again)."""
        return {"bulks": self.bulks, "duplicate_message_ids": self.duplicate_message_ids}

    def outgoing(self, message: dict[str, Any], request: _Request) -> _Outgoing:
        return _OutgoingSms(self.state, message, request)


class InfobipMms(_InfobipApi):
    """The Infobip MMS side of the ledger: `POST /mms/2/messages`; its messages are
    `MmsRecord`s of provider "infobip_mms" (see `SimulatorState.deliver_mms`)."""

    provider = MMS_PROVIDER
    channel = "mms"
    requests = ("infobip_mms_post",)
    check_content = staticmethod(_mms_content)

    def stats(self) -> dict[str, Any]:
        """`infobip_mms_bulks`: answered MMS requests; `infobip_mms_duplicate_message_ids`:
        MMS destinations refused with status 23 (their messageId was accepted before)."""
        return {
            "infobip_mms_bulks": self.bulks,
            "infobip_mms_duplicate_message_ids": self.duplicate_message_ids,
        }

    def outgoing(self, message: dict[str, Any], request: _Request) -> _Outgoing:
        return _OutgoingMms(self.state, message, request)


def _mms_result(
    message: dict[str, Any],
    failover: dict[str, Any] | None,
    to: str,
    mid: str,
    status: dict[str, Any],
    kind: str,
) -> InfobipResult:
    """What the delivery report of one MMS destination says: refused (REJECTED_*),
    delivered as MMS (one message), as fallback SMS (its parts, from the failover sender)
    or failed (a fallback without smsFailover)."""
    if status is not PENDING_ACCEPTED:
        return InfobipResult(to, mid, "rejected", 1, message["sender"], status)
    if kind == FALLBACK_SMS and failover is not None:
        sender = failover.get("sender") or message["sender"]
        return InfobipResult(to, mid, "fallback", _parts(failover["text"]), sender)
    outcome = "sent" if kind == MMS_ACCEPTED else "failed"
    return InfobipResult(to, mid, outcome, 1, message["sender"])


def _too_many_requests(retry_after: str) -> Response:
    return infobip_error(
        429,
        "E429",
        "Too many requests",
        "Reduce the request rate.",
        headers={"Retry-After": retry_after},
    )


def router(state: SimulatorState) -> APIRouter:
    """The Infobip SMS and MMS endpoints, their bookkeeping attached to `state`."""
    sms = InfobipSms(state)
    mms = InfobipMms(state)
    state.attach(sms)
    state.attach(mms)
    api = APIRouter()

    async def handle(part: _InfobipApi, request: Request) -> Response:
        state.requests[part.requests[0]] += 1
        cfg = state.config
        await state.delay()
        if not part.authorized(request):
            return infobip_error(
                401, "E401", "Unauthorized", "Check the API key in the Authorization header."
            )
        fault = state.draw_fault()
        if fault == "429":
            return _too_many_requests(f"{cfg.retry_after_seconds:g}")
        if fault == "5xx":
            return infobip_error(500, "E500", "Something went wrong. Please contact support.")
        raw = await request.body()
        if fault == "timeout":
            await asyncio.sleep(cfg.hang_seconds)
            return infobip_error(504, "E504", "Gateway timeout")
        try:
            answer, hang = part.accept(raw)
        except _Violations as exc:
            return infobip_error(
                400,
                "E400",
                "Request cannot be processed.",
                "Check the syntax, violations and adjust the request.",
                violations=exc.violations,
            )
        except RateLimited as exc:
            return _too_many_requests(exc.header)
        if hang:
            await asyncio.sleep(cfg.hang_seconds)
        return json_response(answer)

    @api.post("/sms/3/messages")
    async def infobip_send(request: Request) -> Response:
        return await handle(sms, request)

    @api.post("/mms/2/messages")
    async def infobip_send_mms(request: Request) -> Response:
        return await handle(mms, request)

    return api
