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
- A 200 answers per destination, mapped by `integrations.infobip_common.destination_result`:
  PENDING, ACCEPTED and DELIVERED groups are accepted; REJECTED, UNDELIVERABLE and EXPIRED
  ones are refused and name the status (id, name, description).

Request body (Infobip OpenAPI 3.210, `MmsUnificationRequest`): `messages[]` with `sender`,
`destinations[{to, messageId}]` (numbers without "+"), `content{title, messageSegments}`
where the segments are a TEXT one (`text`) and a LINK one (`contentType`, `contentUrl`),
and `options.smsFailover{sender, text}`; the bulk id goes in the top-level
`options.schedule.bulkId`, as in SMS v3 (MMS has no `includeSmsCountInResponse`).

The same limits as the SMS client apply to the scheme: whether Infobip also remembers
*rejected* messageIds, and for how long it remembers any, is not published.

The account, the request checks shared with SMS (destinations, messageIds, bulk id), the
status mapping, the error bodies and the retries live in `integrations.infobip_common`;
this module adds the MMS message, its content and failover, and their checks. Vendor
errors become `ProviderError` there and here and nowhere else. The API key lives in a
`SecretStr` and is added to each request by an `httpx.Auth`; it is never logged, shown in
a repr or put in an exception message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from integrations.infobip_common import (
    DestinationResult,
    InfobipClient,
    InfobipCredentials,
    build_request,
)

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


# -- request --------------------------------------------------------------------------------


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


def _content(i: int, message: InfobipMmsMessage) -> dict[str, Any]:
    """`content` (title and segments) and `options` (the failover) of one message."""
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
    return {"content": content} if options is None else {"content": content, "options": options}


def build_mms_payload(
    messages: list[InfobipMmsMessage], bulk_id: str, report_url: str | None = None
) -> dict[str, Any]:
    """The JSON body of `POST /mms/2/messages`; raises ValueError on a request this client
    will not send (Infobip would refuse it, or it could not be made exactly-once)."""
    return build_request(messages, bulk_id, _content, report_url)


# -- client ---------------------------------------------------------------------------------


class InfobipMmsClient(InfobipClient):
    """Sends MMS through one Infobip account; see the module docstring for retries."""

    send_path = SEND_PATH

    def _payload(
        self, messages: Sequence[InfobipMmsMessage], bulk_id: str, report_url: str | None
    ) -> dict[str, Any]:
        return build_mms_payload(list(messages), bulk_id, report_url)
