"""The send side's one contract: a gateway sends a planned request exactly once.

Nodes and flows never build HTTP requests; they hand a gateway the stored payload of a
dispatch and its key. The payload is provider-neutral:

    {"sender": "+12025550100", "body": "Hi ${p1}!", "recipients": ["+1202..."],
     "send_keys": ["scenario/version/node/customer/entry", ...],
     "parameters": {"p1": {"+1202...": "Ann"}} or None}

Each gateway wraps one configured integration with its own client, queue and rate limit,
and turns the payload into its provider's request: Sinch takes the body and parameters as
they are; Infobip takes one text per message, so recipients are grouped by their text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import SecretStr

from engine.dispatch import recipient_text
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

    def __init__(self, name: str, client: Any):
        self.name = name
        self.client = client

    def close(self) -> None:
        self.client.close()


class SinchSmsGateway(_ClientGateway):
    """Sinch SMS (and the simulator playing it): body and parameters as they are."""

    def __init__(self, name: str, client: SinchSmsClient, callback_url: str | None = None):
        super().__init__(name, client)
        self.callback_url = callback_url

    def send(
        self, key: str, payload: dict[str, Any], *, reconcile: bool = False
    ) -> DispatchOutcome:
        batch = SmsBatch(
            sender=payload["sender"],
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
        messages = [
            InfobipMessage(sender=payload["sender"], destinations=destinations, text=text)
            for text, destinations in by_text.items()
        ]
        results = self.client.send(messages, bulk_id=key, reconcile=reconcile)
        return DispatchOutcome(key, _refusals(results))


class InfobipMmsGateway(_ClientGateway):
    """Infobip MMS: one message per distinct content, each send key as its messageId."""

    client: InfobipMmsClient

    def send(
        self, key: str, payload: dict[str, Any], *, reconcile: bool = False
    ) -> DispatchOutcome:
        message = InfobipMmsMessage(
            sender=payload["sender"],
            destinations=list(zip(payload["recipients"], payload["send_keys"], strict=True)),
            title=payload["subject"],
            text=payload["body"],
            media_url=payload["media_url"],
            media_content_type=payload["media_type"],
            fallback_text=None if payload["fallback_disabled"] else payload["fallback_text"],
        )
        results = self.client.send([message], bulk_id=key, reconcile=reconcile)
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
            try:
                receipt = self.client.send(
                    self._message(phone, send_key, payload), reconcile=reconcile
                )
            except ProviderError as exc:
                # Others in this dispatch may be sent already: the error is this one's.
                refused[phone] = {
                    "status_code": exc.status_code,
                    "error": exc.code,
                    "comment": exc.text,
                }
                continue
            if not receipt.accepted:
                refused[phone] = {
                    "status_code": receipt.status_code,
                    "error": receipt.error,
                    "comment": receipt.comment,
                }
        return DispatchOutcome(None, refused)

    def _message(self, phone: str, send_key: str, payload: dict[str, Any]) -> Any:
        if isinstance(self.client, SinchConversationClient):
            return ConversationMessage(
                to=phone,
                sender=payload["sender"],
                subject=payload["subject"],
                text=payload["body"],
                media_url=payload["media_url"],
                client_reference=send_key,
            )
        return MmsMessage(
            to=phone,
            sender=payload["sender"],
            subject=payload["subject"],
            text=payload["body"],
            media_url=payload["media_url"],
            media_type=_sinch_slide_kind(payload["media_type"]),
            fallback_text=payload["fallback_text"],
            fallback_disabled=payload["fallback_disabled"],
            client_reference=send_key,
        )


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
        result.to: {
            "status_code": result.status_code,
            "error": result.error,
            "comment": result.comment,
        }
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
        callback = settings.webhooks.public_url
        return SinchSmsGateway(
            name,
            SinchSmsClient(credentials, rate_limiter=limit),
            callback_url=f"{callback.rstrip('/')}/webhooks/sinch_sms" if callback else None,
        )
    if api in ("infobip_sms", "infobip_mms"):
        infobip = (
            InfobipCredentials(base_url=integration.url, api_key=SecretStr(SIMULATOR_INFOBIP_KEY))
            if simulated
            else InfobipCredentials(base_url=integration.base_url, api_key=integration.api_key())
        )
        if api == "infobip_sms":
            return InfobipSmsGateway(name, InfobipSmsClient(infobip, rate_limiter=limit))
        return InfobipMmsGateway(name, InfobipMmsClient(infobip, rate_limiter=limit))
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
