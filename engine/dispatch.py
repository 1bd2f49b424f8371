"""Planning provider requests: which recipients share one request, and with what body.

DESIGN.md decision 3: one request carries up to 1,000 recipients. When the template is
literal text and `{{ expressions }}` only, every expression becomes a Sinch parameter
(`${p1}`, `${p2}`, ...) with a value per recipient, so a whole batch is one request.
Otherwise recipients whose rendered text is identical share a request, and only a truly
unique text costs a request of its own. Pure functions: no I/O.

A rich MMS offers suggested replies (`Choice`) or is a `Location`. The Sinch Conversation
API has message kinds for both and transcodes them to text on its MMS channel (seed 003);
the other MMS APIs take text only, so their gateways send `rich_text`, the same reading:

    Do you want our newsletter?                  the text (a location MMS has none)
    1. Yes                                       a text choice
    2. Read one first: https://example.com/n     a URL choice: its text and its URL
    Main Street store                            a location: its title,
    Open 9 to 5                                    its label (when it has one),
    https://maps.google.com/?q=40.7128,-74.006     and a maps link

Sinch shows its own transcoding only as screenshots, so this is the project's model of it;
the simulator applies it to what the Conversation API receives.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engine.templates import SplitTemplate

MAX_RECIPIENTS = 1000
# Sinch's documented limit for one parameter value (older docs): longer values cannot ride
# as parameters, so those recipients fall back to grouping by text.
MAX_PARAMETER_LENGTH = 160
MAPS_URL = "https://maps.google.com/?q={latitude},{longitude}"


@dataclass(frozen=True)
class Outgoing:
    """One rendered message to one phone."""

    send_key: str
    phone: str
    text: str
    values: tuple[str, ...] | None = None  # the template's expression values, when split


@dataclass(frozen=True)
class PlannedDispatch:
    """One provider request."""

    key: str
    body: str
    recipients: tuple[str, ...]
    send_keys: tuple[str, ...]
    parameters: dict[str, dict[str, str]] | None = None
    # What a channel adds to the request (an MMS's subject, media and fallback).
    extra: dict[str, Any] = field(default_factory=dict)

    def payload(self, sender: str) -> dict:
        """What is stored as the intent and resent verbatim after a crash: the provider-
        neutral request each gateway turns into its provider's own."""
        return {
            "sender": sender,
            "body": self.body,
            "recipients": list(self.recipients),
            "send_keys": list(self.send_keys),
            "parameters": self.parameters,
            **self.extra,
        }


def dispatch_key(send_keys: Iterable[str]) -> str:
    """Deterministic and short enough for Sinch's 128-character client_reference."""
    digest = hashlib.sha256("\n".join(sorted(send_keys)).encode()).hexdigest()
    return f"scn-{digest[:40]}"


def without_sends(payload: dict[str, Any], send_keys: Collection[str]) -> dict[str, Any]:
    """A stored request's payload without the messages of `send_keys`: their recipients
    and their parameter values go, the rest is kept as it was (phones are distinct within
    one request, so a phone names one message)."""
    kept = [
        (phone, key)
        for phone, key in zip(payload["recipients"], payload["send_keys"], strict=True)
        if key not in send_keys
    ]
    phones = {phone for phone, _key in kept}
    parameters = payload.get("parameters")
    if parameters:
        parameters = {
            name: {phone: value for phone, value in values.items() if phone in phones}
            for name, values in parameters.items()
        }
    return {
        **payload,
        "recipients": [phone for phone, _key in kept],
        "send_keys": [key for _phone, key in kept],
        "parameters": parameters,
    }


def plan_dispatches(
    messages: Sequence[Outgoing],
    split: SplitTemplate | None,
    max_recipients: int = MAX_RECIPIENTS,
) -> list[PlannedDispatch]:
    """Group messages into as few requests as the provider allows."""
    by_parameters: list[Outgoing] = []
    by_text: dict[str, list[Outgoing]] = {}
    parameterizable = split is not None and bool(split.expressions)
    for message in messages:
        if (
            parameterizable
            and message.values is not None
            and all(len(value) <= MAX_PARAMETER_LENGTH for value in message.values)
        ):
            by_parameters.append(message)
        else:
            by_text.setdefault(message.text, []).append(message)

    plans = []
    if by_parameters:
        assert split is not None
        names = tuple(f"p{number}" for number in range(1, len(split.expressions) + 1))
        body = split.placeholder_body(names)
        for chunk in _chunks_with_distinct_phones(by_parameters, max_recipients):
            parameters = {
                name: {m.phone: m.values[position] for m in chunk}  # type: ignore[index]
                for position, name in enumerate(names)
            }
            plans.append(_plan(chunk, body, parameters))
    for text, group in by_text.items():
        for chunk in _chunks_with_distinct_phones(group, max_recipients):
            plans.append(_plan(chunk, text, None))
    return plans


