"""The simulated Sinch MMS JSON API (`x-api-key: {key}`):

    POST /ep/v2/    action `sendmms`: validate, record, answer
                    `{"status": "Success", "to", "mms-id", "tracking-id", "status-details"}`
                    or `{"status": "Failure", "error-code", "error-info", "to"}`

Refusals answer HTTP 200 with a `Failure` body (Sinch's OpenAPI file declares only a 200
answer; the real HTTP status of a `Failure` is unverified), except a bad key (401 `E104`)
and the injected faults (429 `E113` with `Retry-After`, 503, or a hang then 504); the
rate limiter refuses with the same 429 `E113`.
Validation, in Sinch's error codes: `E100` not a JSON object, `E107` an action other than
`sendmms`, `E627` no `service-id`, `E110` a `to` that is not international digits without
`+` (or a `reject_prefixes` number), `E111` a `from` that is not a short or long code,
`E312`/`E225` no slides or more than 8, `E313` an empty slide, `E223` two media in one
slide, `E228` more than 1,600 characters of text, `E314` a subject over 80 characters or
not ASCII, `E622` no `fallback-sms-text` while fallback is enabled, `E628` a number in
`mms_unsupported_carrier_prefixes`, `E629` a media URL with a suffix in
`mms_unrecognized_media_suffixes`.

An accepted MMS is delivered as MMS, or as fallback SMS with `mms_fallback_rate` (the
message entry then says `type: "sms"` and carries the fallback text). The API has no
idempotency: the same `client-reference` sent twice is two messages. With
`report_urls["sinch_mms"]` each accepted MMS gets its postbacks (N102, N202 `sent-as: SMS`
for a fallback, E101...; see `reports.py`), carrying its `tracking-id` and
`client-reference`.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response

from integrations.simulator.state import RateLimited, SimulatorState, is_msisdn, json_response

PROVIDER = "sinch_mms"
MAX_SLIDES = 8
MAX_TEXT = 1600
MAX_SUBJECT = 80
MEDIA_KINDS = ("image", "video", "audio", "vcard", "ical", "pdf", "passbook")
ERROR_INFO = {
    "E100": "Invalid request, please make a valid POST request.",
    "E104": "Authentication failed, Invalid API-key.",
    "E107": "Invalid action. This API user is not allowed to use this action.",
    "E110": "Invalid 'to' / receiver number.",
    "E111": "Invalid 'from' / shortcode.",
    "E113": "Exceeded the allowed throughput for this API action.",
    "E223": "More than one object is not allowed in the same slide.",
    "E225": "Exceeded number of slides allowed for the MMS.",
    "E228": f"MMS text cannot exceed {MAX_TEXT} characters.",
    "E312": "No slides.",
    "E313": "Slide is empty.",
    "E314": "Invalid message-subject.",
    "E622": "fallback-sms-text is required.",
    "E627": "Invalid service-id / service-id is required.",
    "E628": "Mobile operator / carrier not supported.",
    "E629": "Unrecognized content type.",
}


def mms_failure(
    code: str, to: Any = None, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A Sinch MMS `Failure` answer."""
    body: dict[str, Any] = {"status": "Failure", "error-code": code, "error-info": ERROR_INFO[code]}
    if isinstance(to, str):
        body["to"] = to
    return json_response(orjson.dumps(body), status, headers)


class _Refused(Exception):
    def __init__(self, code: str):
        self.code = code


def _is_code(sender: Any) -> bool:
    """A short code or a long number in international format: 3 to 15 ASCII digits."""
    return (
        isinstance(sender, str) and sender.isascii() and sender.isdigit() and 3 <= len(sender) <= 15
    )


