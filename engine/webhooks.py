"""The webhook server: what providers send back, stored before it is acknowledged.

    POST /webhooks/sinch_sms            Sinch SMS delivery reports (HMAC-signed when set up)
    POST /webhooks/infobip_sms          Infobip SMS delivery reports
    POST /webhooks/infobip_mms          Infobip MMS delivery reports
    POST /webhooks/sinch_mms            Sinch MMS postbacks
    POST /webhooks/sinch_conversation   Conversation API MESSAGE_DELIVERY callbacks
    POST /events                        customer events: {customer_id, type, properties}, or
                                        {"events": [...]}; event-triggered scenarios tick now
    GET  /health

A callback is checked (size, credentials, shape) before anything is stored: a malformed
or unauthenticated one gets 400/401 and leaves no trace. A valid one is stored (a
re-posted duplicate once), acknowledged, and its reports applied to their sends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

import orjson
from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

from engine.delivery import apply_pending_reports, store_reports
from engine.errors import InputError
from engine.runtime import utc_now
from engine.settings import Settings
from engine.store import Store
from integrations.webhooks.reports import PARSERS
from integrations.webhooks.security import verify_basic_auth, verify_sinch_signature

logger = logging.getLogger("scenarist.webhooks")

SIGNED = frozenset({"sinch_sms", "sinch_conversation"})  # Sinch's HMAC scheme
BASIC_AUTH = frozenset({"infobip_sms", "infobip_mms", "sinch_mms", "sinch_conversation"})


def _error(status: int, message: str) -> Response:
    return Response(orjson.dumps({"error": message}), status, media_type="application/json")


def request_tick_run(settings_file: str | None) -> Callable[[list[str]], None]:
    """Start a run of the `scenarist-tick/tick` deployment (prefect.yaml, `scenarist serve`),
    so event-triggered scenarios enrol now rather than at the next interval."""

    def start(scenario_ids: list[str]) -> None:
        from prefect.deployments import run_deployment

        try:
            run_deployment(
                "scenarist-tick/tick", parameters={"settings_file": settings_file}, timeout=0
            )
        except Exception:  # no deployment or no API: the interval tick will enrol them
            logger.warning("could not start a tick for %s; the next interval will", scenario_ids)

    return start


def create_webhook_app(
    settings: Settings,
    store: Store,
    now: Callable[[], datetime] = utc_now,
    on_events: Callable[[list[str]], None] | None = None,
) -> FastAPI:
    """The app. `on_events` is called with the running event-triggered scenarios that new
    customer events may enrol into (by default nothing: they wait for the next tick)."""
    config = settings.webhooks
    signing_secret = config.secret(config.sinch_signing_secret_env)
    password = config.secret(config.basic_auth_password_env)
    app = FastAPI(title="Scenarist webhooks", version="1")

    def authorized(provider: str, body: bytes, request: Request) -> bool:
        # Sinch SMS callbacks must be signed; Conversation API ones may be, else basic auth.
        signed = provider == "sinch_sms" or "x-sinch-webhook-signature" in request.headers
        if provider in SIGNED and signing_secret is not None and signed:
            return verify_sinch_signature(signing_secret, body, request.headers, now=time.time())
        if provider in BASIC_AUTH and config.basic_auth_username and password is not None:
            return verify_basic_auth(
                request.headers.get("authorization"), config.basic_auth_username, password
            )
        return True

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/events")
    async def track_events(request: Request) -> Response:
        body = await request.body()
        if len(body) > config.max_body_bytes:
            return _error(413, f"body over {config.max_body_bytes} bytes")
        try:
            payload = orjson.loads(body)
            items = payload.get("events", [payload]) if isinstance(payload, dict) else None
            rows = [_event_row(item, f"events[{n}]", now()) for n, item in enumerate(items or [])]
        except orjson.JSONDecodeError as exc:
            return _error(400, f"body is not JSON: {exc}")
        except InputError as exc:
            return _error(400, str(exc))
        if not rows:
            return _error(400, "no events: send {customer_id, type, properties} or {events: [...]}")
        known = await run_in_threadpool(store.customers_by_id, {r["customer_id"] for r in rows})
        unknown = sorted({r["customer_id"] for r in rows} - set(known))
        if unknown:  # nothing half applied: all the events or none
            return _error(400, f"unknown customers: {', '.join(unknown[:10])}")
        await run_in_threadpool(store.track_events, rows)
        types = {row["type"] for row in rows}
        scenarios = await run_in_threadpool(store.event_triggered_scenarios, types)
        if scenarios and on_events is not None:
            await run_in_threadpool(on_events, scenarios)
        return Response(
            orjson.dumps({"tracked": len(rows), "scenarios": scenarios}),
            200,
            media_type="application/json",
        )

    @app.post("/webhooks/{provider}")
    async def receive(provider: str, request: Request) -> Response:
        parse = PARSERS.get(provider)
        if parse is None:
            return _error(404, f"no webhook for '{provider}'; known: {', '.join(sorted(PARSERS))}")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > config.max_body_bytes:
            return _error(413, f"body over {config.max_body_bytes} bytes")
        body = await request.body()
        if len(body) > config.max_body_bytes:
            return _error(413, f"body over {config.max_body_bytes} bytes")
        if not authorized(provider, body, request):
            return _error(401, "missing or invalid credentials")
        try:
            payload = orjson.loads(body)
            reports = parse(payload)
        except orjson.JSONDecodeError as exc:
            return _error(400, f"body is not JSON: {exc}")
        except InputError as exc:
            return _error(400, str(exc))
        received = now()
        new = await run_in_threadpool(store_reports, store, reports, received)
        # Stored: the provider may forget it now. Applying can wait: a report whose send is
        # not recorded yet, or an applying that fails, stays pending for the next call or
        # the next tick.
        try:
            await run_in_threadpool(
                apply_pending_reports, store, settings.campaign_event_name, received
            )
        except Exception:
            logger.exception("delivery reports stored but not applied yet")
        return Response(
            orjson.dumps({"received": len(reports), "new": new}), 200, media_type="application/json"
        )

    return app


def _event_row(item: object, where: str, at: datetime) -> dict:
    if not isinstance(item, dict):
        raise InputError(f"{where} must be an object")
    customer, event_type = item.get("customer_id"), item.get("type")
    properties = item.get("properties", {})
    if not isinstance(customer, str) or not customer:
        raise InputError(f"{where}.customer_id is missing")
    if not isinstance(event_type, str) or not event_type:
        raise InputError(f"{where}.type is missing")
    if not isinstance(properties, dict):
        raise InputError(f"{where}.properties must be an object")
    return {"customer_id": customer, "type": event_type, "properties": properties, "at": at}
