"""The send side's one contract: a gateway sends a planned request exactly once.

Nodes and flows never build HTTP requests; they hand a gateway the stored payload of a
dispatch (sender, body, recipients, per-recipient parameters) and its key. Each gateway
wraps one configured integration with its own client, queue and rate limit.
"""

from __future__ import annotations

from typing import Any, Protocol

from engine.settings import (
    SIMULATOR_PLAN_ID,
    Settings,
    SimulatorIntegration,
    SinchSmsIntegration,
)
from integrations.rate_limit import TokenBucket
from integrations.sinch_sms import SinchSmsClient, SinchSmsCredentials, SmsBatch


class SmsGateway(Protocol):
    name: str

    def send(self, key: str, payload: dict[str, Any], *, reconcile: bool = False) -> str:
        """Send one request; returns the provider's id for it. Raises ProviderError.

        `reconcile=True` first looks for a request an earlier attempt sent with this key
        and returns its id instead of sending again.
        """

    def close(self) -> None: ...


class SinchSmsGateway:
    """Sinch SMS (and the simulator, which speaks the same API)."""

    def __init__(self, name: str, client: SinchSmsClient, callback_url: str | None = None):
        self.name = name
        self.client = client
        self.callback_url = callback_url

    def send(self, key: str, payload: dict[str, Any], *, reconcile: bool = False) -> str:
        batch = SmsBatch(
            sender=payload["sender"],
            recipients=list(payload["recipients"]),
            body=payload["body"],
            client_reference=key,
            parameters=payload.get("parameters"),
            callback_url=self.callback_url,
        )
        return self.client.send_batch(batch, reconcile=reconcile).batch_id

    def close(self) -> None:
        self.client.close()


def open_gateway(settings: Settings, name: str) -> SmsGateway:
    """Build the gateway for the integration named `name` in the settings."""
    integration = settings.integrations[name]
    limiter = TokenBucket(integration.rate_limit)
    if isinstance(integration, SimulatorIntegration):
        credentials = SinchSmsCredentials(
            service_plan_id=SIMULATOR_PLAN_ID,
            api_token=integration.api_token(),
            base_url=integration.url,
        )
    elif isinstance(integration, SinchSmsIntegration):
        credentials = SinchSmsCredentials(
            service_plan_id=integration.service_plan_id,
            api_token=integration.api_token(),
            region=integration.region,
            base_url=integration.base_url,
        )
    else:  # pragma: no cover - the settings model admits no other type
        raise TypeError(f"no gateway for integration type {type(integration).__name__}")
    return SinchSmsGateway(name, SinchSmsClient(credentials, rate_limiter=limiter))


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
