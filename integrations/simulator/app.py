"""The local provider simulator (Sinch SMS and Infobip SMS): the REST endpoints Scenarist
uses, with each provider's shapes and error bodies, plus a few `/_simulator/*` endpoints
for tests and benchmarks.

Sinch API (`/xms/v1/{service_plan_id}`, `Authorization: Bearer {token}`):
    POST /batches               validate like Sinch, record, answer 201 with the echo
    GET  /batches               list (`client_reference`, `page`, `page_size` <= 100), newest first
    GET  /batches/{batch_id}    one batch, or 404
Infobip API (`Authorization: App {key}`):
    POST /sms/3/messages        validate (400 `E400` with violations), answer 200 with a status
                                per destination: PENDING_ACCEPTED, REJECTED_DESTINATION for a
                                `reject_prefixes` number, REJECTED_DUPLICATE_MESSAGE_ID for a
                                messageId accepted before (not counted again)
Simulator:
    GET  /_simulator/stats      counters over both providers (see `SimulatorState.stats`)
    GET  /_simulator/messages   `?to=+1555...`: the texts one number received, rendered
    POST /_simulator/reset      forget every batch, message and counter
    GET|PUT /_simulator/config  read or replace the fault configuration

Both providers feed the same per-recipient counters. Storage is kept small enough for a
million messages: each accepted Sinch batch keeps its echo as compact JSON bytes (served
as is by the GET endpoints and re-read only to render a number's texts on demand), each
accepted Infobip `messages[]` element keeps its sender, text and accepted destinations,
and each recipient keeps one reference to the record it got, which becomes a list only
for the rare recipient messaged twice. Each request body is parsed once. Everything runs
on the event loop; hangs are `asyncio.sleep`s.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from pydantic import ValidationError

from engine.segments import segment
from integrations.simulator.config import SimulatorConfig

MAX_RECIPIENTS = 1000
MAX_BODY = 2000
MAX_CLIENT_REFERENCE = 128
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 30
DELIVERY_REPORTS = frozenset({"none", "summary", "full", "per_recipient", "per_recipient_final"})
UNMATCHED_PARAMETER = 405  # Sinch's delivery code for a recipient with no parameter value
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9._-]+)\}")
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

SINCH = "sinch_sms"
INFOBIP = "infobip_sms"
INFOBIP_MAX_MESSAGE_ID = 200
INFOBIP_MAX_BULK_ID = 100  # Infobip clips longer bulk ids


def _infobip_status(group_id: int, group: str, status_id: int, name: str, text: str):
    return {
        "groupId": group_id,
        "groupName": group,
        "id": status_id,
        "name": name,
        "description": text,
    }


PENDING_ACCEPTED = _infobip_status(
    1, "PENDING", 26, "PENDING_ACCEPTED", "Message sent to next instance"
)
REJECTED_DESTINATION = _infobip_status(5, "REJECTED", 14, "REJECTED_DESTINATION", "By Destination")
REJECTED_PREFIX_MISSING = _infobip_status(
    5, "REJECTED", 8, "REJECTED_PREFIX_MISSING", "Number prefix missing"
)
REJECTED_DUPLICATE = _infobip_status(
    5, "REJECTED", 23, "REJECTED_DUPLICATE_MESSAGE_ID", "Rejected duplicate message ID"
)


def _json_bytes(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def sinch_error(status: int, code: str, text: str, headers: dict[str, str] | None = None):
    """A Sinch error answer: `{"code": ..., "text": ...}`."""
    return Response(
        _json_bytes({"code": code, "text": text}),
        status_code=status,
        media_type="application/json",
        headers=headers,
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
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def _json_response(data: bytes, status: int = 200) -> Response:
    return Response(data, status_code=status, media_type="application/json")


def _timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _digits(number: str) -> str:
    return number.strip().lstrip("+")


def _msisdn(digits: str) -> bool:
    """7 to 15 ASCII digits, not starting with 0: what both simulated providers accept."""
    return 7 <= len(digits) <= 15 and digits.isascii() and digits.isdigit() and digits[0] != "0"


def render(body: str, parameters: dict[str, dict[str, str]] | None, digits: str) -> str | None:
    """The text `digits` receives, or None when a parameter has no value for it (code 405).

    A `${name}` whose name is not in `parameters` is left as written.
    """
    if not parameters:
        return body
    missing = False

    def value(match: re.Match[str]) -> str:
        nonlocal missing
        values = parameters.get(match.group(1))
        if values is None:
            return match.group(0)
        found = values.get(digits, values.get("+" + digits, values.get("default")))
        if found is None:
            missing = True
            return match.group(0)
        return found

    text = PLACEHOLDER.sub(value, body)
    return None if missing else text


class _Invalid(Exception):
    def __init__(self, code: str, text: str):
        self.code = code
        self.text = text


class _Violations(Exception):
    """An Infobip request that fails validation: `[{"property", "violation"}]`."""

    def __init__(self, violations: list[dict[str, str]]):
        self.violations = violations


class _Batch:
    """One accepted Sinch batch."""

    __slots__ = ("id", "plan", "client_reference", "echo")
    provider = SINCH

    def __init__(self, batch_id: str, plan: str, client_reference: str | None, echo: bytes):
        self.id = batch_id
        self.plan = plan
        self.client_reference = client_reference
        self.echo = echo

    def received(self, digits: str, nth: int) -> dict[str, Any]:
        data = json.loads(self.echo)
        return {
            "provider": SINCH,
            "batch_id": self.id,
            "client_reference": self.client_reference,
            "message_id": None,
            "from": data["from"],
            "body": render(data["body"], data.get("parameters"), digits),
            "created_at": data["created_at"],
        }


class _InfobipMessage:
    """One `messages[]` element of an accepted Infobip request, with the destinations it
    delivered to as (digits, messageId). `client_reference` is the bulkId the client
    chose (None when the simulator made one up)."""

    __slots__ = ("bulk_id", "client_reference", "sender", "text", "created_at", "delivered")
    provider = INFOBIP

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
            "provider": INFOBIP,
            "batch_id": self.bulk_id,
            "client_reference": self.client_reference,
            "message_id": ids[min(nth, len(ids) - 1)],
            "from": self.sender,
            "body": self.text,
            "created_at": self.created_at,
        }


class SimulatorState:
    """Everything the simulator remembers; mutated only from the event loop."""

    def __init__(self, config: SimulatorConfig):
        self._ids = random.Random(f"ids-{config.seed}")
        self.configure(config)
        self.reset()

    def configure(self, config: SimulatorConfig) -> None:
        self.config = config
        self._faults = random.Random(config.seed)
        self._prefixes = tuple(config.reject_prefixes)
        self._hang = frozenset(config.hang_after_accept)
        self.accepted_since_config = 0

    def reset(self) -> None:
        # What a recipient can have received: Sinch batches and Infobip messages[] elements.
        self.records: list[_Batch | _InfobipMessage] = []
        # Sinch: batch id -> record index; (plan, client_reference) -> record indexes
        self.by_id: dict[str, int] = {}
        self.by_reference: dict[tuple[str, str], list[int]] = {}
        self.plan_batches: dict[str, list[int]] = {}
        # Infobip: every messageId accepted so far (a second use is refused with status 23)
        self.infobip_ids: set[str] = set()
        self.bulks = 0
        self.duplicate_message_ids = 0
        # recipient (int of its digits) -> record index, or a list of them after the first
        self.received: dict[int, int | list[int]] = {}
        self.repeat_keys: list[int] = []
        self.messages = 0
        self.provider_messages = {SINCH: 0, INFOBIP: 0}
        self.failed = 0
        self.max_per_recipient = 0
        self.requests = {"post": 0, "list": 0, "get": 0, "infobip_post": 0}
        self.faults = {"429": 0, "5xx": 0, "timeout": 0, "hang_after_accept": 0}
        self.accepted_since_config = 0

    def _receive(self, key: int, index: int) -> None:
        """Count one message for recipient `key` (the int of its digits) from record `index`."""
        received = self.received
        entry = received.get(key)
        if entry is None:
            received[key] = index
            if not self.max_per_recipient:
                self.max_per_recipient = 1
        elif type(entry) is int:
            received[key] = [entry, index]
            self.repeat_keys.append(key)
            self.max_per_recipient = max(self.max_per_recipient, 2)
        else:
            entry.append(index)
            self.max_per_recipient = max(self.max_per_recipient, len(entry))

    def _accepted_request(self) -> bool:
        """Count an accepted send request; return whether its answer should hang."""
        self.accepted_since_config += 1
        hang = self.accepted_since_config in self._hang
        if hang:
            self.faults["hang_after_accept"] += 1
        return hang

    # -- the Sinch side -----------------------------------------------------------------

    def authorized(self, plan: str, request: Request) -> bool:
        expected = self.config.service_plans.get(plan)
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        return expected is not None and scheme.lower() == "bearer" and token.strip() == expected

    def draw_fault(self) -> str | None:
        cfg = self.config
        if not (cfg.error_429_rate or cfg.error_5xx_rate or cfg.timeout_rate):
            return None
        draw = self._faults.random()
        for name, rate in (
            ("429", cfg.error_429_rate),
            ("5xx", cfg.error_5xx_rate),
            ("timeout", cfg.timeout_rate),
        ):
            if draw < rate:
                self.faults[name] += 1
                return name
            draw -= rate
        return None

    def new_id(self) -> str:
        """A ULID: 48 bits of milliseconds and 80 random bits, in Crockford base 32."""
        while True:
            value = (int(time.time() * 1000) << 80) | self._ids.getrandbits(80)
            batch_id = "".join(_CROCKFORD[(value >> s) & 31] for s in range(125, -1, -5))
            if batch_id not in self.by_id:
                return batch_id

    def accept(self, plan: str, raw: bytes) -> tuple[bytes, bool]:
        """Validate and record one batch; return (echo, whether to hang). Raises _Invalid."""
        try:
            payload = json.loads(raw)
        except (ValueError, RecursionError):
            raise _Invalid("syntax_invalid_json", "The JSON body could not be parsed") from None
        if not isinstance(payload, dict):
            raise _Invalid("syntax_invalid_json", "The JSON body must be an object")
        digits, required = self._validate(payload)

        index = len(self.records)  # one int object shared by every recipient of the batch
        receive = self._receive
        delivered = 0
        for number in digits:
            if required and any(number not in values for values in required):
                continue
            delivered += 1
            receive(int(number), index)
        self.messages += delivered
        self.provider_messages[SINCH] += delivered
        self.failed += len(digits) - delivered

        now = datetime.now(UTC)
        batch_id = self.new_id()
        echo = {"id": batch_id, **payload}
        echo["id"] = batch_id
        echo.setdefault("type", "mt_text")
        echo.setdefault("delivery_report", "none")
        echo.setdefault("send_at", _timestamp(now))
        echo.setdefault("expire_at", _timestamp(now + timedelta(days=3)))
        echo["created_at"] = echo["modified_at"] = _timestamp(now)
        echo["canceled"] = False
        reference = payload.get("client_reference")
        echo_bytes = _json_bytes(echo)
        self.records.append(_Batch(batch_id, plan, reference, echo_bytes))
        self.by_id[batch_id] = index
        self.plan_batches.setdefault(plan, []).append(index)
        if reference is not None:
            self.by_reference.setdefault((plan, reference), []).append(index)
        return echo_bytes, self._accepted_request()

    def _validate(self, payload: dict[str, Any]) -> tuple[list[str], list[set[str]]]:
        """Recipients' digits, and per unmatched-able parameter the digits that have a value."""
        for field in ("from", "to", "body"):
            if payload.get(field) in (None, "", []):
                raise _Invalid(
                    "syntax_constraint_violation", f"The parameter '{field}' must be given"
                )
        if not isinstance(payload["from"], str):
            raise _Invalid(
                "syntax_invalid_parameter_format", "The format of parameter 'from' is invalid"
            )
        kind = payload.get("type", "mt_text")
        if kind != "mt_text":
            raise _Invalid(
                "syntax_constraint_violation",
                f"The simulator implements type 'mt_text' only, not {kind!r}",
            )
        body = payload["body"]
        if not isinstance(body, str):
            raise _Invalid(
                "syntax_invalid_parameter_format", "The format of parameter 'body' is invalid"
            )
        if len(body) > MAX_BODY:
            raise _Invalid(
                "syntax_constraint_violation",
                f"The parameter 'body' is {len(body)} characters long; at most {MAX_BODY}",
            )
        to = payload["to"]
        if not isinstance(to, list):
            raise _Invalid(
                "syntax_invalid_parameter_format", "The format of parameter 'to' is invalid"
            )
        if len(to) > MAX_RECIPIENTS:
            raise _Invalid(
                "syntax_constraint_violation",
                f"The parameter 'to' has {len(to)} elements; it must have 1 to {MAX_RECIPIENTS}",
            )
        reference = payload.get("client_reference")
        if reference is not None and (
            not isinstance(reference, str) or len(reference) > MAX_CLIENT_REFERENCE
        ):
            raise _Invalid(
                "syntax_constraint_violation",
                f"The parameter 'client_reference' must be a string of at most "
                f"{MAX_CLIENT_REFERENCE} characters",
            )
        report = payload.get("delivery_report", "none")
        if report not in DELIVERY_REPORTS:
            raise _Invalid(
                "syntax_invalid_parameter_format",
                "The format of parameter 'delivery_report' is invalid",
            )
        callback = payload.get("callback_url")
        if callback is not None and not isinstance(callback, str):
            raise _Invalid(
                "syntax_invalid_parameter_format",
                "The format of parameter 'callback_url' is invalid",
            )

        prefixes = self._prefixes
        digits: list[str] = []
        for i, number in enumerate(to):
            if type(number) is not str:
                raise _invalid_number(i)
            d = number[1:] if number[:1] == "+" else number
            if not _msisdn(d):
                raise _invalid_number(i)
            if prefixes and d.startswith(prefixes):
                raise _invalid_number(i)
            digits.append(d)

        parameters = payload.get("parameters")
        required: list[set[str]] = []
        if parameters is not None:
            if not isinstance(parameters, dict):
                raise _Invalid(
                    "syntax_invalid_parameter_format",
                    "The format of parameter 'parameters' is invalid",
                )
            for name, values in parameters.items():
                if not isinstance(values, dict) or not all(
                    isinstance(v, str) for v in values.values()
                ):
                    raise _Invalid(
                        "syntax_invalid_parameter_format",
                        f"The format of parameter 'parameters.{name}' is invalid",
                    )
            for name in set(PLACEHOLDER.findall(body)):
                values = parameters.get(name)
                if values is not None and "default" not in values:
                    required.append({_digits(key) for key in values})
        return digits, required

    def list_page(self, plan: str, reference: str | None, page: int, page_size: int) -> bytes:
        if reference is not None:
            indexes = self.by_reference.get((plan, reference), [])
        else:
            indexes = self.plan_batches.get(plan, [])
        newest_first = indexes[::-1]
        chosen = newest_first[page * page_size : (page + 1) * page_size]
        head = _json_bytes({"count": len(indexes), "page": page, "page_size": len(chosen)})
        items = b",".join(self.sinch_batch(i).echo for i in chosen)
        return head[:-1] + b',"batches":[' + items + b"]}"

    def sinch_batch(self, index: int) -> _Batch:
        record = self.records[index]
        assert isinstance(record, _Batch)
        return record

    # -- the Infobip side ---------------------------------------------------------------

    def infobip_authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        return scheme.lower() == "app" and key.strip() in self.config.infobip_api_keys

    def new_message_id(self) -> str:
        """A messageId in Infobip's style, for a destination sent without one."""
        value = f"{self._ids.getrandbits(128):032x}"
        return f"{value[:12]}-{value[12:16]}-{value[16:21]}-{value[21:25]}-{value[25:]}"

    def accept_infobip(self, raw: bytes) -> tuple[bytes, bool]:
        """Validate and record one `POST /sms/3/messages`; return (answer, whether to hang).

        Raises _Violations, before recording anything, when the request is invalid.
        """
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise _Violations([{"property": "", "violation": "malformed JSON"}]) from None
        messages, bulk_id, with_count = _validate_infobip(payload)

        client_bulk_id = bulk_id
        if bulk_id is None:
            bulk_id = self.new_message_id()
        created_at = _timestamp(datetime.now(UTC))
        seen = self.infobip_ids
        prefixes = self._prefixes
        receive = self._receive
        answers: list[dict[str, Any]] = []
        delivered = failed = duplicates = 0
        for message in messages:
            text = message["content"]["text"]
            record: _InfobipMessage | None = None
            index = -1
            details = {"messageCount": _parts(text)} if with_count else None
            for destination in message["destinations"]:
                to = destination["to"]
                mid = destination.get("messageId") or self.new_message_id()
                digits = to[1:] if to[:1] == "+" else to
                if mid in seen:
                    status = REJECTED_DUPLICATE
                    duplicates += 1
                elif not _msisdn(digits):
                    status = REJECTED_PREFIX_MISSING
                    failed += 1
                elif prefixes and digits.startswith(prefixes):
                    status = REJECTED_DESTINATION
                    failed += 1
                else:
                    status = PENDING_ACCEPTED
                    seen.add(mid)
                    if record is None:
                        index = len(self.records)
                        record = _InfobipMessage(
                            bulk_id, client_bulk_id, message["sender"], text, created_at
                        )
                        self.records.append(record)
                    record.delivered.append((digits, mid))
                    receive(int(digits), index)
                    delivered += 1
                answer = {"messageId": mid, "status": status, "destination": to}
                if details is not None:
                    answer["details"] = details
                answers.append(answer)
        self.messages += delivered
        self.provider_messages[INFOBIP] += delivered
        self.failed += failed
        self.duplicate_message_ids += duplicates
        self.bulks += 1
        body = orjson.dumps({"bulkId": bulk_id, "messages": answers})
        return body, self._accepted_request()

    # -- the simulator side -------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters since start-up or the last reset, over both providers.

        `messages` counts delivered recipient messages, Sinch and Infobip alike
        (`provider_messages` splits them); a Sinch recipient with an unmatched parameter
        and a refused Infobip destination count in `failed` instead; `recipients` the
        distinct numbers; `repeat_recipients` the numbers messaged more than once;
        `duplicates` the numbers that got more than one message with the same client
        reference (Sinch `client_reference`, Infobip `bulkId`: an exactly-once
        violation); `duplicate_references` the Sinch client references used by several
        batches. `batches` counts accepted Sinch batches, `bulks` answered Infobip
        requests, and `duplicate_message_ids` the Infobip destinations refused with
        status 23 because their messageId had been accepted before (not sent again).
        """
        records = self.records
        duplicates = 0
        for key in self.repeat_keys:
            references = [records[i].client_reference for i in self.received[key]]
            named = [r for r in references if r is not None]
            if len(named) != len(set(named)):
                duplicates += 1
        return {
            "batches": len(self.by_id),
            "bulks": self.bulks,
            "messages": self.messages,
            "provider_messages": dict(self.provider_messages),
            "failed": self.failed,
            "recipients": len(self.received),
            "max_per_recipient": self.max_per_recipient,
            "repeat_recipients": len(self.repeat_keys),
            "duplicates": duplicates,
            "duplicate_references": sum(1 for v in self.by_reference.values() if len(v) > 1),
            "duplicate_message_ids": self.duplicate_message_ids,
            "requests": dict(self.requests),
            "faults": dict(self.faults),
        }

    def messages_for(self, number: str) -> list[dict[str, Any]]:
        """What one number received, oldest first: `{provider, batch_id, client_reference,
        message_id, from, body, created_at}` (`batch_id` is the Infobip bulkId;
        `message_id` is None for Sinch)."""
        digits = _digits(number)
        if not digits.isdigit():
            return []
        entry = self.received.get(int(digits))
        if entry is None:
            return []
        indexes = [entry] if type(entry) is int else entry
        seen: dict[int, int] = {}  # a record can reach one number more than once
        out = []
        for i in indexes:
            nth = seen[i] = seen.get(i, -1) + 1
            out.append(self.records[i].received(digits, nth))
        return out


def _parts(text: str) -> int:
    """SMS parts of `text`. Up to 70 ASCII characters, or 35 of any kind, always fit in one
    part (GSM-7 or UCS-2), which skips the full count for most texts."""
    if len(text) <= 35 or (len(text) <= 70 and text.isascii()):
        return 1
    return segment(text).parts


def _validate_infobip(payload: Any) -> tuple[list[dict[str, Any]], str | None, bool]:
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
            if mid is not None and (type(mid) is not str or len(mid) > INFOBIP_MAX_MESSAGE_ID):
                bad(
                    f"{where}.destinations[{j}].messageId",
                    f"size must be between 0 and {INFOBIP_MAX_MESSAGE_ID}",
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
                bulk_id = found[:INFOBIP_MAX_BULK_ID]
    if violations:
        raise _Violations(violations)
    return messages, bulk_id, with_count


def _invalid_number(index: int) -> _Invalid:
    return _Invalid(
        "syntax_invalid_parameter_format",
        f"The format of parameter 'to[{index}]' is invalid. Expected an MSISDN or a group ID",
    )


def _int_query(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise _Invalid(
            "syntax_invalid_parameter_format", f"The format of parameter '{name}' is invalid"
        ) from None


def create_app(config: SimulatorConfig | None = None) -> FastAPI:
    """A fresh simulator app; its state is at `app.state.simulator`."""
    state = SimulatorState(config or SimulatorConfig())
    app = FastAPI(title="Scenarist provider simulator", version="1")
    app.state.simulator = state
    unauthorized = ("unauthorized", "Invalid or missing API token for this service plan")

    async def delay() -> None:
        if state.config.latency_ms:
            await asyncio.sleep(state.config.latency_ms / 1000)

    @app.post("/xms/v1/{service_plan_id}/batches")
    async def create_batch(service_plan_id: str, request: Request) -> Response:
        state.requests["post"] += 1
        cfg = state.config
        await delay()
        if not state.authorized(service_plan_id, request):
            return sinch_error(401, *unauthorized)
        fault = state.draw_fault()
        if fault == "429":
            return sinch_error(
                429,
                "too_many_requests",
                "Too many outstanding requests",
                headers={"Retry-After": f"{cfg.retry_after_seconds:g}"},
            )
        if fault == "5xx":
            return sinch_error(503, "service_unavailable", "The service is unavailable")
        raw = await request.body()
        if fault == "timeout":
            await asyncio.sleep(cfg.hang_seconds)
            return sinch_error(504, "gateway_timeout", "The request timed out")
        try:
            echo, hang = state.accept(service_plan_id, raw)
        except _Invalid as exc:
            return sinch_error(400, exc.code, exc.text)
        if hang:
            await asyncio.sleep(cfg.hang_seconds)
        return _json_response(echo, 201)

    @app.get("/xms/v1/{service_plan_id}/batches")
    async def list_batches(service_plan_id: str, request: Request) -> Response:
        state.requests["list"] += 1
        await delay()
        if not state.authorized(service_plan_id, request):
            return sinch_error(401, *unauthorized)
        try:
            page = _int_query(request, "page", 0)
            page_size = _int_query(request, "page_size", DEFAULT_PAGE_SIZE)
        except _Invalid as exc:
            return sinch_error(400, exc.code, exc.text)
        if page < 0 or not 1 <= page_size <= MAX_PAGE_SIZE:
            return sinch_error(
                400,
                "syntax_constraint_violation",
                f"page must be >= 0 and page_size between 1 and {MAX_PAGE_SIZE}",
            )
        reference = request.query_params.get("client_reference")
        return _json_response(state.list_page(service_plan_id, reference, page, page_size))

    @app.get("/xms/v1/{service_plan_id}/batches/{batch_id}")
    async def get_batch(service_plan_id: str, batch_id: str, request: Request) -> Response:
        state.requests["get"] += 1
        await delay()
        if not state.authorized(service_plan_id, request):
            return sinch_error(401, *unauthorized)
        index = state.by_id.get(batch_id)
        if index is None or state.sinch_batch(index).plan != service_plan_id:
            return sinch_error(404, "not_found", f"Batch '{batch_id}' was not found")
        return _json_response(state.sinch_batch(index).echo)

    @app.post("/sms/3/messages")
    async def infobip_send(request: Request) -> Response:
        state.requests["infobip_post"] += 1
        cfg = state.config
        await delay()
        if not state.infobip_authorized(request):
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
            answer, hang = state.accept_infobip(raw)
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
        return _json_response(answer)

    @app.get("/_simulator/stats")
    async def stats() -> Response:
        return _json_response(_json_bytes(state.stats()))

    @app.get("/_simulator/messages")
    async def messages(to: str) -> Response:
        received = state.messages_for(to)
        return _json_response(_json_bytes({"to": to, "count": len(received), "messages": received}))

    @app.post("/_simulator/reset")
    async def reset() -> Response:
        state.reset()
        return _json_response(_json_bytes(state.stats()))

    @app.get("/_simulator/config")
    async def get_config() -> Response:
        return _json_response(state.config.model_dump_json().encode())

    @app.put("/_simulator/config")
    async def put_config(request: Request) -> Response:
        try:
            new = SimulatorConfig.model_validate_json(await request.body())
        except ValidationError as exc:
            return sinch_error(400, "invalid_config", str(exc))
        state.configure(new)
        return _json_response(new.model_dump_json().encode())

    return app
