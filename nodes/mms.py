"""MMS: a subject, a personalised text and one media file, with an SMS fallback.

The rules are the seeds': the subject has at most 80 characters and no emoji or other
non-ASCII characters; the text at most 1,600 characters; the media is an image
(GIF/JPG/PNG), a video (MP4) or a contact card (VCF), plus PDF and MOV where the Sinch
Conversation API carries them; MMS reaches US and Canadian recipients only. The fallback
SMS (`fallback: {text: ...}`), sent by the provider when the handset cannot take the MMS,
is split into 160-character messages (153 per part when concatenated); `fallback:
disabled` sends no fallback.

The steps every message node shares (policies, send, tracking) are in `nodes/messaging.py`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engine.dispatch import Outgoing, PlannedDispatch, plan_by_content
from engine.errors import TemplateError
from engine.segments import segment
from engine.settings import integration_api
from engine.templates import render_many, syntax_error
from nodes.base import JourneyItem
from nodes.messaging import MAX_TEXT_LENGTH, MessageNode

if TYPE_CHECKING:
    from engine.runtime import NodeContext
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


class FallbackSms(BaseModel):
    """The SMS sent instead when the handset cannot take the MMS."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str = Field(min_length=1)


class MmsNode(MessageNode):
    """Send an MMS to each customer: subject, personalised text, media, SMS fallback."""

    channel = "mms"

    type: Literal["mms"]
    subject: str | None = None
    text: str = Field(min_length=1)
    media_url: str | None = None
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
            if source is not None and (error := syntax_error(source)):
                found.append((field, f"template syntax error at {error}"))
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
        return found

    def _fallback_source(self) -> str | None:
        return self.fallback.text if isinstance(self.fallback, FallbackSms) else None

    def _extension(self) -> str:
        path = urlparse(self.media_url or "").path
        return path.rsplit(".", 1)[-1].lower() if "." in path else ""

    def _via_conversation(self, settings: Settings) -> bool:
        name = self.integration or settings.default_provider(self.channel)
        return name in settings.integrations and (
            integration_api(settings.integrations[name]) == "sinch_conversation"
        )

    def media_type(self, settings: Settings) -> str | None:
        """The media's content type, or None when this node's integration cannot carry it."""
        extension = self._extension()
        if extension in MEDIA_TYPES:
            return MEDIA_TYPES[extension]
        if self._via_conversation(settings):
            return CONVERSATION_ONLY_MEDIA.get(extension)
        return None

    def compose(
        self, settings: Settings, scenario: Scenario, items: list[JourneyItem]
    ) -> list[dict[str, Any]]:
        contexts = [item.template_context() for item in items]
        texts = render_many(self.text, contexts)
        fallback_source = self._fallback_source()
        fallbacks: list[Any] = (
            render_many(fallback_source, contexts) if fallback_source else [None] * len(items)
        )
        sender = self.sender_for(settings, scenario)
        return [
            self._composed(item, text, fallback, sender)
            for item, text, fallback in zip(items, texts, fallbacks, strict=True)
        ]

    def channel_failure(self, item: JourneyItem) -> tuple[str, str] | None:
        if item.region in MMS_REGIONS:
            return None
        where = item.region or "no known country"
        return ("mms_not_available", f"MMS reaches US and CA recipients only, not {where}")

    def _composed(
        self, item: JourneyItem, text: Any, fallback: Any, sender: Sender
    ) -> dict[str, Any]:
        if failure := self.recipient_failure(item, sender):
            return {"failure": failure}
        for rendered in (text, fallback):
            if isinstance(rendered, TemplateError):
                return {"failure": ("template_error", str(rendered))}
        if len(text) > MAX_TEXT_LENGTH:
            return {
                "failure": (
                    "text_too_long",
                    f"rendered text has {len(text)} characters; the maximum is {MAX_TEXT_LENGTH}",
                )
            }
        notes: dict[str, Any] = {"text": text, "values": None, "fallback_text": fallback}
        if fallback is not None:
            # The fallback SMS is what is counted in parts, should the provider send it.
            segmentation = segment(fallback)
            notes.update(
                parts=segmentation.parts, encoding=segmentation.encoding, segmentation=segmentation
            )
        return notes

    def plan(self, ctx: NodeContext, items: list[JourneyItem]) -> list[PlannedDispatch]:
        media_type = self.media_type(ctx.settings) if self.media_url else None
        return plan_by_content(
            [Outgoing(self.send_key(ctx, i), i.phone or "", i.notes["text"]) for i in items],
            [
                {
                    "subject": self.subject,
                    "media_url": self.media_url,
                    "media_type": media_type,
                    "fallback_text": i.notes["fallback_text"],
                    "fallback_disabled": self.fallback == "disabled",
                }
                for i in items
            ],
        )
