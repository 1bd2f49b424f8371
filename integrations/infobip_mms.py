"""Infobip MMS API client (`POST /mms/2/messages`), synchronous httpx.

The MMS twin of `integrations.infobip_sms`: same account, same `Authorization: App` key,
same response and status shapes (SMS v3), same errors, same exactly-once scheme. One
`send()` is one request carrying up to 1,000 destinations spread over any number of
`InfobipMmsMessage`s, each with its own sender, title, text, optional media link and
optional SMS failover. Every destination carries a caller-chosen `messageId`: Infobip
refuses a messageId it has already accepted with the per-destination status 23
`REJECTED_DUPLICATE_MESSAGE_ID`, which this client reads as *accepted* (an earlier attempt
sent the message; this one did not send it again).

- 429 means nothing was accepted: wait (`Retry-After` when given) and post again.
- A timeout, a broken connection, a 5xx or a 200 that does not list every destination
  leaves the outcome unknown: the same request is posted again. Destinations the lost
  attempt had accepted come back as duplicates, the others are sent now. `reconcile=True`
  is accepted for symmetry with the Sinch client and resends the same way.
- Other 4xx raise `ProviderError(retryable=False)` with Infobip's description and
  `errorCode` (v3 / MMS v2 bodies) or `requestError.serviceException.messageId` (legacy
  bodies). Exhausted retries raise `ProviderError(retryable=True)`; sending the same
  messages again later is safe for the same reason.
- A 200 answers per destination, mapped by `integrations.infobip_sms.destination_result`:
  PENDING, ACCEPTED and DELIVERED groups are accepted; REJECTED, UNDELIVERABLE and EXPIRED
  ones are refused and name the status (id, name, description).

Request body (Infobip OpenAPI 3.210, `MmsUnificationRequest`): `messages[]` with `sender`,
`destinations[{to, messageId}]` (numbers without "+"), `content{title, messageSegments}`
where the segments are a TEXT one (`text`) and a LINK one (`contentType`, `contentUrl`),
and `options.smsFailover{sender, text}`; the bulk id goes in the top-level
`options.schedule.bulkId`, as in SMS v3 (MMS has no `includeSmsCountInResponse`).

The same limits as the SMS client apply to the scheme: whether Infobip also remembers
*rejected* messageIds, and for how long it remembers any, is not published.

Vendor errors become `ProviderError` here and nowhere else. The API key lives in a
`SecretStr` and is added to each request by an `httpx.Auth`; it is never logged, shown in
a repr or put in an exception message.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from engine.errors import ProviderError
from integrations.infobip_sms import (
    MAX_BACKOFF_SECONDS,
    MAX_BULK_ID,
    MAX_DESTINATIONS,
    MAX_MESSAGE_ID,
    DestinationResult,
    InfobipCredentials,
    destination_result,
)
from integrations.rate_limit import TokenBucket

__all__ = [
    "MAX_TEXT",
    "MAX_TITLE",
    "SEND_PATH",
    "DestinationResult",
    "InfobipCredentials",
    "InfobipMmsClient",
    "InfobipMmsMessage",
    "build_mms_payload",
]

logger = logging.getLogger(__name__)

SEND_PATH = "/mms/2/messages"
MAX_TITLE = 66  # `content.title` is 0..66 characters in Infobip's spec
MAX_TEXT = 1600  # Infobip's MMS docs: "messages up to 1600 characters" (the TEXT segment
# schema itself allows 4096; the documented product limit is the stricter one)


@dataclass(frozen=True)
class InfobipMmsMessage:
    """One `messages[]` element: the same MMS for some destinations, each an (E.164 number
    with "+", messageId) pair. The messageId makes that destination's send exactly-once, so
    it must be stable across retries and unique per request.

    `title` is the MMS subject (at most 66 characters, None for none). `media_url` is an
    http(s) URL Infobip fetches, `media_content_type` its MIME type (e.g. "image/jpeg").
    `fallback_text` turns on Infobip's SMS failover with that text (None: no failover);
    the failover SMS comes from `fallback_sender`, or from `sender` when that is None.
    """

    sender: str
    destinations: list[tuple[str, str]]
    title: str | None
    text: str
    media_url: str | None
    media_content_type: str | None
    fallback_text: str | None
    fallback_sender: str | None = None


class _AppKeyAuth(httpx.Auth):
    """Sets `Authorization: App {key}` on each request so it never sits in client defaults."""

    def __init__(self, key: SecretStr):
        self._key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"App {self._key.get_secret_value()}"
        yield request

    def __repr__(self) -> str:
        return "_AppKeyAuth(key=**********)"


# -- request --------------------------------------------------------------------------------


def _is_e164(number: str) -> bool:
    return number[:1] == "+" and number[1:].isdigit() and number.isascii()


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc) and url == url.strip()


def _segments(i: int, message: InfobipMmsMessage) -> list[dict[str, str]]:
    """`content.messageSegments` for one message: TEXT first, then the media LINK."""
    if len(message.text) > MAX_TEXT:
        raise ValueError(
            f"message {i}: text is {len(message.text)} characters long; "
            f"Infobip MMS takes at most {MAX_TEXT}"
        )
    segments: list[dict[str, str]] = []
    if message.text:
        segments.append({"type": "TEXT", "text": message.text})
    if message.media_url is not None:
        if not _is_http_url(message.media_url):
            raise ValueError(f"message {i}: media_url {message.media_url!r} is not an http(s) URL")
        link = {"type": "LINK", "contentUrl": message.media_url}
        if message.media_content_type is not None:
            kind, _, subtype = message.media_content_type.partition("/")
            if not (kind and subtype) or " " in message.media_content_type:
                raise ValueError(
                    f"message {i}: media_content_type {message.media_content_type!r} is not "
                    "a MIME type such as 'image/jpeg'"
                )
            link["contentType"] = message.media_content_type
        segments.append(link)
    elif message.media_content_type is not None:
        raise ValueError(f"message {i}: media_content_type is set but media_url is not")
    if not segments:
        raise ValueError(f"message {i} has neither text nor media")
    return segments


def _options(i: int, message: InfobipMmsMessage) -> dict[str, Any] | None:
    """`options` for one message: the SMS failover, when asked for."""
    if message.fallback_text is None:
        if message.fallback_sender is not None:
            raise ValueError(f"message {i}: fallback_sender is set but fallback_text is not")
        return None
    if not message.fallback_text:
        raise ValueError(f"message {i}: fallback_text is empty (use None for no failover)")
    sender = message.fallback_sender if message.fallback_sender is not None else message.sender
    if not sender:
        raise ValueError(f"message {i}: fallback_sender is empty")
    return {"smsFailover": {"sender": sender, "text": message.fallback_text}}


def build_mms_payload(messages: list[InfobipMmsMessage], bulk_id: str) -> dict[str, Any]:
    """The JSON body of `POST /mms/2/messages`; raises ValueError on a request this client
    will not send (Infobip would refuse it, or it could not be made exactly-once)."""
    if not messages:
        raise ValueError("a request needs at least one message")
    if not bulk_id:
        raise ValueError("bulk_id is required")
    if len(bulk_id) > MAX_BULK_ID:
        raise ValueError(
            f"bulk_id is {len(bulk_id)} characters long; Infobip keeps at most {MAX_BULK_ID}"
        )
    total = sum(len(message.destinations) for message in messages)
    if total > MAX_DESTINATIONS:
        raise ValueError(f"a request carries at most {MAX_DESTINATIONS} destinations, got {total}")
    seen: set[str] = set()
    body: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        if not message.destinations:
            raise ValueError(f"message {i} has no destinations")
        if not message.sender:
            raise ValueError(f"message {i} has no sender")
        if message.title is not None and len(message.title) > MAX_TITLE:
            raise ValueError(
                f"message {i}: title is {len(message.title)} characters long; "
                f"Infobip MMS takes at most {MAX_TITLE}"
            )
        content: dict[str, Any] = {}
        if message.title:
            content["title"] = message.title
        content["messageSegments"] = _segments(i, message)
        options = _options(i, message)
        destinations = []
        for number, message_id in message.destinations:
            if not _is_e164(number):
                raise ValueError(
                    f"message {i}: destination {number!r} is not an E.164 number with '+'"
                )
            if not message_id or len(message_id) > MAX_MESSAGE_ID:
                raise ValueError(
                    f"message {i}: the messageId for {number} must be 1 to "
                    f"{MAX_MESSAGE_ID} characters"
                )
            if message_id in seen:
                # Infobip would refuse the second one as a duplicate, which this client
                # reads as "already sent": it would never be sent.
                raise ValueError(f"messageId {message_id!r} is used twice in one request")
            seen.add(message_id)
            destinations.append({"to": number[1:], "messageId": message_id})
        item: dict[str, Any] = {
            "sender": message.sender,
            "destinations": destinations,
            "content": content,
        }
        if options is not None:
            item["options"] = options
        body.append(item)
    return {"messages": body, "options": {"schedule": {"bulkId": bulk_id}}}


# -- errors ---------------------------------------------------------------------------------


def _violations(items: Any) -> list[str]:
    """`property: violation` lines from v3 `violations` or legacy `validationErrors`."""
    lines: list[str] = []
    if isinstance(items, list):  # v3 / MMS v2: [{"property": .., "violation": ..}]
        for item in items:
            if isinstance(item, dict) and item.get("violation"):
                prop = item.get("property")
                lines.append(f"{prop}: {item['violation']}" if prop else str(item["violation"]))
    elif isinstance(items, dict):  # legacy: {"messages[0].to": ["must not be empty"]}
        for prop, found in items.items():
            for text in found if isinstance(found, list) else [found]:
                lines.append(f"{prop}: {text}")
    return lines


def _error_details(response: httpx.Response) -> tuple[str, str | None]:
    """(text, code) from an Infobip v3 or legacy error body; tolerant of anything else."""
    try:
        data = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        data = None
    text: str | None = None
    code: Any = None
    lines: list[str] = []
    if isinstance(data, dict):
        if isinstance(data.get("description"), str):  # v3 / MMS v2
            text, code = data["description"], data.get("errorCode")
            lines = _violations(data.get("violations"))
        else:  # legacy
            request_error = data.get("requestError")
            service = (
                request_error.get("serviceException") if isinstance(request_error, dict) else None
            )
            if isinstance(service, dict) and isinstance(service.get("text"), str):
                text, code = service["text"], service.get("messageId")
                lines = _violations(service.get("validationErrors"))
    if text is not None:
        if lines:
            text += " (" + "; ".join(lines) + ")"
        return text, str(code) if code is not None else None
    snippet = " ".join(response.text.split())[:200] if response.content else ""
    reason = response.reason_phrase or "error"
    return f"HTTP {response.status_code} {reason}" + (f": {snippet}" if snippet else ""), None


def _retry_after(response: httpx.Response) -> float | None:
    """`Retry-After` in seconds (delta-seconds or an HTTP date), or None."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


