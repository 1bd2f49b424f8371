"""Sinch Conversation API client for the MMS channel, synchronous httpx:
`POST https://{us|eu}.conversation.api.sinch.com/v1/projects/{project_id}/messages:send`.

One `send()` is one MMS to one number, addressed by channel identity (`MMS`, the number
without "+") and pinned to the MMS channel (`channel_priority_order: ["MMS"]`). The
message becomes, in the shapes of Sinch's API reference and SDK fixtures:

- a `carousel_message` when there are cards: `{cards: [{title, description,
  media_message: {url}, choices}], choices}` (at most 10 cards, 10 choices a card and 3
  outer choices), alone: no subject, text, media or location;
- a `location_message` when there is a location: `{title, label, coordinates: {latitude,
  longitude}}`, alone: no subject, text, media or choices;
- a `choice_message` when there are choices: `{text_message: {text}, choices: [...]}`,
  1 to 10 choices, each `{text_message: {text}}` or `{url_message: {title, url}}` with an
  optional `postback_data`; no subject or media;
- a `card_message` when there is a subject (its `title` is the MMS subject, at most 80
  ASCII characters; the text is the `description`, the media its `media_message`) or
  when there are both a text and a media;
- else a `media_message` (media only) or a `text_message` (text only).

MMS has no choices, carousels or locations: Sinch sends them as text (seed 003), read as
`engine.dispatch.rich_text` models it.

`channel_properties.MMS_SENDER` carries the sender, left out when there is none (the
app's default sender is used). The send key travels as `correlation_id` (propagated to
delivery reports and replies) and as `message_metadata` (returned as `metadata` in the
`MESSAGE_DELIVERY` report).

Authentication: an OAuth2 client-credentials token from `auth_url` (HTTP Basic with the
access key id and secret), cached until shortly before it expires; a 401 on a send
fetches a new token and sends again, once (a 401 means nothing was accepted).

Answers and retries follow the Sinch MMS client (`integrations.sinch_mms`):

- 200 `{"message_id", "accepted_time"}`: accepted; `tracking_id` is the message_id.
  Refusals of the message itself arrive later, in `MESSAGE_DELIVERY` reports.
- Request-wide errors, `{"error": {"code": 400, "message": ..., "status":
  "INVALID_ARGUMENT"}}` and other 4xx, raise `ProviderError(retryable=False)` with the
  message as text and the status (`INVALID_ARGUMENT`, `PERMISSION_DENIED`, ...) as code.
- 429 and a failure to open the connection mean nothing was accepted: wait and post again;
  exhausted retries raise `ProviderError(retryable=True)`. Token requests are retried the
  same way (they have no side effects).
- A timeout after the request was written, a dropped connection, a 5xx or an unreadable
  200 leave the outcome unknown. The API offers no look-up by client reference (listing
  messages filters by contact, conversation, channel identity and time, not by
  `correlation_id` or metadata, and only in CONVERSATION processing mode), so the message
  is not posted again: `send()` returns the unknown-outcome receipt, and
  `send(reconcile=True)` returns it at once without any HTTP call.

Vendor errors become `ProviderError` here and nowhere else. The key secret and the
access token live in `SecretStr`s and are added to each request at send time; they are
never logged, shown in a repr or put in an exception message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

import httpx
from pydantic import BaseModel, SecretStr, field_validator

from engine.dispatch import Choice, Location
from engine.errors import ProviderError
from integrations.http import (
    BearerAuth,
    Failure,
    ProviderClient,
    google_error,
    http_summary,
    read_json,
    retry,
    retry_after,
    transport_failure,
)
from integrations.sinch_mms import (
    MmsReceipt,
    check_client_reference,
    check_subject_and_text,
    e164_digits,
    reconcile_unknown,
    send_at_most_once,
)

logger = logging.getLogger(__name__)

CONVERSATION_REGIONS: dict[str, str] = {
    region: f"https://{region}.conversation.api.sinch.com" for region in ("us", "eu")
}
DEFAULT_AUTH_URL = "https://auth.sinch.com/oauth2/token"
CHANNEL = "MMS"
MAX_CHOICES = 10  # a choice message's choices, and a carousel card's
MAX_CARDS = 10  # a carousel's cards
MAX_OUTER_CHOICES = 3  # a carousel's own choices, below its cards
TOKEN_MARGIN_SECONDS = 60.0  # refresh this long before expiry (at most a tenth of the lifetime)
DEFAULT_TOKEN_SECONDS = 3600.0  # when the token answer has no usable expires_in


def _http_url(value: str) -> str:
    value = value.strip().rstrip("/")
    if not value.startswith(("https://", "http://")):
        raise ValueError("must start with https:// (or http:// for a simulator)")
    return value


class ConversationCredentials(BaseModel):
    """Where and as whom to call the Conversation API: a project, an app with the MMS
    channel configured, and an access key (key id and secret) of the project."""

    project_id: str
    app_id: str
    key_id: str
    key_secret: SecretStr
    region: Literal["us", "eu"] = "us"
    base_url: str | None = None
    """Overrides the regional host, e.g. `http://127.0.0.1:8765` for the simulator."""
    auth_url: str = DEFAULT_AUTH_URL

    @field_validator("project_id", "app_id", "key_id")
    @classmethod
    def _id_not_blank(cls, value: str) -> str:
        if not value.strip() or "/" in value:
            raise ValueError("must be a non-empty id without '/'")
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value)

    @field_validator("auth_url")
    @classmethod
    def _auth_url(cls, value: str) -> str:
        return _http_url(value)

    def endpoint(self) -> str:
        """`{base}/v1/projects/{project_id}/messages:send`."""
        base = self.base_url or CONVERSATION_REGIONS[self.region]
        return f"{base}/v1/projects/{self.project_id}/messages:send"


@dataclass(frozen=True)
class CarouselCard:
    """One card of a carousel: any of a title, a description and a media, and choices."""

    title: str | None = None
    description: str | None = None
    media_url: str | None = None
    choices: tuple[Choice, ...] = ()


@dataclass(frozen=True)
class ConversationMessage:
    """One MMS to one number through the Conversation API. `to` is E.164 with "+";
    `sender` the MMS short code or long number (None: the app's default sender);
    `subject` becomes the card title; `client_reference` is the send key. `choices`,
    `location` and `carousel` make it a choice, location or carousel message (see the
    module docstring for what goes with what)."""

    to: str
    sender: str | None
    subject: str | None
    text: str
    media_url: str | None
    client_reference: str
    choices: tuple[Choice, ...] = ()
    location: Location | None = None
    carousel: tuple[CarouselCard, ...] = ()


def _check_media_url(url: str | None) -> None:
    if url is not None and not url.startswith(("https://", "http://")):
        raise ValueError(f"media_url {url!r} is not an http(s) URL")


def _alone(kind: str, message: ConversationMessage, *others: str) -> None:
    """ValueError when `message` sets any of `others` beside its `kind`."""
    given = [name for name in others if getattr(message, name)]
    if given:
        raise ValueError(f"a {kind} carries no {' or '.join(given)}")


def _choice_body(choice: Choice) -> dict[str, Any]:
    """`{text_message: {text}}` or `{url_message: {title, url}}`, with `postback_data`."""
    body: dict[str, Any] = (
        {"url_message": {"title": choice.text, "url": choice.url}}
        if choice.url is not None
        else {"text_message": {"text": choice.text}}
    )
    if choice.postback_data is not None:
        body["postback_data"] = choice.postback_data
    return body


def _choices_body(choices: tuple[Choice, ...], limit: int, where: str) -> list[dict[str, Any]]:
    if len(choices) > limit:
        raise ValueError(f"{where} holds {len(choices)} choices; at most {limit}")
    return [_choice_body(choice) for choice in choices]


def _card_body(card: CarouselCard, number: int) -> dict[str, Any]:
    if not (card.title or card.description or card.media_url):
        raise ValueError(f"carousel card {number} needs a title, a description or a media")
    _check_media_url(card.media_url)
    body: dict[str, Any] = {}
    if card.title:
        body["title"] = card.title
    if card.description:
        body["description"] = card.description
    if card.media_url is not None:
        body["media_message"] = {"url": card.media_url}
    if card.choices:
        body["choices"] = _choices_body(card.choices, MAX_CHOICES, f"carousel card {number}")
    return body


def _carousel_body(message: ConversationMessage) -> dict[str, Any]:
    _alone("carousel", message, "subject", "text", "media_url", "location")
    if len(message.carousel) > MAX_CARDS:
        raise ValueError(f"a carousel holds at most {MAX_CARDS} cards, got {len(message.carousel)}")
    carousel: dict[str, Any] = {
        "cards": [_card_body(card, n) for n, card in enumerate(message.carousel, 1)]
    }
    if message.choices:
        carousel["choices"] = _choices_body(message.choices, MAX_OUTER_CHOICES, "a carousel")
    return {"carousel_message": carousel}


def _location_body(message: ConversationMessage) -> dict[str, Any]:
    _alone("location message", message, "subject", "text", "media_url", "choices")
    location = message.location
    assert location is not None
    body: dict[str, Any] = {
        "coordinates": {"latitude": location.latitude, "longitude": location.longitude},
        "title": location.title,
    }
    if location.label:
        body["label"] = location.label
    return {"location_message": body}


def _choice_message_body(message: ConversationMessage) -> dict[str, Any]:
    _alone("choice message", message, "subject", "media_url")
    choice: dict[str, Any] = {}
    if message.text:
        choice["text_message"] = {"text": message.text}
    choice["choices"] = _choices_body(message.choices, MAX_CHOICES, "a choice message")
    return {"choice_message": choice}


def _plain_body(message: ConversationMessage) -> dict[str, Any]:
    """A card, a media or a text message."""
    subject, media = message.subject, message.media_url
    if not message.text and media is None:
        raise ValueError("an MMS needs a text or a media")
    if subject is None and not (message.text and media is not None):
        if media is not None:
            return {"media_message": {"url": media}}
        return {"text_message": {"text": message.text}}
    card: dict[str, Any] = {}
    if subject is not None:
        card["title"] = subject
    if message.text:
        card["description"] = message.text
    if media is not None:
        card["media_message"] = {"url": media}
    return {"card_message": card}


def message_body(message: ConversationMessage) -> dict[str, Any]:
    """The request's `message`: one message kind (see the module docstring); raises
    ValueError on a message this client will not send."""
    if message.carousel:
        return _carousel_body(message)
    if message.location is not None:
        return _location_body(message)
    if message.choices:
        return _choice_message_body(message)
    return _plain_body(message)


def build_send_payload(app_id: str, message: ConversationMessage) -> dict[str, Any]:
    """The JSON body of `messages:send`; raises ValueError on a message this client will
    not send."""
    identity = e164_digits(message.to)
    check_client_reference(message.client_reference)
    message = replace(message, subject=message.subject or None)
    check_subject_and_text(message.subject, message.text)
    _check_media_url(message.media_url)
    payload: dict[str, Any] = {
        "app_id": app_id,
        "recipient": {
            "identified_by": {"channel_identities": [{"channel": CHANNEL, "identity": identity}]}
        },
        "message": message_body(message),
        "channel_priority_order": [CHANNEL],
    }
    sender = (message.sender or "").strip().removeprefix("+")
    if sender:
        payload["channel_properties"] = {"MMS_SENDER": sender}
    payload["correlation_id"] = message.client_reference
    payload["message_metadata"] = message.client_reference
    return payload


def _error_details(response: httpx.Response) -> tuple[str, str | None]:
    """(text, code) from `{"error": {"code", "message", "status"}}` or an OAuth2
    `{"error", "error_description"}` body; tolerant of anything else."""
    data = read_json(response)
    if (found := google_error(data)) is not None:
        return found
    nested = data.get("error") if isinstance(data, dict) else None
    if isinstance(nested, str):
        description = data.get("error_description")
        text = f"{nested}: {description}" if isinstance(description, str) else nested
        return text, nested
    return http_summary(response), None


class SinchConversationClient(ProviderClient[ConversationCredentials]):
    """Sends MMS through one Conversation API app; see the module docstring.

    Takes `ProviderClient`'s options, and `clock`, the monotonic clock that tells when the
    access token expires. Each request names its own URL (the token's and the API's) and
    auth, so the httpx.Client has neither."""

    def __init__(
        self,
        credentials: ConversationCredentials,
        *,
        clock: Callable[[], float] = time.monotonic,
        **options: Any,
    ):
        super().__init__(credentials, **options)
        self._clock = clock
        self._token: SecretStr | None = None
        self._token_expires_at = 0.0

    def __repr__(self) -> str:
        return f"SinchConversationClient(endpoint={self.credentials.endpoint()!r})"

    # -- public API ---------------------------------------------------------------------

    def send(self, message: ConversationMessage, *, reconcile: bool = False) -> MmsReceipt:
        """Send one MMS at most once and say what became of it.

        `reconcile=True` is for a message whose earlier attempt's outcome is unknown: with
        no look-up available it is not sent again and the unknown-outcome receipt comes
        back. Raises ValueError on an invalid message, before any HTTP call, and
        ProviderError when the API cannot be used.
        """
        payload = build_send_payload(self.credentials.app_id, message)
        ref = message.client_reference
        key = f"Conversation correlation_id {ref!r}"
        if reconcile:
            return reconcile_unknown(message.to, key=key, log=logger)
        self._pace(1)

        refreshed = False  # a 401 fetches a new token once per send

        def attempt() -> MmsReceipt | Failure:
            nonlocal refreshed
            outcome = self._post_once(payload, self._access_token(), message.to)
            if isinstance(outcome, Failure) and outcome.status_code == 401 and not refreshed:
                logger.info("Conversation API refused the access token; fetching a new one")
                refreshed = True
                self._token = None
                outcome = self._post_once(payload, self._access_token(), message.to)
            if isinstance(outcome, Failure) and outcome.status_code == 401:
                raise ProviderError(
                    outcome.text, status_code=401, code=outcome.code, retryable=False
                )
            return outcome

        return send_at_most_once(
            attempt,
            self._retries,
            to=message.to,
            what=f"Conversation messages:send (correlation_id {ref!r})",
            key=key,
            log=logger,
        )

    # -- internals ----------------------------------------------------------------------

    def _access_token(self) -> SecretStr:
        """The cached token, or a new one when there is none or it is about to expire."""
        if self._token is not None and self._clock() < self._token_expires_at:
            return self._token
        outcome = retry(
            self._fetch_token, self._retries, what="Sinch OAuth2 token request", logger=logger
        )
        if isinstance(outcome, SecretStr):
            return outcome
        raise ProviderError(
            f"Sinch OAuth2 token request failed {self._retries.max_attempts} times: {outcome.text}",
            status_code=outcome.status_code,
            code=outcome.code,
            retryable=True,
        )

    def _fetch_token(self) -> SecretStr | Failure:
        credentials = self.credentials
        started = self._clock()
        try:
            response = self._http.post(
                credentials.auth_url,
                data={"grant_type": "client_credentials"},
                auth=httpx.BasicAuth(credentials.key_id, credentials.key_secret.get_secret_value()),
            )
        except httpx.TransportError as exc:
            return Failure(f"token request failed ({type(exc).__name__})")
        status = response.status_code
        if 200 <= status < 300:
            data = read_json(response)
            token = data.get("access_token") if isinstance(data, dict) else None
            if not isinstance(token, str) or not token:
                return Failure(f"unreadable {status} token answer", status_code=status)
            lifetime = data.get("expires_in")
            if not isinstance(lifetime, int | float) or lifetime <= 0:
                lifetime = DEFAULT_TOKEN_SECONDS
            margin = min(TOKEN_MARGIN_SECONDS, lifetime / 10)
            self._token = SecretStr(token)
            self._token_expires_at = started + lifetime - margin
            return self._token
        text, code = _error_details(response)
        if status == 429 or status >= 500:
            return Failure(text, status_code=status, code=code, retry_after=retry_after(response))
        raise ProviderError(
            f"Sinch OAuth2 token request refused: {text}",
            status_code=status,
            code=code,
            retryable=False,
        )

    def _post_once(
        self, payload: dict[str, Any], token: SecretStr, to: str
    ) -> MmsReceipt | Failure:
        try:
            response = self._http.post(
                self.credentials.endpoint(), json=payload, auth=BearerAuth(token)
            )
        except httpx.TransportError as exc:
            return transport_failure(exc)

        status = response.status_code
        if 200 <= status < 300:
            data = read_json(response)
            message_id = data.get("message_id") if isinstance(data, dict) else None
            if not isinstance(message_id, str) or not message_id:
                return Failure(f"unreadable {status} answer", status_code=status, unknown=True)
            return MmsReceipt(to=to, tracking_id=message_id, accepted=True)
        text, code = _error_details(response)
        if status == 401:
            return Failure(text, status_code=status, code=code)
        if status == 429:
            return Failure(text, status_code=status, code=code, retry_after=retry_after(response))
        if status >= 500:
            return Failure(text, status_code=status, code=code, unknown=True)
        raise ProviderError(text, status_code=status, code=code, retryable=False)
