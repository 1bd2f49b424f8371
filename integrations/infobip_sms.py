"""Infobip SMS API client (`POST /sms/3/messages`), synchronous httpx.

One `send()` is one request: up to 1,000 destinations spread over any number of
`InfobipMessage`s, each with its own sender and text. Every destination carries a
caller-chosen `messageId`, which makes sends exactly-once: Infobip refuses a messageId
it has already accepted with the per-destination status 23
`REJECTED_DUPLICATE_MESSAGE_ID`, and this client reads that status as *accepted* (the
earlier attempt sent the message; this one did not send it again).

- 429 means nothing was accepted: wait (`Retry-After` when given) and post again.
- A timeout, a broken connection, a 5xx or a 200 that does not list every destination
  leaves the outcome unknown: the same request is simply posted again. Destinations the
  lost attempt had accepted come back as duplicates, the others are sent now, so no
  look-up is needed; `send(reconcile=True)` is accepted for symmetry with the Sinch
  client and resends the same way.
- Other 4xx raise `ProviderError(retryable=False)` with Infobip's description and
  `errorCode` (v3 bodies) or `requestError.serviceException.messageId` (legacy bodies).
  Exhausted retries raise `ProviderError(retryable=True)`; sending the same messages
  again later is safe for the same reason.
- A 200 answers per destination: PENDING, ACCEPTED and DELIVERED groups are accepted;
  REJECTED, UNDELIVERABLE and EXPIRED ones are not, and their `DestinationResult` names
  the status (id, name, description).

Limits of the scheme: a destination an earlier attempt had *rejected* would also come
back as a duplicate if Infobip remembers rejected messageIds (not documented), and the
window in which Infobip remembers a messageId is not published.

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

import httpx
from pydantic import BaseModel, SecretStr, field_validator

from engine.errors import ProviderError
from integrations.rate_limit import TokenBucket

logger = logging.getLogger(__name__)

SEND_PATH = "/sms/3/messages"
MAX_DESTINATIONS = 1000
MAX_MESSAGE_ID = 200  # `destinations[].messageId` is 0..200 characters in Infobip's spec
MAX_BULK_ID = 100  # Infobip clips longer bulk ids
MAX_BACKOFF_SECONDS = 60.0

# Status groups whose destinations were taken on by Infobip.
ACCEPTED_GROUPS = frozenset({0, 1, 3})  # ACCEPTED, PENDING, DELIVERED
GROUP_IDS = {
    "ACCEPTED": 0,
    "PENDING": 1,
    "UNDELIVERABLE": 2,
    "DELIVERED": 3,
    "EXPIRED": 4,
    "REJECTED": 5,
}
DUPLICATE_MESSAGE_ID = 23  # REJECTED_DUPLICATE_MESSAGE_ID: an earlier attempt sent it


class InfobipCredentials(BaseModel):
    """Where and as whom to call the Infobip API."""

    base_url: str
    """Your account's API host, e.g. `https://xyz.api.infobip.com` (or the simulator's)."""
    api_key: SecretStr

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("https://", "http://")):
            raise ValueError("base_url must start with https:// (or http:// for a simulator)")
        return value


@dataclass(frozen=True)
class InfobipMessage:
    """One `messages[]` element: a sender and a text for some destinations, each an
    (E.164 number with "+", messageId) pair. The messageId makes that destination's send
    exactly-once, so it must be stable across retries and unique per message."""

    sender: str
    destinations: list[tuple[str, str]]
    text: str


@dataclass(frozen=True)
class DestinationResult:
    """What Infobip said about one destination. `status_code`, `error` and `comment` are
    Infobip's status id, name and description, set when the destination was refused."""

    to: str
    message_id: str
    accepted: bool
    status_code: int | None = None
    error: str | None = None
    comment: str | None = None


class _AppKeyAuth(httpx.Auth):
    """Adds `Authorization: App {key}` at send time so it never sits in client defaults."""

    def __init__(self, key: SecretStr):
        self._key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"App {self._key.get_secret_value()}"
        yield request

    def __repr__(self) -> str:
        return "_AppKeyAuth(key=**********)"


