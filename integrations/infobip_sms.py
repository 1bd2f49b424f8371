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

The account, the request checks shared with MMS, the status mapping, the error bodies and
the retries live in `integrations.infobip_common`; this module adds the SMS message and
payload. Vendor errors become `ProviderError` there and here and nowhere else. The API key
lives in a `SecretStr` and is added to each request by an `httpx.Auth`; it is never logged,
shown in a repr or put in an exception message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from integrations.infobip_common import (
    DestinationResult,
    InfobipClient,
    InfobipCredentials,
    build_request,
    destination_result,
)

__all__ = [
    "SEND_PATH",
    "DestinationResult",
    "InfobipCredentials",
    "InfobipMessage",
    "InfobipSmsClient",
    "build_messages_payload",
    "destination_result",
]

SEND_PATH = "/sms/3/messages"


@dataclass(frozen=True)
class InfobipMessage:
    """One `messages[]` element: a sender and a text for some destinations, each an
    (E.164 number with "+", messageId) pair. The messageId makes that destination's send
    exactly-once, so it must be stable across retries and unique per message."""

    sender: str
    destinations: list[tuple[str, str]]
    text: str


def _content(i: int, message: InfobipMessage) -> dict[str, Any]:
    if not message.text:
        raise ValueError(f"message {i} has no text")
    return {"content": {"text": message.text}}


def build_messages_payload(
    messages: list[InfobipMessage], bulk_id: str, report_url: str | None = None
) -> dict[str, Any]:
    """The JSON body of `POST /sms/3/messages`; raises ValueError on a request this client
    will not send (and Infobip would refuse or could not make exactly-once)."""
    payload = build_request(messages, bulk_id, _content, report_url)
    payload["options"]["includeSmsCountInResponse"] = True
    return payload


class InfobipSmsClient(InfobipClient):
    """Sends SMS through one Infobip account; see the module docstring for retries."""

    send_path = SEND_PATH

    def _payload(
        self, messages: Sequence[InfobipMessage], bulk_id: str, report_url: str | None
    ) -> dict[str, Any]:
        return build_messages_payload(list(messages), bulk_id, report_url)
