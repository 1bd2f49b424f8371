"""MMS: a subject, a personalised text and one media file, with an SMS fallback.

The rules are the seeds': the subject has at most 80 characters and no emoji or other
non-ASCII characters; the text at most 1,600 characters; the media is an image
(GIF/JPG/PNG), a video (MP4) or a contact card (VCF), plus PDF and MOV where the Sinch
Conversation API carries them; MMS reaches US and Canadian recipients only. The fallback
SMS (`fallback: {text: ...}`), sent by the provider when the handset cannot take the MMS,
is split into 160-character messages (153 per part when concatenated); `fallback:
disabled` sends no fallback.

A rich MMS offers suggested replies (`choices`: at most 10, each a text reply `{text,
postback_data}` or a link `{text, url}`) after its text, or is a location (`location:
{title, label, latitude, longitude}`, with no text). Through the Sinch Conversation API
they go as a choice message or a location message, which Sinch sends as text on MMS;
through the other MMS APIs the gateway sends the same text itself (`engine.dispatch`
shows how it reads). So that a scenario reads the same whatever the default MMS provider
is, neither goes with a subject or a media (a choice or location message has none), and
choice texts and locations are literal (no Jinja).

The steps every message node shares (policies, send, tracking) are in `nodes/messaging.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engine.dispatch import (
    Choice,
    Location,
    Outgoing,
    PlannedDispatch,
    plan_by_content,
    rich_text,
)
from engine.errors import TemplateError
from engine.links import Link, LinkRules, rewrite_text
from engine.segments import segment
from engine.sending import Composed, Draft, Message, Refused
from engine.templates import render_many, split_template, template_error
from nodes.base import JourneyItem, NonBlank
from nodes.messaging import MAX_TEXT_LENGTH, MessageNode

if TYPE_CHECKING:
    from engine.scenario import Scenario
    from engine.settings import Sender, Settings

MAX_SUBJECT_LENGTH = 80
MMS_REGIONS = frozenset({"US", "CA"})
# Media file extensions and what kind of media each is.
MEDIA_TYPES = {
    "gif": "image/gif",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "mp4": "video/mp4",
    "vcf": "text/vcard",
}
# Only the Conversation API's MMS channel carries these (seed 003).
CONVERSATION_ONLY_MEDIA = {"pdf": "application/pdf", "mov": "video/quicktime"}
MAX_CHOICES = 10  # the Conversation API's limit for a choice message


class FallbackSms(BaseModel):
    """The SMS sent instead when the handset cannot take the MMS."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: NonBlank


