"""Sinch MMS JSON API client (`POST {base_url}/ep/v2/`, action `sendmms`), synchronous httpx.

One `send()` is one MMS to one number: one slide with the media (image, video, vCard,
PDF, ...) and the text, an optional subject, the fallback SMS text used when the handset
or carrier cannot take the MMS, and the caller's send key as `client-reference` (echoed
in Sinch's delivery postbacks). The API key travels in the `x-api-key` header.

Answers:

- `{"status": "Success", "tracking-id": ...}`: accepted; the receipt carries the
  tracking-id that delivery postbacks refer to.
- `{"status": "Failure", "error-code": "E110", "error-info": ...}`: Sinch refused this
  message (bad number, sender, content, unsupported carrier, ...). That is a per-recipient
  outcome, not an exception: the receipt says `accepted=False` with the error code as
  `status_code` and `error` and the error-info as `comment`. Codes that would fail every
  message of the account (`E100` invalid request, `E104` bad API key, `E105`, `E107`,
  `E108`, `E112` IP not whitelisted, `E627` bad service-id) raise
  `ProviderError(retryable=False)` instead, as do HTTP 401 and 403.
- `E106` (calls too frequent), `E113` (throughput exceeded), `E618` (carrier look-up
  failed, retry) and HTTP 429 mean nothing was accepted: wait (`Retry-After` when given,
  else exponential backoff with jitter) and post again. So does a failure to open the
  connection (`httpx.ConnectError`, `ConnectTimeout`, `PoolTimeout`): no byte left.
  Exhausted retries raise `ProviderError(retryable=True)`.

Exactly-once and its limit: the MMS JSON API has three actions (`sendmms`, `savemms`,
`sendsavedmms`) and **no way to look a message up**, neither by tracking-id nor by
client-reference; outcomes arrive only as postbacks. So a send whose outcome is unknown
(a timeout after the request was written, a dropped connection, a 5xx, a 2xx that cannot
be read) is never posted again blindly, since the first attempt may have been delivered:
`send()` returns `MmsReceipt(accepted=False, error="unknown_outcome", ...)`, and
`send(reconcile=True)`, meant for a message whose earlier attempt's outcome is unknown,
returns that same receipt without any HTTP call. The caller settles such messages from
the delivery postbacks (matched by client-reference) or by a human decision.
`send_at_most_once` and `reconcile_unknown` carry that rule, and `MmsReceipt` the
outcome, for the Conversation API's MMS client (`integrations.sinch_conversation`) too.

Vendor errors become `ProviderError` here and nowhere else. The API key lives in a
`SecretStr` and is added to each request by an `httpx.Auth`; it is never logged, shown in
a repr or put in an exception message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import BaseModel, SecretStr, field_validator

from engine.errors import ProviderError
from integrations.http import (
    ApiKeyAuth,
    Connection,
    Failure,
    ProviderClient,
    Retries,
    http_summary,
    read_json,
    retry,
    retry_after,
    transport_failure,
)

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.ci.mblox.com"
SEND_PATH = "/ep/v2/"
MAX_SLIDES = 8
MAX_SUBJECT = 80
MAX_TEXT = 1600
MAX_CLIENT_REFERENCE = 128  # Sinch publishes no limit; the SMS API's is used (a guess)
MEDIA_TYPES = frozenset({"image", "video", "audio", "vcard", "ical", "pdf", "passbook"})
# Failure codes meaning "nothing was accepted, ask again later".
RETRY_CODES = frozenset({"E106", "E113", "E618"})
# Failure codes that would fail every message: the account or the request, not the recipient.
ACCOUNT_CODES = frozenset({"E100", "E104", "E105", "E107", "E108", "E112", "E627"})

UNKNOWN_OUTCOME = "unknown_outcome"
UNKNOWN_OUTCOME_COMMENT = (
    "an earlier attempt's outcome is unknown and the provider offers no look-up; not sent again"
)


class SinchMmsCredentials(BaseModel):
    """Where and as whom to call the Sinch MMS JSON API."""

    service_id: str
    api_key: SecretStr
    base_url: str = DEFAULT_BASE_URL
    """The API host; `http://127.0.0.1:8765` for the simulator."""

    @field_validator("service_id")
    @classmethod
    def _service_id_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("service_id must not be blank")
        return value

    @field_validator("base_url", mode="before")
    @classmethod
    def _http_url(cls, value: str | None) -> str:
        if value is None:  # "not set": Sinch's host
            return DEFAULT_BASE_URL
        value = value.strip().rstrip("/")
        if not value.startswith(("https://", "http://")):
            raise ValueError("base_url must start with https:// (or http:// for a simulator)")
        return value


@dataclass(frozen=True)
class MmsMessage:
    """One MMS to one number. `to` is E.164 with "+"; `sender` a short code or long number;
    `media_type` one of `MEDIA_TYPES` ("image", "video", "vcard", "pdf", ...) and set
    together with `media_url`; `fallback_text` is required unless `fallback_disabled`.
    `client_reference` is the send key, echoed in delivery postbacks."""

    to: str
    sender: str
    subject: str | None
    text: str
    media_url: str | None
    media_type: str | None
    fallback_text: str | None
    fallback_disabled: bool
    client_reference: str


@dataclass(frozen=True)
class MmsReceipt:
    """What became of one MMS. Accepted: `tracking_id` is set. Refused: `status_code` and
    `error` are Sinch's error code (e.g. "E110"), `comment` its error-info. Unknown
    outcome: `error` is "unknown_outcome" and nothing was (re)sent."""

    to: str
    tracking_id: str | None
    accepted: bool
    status_code: str | None = None
    error: str | None = None
    comment: str | None = None


def unknown_outcome(to: str) -> MmsReceipt:
    """The receipt for a message whose earlier attempt may or may not have been sent."""
    return MmsReceipt(
        to=to,
        tracking_id=None,
        accepted=False,
        status_code=None,
        error=UNKNOWN_OUTCOME,
        comment=UNKNOWN_OUTCOME_COMMENT,
    )


def reconcile_unknown(to: str, *, key: str, log: logging.Logger) -> MmsReceipt:
    """`send(reconcile=True)`: with no look-up to ask, a message whose earlier attempt's
    outcome is unknown is not sent again. `key` names the send key in the log line."""
    log.warning(
        "%s: outcome of an earlier attempt unknown and no look-up exists; not sent again", key
    )
    return unknown_outcome(to)


def send_at_most_once(
    attempt: Callable[[], MmsReceipt | Failure],
    retries: Retries,
    *,
    to: str,
    what: str,
    key: str,
    log: logging.Logger,
) -> MmsReceipt:
    """Retry `attempt` only while nothing can have been sent: the first unknown outcome ends
    it with the unknown-outcome receipt, never a resend; exhausted retries raise a retryable
    ProviderError. `what` names the request in logs and errors, `key` the send key."""
    outcome = retry(attempt, retries, what=what, logger=log, stop=lambda f: f.unknown)
    if isinstance(outcome, MmsReceipt):
        return outcome
    if outcome.unknown:
        log.warning("%s: outcome unknown, not sent again", key)
        return unknown_outcome(to)
    raise ProviderError(
        f"{what} failed {retries.max_attempts} times: {outcome.text}; nothing was accepted, "
        "sending again is safe",
        status_code=outcome.status_code,
        code=outcome.code,
        retryable=True,
    )


def e164_digits(number: str, what: str = "to") -> str:
    """The digits of an E.164 number written with "+"; ValueError otherwise."""
    if not (number[:1] == "+" and number[1:].isdigit() and number.isascii()):
        raise ValueError(f"{what} {number!r} is not an E.164 number with '+'")
    return number[1:]


def check_subject_and_text(subject: str | None, text: str) -> None:
    """MMS rules shared by both Sinch MMS APIs: a subject of at most 80 ASCII characters
    (no emoji), a text of at most 1,600 characters."""
    if subject is not None:
        if len(subject) > MAX_SUBJECT:
            raise ValueError(
                f"the subject is {len(subject)} characters long; MMS allows {MAX_SUBJECT}"
            )
        if not subject.isascii():
            raise ValueError("the subject must be ASCII (no emoji or other Unicode)")
    if len(text) > MAX_TEXT:
        raise ValueError(f"the text is {len(text)} characters long; MMS allows {MAX_TEXT}")


def check_client_reference(reference: str) -> None:
    if not reference:
        raise ValueError("client_reference is required (it is the send key)")
    if len(reference) > MAX_CLIENT_REFERENCE:
        raise ValueError(
            f"client_reference is {len(reference)} characters long; at most {MAX_CLIENT_REFERENCE}"
        )


def build_sendmms_payload(service_id: str, message: MmsMessage) -> dict[str, Any]:
    """The JSON body of a `sendmms`; raises ValueError on a message Sinch would refuse."""
    to = e164_digits(message.to)
    sender = message.sender.strip().removeprefix("+")
    if not sender:
        raise ValueError("sender is required (a short code or long number)")
    check_client_reference(message.client_reference)
    subject = message.subject or None
    check_subject_and_text(subject, message.text)
    if (message.media_url is None) != (message.media_type is None):
        raise ValueError("media_url and media_type go together")
    slide: dict[str, Any] = {}
    if message.media_url is not None:
        if message.media_type not in MEDIA_TYPES:
            raise ValueError(
                f"media_type {message.media_type!r} is not one of {sorted(MEDIA_TYPES)}"
            )
        if not message.media_url.startswith(("https://", "http://")):
            raise ValueError(f"media_url {message.media_url!r} is not an http(s) URL")
        slide[message.media_type] = {"url": message.media_url}
    if message.text:
        slide["message-text"] = message.text
    slides = [slide] if slide else []
    if not 1 <= len(slides) <= MAX_SLIDES:
        raise ValueError(f"an MMS needs 1 to {MAX_SLIDES} slides: give a text or a media")
    if not message.fallback_disabled and not (message.fallback_text or "").strip():
        raise ValueError(
            "fallback_text is required unless fallback is disabled (Sinch refuses it with E622)"
        )
    payload: dict[str, Any] = {
        "action": "sendmms",
        "service-id": service_id,
        "to": to,
        "from": sender,
    }
    if subject is not None:
        payload["message-subject"] = subject
    if message.fallback_text:
        payload["fallback-sms-text"] = message.fallback_text
    payload["disable-fallback-sms"] = message.fallback_disabled
    payload["client-reference"] = message.client_reference
    payload["slide"] = slides
    return payload


class SinchMmsClient(ProviderClient[SinchMmsCredentials]):
    """Sends MMS through one Sinch MMS service; see the module docstring for retries."""

    def _connection(self) -> Connection:
        return Connection(self.credentials.base_url, ApiKeyAuth(self.credentials.api_key))

    def __repr__(self) -> str:
        return f"SinchMmsClient(base_url={self.credentials.base_url!r})"

    # -- public API ---------------------------------------------------------------------

    def send(self, message: MmsMessage, *, reconcile: bool = False) -> MmsReceipt:
        """Send one MMS at most once and say what became of it.

        `reconcile=True` is for a message whose earlier attempt's outcome is unknown: with
        no look-up available it is not sent again, and the unknown-outcome receipt comes
        back (see the module docstring). Raises ValueError on an invalid message, before
        any HTTP call, and ProviderError when Sinch cannot be used (bad credentials, an
        invalid request, retries exhausted).
        """
        payload = build_sendmms_payload(self.credentials.service_id, message)
        ref = message.client_reference
        key = f"Sinch MMS client-reference {ref!r}"
        if reconcile:
            return reconcile_unknown(message.to, key=key, log=logger)
        self._pace(1)
        return send_at_most_once(
            lambda: self._post_once(payload, message.to),
            self._retries,
            to=message.to,
            what=f"Sinch MMS sendmms (client-reference {ref!r})",
            key=key,
            log=logger,
        )

    # -- internals ----------------------------------------------------------------------

    def _post_once(self, payload: dict[str, Any], to: str) -> MmsReceipt | Failure:
        try:
            response = self._http.post(SEND_PATH, json=payload)
        except httpx.TransportError as exc:
            return transport_failure(exc)

        status = response.status_code
        data = read_json(response)
        outcome = data.get("status") if isinstance(data, dict) else None
        outcome = outcome.lower() if isinstance(outcome, str) else None
        code = data.get("error-code") if isinstance(data, dict) else None
        code = str(code) if code is not None else None
        info = data.get("error-info") if isinstance(data, dict) else None
        text = f"{code}: {info}" if code and isinstance(info, str) else http_summary(response)

        if status in (401, 403):
            raise ProviderError(text, status_code=status, code=code, retryable=False)
        if status == 429 or code in RETRY_CODES:
            return Failure(text, status_code=status, code=code, retry_after=retry_after(response))
        if status >= 500:
            return Failure(text, status_code=status, code=code, unknown=True)
        if outcome == "success" and 200 <= status < 300:
            tracking_id = data.get("tracking-id")
            return MmsReceipt(
                to=to,
                tracking_id=str(tracking_id) if tracking_id is not None else None,
                accepted=True,
            )
        if outcome == "failure" and status < 500:
            if code in ACCOUNT_CODES:
                raise ProviderError(text, status_code=status, code=code, retryable=False)
            return MmsReceipt(
                to=to,
                tracking_id=None,
                accepted=False,
                status_code=code,
                error=code or "Failure",  # a refusal without a code still is one
                comment=info if isinstance(info, str) else None,
            )
        if 200 <= status < 300:
            # An answer we cannot read: it may well have been accepted.
            return Failure(f"unreadable {status} answer", status_code=status, unknown=True)
        raise ProviderError(text, status_code=status, code=code, retryable=False)
