"""The simulated Sinch SMS REST API (`/xms/v1/{service_plan_id}`, `Authorization: Bearer
{token}`):

    POST /batches               validate like Sinch, record, answer 201 with the echo (429
                                `too_many_requests` when the rate limiter refuses it)
    GET  /batches               list (`client_reference`, `page`, `page_size` <= 100), newest first
    GET  /batches/{batch_id}    one batch, or 404

Each accepted batch keeps its echo as compact JSON bytes, served as is by the GET
endpoints and re-read only to render a number's texts on demand. A batch asking for
`delivery_report` other than "none" gets its reports posted to its `callback_url`, or to
`report_urls["sinch_sms"]` (see `reports.py`); a recipient without a parameter value is
reported with code 405.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request, Response

from integrations.simulator.state import (
    RateLimited,
    SimulatorState,
    digits_of,
    is_msisdn,
    json_bytes,
    json_response,
    timestamp,
)

PROVIDER = "sinch_sms"
MAX_RECIPIENTS = 1000
MAX_BODY = 2000
MAX_CLIENT_REFERENCE = 128
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 30
DELIVERY_REPORTS = frozenset({"none", "summary", "full", "per_recipient", "per_recipient_final"})
UNMATCHED_PARAMETER = 405  # Sinch's delivery code for a recipient with no parameter value
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9._-]+)\}")


def sinch_error(status: int, code: str, text: str, headers: dict[str, str] | None = None):
    """A Sinch error answer: `{"code": ..., "text": ...}`."""
    return json_response(json_bytes({"code": code, "text": text}), status, headers)


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


class _Batch:
    """One accepted Sinch batch."""

    __slots__ = ("id", "plan", "client_reference", "echo")

    def __init__(self, batch_id: str, plan: str, client_reference: str | None, echo: bytes):
        self.id = batch_id
        self.plan = plan
        self.client_reference = client_reference
        self.echo = echo

    def received(self, digits: str, nth: int) -> dict[str, Any]:
        data = json.loads(self.echo)
        return {
            "provider": PROVIDER,
            "channel": "sms",
            "batch_id": self.id,
            "client_reference": self.client_reference,
            "message_id": None,
            "from": data["from"],
            "body": render(data["body"], data.get("parameters"), digits),
            "created_at": data["created_at"],
        }


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


class SinchSms:
    """The Sinch SMS side of the ledger: batches by id, by client reference, by plan."""

    provider = PROVIDER
    channel = "sms"
    requests = ("post", "list", "get")

    def __init__(self, state: SimulatorState):
        self.state = state
        self.reset()

    def reset(self) -> None:
        self.by_id: dict[str, int] = {}  # batch id -> record index
        self.by_reference: dict[tuple[str, str], list[int]] = {}
        self.plan_batches: dict[str, list[int]] = {}

    def stats(self) -> dict[str, Any]:
        """`batches` accepted; `duplicate_references`: client references used by several."""
        return {
            "batches": len(self.by_id),
            "duplicate_references": sum(1 for v in self.by_reference.values() if len(v) > 1),
        }

    def authorized(self, plan: str, request: Request) -> bool:
        expected = self.state.config.service_plans.get(plan)
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        return expected is not None and scheme.lower() == "bearer" and token.strip() == expected

    def batch(self, index: int) -> _Batch:
        record = self.state.records[index]
        assert isinstance(record, _Batch)
        return record

    def accept(self, plan: str, raw: bytes) -> tuple[bytes, bool]:
        """Validate and record one batch; return (echo, whether to hang). Raises _Invalid,
        or RateLimited (one token per recipient), before recording anything."""
        try:
            payload = json.loads(raw)
        except (ValueError, RecursionError):
            raise _Invalid("syntax_invalid_json", "The JSON body could not be parsed") from None
        if not isinstance(payload, dict):
            raise _Invalid("syntax_invalid_json", "The JSON body must be an object")
        digits, required = self._validate(payload)

        state = self.state
        state.admit(len(digits))
        index = len(state.records)  # one int object shared by every recipient of the batch
        receive = state.receive
        delivered = 0
        for number in digits:
            if required and any(number not in values for values in required):
                continue
            delivered += 1
            receive(int(number), index)
        state.messages += delivered
        state.provider_messages[PROVIDER] += delivered
        state.failed += len(digits) - delivered

        now = datetime.now(UTC)
        batch_id = state.new_ulid(self.by_id)
        echo = {"id": batch_id, **payload}
        echo["id"] = batch_id
        echo.setdefault("type", "mt_text")
        echo.setdefault("delivery_report", "none")
        echo.setdefault("send_at", timestamp(now))
        echo.setdefault("expire_at", timestamp(now + timedelta(days=3)))
        echo["created_at"] = echo["modified_at"] = timestamp(now)
        echo["canceled"] = False
        reference = payload.get("client_reference")
        echo_bytes = json_bytes(echo)
        state.add_record(_Batch(batch_id, plan, reference, echo_bytes))
        self.by_id[batch_id] = index
        self.plan_batches.setdefault(plan, []).append(index)
        if reference is not None:
            self.by_reference.setdefault((plan, reference), []).append(index)
        kind = payload.get("delivery_report", "none")
        url = state.reporter.url(PROVIDER, payload.get("callback_url")) if kind != "none" else None
        if url:
            recipients = (
                (d, bool(required) and any(d not in values for values in required)) for d in digits
            )
            state.reporter.sinch_sms(url, kind, batch_id, reference, recipients)
        return echo_bytes, state.accepted_request()

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

        prefixes = self.state.reject_prefixes
        digits: list[str] = []
        for i, number in enumerate(to):
            if type(number) is not str:
                raise _invalid_number(i)
            d = number[1:] if number[:1] == "+" else number
            if not is_msisdn(d):
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
                    required.append({digits_of(key) for key in values})
        return digits, required

    def list_page(self, plan: str, reference: str | None, page: int, page_size: int) -> bytes:
        if reference is not None:
            indexes = self.by_reference.get((plan, reference), [])
        else:
            indexes = self.plan_batches.get(plan, [])
        newest_first = indexes[::-1]
        chosen = newest_first[page * page_size : (page + 1) * page_size]
        head = json_bytes({"count": len(indexes), "page": page, "page_size": len(chosen)})
        items = b",".join(self.batch(i).echo for i in chosen)
        return head[:-1] + b',"batches":[' + items + b"]}"


def router(state: SimulatorState) -> APIRouter:
    """The Sinch SMS endpoints, their bookkeeping attached to `state`."""
    sinch = SinchSms(state)
    state.attach(sinch)
    api = APIRouter()
    unauthorized = ("unauthorized", "Invalid or missing API token for this service plan")

    @api.post("/xms/v1/{service_plan_id}/batches")
    async def create_batch(service_plan_id: str, request: Request) -> Response:
        state.requests["post"] += 1
        cfg = state.config
        await state.delay()
        if not sinch.authorized(service_plan_id, request):
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
            echo, hang = sinch.accept(service_plan_id, raw)
        except _Invalid as exc:
            return sinch_error(400, exc.code, exc.text)
        except RateLimited as exc:
            return sinch_error(
                429,
                "too_many_requests",
                "Too many outstanding requests",
                headers={"Retry-After": exc.header},
            )
        if hang:
            await asyncio.sleep(cfg.hang_seconds)
        return json_response(echo, 201)

    @api.get("/xms/v1/{service_plan_id}/batches")
    async def list_batches(service_plan_id: str, request: Request) -> Response:
        state.requests["list"] += 1
        await state.delay()
        if not sinch.authorized(service_plan_id, request):
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
        return json_response(sinch.list_page(service_plan_id, reference, page, page_size))

    @api.get("/xms/v1/{service_plan_id}/batches/{batch_id}")
    async def get_batch(service_plan_id: str, batch_id: str, request: Request) -> Response:
        state.requests["get"] += 1
        await state.delay()
        if not sinch.authorized(service_plan_id, request):
            return sinch_error(401, *unauthorized)
        index = sinch.by_id.get(batch_id)
        if index is None or sinch.batch(index).plan != service_plan_id:
            return sinch_error(404, "not_found", f"Batch '{batch_id}' was not found")
        return json_response(sinch.batch(index).echo)

    return api
