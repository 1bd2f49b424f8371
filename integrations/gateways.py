"""The send side's one contract: a gateway sends a planned request exactly once.

Nodes and flows never build HTTP requests; they hand a gateway the stored payload of a
dispatch and its key. The payload is provider-neutral:

    {"sender": "+12025550100", "body": "Hi ${p1}!", "recipients": ["+1202..."],
     "send_keys": ["scenario/version/node/customer/entry", ...],
     "parameters": {"p1": {"+1202...": "Ann"}} or None}

An MMS payload adds `subject`, `media_url`, `media_type`, `fallback_text` and
`fallback_disabled`, and for a rich MMS `choices` (a list of `Choice` fields) or
`location` (`Location` fields). Its `sender` is None when the node leaves it to the
Conversation API app's default sender.

Each gateway wraps one configured integration with its own client, queue and rate limit,
and turns the payload into its provider's request: Sinch takes the body and parameters as
they are; Infobip takes one text per message, so recipients are grouped by their text.
The Conversation API sends choices and a location as its own message kinds; the other
MMS APIs get them as text (`engine.dispatch.rich_text`), so the handset reads the same.

A request a client will not build (a ValueError: say a text too long once its choices
are added) or a payload without the sender its API needs is refused like a provider
refusal, with error `invalid_message` or `sender_missing`: nothing is sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlencode

from pydantic import SecretStr

from engine.dispatch import Choice, Location, recipient_text, rich_text
from engine.errors import ProviderError
from engine.settings import (
    SIMULATOR_APP,
    SIMULATOR_INFOBIP_KEY,
    SIMULATOR_KEY_ID,
    SIMULATOR_KEY_SECRET,
    SIMULATOR_MMS_KEY,
    SIMULATOR_MMS_SERVICE,
    SIMULATOR_PLAN_ID,
    SIMULATOR_PROJECT,
    SIMULATOR_TOKEN,
    Settings,
    SimulatorIntegration,
    integration_api,
)
from integrations.infobip_mms import InfobipMmsClient, InfobipMmsMessage
from integrations.infobip_sms import (
    DestinationResult,
    InfobipCredentials,
    InfobipMessage,
    InfobipSmsClient,
)
from integrations.rate_limit import TokenBucket
from integrations.sinch_conversation import (
    ConversationCredentials,
    ConversationMessage,
    SinchConversationClient,
)
from integrations.sinch_mms import MmsMessage, SinchMmsClient, SinchMmsCredentials
from integrations.sinch_sms import SinchSmsClient, SinchSmsCredentials, SmsBatch

INVALID_MESSAGE = "invalid_message"  # a request the client will not build
SENDER_MISSING = "sender_missing"


@dataclass(frozen=True)
class DispatchOutcome:
    """A request the provider accepted: its id, and the recipients it refused inside it
    (phone -> status_code, error, comment)."""

    provider_id: str | None
    refused: dict[str, dict[str, Any]] = field(default_factory=dict)


class SmsGateway(Protocol):
    name: str

    def send(
        self, key: str, payload: dict[str, Any], *, reconcile: bool = False
    ) -> DispatchOutcome:
        """Send one request. Raises ProviderError when the provider refuses all of it.

        `reconcile=True` means an earlier attempt may have got through: the gateway makes
        sure the provider does not send twice (Sinch: look the key up; Infobip: the
        repeated messageIds are refused as duplicates).
        """

    def close(self) -> None: ...


class _ClientGateway:
    """A gateway over one provider client: its integration's name, the client, close()."""

    def __init__(self, name: str, client: Any, callback_url: str | None = None):
        self.name = name
        self.client = client
        # Where the provider posts this integration's delivery reports; None: where the
        # account is set up to post them.
        self.callback_url = callback_url

    def close(self) -> None:
        self.client.close()


class SinchSmsGateway(_ClientGateway):
    """Sinch SMS (and the simulator playing it): body and parameters as they are."""

    def send(
        self, key: str, payload: dict[str, Any], *, reconcile: bool = False
    ) -> DispatchOutcome:
        batch = SmsBatch(
            sender=_sender(payload),
            recipients=list(payload["recipients"]),
            body=payload["body"],
            client_reference=key,
            parameters=payload.get("parameters"),
            callback_url=self.callback_url,
        )
        return DispatchOutcome(self.client.send_batch(batch, reconcile=reconcile).batch_id)


