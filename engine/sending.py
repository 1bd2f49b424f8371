"""Sending one stored provider request (a dispatch) and recording the provider's answer.

The intent (the dispatch row and its pending sends) is always written first; this is the
step after it, shared by message nodes and keyword replies. An intent left by a crash is
sent with `reconcile=True`: the gateway looks the request up at the provider before it
sends anything again. A request is taken before it is made (`Dispatches.take`), so
two processes that both hold its intent (a worker whose claim lease ran out mid-batch
and the one that claimed its journeys next, a webhook process and the tick) never make it
both: the one that does not take it leaves it to the other.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from engine.consent import consent_refusal
from engine.dispatch import without_sends
from engine.errors import ProviderError
from engine.store import DispatchRow, Store
from integrations.gateways import GatewayPool


def send_dispatch(
    store: Store,
    gateways: GatewayPool,
    key: str,
    *,
    reconcile: bool,
    now: datetime,
    lease: timedelta,
    consent_category: str | None = None,
) -> None:
    """Take one stored request, send it through its integration and record the answer.

    Not taken (answered, or being made by another process for less than `lease`), it is
    left alone. Taken from a process that has held it for longer, it is reconciled: that
    process is taken to have died mid-request. With `consent_category` (a campaign's
    message, not a keyword reply), the consent of its recipients is checked once more just
    before the request (see `withhold_opted_out`).
    """
    taken = store.dispatches.take(key, now, now - lease)
    if taken is None:
        return
    dispatch, abandoned = taken
    reconcile = reconcile or abandoned
    if consent_category is not None and not reconcile:
        withheld = withhold_opted_out(store, dispatch, consent_category, now)
        if withheld is None:
            return
        dispatch = withheld
    gateway = gateways.get(dispatch.integration)
    try:
        outcome = gateway.send(dispatch.key, dispatch.payload, reconcile=reconcile)
    except ProviderError as exc:
        store.dispatches.resolve(
            dispatch.key,
            enqueued=False,
            now=now,
            status_code=exc.status_code,
            error=exc.code or ("provider_unreachable" if exc.retryable else "rejected"),
            comment=exc.text,
        )
        return
    store.dispatches.resolve(
        dispatch.key,
        enqueued=True,
        provider_id=outcome.provider_id,
        refused=outcome.refused,
        now=now,
    )


def withhold_opted_out(
    store: Store, dispatch: DispatchRow, category: str, now: datetime
) -> DispatchRow | None:
    """The request without the recipients who withdrew consent or texted STOP since the
    consent step (a batch's requests go out over seconds, a rate limit's pace); they are
    recorded as suppressed with the consent step's reasons. None: nobody is left to send.

    A request being reconciled is not checked: the provider may have it already, and the
    record must say what it has.
    """
    withdrawn = store.dispatches.withdrawn_consents(dispatch.key, category)
    reasons = {
        key: reason
        for key, granted, stopped in withdrawn
        if (reason := consent_refusal(category, granted, stopped)) is not None
    }
    if not reasons:
        return dispatch
    payload = without_sends(dispatch.payload, reasons)
    store.dispatches.withhold_sends(dispatch.key, payload, reasons, now)
    return dispatch._replace(payload=payload) if payload["recipients"] else None
