"""Sending one stored provider request (a dispatch) and recording the provider's answer.

The intent (the dispatch row and its pending sends) is always written first; this is the
step after it, shared by message nodes and keyword replies. An intent left by a crash is
sent with `reconcile=True`: the gateway looks the request up at the provider before it
sends anything again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine.errors import ProviderError
from engine.store import Store
from integrations.gateways import GatewayPool


def send_dispatch(
    store: Store,
    gateways: GatewayPool,
    dispatch: dict[str, Any],
    *,
    reconcile: bool,
    now: datetime,
) -> None:
    """Send one stored request through its integration and record the answer."""
    gateway = gateways.get(dispatch["integration"])
    try:
        outcome = gateway.send(dispatch["key"], dispatch["payload"], reconcile=reconcile)
    except ProviderError as exc:
        store.resolve_dispatch(
            dispatch["key"],
            enqueued=False,
            now=now,
            status_code=exc.status_code,
            error=exc.code or ("provider_unreachable" if exc.retryable else "rejected"),
            comment=exc.text,
        )
        return
    store.resolve_dispatch(
        dispatch["key"],
        enqueued=True,
        provider_id=outcome.provider_id,
        refused=outcome.refused,
        now=now,
    )