class InfobipSmsGateway(_ClientGateway):
    """Infobip SMS: one message per distinct text, each send key as its messageId."""

    client: InfobipSmsClient

    def send(
        self, key: str, payload: dict[str, Any], *, reconcile: bool = False
    ) -> DispatchOutcome:
        by_text: dict[str, list[tuple[str, str]]] = {}
        parameters = payload.get("parameters")
        for phone, send_key in zip(payload["recipients"], payload["send_keys"], strict=True):
            text = recipient_text(payload["body"], parameters, phone)
            by_text.setdefault(text, []).append((phone, send_key))
        sender = _sender(payload)
        messages = [
            InfobipMessage(sender=sender, destinations=destinations, text=text)
            for text, destinations in by_text.items()
        ]
        results = self.client.send(
            messages, bulk_id=key, reconcile=reconcile, report_url=self.callback_url
        )
        return DispatchOutcome(key, _refusals(results))


class InfobipMmsGateway(_ClientGateway):
    """Infobip MMS: one message per distinct content, each send key as its messageId."""

    client: InfobipMmsClient

    def send(
        self, key: str, payload: dict[str, Any], *, reconcile: bool = False
    ) -> DispatchOutcome:
        message = InfobipMmsMessage(
            sender=_sender(payload),
            destinations=list(zip(payload["recipients"], payload["send_keys"], strict=True)),
            title=payload["subject"],
            text=_handset_text(payload),
            media_url=payload["media_url"],
            media_content_type=payload["media_type"],
            fallback_text=None if payload["fallback_disabled"] else payload["fallback_text"],
        )
        try:
            results = self.client.send(
                [message], bulk_id=key, reconcile=reconcile, report_url=self.callback_url
            )
        except ValueError as exc:
            raise ProviderError(str(exc), code=INVALID_MESSAGE) from exc
        return DispatchOutcome(key, _refusals(results))


class OneByOneMmsGateway(_ClientGateway):
    """Sinch's MMS APIs take one recipient per request: each is sent on its own, with its
    send key as the client reference, and a refusal stays that recipient's."""

    client: SinchMmsClient | SinchConversationClient

    def send(
        self, key: str, payload: dict[str, Any], *, reconcile: bool = False
    ) -> DispatchOutcome:
        refused: dict[str, dict[str, Any]] = {}
        for phone, send_key in zip(payload["recipients"], payload["send_keys"], strict=True):
            # Others in this dispatch may be sent already: a refusal is this one's.
            try:
                receipt = self.client.send(
                    self._message(phone, send_key, payload), reconcile=reconcile
                )
            except ProviderError as exc:
                refused[phone] = _refusal(exc.status_code, exc.code, exc.text)
                continue
            except ValueError as exc:
                refused[phone] = _refusal(None, INVALID_MESSAGE, str(exc))
                continue
            if not receipt.accepted:
                refused[phone] = _refusal(receipt.status_code, receipt.error, receipt.comment)
        return DispatchOutcome(None, refused)

    def _message(self, phone: str, send_key: str, payload: dict[str, Any]) -> Any:
        if isinstance(self.client, SinchConversationClient):
            choices, location = _rich(payload)
            return ConversationMessage(
                to=phone,
                sender=payload["sender"],
                subject=payload["subject"],
                text=payload["body"],
                media_url=payload["media_url"],
                client_reference=send_key,
                choices=choices,
                location=location,
            )
        return MmsMessage(
            to=phone,
            sender=_sender(payload),
            subject=payload["subject"],
            text=_handset_text(payload),
            media_url=payload["media_url"],
            media_type=_sinch_slide_kind(payload["media_type"]),
            fallback_text=payload["fallback_text"],
            fallback_disabled=payload["fallback_disabled"],
            client_reference=send_key,
        )


def _sender(payload: dict[str, Any]) -> str:
    """The payload's sender. None is only valid for the Conversation API (its app has a
    default sender); elsewhere, say after the default provider changed, it is refused."""
    sender = payload["sender"]
    if not sender:
        raise ProviderError(
            "no sender: this API has no default sender; give the node, the scenario or the "
            "project a sender",
            code=SENDER_MISSING,
        )
    return sender


def _rich(payload: dict[str, Any]) -> tuple[tuple[Choice, ...], Location | None]:
    """A rich MMS's choices and location (none in payloads of plain MMS and of old ones)."""
    choices = tuple(Choice.model_validate(choice) for choice in payload.get("choices") or ())
    location = payload.get("location")
    return choices, Location.model_validate(location) if location else None


def _handset_text(payload: dict[str, Any]) -> str:
    """The MMS text, with its choices and location as lines of text (for the APIs that
    have no such message kinds)."""
    return rich_text(payload["body"], *_rich(payload))


def _refusal(status_code: Any, error: str | None, comment: str | None) -> dict[str, Any]:
    return {"status_code": status_code, "error": error, "comment": comment}