class SinchMms:
    """The Sinch MMS side of the ledger: refusals by error code."""

    provider = PROVIDER
    channel = "mms"
    requests = ("mms_post",)

    def __init__(self, state: SimulatorState):
        self.state = state
        self.reset()

    def reset(self) -> None:
        self.refused: Counter[str] = Counter()
        self.mms_ids = 0

    def stats(self) -> dict[str, Any]:
        """`mms_refused`: Sinch MMS requests answered `Failure`, by error code."""
        return {"mms_refused": dict(self.refused)}

    def authorized(self, request: Request) -> bool:
        key = request.headers.get("x-api-key", "")
        return bool(key) and key in self.state.config.sinch_mms_api_keys

    def accept(self, payload: dict[str, Any]) -> tuple[bytes, bool]:
        """Validate and record one `sendmms`; return (answer, whether to hang). Raises
        _Refused, before recording anything, when Sinch would answer `Failure`, or
        RateLimited (one token) when the rate limiter refuses it."""
        slide = self._validate(payload)
        state = self.state
        state.admit(1)
        digits: str = payload["to"]
        tracking_id = state.new_ulid()
        media = next((slide[kind] for kind in MEDIA_KINDS if kind in slide), None)
        outcome = state.deliver_mms(
            PROVIDER,
            digits,
            message_id=tracking_id,
            client_reference=payload.get("client-reference"),
            sender=payload["from"],
            subject=payload.get("message-subject"),
            text="\n".join(s["message-text"] for s in payload["slide"] if "message-text" in s),
            media_url=media["url"] if media else None,
            fallback_text=payload.get("fallback-sms-text"),
            fallback_disabled=payload.get("disable-fallback-sms") is True,
        )
        url = state.reporter.url(PROVIDER)
        if url:
            reference = payload.get("client-reference")
            state.reporter.sinch_mms(url, tracking_id, reference, digits, payload["from"], outcome)
        self.mms_ids += 1
        answer = {
            "status": "Success",
            "to": digits,
            "mms-id": str(self.mms_ids),
            "tracking-id": tracking_id,
            "status-details": "MMS request accepted and queued for delivery",
        }
        return orjson.dumps(answer), state.accepted_request()

    def _validate(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The first slide with media (or the first slide), or _Refused."""
        cfg = self.state.config
        if payload.get("action") != "sendmms":
            raise _Refused("E107")
        service = payload.get("service-id")
        if not isinstance(service, str | int) or not str(service).strip():
            raise _Refused("E627")
        to = payload.get("to")
        if not isinstance(to, str) or not is_msisdn(to):
            raise _Refused("E110")
        prefixes = self.state.reject_prefixes
        if prefixes and to.startswith(prefixes):
            raise _Refused("E110")
        if not _is_code(payload.get("from")):
            raise _Refused("E111")
        subject = payload.get("message-subject")
        if subject is not None and (
            not isinstance(subject, str) or len(subject) > MAX_SUBJECT or not subject.isascii()
        ):
            raise _Refused("E314")
        slides = payload.get("slide")
        if not isinstance(slides, list) or not slides:
            raise _Refused("E312")
        if len(slides) > MAX_SLIDES:
            raise _Refused("E225")
        text_length = 0
        chosen: dict[str, Any] | None = None
        suffixes = tuple(s.lower() for s in cfg.mms_unrecognized_media_suffixes)
        for slide in slides:
            if not isinstance(slide, dict):
                raise _Refused("E100")
            text = slide.get("message-text")
            if text is not None and not isinstance(text, str):
                raise _Refused("E100")
            media = [kind for kind in MEDIA_KINDS if kind in slide]
            if not media and not text:
                raise _Refused("E313")
            if len(media) > 1:
                raise _Refused("E223")
            text_length += len(text or "")
            for kind in media:
                url = slide[kind].get("url") if isinstance(slide[kind], dict) else None
                if not isinstance(url, str) or not url.startswith(("https://", "http://")):
                    raise _Refused("E100")
                if suffixes and url.lower().endswith(suffixes):
                    raise _Refused("E629")
                if chosen is None:
                    chosen = slide
        if text_length > MAX_TEXT:
            raise _Refused("E228")
        disabled = payload.get("disable-fallback-sms", False)
        fallback = payload.get("fallback-sms-text")
        if not isinstance(disabled, bool) or (
            fallback is not None and not isinstance(fallback, str)
        ):
            raise _Refused("E100")
        if not disabled and not (fallback or "").strip():
            raise _Refused("E622")
        reference = payload.get("client-reference")
        if reference is not None and not isinstance(reference, str):
            raise _Refused("E100")
        carriers = tuple(cfg.mms_unsupported_carrier_prefixes)
        if carriers and to.startswith(carriers):
            raise _Refused("E628")
        return chosen if chosen is not None else slides[0]


def router(state: SimulatorState) -> APIRouter:
    """The Sinch MMS JSON API endpoint, its bookkeeping attached to `state`."""
    mms = SinchMms(state)
    state.attach(mms)
    api = APIRouter()

    @api.post("/ep/v2/")
    async def sendmms(request: Request) -> Response:
        state.requests["mms_post"] += 1
        cfg = state.config
        await state.delay()
        if not mms.authorized(request):
            return mms_failure("E104", status=401)
        fault = state.draw_fault()
        if fault == "429":
            headers = {"Retry-After": f"{cfg.retry_after_seconds:g}"}
            return mms_failure("E113", status=429, headers=headers)
        if fault == "5xx":
            return json_response(b'{"status":"Failure","error-info":"Service unavailable"}', 503)
        raw = await request.body()
        if fault == "timeout":
            await asyncio.sleep(cfg.hang_seconds)
            return json_response(b'{"status":"Failure","error-info":"Gateway timeout"}', 504)
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError:
            payload = None
        if not isinstance(payload, dict):
            mms.refused["E100"] += 1
            return mms_failure("E100")
        try:
            answer, hang = mms.accept(payload)
        except _Refused as exc:
            mms.refused[exc.code] += 1
            return mms_failure(exc.code, payload.get("to"))
        except RateLimited as exc:
            return mms_failure(
                "E113", payload.get("to"), status=429, headers={"Retry-After": exc.header}
            )
        if hang:
            await asyncio.sleep(cfg.hang_seconds)
        return json_response(answer)

    return api