class MmsNode(MessageNode):
    """Send an MMS to each customer: subject, personalised text, media, SMS fallback."""

    channel = "mms"

    type: Literal["mms"]
    subject: str | None = None
    text: str = ""  # required, except by a location MMS (see `problems`)
    media_url: str | None = None
    choices: list[Choice] | None = Field(default=None, min_length=1, max_length=MAX_CHOICES)
    location: Location | None = None
    fallback: FallbackSms | Literal["disabled"]

    @field_validator("subject")
    @classmethod
    def _subject(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if len(value) > MAX_SUBJECT_LENGTH:
            raise ValueError(f"subject has {len(value)} characters; the maximum is 80")
        if not value.isascii() or not value.isprintable():
            odd = sorted({c for c in value if not c.isascii() or not c.isprintable()})
            raise ValueError(
                f"subject may hold plain ASCII only, no emoji or other characters: {odd}"
            )
        return value

    @field_validator("media_url")
    @classmethod
    def _media_url(cls, value: str | None) -> str | None:
        if value is not None and urlparse(value).scheme not in ("http", "https"):
            raise ValueError(f"media_url '{value}' is not an http(s) URL")
        return value

    def problems(self, settings: Settings) -> list[tuple[str, str]]:
        found = super().problems(settings)
        for field, source in (("text", self.text), ("fallback.text", self._fallback_source())):
            if source is not None and (error := template_error(source)):
                found.append((field, error))
        if len(self.text) > MAX_TEXT_LENGTH:
            found.append(
                ("text", f"text has {len(self.text)} characters; the maximum is {MAX_TEXT_LENGTH}")
            )
        if self.media_url is not None and self.media_type(settings) is None:
            allowed = sorted(MEDIA_TYPES) + (
                sorted(CONVERSATION_ONLY_MEDIA) if self._via_conversation(settings) else []
            )
            found.append(
                (
                    "media_url",
                    f"media '{self._extension()}' is not supported here; use {', '.join(allowed)}"
                    + (
                        ""
                        if self._via_conversation(settings)
                        else " (pdf and mov through the Sinch Conversation API only)"
                    ),
                )
            )
        return found + self._rich_problems()

    def _rich_problems(self) -> list[tuple[str, str]]:
        """What a choice or location MMS may not hold, whatever the API (module docstring)."""
        found = []
        if self.location is not None:
            given = [
                name for name in ("text", "subject", "media_url", "choices") if getattr(self, name)
            ]
            if given:
                found.append(
                    (
                        "location",
                        "a location MMS is sent as a location message, which has no "
                        f"{', '.join(given)}: what it says goes in location.title and label",
                    )
                )
        elif not self.text.strip():
            found.append(("text", "text is required and not blank (only a location MMS has none)"))
        if self.choices and (self.subject or self.media_url):
            found.append(
                (
                    "choices",
                    "a choice message holds a text and its choices: no subject or media_url",
                )
            )
        literal = [
            (f"choices.{i}.text", choice.text) for i, choice in enumerate(self.choices or ())
        ]
        if self.location is not None:
            literal += [
                ("location.title", self.location.title),
                ("location.label", self.location.label),
            ]
        found += [
            (field, "is sent as written: Jinja is not supported here")
            for field, value in literal
            if value and any(mark in value for mark in ("{{", "{%", "{#"))
        ]
        if self.choices:
            split = split_template(self.text)
            least = len(rich_text("".join(split.literals) if split else "", self.choices))
            if least > MAX_TEXT_LENGTH:
                found.append(
                    (
                        "choices",
                        f"the text and its choices have at least {least} characters; "
                        f"the maximum is {MAX_TEXT_LENGTH}",
                    )
                )
        return found

    def handset_text(self, text: str) -> str:
        """What the handset reads for this node's rendered `text`: its choices and location
        follow it as lines of text (`engine.dispatch.rich_text`)."""
        return rich_text(text, self.choices or (), self.location)

    def _fallback_source(self) -> str | None:
        return self.fallback.text if isinstance(self.fallback, FallbackSms) else None

    def _extension(self) -> str:
        path = urlparse(self.media_url or "").path
        return path.rsplit(".", 1)[-1].lower() if "." in path else ""

    def _via_conversation(self, settings: Settings) -> bool:
        return self.provider_api(settings) == "sinch_conversation"

    def media_type(self, settings: Settings) -> str | None:
        """The media's content type, or None when this node's integration cannot carry it."""
        extension = self._extension()
        if extension in MEDIA_TYPES:
            return MEDIA_TYPES[extension]
        if self._via_conversation(settings):
            return CONVERSATION_ONLY_MEDIA.get(extension)
        return None

    def compose(
        self, settings: Settings, scenario: Scenario, drafts: Sequence[Draft]
    ) -> list[Composed | Refused]:
        contexts = [draft.item.template_context() for draft in drafts]
        texts = render_many(self.text, contexts)
        fallback_source = self._fallback_source()
        fallbacks: list[Any] = (
            render_many(fallback_source, contexts) if fallback_source else [None] * len(drafts)
        )
        sender = self.sender_for(settings, scenario)
        rules = self.link_rules(settings, scenario)
        return [
            self._composed(draft, text, fallback, sender, rules)
            for draft, text, fallback in zip(drafts, texts, fallbacks, strict=True)
        ]

    def channel_failure(self, item: JourneyItem) -> Refused | None:
        if item.region in MMS_REGIONS:
            return None
        where = item.region or "no known country"
        return Refused("mms_not_available", f"MMS reaches US and CA recipients only, not {where}")

    def _composed(
        self,
        draft: Draft,
        text: Any,
        fallback: Any,
        sender: Sender | None,
        rules: LinkRules | None,
    ) -> Composed | Refused:
        if failure := self.recipient_failure(draft.item, sender):
            return failure
        for rendered in (text, fallback):
            if isinstance(rendered, TemplateError):
                return Refused("template_error", str(rendered))
        links: tuple[Link, ...] = ()
        if rules is not None:  # the fallback's links are numbered on after the MMS text's
            codes = draft.link_codes()
            text, links = rewrite_text(rules, text, codes)
            if fallback is not None:
                fallback, more = rewrite_text(rules, fallback, codes, len(links) + 1)
                links += more
        if len(text) > MAX_TEXT_LENGTH:
            return Refused(
                "text_too_long",
                f"rendered text has {len(text)} characters; the maximum is {MAX_TEXT_LENGTH}",
            )
        if fallback is None:
            return Composed(text=text, links=links)
        # The fallback SMS is what is counted in parts, should the provider send it.
        segmentation = segment(fallback)
        return Composed(
            text=text,
            links=links,
            fallback_text=fallback,
            parts=segmentation.parts,
            encoding=segmentation.encoding,
            segmentation=segmentation,
        )

    def plan(self, settings: Settings, messages: Sequence[Message]) -> list[PlannedDispatch]:
        media_type = self.media_type(settings) if self.media_url else None
        return plan_by_content(
            [Outgoing(m.send_key, m.phone, m.composed.text) for m in messages],
            [
                {
                    "subject": self.subject,
                    "media_url": self.media_url,
                    "media_type": media_type,
                    "fallback_text": m.composed.fallback_text,
                    "fallback_disabled": self.fallback == "disabled",
                    **self._rich_extras(),
                }
                for m in messages
            ],
        )

    def _rich_extras(self) -> dict[str, Any]:
        """The payload's `choices` and `location`, only when the node has them (so plain MMS
        payloads are as they were)."""
        extras: dict[str, Any] = {}
        if self.choices:
            extras["choices"] = [choice.model_dump(exclude_none=True) for choice in self.choices]
        if self.location is not None:
            extras["location"] = self.location.model_dump(exclude_none=True)
        return extras
