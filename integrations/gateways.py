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
from engine.settings import (
    SIMULATOR_INFOBIP_KEY,
    SIMULATOR_PLAN_ID,
    SIMULATOR_TOKEN,
    InfobipSmsIntegration,
    Settings,
    SimulatorIntegration,
    SinchSmsIntegration,
)
from integrations.infobip_sms import InfobipCredentials, InfobipMessage, InfobipSmsClient
from integrations.rate_limit import TokenBucket
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


class SinchSmsGateway:
    """Sinch SMS (and the simulator playing it): body and parameters as they are."""

    def __init__(self, name: str, client: SinchSmsClient, callback_url: str | None = None):
        self.name = name
        self.client = client
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

    def close(self) -> None:
        self.client.close()


class InfobipSmsGateway:
    """Infobip SMS: one message per distinct text, each send key as its messageId."""

    def __init__(self, name: str, client: InfobipSmsClient):
        self.name = name
        self.client = client

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
        refused = {
            result.to: {
                "status_code": result.status_code,
                "error": result.error,
                "comment": result.comment,
            }
            for result in results
            if not result.accepted
        }
        return DispatchOutcome(key, refused)

    def close(self) -> None:
        self.client.close()


def open_gateway(settings: Settings, name: str) -> SmsGateway:
    """Build the gateway for the integration named `name` in the settings."""
    integration = settings.integrations[name]
    limiter = TokenBucket(integration.rate_limit)
    if isinstance(integration, SimulatorIntegration):
        if integration.api == "infobip_sms":
            return _infobip(name, integration.url, SecretStr(SIMULATOR_INFOBIP_KEY), limiter)
        credentials = SinchSmsCredentials(
            service_plan_id=SIMULATOR_PLAN_ID,
            api_token=SecretStr(SIMULATOR_TOKEN),
            base_url=integration.url,
        )
        return SinchSmsGateway(name, SinchSmsClient(credentials, rate_limiter=limiter))
    if isinstance(integration, SinchSmsIntegration):
        credentials = SinchSmsCredentials(
            service_plan_id=integration.service_plan_id,
            api_token=integration.api_token(),
            region=integration.region,
            base_url=integration.base_url,
        )
        return SinchSmsGateway(name, SinchSmsClient(credentials, rate_limiter=limiter))
    if isinstance(integration, InfobipSmsIntegration):
        return _infobip(name, integration.base_url, integration.api_key(), limiter)
    raise TypeError(f"no gateway for integration type {type(integration).__name__}")


def _infobip(name: str, base_url: str, key: SecretStr, limiter: TokenBucket) -> SmsGateway:
    credentials = InfobipCredentials(base_url=base_url, api_key=key)
    return InfobipSmsGateway(name, InfobipSmsClient(credentials, rate_limiter=limiter))


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