def build_messages_payload(messages: list[InfobipMessage], bulk_id: str) -> dict[str, Any]:
    """The JSON body of `POST /sms/3/messages`; raises ValueError on a request this client
    will not send (and Infobip would refuse or could not make exactly-once)."""
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
        if not message.text:
            raise ValueError(f"message {i} has no text")
        destinations = []
        for number, message_id in message.destinations:
            if not (number[:1] == "+" and number[1:].isdigit() and number.isascii()):
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
        body.append(
            {
                "sender": message.sender,
                "destinations": destinations,
                "content": {"text": message.text},
            }
        )
    return {
        "messages": body,
        "options": {"schedule": {"bulkId": bulk_id}, "includeSmsCountInResponse": True},
    }


def _group_id(status: dict[str, Any]) -> int | None:
    group = status.get("groupId")
    if isinstance(group, int):
        return group
    name = status.get("groupName")
    return GROUP_IDS.get(name) if isinstance(name, str) else None


def destination_result(to: str, message_id: str, status: Any) -> DestinationResult:
    """Map one destination's `status` object to a DestinationResult."""
    if not isinstance(status, dict):
        status = {}
    status_id = status.get("id") if isinstance(status.get("id"), int) else None
    if status_id == DUPLICATE_MESSAGE_ID or _group_id(status) in ACCEPTED_GROUPS:
        return DestinationResult(to=to, message_id=message_id, accepted=True)
    name = status.get("name")
    description = status.get("description")
    return DestinationResult(
        to=to,
        message_id=message_id,
        accepted=False,
        status_code=status_id,
        error=name if isinstance(name, str) else "UNKNOWN_STATUS",
        comment=description if isinstance(description, str) else None,
    )


def _problems(items: Any) -> list[str]:
    """`property: violation` lines from v3 `violations` or legacy `validationErrors`."""
    out: list[str] = []
    if isinstance(items, list):  # v3: [{"property": .., "violation": ..}]
        for item in items:
            if isinstance(item, dict) and item.get("violation"):
                prop = item.get("property")
                out.append(f"{prop}: {item['violation']}" if prop else str(item["violation"]))
    elif isinstance(items, dict):  # legacy: {"messages[0].to": ["must not be empty"]}
        for prop, found in items.items():
            texts = found if isinstance(found, list) else [found]
            out.extend(f"{prop}: {text}" for text in texts)
    return out


def _error_details(response: httpx.Response) -> tuple[str, str | None]:
    """(text, code) from an Infobip v3 or legacy error body; tolerant of anything else."""
    try:
        data = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        data = None
    if isinstance(data, dict):
        text: str | None = None
        code: Any = None
        problems: list[str] = []
        if isinstance(data.get("description"), str):  # v3
            text, code = data["description"], data.get("errorCode")
            problems = _problems(data.get("violations"))
        else:
            request_error = data.get("requestError")
            service = (
                request_error.get("serviceException") if isinstance(request_error, dict) else None
            )
            if isinstance(service, dict) and isinstance(service.get("text"), str):
                text, code = service["text"], service.get("messageId")
                problems = _problems(service.get("validationErrors"))
        if text is not None:
            if problems:
                text += " (" + "; ".join(problems) + ")"
            return text, str(code) if code is not None else None
    snippet = " ".join(response.text.split())[:200] if response.content else ""
    reason = response.reason_phrase or "error"
    text = f"HTTP {response.status_code} {reason}" + (f": {snippet}" if snippet else "")
    return text, None


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
    """What one HTTP attempt came to, when it did not succeed."""

    text: str
    status_code: int | None = None
    code: str | None = None
    retry_after: float | None = None


class InfobipSmsClient:
    """Sends SMS through one Infobip account; see the module docstring for retries."""

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
        return f"InfobipSmsClient(base_url={self.credentials.base_url!r})"

    # -- public API ---------------------------------------------------------------------

    def send(
        self, messages: list[InfobipMessage], *, bulk_id: str, reconcile: bool = False
    ) -> list[DestinationResult]:
        """Send every destination exactly once; one result per destination, in order.

        `reconcile` changes nothing: resending is always safe because Infobip refuses a
        messageId it already accepted (see the module docstring).
        """
        payload = build_messages_payload(messages, bulk_id)
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

    def __enter__(self) -> InfobipSmsClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------

    def _delay(self, failures: int, retry_after: float | None) -> float:
        """Backoff before the next attempt after `failures` failed ones."""
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
