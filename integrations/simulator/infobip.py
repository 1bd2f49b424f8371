"""The simulated Infobip SMS API (`Authorization: App {key}`):

    POST /sms/3/messages        validate (400 `E400` with violations), answer 200 with a status
                                per destination: PENDING_ACCEPTED, REJECTED_DESTINATION for a
                                `reject_prefixes` number, REJECTED_DUPLICATE_MESSAGE_ID for a
                                messageId accepted before (not counted again)

Each accepted `messages[]` element keeps its sender, text and accepted destinations.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response

from engine.segments import segment
from integrations.simulator.state import SimulatorState, is_msisdn, json_response, now_timestamp

PROVIDER = "infobip_sms"
MAX_MESSAGE_ID = 200
MAX_BULK_ID = 100  # Infobip clips longer bulk ids


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


def _validate(payload: Any) -> tuple[list[dict[str, Any]], str | None, bool]:
    """(messages, bulkId or None, includeSmsCountInResponse) of a valid request body.

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
        content = message.get("content")
        text = content.get("text") if isinstance(content, dict) else None
        if not isinstance(content, dict):
            bad(f"{where}.content", "must not be null")
        elif not isinstance(text, str) or not text:
            bad(f"{where}.content.text", "must not be blank")
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


class InfobipSms:
    """The Infobip side of the ledger: every messageId accepted so far (a second use is
    refused with status 23), and request counters."""

    provider = PROVIDER
    channel = "sms"
    requests = ("infobip_post",)

    def __init__(self, state: SimulatorState):
        self.state = state
        self.reset()

    def reset(self) -> None:
        self.message_ids: set[str] = set()
        self.bulks = 0
        self.duplicate_message_ids = 0

    def stats(self) -> dict[str, Any]:
        """`bulks`: answered requests; `duplicate_message_ids`: destinations refused with
        status 23 because their messageId had been accepted before (not sent again)."""
        return {"bulks": self.bulks, "duplicate_message_ids": self.duplicate_message_ids}

    def authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        return scheme.lower() == "app" and key.strip() in self.state.config.infobip_api_keys

    def accept(self, raw: bytes) -> tuple[bytes, bool]:
        """Validate and record one `POST /sms/3/messages`; return (answer, whether to hang).

        Raises _Violations, before recording anything, when the request is invalid.
        """
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise _Violations([{"property": "", "violation": "malformed JSON"}]) from None
        messages, bulk_id, with_count = _validate(payload)

        state = self.state
        client_bulk_id = bulk_id
        if bulk_id is None:
            bulk_id = state.new_uuid()
        created_at = now_timestamp()
        seen = self.message_ids
        prefixes = state.reject_prefixes
        receive = state.receive
        answers: list[dict[str, Any]] = []
        delivered = failed = duplicates = 0
        for message in messages:
            text = message["content"]["text"]
            record: _InfobipMessage | None = None
            index = -1
            details = {"messageCount": _parts(text)} if with_count else None
            for destination in message["destinations"]:
                to = destination["to"]
                mid = destination.get("messageId") or state.new_uuid()
                digits = to[1:] if to[:1] == "+" else to
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
                    if record is None:
                        record = _InfobipMessage(
                            bulk_id, client_bulk_id, message["sender"], text, created_at
                        )
                        index = state.add_record(record)
                    record.delivered.append((digits, mid))
                    receive(int(digits), index)
                    delivered += 1
                answer = {"messageId": mid, "status": status, "destination": to}
                if details is not None:
                    answer["details"] = details
                answers.append(answer)
        state.messages += delivered
        state.provider_messages[PROVIDER] += delivered
        state.failed += failed
        self.duplicate_message_ids += duplicates
        self.bulks += 1
        body = orjson.dumps({"bulkId": bulk_id, "messages": answers})
        return body, state.accepted_request()


def router(state: SimulatorState) -> APIRouter:
    """The Infobip SMS endpoint, its bookkeeping attached to `state`."""
    infobip = InfobipSms(state)
    state.attach(infobip)
    api = APIRouter()

    @api.post("/sms/3/messages")
    async def infobip_send(request: Request) -> Response:
        state.requests["infobip_post"] += 1
        cfg = state.config
        await state.delay()
        if not infobip.authorized(request):
            return infobip_error(
                401, "E401", "Unauthorized", "Check the API key in the Authorization header."
            )
        fault = state.draw_fault()
        if fault == "429":
            return infobip_error(
                429,
                "E429",
                "Too many requests",
                "Reduce the request rate.",
                headers={"Retry-After": f"{cfg.retry_after_seconds:g}"},
            )
        if fault == "5xx":
            return infobip_error(500, "E500", "Something went wrong. Please contact support.")
        raw = await request.body()
        if fault == "timeout":
            await asyncio.sleep(cfg.hang_seconds)
            return infobip_error(504, "E504", "Gateway timeout")
        try:
            answer, hang = infobip.accept(raw)
        except _Violations as exc:
            return infobip_error(
                400,
                "E400",
                "Request cannot be processed.",
                "Check the syntax, violations and adjust the request.",
                violations=exc.violations,
            )
        if hang:
            await asyncio.sleep(cfg.hang_seconds)
        return json_response(answer)

    return api