def plan_by_content(
    messages: Sequence[Outgoing],
    extras: Sequence[dict[str, Any]],
    max_recipients: int = MAX_RECIPIENTS,
) -> list[PlannedDispatch]:
    """Group messages whose text and extras are identical (MMS: subject, media, fallback)."""
    groups: dict[str, tuple[dict[str, Any], list[Outgoing]]] = {}
    for message, extra in zip(messages, extras, strict=True):
        identity = repr((message.text, sorted(extra.items())))
        groups.setdefault(identity, (extra, []))[1].append(message)
    return [
        _plan(chunk, chunk[0].text, None, extra)
        for extra, group in groups.values()
        for chunk in _chunks_with_distinct_phones(group, max_recipients)
    ]


def _plan(
    chunk: list[Outgoing],
    body: str,
    parameters: dict[str, dict[str, str]] | None,
    extra: dict[str, Any] | None = None,
) -> PlannedDispatch:
    keys = tuple(m.send_key for m in chunk)
    return PlannedDispatch(
        key=dispatch_key(keys),
        body=body,
        recipients=tuple(m.phone for m in chunk),
        send_keys=keys,
        parameters=parameters,
        extra=extra or {},
    )


def _chunks_with_distinct_phones(
    messages: list[Outgoing], max_recipients: int
) -> list[list[Outgoing]]:
    # Parameters are keyed by phone number, so one request may carry each phone once;
    # a second message to the same phone (two customers sharing it) goes to a later chunk.
    chunks: list[tuple[list[Outgoing], set[str]]] = []
    for message in messages:
        for chunk, phones in chunks:
            if len(chunk) < max_recipients and message.phone not in phones:
                chunk.append(message)
                phones.add(message.phone)
                break
        else:
            chunks.append(([message], {message.phone}))
    return [chunk for chunk, _ in chunks]


_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9._-]+)\}")


def recipient_text(body: str, parameters: dict[str, dict[str, str]] | None, phone: str) -> str:
    """One recipient's text from a placeholder body, as Sinch renders `${name}`; for
    providers that take a text per message rather than parameters."""
    if not parameters:
        return body
    return _PLACEHOLDER.sub(lambda match: parameters[match.group(1)][phone], body)


# -- a rich MMS as text ---------------------------------------------------------------------


class Choice(BaseModel):
    """A suggested reply: a text to answer with, or a link (`url`). `postback_data` is
    what the Conversation API reports when the contact picks it (its default is the
    message id and the text)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str = Field(min_length=1)
    postback_data: str | None = Field(default=None, min_length=1)
    url: str | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError(f"url '{value}' is not an http(s) URL")
        return value


class Location(BaseModel):
    """A place: its title, an optional label (a name or an address) and its coordinates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = Field(min_length=1)
    label: str | None = Field(default=None, min_length=1)
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)

    def maps_link(self) -> str:
        return MAPS_URL.format(latitude=self.latitude, longitude=self.longitude)


def choice_lines(choices: Sequence[Choice], first: int = 1) -> list[str]:
    """`1. Yes`, `2. Read one first: https://...`: numbered from `first`."""
    return [
        f"{number}. {choice.text}" + (f": {choice.url}" if choice.url else "")
        for number, choice in enumerate(choices, first)
    ]


def location_lines(location: Location) -> list[str]:
    """The title, the label when there is one, and a maps link."""
    label = [location.label] if location.label else []
    return [location.title, *label, location.maps_link()]


def rich_text(text: str, choices: Sequence[Choice] = (), location: Location | None = None) -> str:
    """What the handset reads: the text, then the choices, then the location, a line each
    (see the module docstring)."""
    lines = [text] if text else []
    lines += choice_lines(choices)
    if location is not None:
        lines += location_lines(location)
    return "\n".join(lines)