def _sinch_slide_kind(content_type: str | None) -> str | None:
    """The MMS JSON API names a slide's media by kind, not by content type."""
    if content_type is None:
        return None
    if content_type == "text/vcard":
        return "vcard"
    if content_type == "application/pdf":
        return "pdf"
    return content_type.split("/", 1)[0]  # image/jpeg -> image, video/mp4 -> video


def _refusals(results: list[DestinationResult]) -> dict[str, dict[str, Any]]:
    return {
        result.to: _refusal(result.status_code, result.error, result.comment)
        for result in results
        if not result.accepted
    }


def open_gateway(settings: Settings, name: str) -> SmsGateway:
    """Build the gateway for the integration named `name` in the settings.

    The simulator plays one provider's API with that provider's real client, so its
    gateways are built exactly like the real ones, with the simulator's credentials.
    """
    integration = settings.integrations[name]
    # A tenth of a second of burst, no more: the provider's own bucket (a second's worth,
    # typically) then absorbs network jitter, so our pacing never meets its 429.
    limit = TokenBucket(integration.rate_limit, burst=max(1.0, integration.rate_limit / 10))
    simulated = isinstance(integration, SimulatorIntegration)
    api = integration_api(integration)
    callback = _callback_url(settings, api)
    if api == "sinch_sms":
        credentials = (
            SinchSmsCredentials(
                service_plan_id=SIMULATOR_PLAN_ID,
                api_token=SecretStr(SIMULATOR_TOKEN),
                base_url=integration.url,
            )
            if simulated
            else SinchSmsCredentials(
                service_plan_id=integration.service_plan_id,
                api_token=integration.api_token(),
                region=integration.region,
                base_url=integration.base_url,
            )
        )
        return SinchSmsGateway(name, SinchSmsClient(credentials, rate_limiter=limit), callback)
    if api in ("infobip_sms", "infobip_mms"):
        infobip = (
            InfobipCredentials(base_url=integration.url, api_key=SecretStr(SIMULATOR_INFOBIP_KEY))
            if simulated
            else InfobipCredentials(base_url=integration.base_url, api_key=integration.api_key())
        )
        if api == "infobip_sms":
            return InfobipSmsGateway(name, InfobipSmsClient(infobip, rate_limiter=limit), callback)
        return InfobipMmsGateway(name, InfobipMmsClient(infobip, rate_limiter=limit), callback)
    if api == "sinch_mms":
        mms = (
            SinchMmsCredentials(
                service_id=SIMULATOR_MMS_SERVICE,
                api_key=SecretStr(SIMULATOR_MMS_KEY),
                base_url=integration.url,
            )
            if simulated
            else SinchMmsCredentials(
                service_id=integration.service_id,
                api_key=integration.api_key(),
                base_url=integration.base_url,
            )
        )
        return OneByOneMmsGateway(name, SinchMmsClient(mms, rate_limiter=limit))
    conversation = (
        ConversationCredentials(
            project_id=SIMULATOR_PROJECT,
            app_id=SIMULATOR_APP,
            key_id=SIMULATOR_KEY_ID,
            key_secret=SecretStr(SIMULATOR_KEY_SECRET),
            base_url=integration.url,
            auth_url=f"{integration.url}/oauth2/token",
        )
        if simulated
        else ConversationCredentials(
            project_id=integration.project_id,
            app_id=integration.app_id,
            key_id=integration.key_id,
            key_secret=integration.key_secret(),
            region=integration.region,
            base_url=integration.base_url,
        )
    )
    return OneByOneMmsGateway(name, SinchConversationClient(conversation, rate_limiter=limit))


def _callback_url(settings: Settings, api: str) -> str | None:
    """Where this API's delivery reports come back: our webhook server, when it has a
    public URL (with the secret token, when callbacks authenticate with one)."""
    public = settings.webhooks.public_url
    if public is None:
        return None
    url = f"{public.rstrip('/')}/webhooks/{api}"
    token = settings.webhooks.secret(settings.webhooks.token_env)
    return f"{url}?{urlencode({'token': token})}" if token else url


class GatewayPool:
    """One gateway per integration per process, so each keeps one queue and rate limit."""

    def __init__(self, settings: Settings, opened: dict[str, SmsGateway] | None = None):
        self.settings = settings
        # `opened`: gateways built elsewhere, e.g. over a test transport.
        self._open: dict[str, SmsGateway] = dict(opened or {})

    def get(self, name: str) -> SmsGateway:
        if name not in self._open:
            self._open[name] = open_gateway(self.settings, name)
        return self._open[name]

    def close(self) -> None:
        for gateway in self._open.values():
            gateway.close()
        self._open.clear()