@dataclass(frozen=True)
class _Failure:
    """What one HTTP attempt came to, when it did not succeed and may be retried."""

    text: str
    status_code: int | None = None
    code: str | None = None
    retry_after: float | None = None


# -- client ---------------------------------------------------------------------------------


class InfobipMmsClient:
    """Sends MMS through one Infobip account; see the module docstring for retries."""

    def __init__(
        self,
        credentials: InfobipCredentials,
        *,
        transport: httpx.BaseTransport | None = None,
        rate_limiter: TokenBucket | None = None,
        max_attempts: int = 5,
        backoff_seconds: float = 0.5,
        timeout_seconds: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        self.credentials = credentials
        self._rate_limiter = rate_limiter
        self._max_attempts = max_attempts
        self._backoff = backoff_seconds
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=credentials.base_url,
            auth=_AppKeyAuth(credentials.api_key),
            transport=transport,
            timeout=timeout_seconds,
            headers={"Accept": "application/json"},
        )

    def __repr__(self) -> str:
        return f"InfobipMmsClient(base_url={self.credentials.base_url!r})"

    def send(
        self, messages: list[InfobipMmsMessage], *, bulk_id: str, reconcile: bool = False
    ) -> list[DestinationResult]:
        """Send every destination exactly once; one result per destination, in order.

        `reconcile` changes nothing: resending is always safe because Infobip refuses a
        messageId it already accepted (see the module docstring).
        """
        payload = build_mms_payload(messages, bulk_id)
        expected = [(to, mid) for message in messages for to, mid in message.destinations]
        if self._rate_limiter is not None:
            self._rate_limiter.acquire(len(expected))

        failure: _Failure | None = None
        for attempt in range(1, self._max_attempts + 1):
            if failure is not None:
                self._sleep(self._delay(attempt - 1, failure.retry_after))
            outcome = self._post_once(payload, expected)
            if isinstance(outcome, list):
                return outcome
            failure = outcome
            logger.warning(
                "Infobip POST %s (bulkId %r) attempt %d/%d failed: %s",
                SEND_PATH,
                bulk_id,
                attempt,
                self._max_attempts,
                failure.text,
            )
        assert failure is not None
        raise ProviderError(
            f"Infobip POST {SEND_PATH} (bulkId {bulk_id!r}) failed {self._max_attempts} times: "
            f"{failure.text}; sending the same messageIds again is safe",
            status_code=failure.status_code,
            code=failure.code,
            retryable=True,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> InfobipMmsClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------

    def _delay(self, failures: int, retry_after: float | None) -> float:
        """Seconds to wait after `failures` failed attempts: Retry-After when the answer
        gave one, else exponential backoff with up to 50% jitter, capped."""
        if retry_after is not None:
            return retry_after
        base = min(MAX_BACKOFF_SECONDS, self._backoff * 2 ** (failures - 1))
        return base * (1.0 + 0.5 * random.random())

    def _post_once(
        self, payload: dict[str, Any], expected: list[tuple[str, str]]
    ) -> list[DestinationResult] | _Failure:
        try:
            response = self._http.post(SEND_PATH, json=payload)
        except httpx.TimeoutException as exc:
            return _Failure(f"timed out ({type(exc).__name__})")
        except httpx.TransportError as exc:
            return _Failure(f"connection failed ({type(exc).__name__}: {exc})")

        status = response.status_code
        if 200 <= status < 300:
            return self._results(response, expected)
        text, code = _error_details(response)
        if status == 429 or status >= 500:
            return _Failure(text, status_code=status, code=code, retry_after=_retry_after(response))
        raise ProviderError(text, status_code=status, code=code, retryable=False)

    @staticmethod
    def _results(
        response: httpx.Response, expected: list[tuple[str, str]]
    ) -> list[DestinationResult] | _Failure:
        """Match the answer's statuses to the destinations by messageId."""
        status = response.status_code
        try:
            data = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            data = None
        listed = data.get("messages") if isinstance(data, dict) else None
        if not isinstance(listed, list):
            return _Failure(f"unreadable {status} answer", status_code=status)
        by_id = {
            item["messageId"]: item.get("status")
            for item in listed
            if isinstance(item, dict) and isinstance(item.get("messageId"), str)
        }
        missing = sum(1 for _, mid in expected if mid not in by_id)
        if missing:
            return _Failure(
                f"the {status} answer lists no status for {missing} of {len(expected)} "
                "destinations",
                status_code=status,
            )
        return [destination_result(to, mid, by_id[mid]) for to, mid in expected]
