"""What the Infobip SMS and MMS clients share: one account, one request shape, one answer.

- `InfobipCredentials`: the account's API host and its key (`Authorization: App`).
- Requests: both APIs take `messages[]`, each with a `sender` and `destinations[{to,
  messageId}]`, and the bulk id in `options.schedule.bulkId`. `build_request` checks what
  both need (at most 1,000 destinations, E.164 numbers, a unique messageId of at most 200
  characters per destination, a bulk id of at most 100) and leaves each message's content
  to the client.
- Answers: a 200 lists a status per destination, which `destination_result` maps
  (PENDING, ACCEPTED and DELIVERED groups and status 23 `REJECTED_DUPLICATE_MESSAGE_ID`
  are accepted); error bodies come as v3 (`errorCode`, `description`, `violations`) or
  legacy (`requestError.serviceException`).
- `InfobipClient`: the client both inherit: posting one request with retries, the same
  request each time, so that a destination an earlier attempt had accepted comes back as a
  duplicate (see `integrations.infobip_sms` for the scheme and its limits).

Vendor errors become `ProviderError` here (and in the two client modules) and nowhere else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import httpx
from pydantic import BaseModel, SecretStr, field_validator

from engine.errors import ProviderError
from integrations.http import (
    AppKeyAuth,
    Connection,
    Failure,
    ProviderClient,
    http_summary,
    read_json,
    retry,
    retry_after,
)

logger = logging.getLogger(__name__)

MAX_DESTINATIONS = 1000
MAX_MESSAGE_ID = 200  # `destinations[].messageId` is 0..200 characters in Infobip's spec
MAX_BULK_ID = 100  # Infobip clips longer bulk ids

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
class DestinationResult:
    """What Infobip said about one destination. `status_code`, `error` and `comment` are
    Infobip's status id, name and description, set when the destination was refused."""

    to: str
    message_id: str
    accepted: bool
    status_code: int | None = None
    error: str | None = None
    comment: str | None = None


# -- request --------------------------------------------------------------------------------


class OutgoingMessage(Protocol):
    """What `build_request` reads of a client's message type."""

    @property
    def sender(self) -> str: ...

    @property
    def destinations(self) -> list[tuple[str, str]]: ...


M = TypeVar("M", bound=OutgoingMessage)


def _is_e164(number: str) -> bool:
    return number[:1] == "+" and number[1:].isdigit() and number.isascii()


def build_request(
    messages: Sequence[M],
    bulk_id: str,
    content: Callable[[int, M], dict[str, Any]],
    report_url: str | None = None,
) -> dict[str, Any]:
    """The JSON body both APIs take: `messages[]` with `sender`, `destinations` and the
    fields `content(i, message)` returns, `webhooks.delivery.url` when `report_url` is
    given (else the account's configured URL gets the reports), and
    `options.schedule.bulkId`. Raises ValueError on a request this client will not send
    (Infobip would refuse it, or it could not be made exactly-once); `content` raises it
    for its own fields."""
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
        fields = content(i, message)
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
        if report_url is not None:
            fields["webhooks"] = {"delivery": {"url": report_url}}
        body.append({"sender": message.sender, "destinations": destinations, **fields})
    return {"messages": body, "options": {"schedule": {"bulkId": bulk_id}}}


# -- answers --------------------------------------------------------------------------------


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


def _results(
    response: httpx.Response, expected: list[tuple[str, str]]
) -> list[DestinationResult] | Failure:
    """Match a 2xx answer's statuses to the destinations by messageId."""
    status = response.status_code
    data = read_json(response)
    listed = data.get("messages") if isinstance(data, dict) else None
    if not isinstance(listed, list):
        return Failure(f"unreadable {status} answer", status_code=status)
    by_id = {
        item["messageId"]: item.get("status")
        for item in listed
        if isinstance(item, dict) and isinstance(item.get("messageId"), str)
    }
    missing = sum(1 for _, mid in expected if mid not in by_id)
    if missing:
        return Failure(
            f"the {status} answer lists no status for {missing} of {len(expected)} destinations",
            status_code=status,
        )
    return [destination_result(to, mid, by_id[mid]) for to, mid in expected]


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
            texts = found if isinstance(found, list) else [found]
            lines.extend(f"{prop}: {text}" for text in texts)
    return lines


def _error_details(response: httpx.Response) -> tuple[str, str | None]:
    """(text, code) from an Infobip v3 or legacy error body; tolerant of anything else."""
    data = read_json(response)
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
    if text is None:
        return http_summary(response), None
    if lines:
        text += " (" + "; ".join(lines) + ")"
    return text, str(code) if code is not None else None


# -- client ---------------------------------------------------------------------------------


class InfobipClient(ProviderClient[InfobipCredentials]):
    """Posts `messages[]` requests to one Infobip account with retries; the SMS and MMS
    clients say where (`send_path`) and build their payload (`_payload`)."""

    send_path: str

    def send(
        self,
        messages: Sequence[OutgoingMessage],
        *,
        bulk_id: str,
        reconcile: bool = False,
        report_url: str | None = None,
    ) -> list[DestinationResult]:
        """Send every destination exactly once; one result per destination, in order.
        Delivery reports go to `report_url` when given.

        `reconcile` changes nothing: resending is always safe because Infobip refuses a
        messageId it already accepted (see the module docstring).
        """
        payload = self._payload(messages, bulk_id, report_url)
        return self._send(self.send_path, payload, messages, bulk_id)

    def _payload(
        self, messages: Sequence[Any], bulk_id: str, report_url: str | None
    ) -> dict[str, Any]:
        raise NotImplementedError

    def _connection(self) -> Connection:
        return Connection(self.credentials.base_url, AppKeyAuth(self.credentials.api_key))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.credentials.base_url!r})"

    def _send(
        self,
        path: str,
        payload: dict[str, Any],
        messages: Sequence[OutgoingMessage],
        bulk_id: str,
    ) -> list[DestinationResult]:
        """Post `payload` until Infobip answers for every destination; one result per
        destination, in the order of `messages`."""
        expected = [(to, mid) for message in messages for to, mid in message.destinations]
        self._pace(len(expected))
        outcome = retry(
            lambda: self._post_once(path, payload, expected),
            self._retries,
            what=f"Infobip POST {path} (bulkId {bulk_id!r})",
            logger=logger,
        )
        if not isinstance(outcome, Failure):
            return outcome
        raise ProviderError(
            f"Infobip POST {path} (bulkId {bulk_id!r}) failed {self._retries.max_attempts} "
            f"times: {outcome.text}; sending the same messageIds again is safe",
            status_code=outcome.status_code,
            code=outcome.code,
            retryable=True,
        )

    def _post_once(
        self, path: str, payload: dict[str, Any], expected: list[tuple[str, str]]
    ) -> list[DestinationResult] | Failure:
        # Every failure is retried the same way, so there is no "unknown" to tell apart.
        try:
            response = self._http.post(path, json=payload)
        except httpx.TimeoutException as exc:
            return Failure(f"timed out ({type(exc).__name__})")
        except httpx.TransportError as exc:
            return Failure(f"connection failed ({type(exc).__name__}: {exc})")

        status = response.status_code
        if 200 <= status < 300:
            return _results(response, expected)
        text, code = _error_details(response)
        if status == 429 or status >= 500:
            return Failure(text, status_code=status, code=code, retry_after=retry_after(response))
        raise ProviderError(text, status_code=status, code=code, retryable=False)
