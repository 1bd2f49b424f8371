"""The webhook server: what providers send back, stored before it is acknowledged.

    POST /webhooks/sinch_sms            Sinch SMS delivery reports and inbound messages
    POST /webhooks/infobip_sms          Infobip SMS delivery reports and inbound messages
    POST /webhooks/infobip_mms          Infobip MMS delivery reports and inbound messages
    POST /webhooks/sinch_mms            Sinch MMS postbacks (MT reports, MO messages)
    POST /webhooks/sinch_conversation   Conversation API MESSAGE_DELIVERY, MESSAGE_INBOUND
    POST /events                        customer events: {customer_id, type, properties}, or
                                        {"events": [...]}; event-triggered scenarios tick now
    GET  /l/<code>                      short-link clicks (`engine/clicks.py`)
    GET  /health

Who may call what (`integrations.webhooks.security`): once any credential is configured
under `webhooks:`, each callback needs a valid one its provider can send (a Sinch
signature, HTTP Basic credentials, the token), a signed one only once; `POST /events`
always needs the token in `X-Scenarist-Token` unless `webhooks.events_open` is true. With
no credential configured, callbacks are accepted from anyone: `check_exposure` then lets
the server listen on loopback only, with a warning. Short links and `/health` are public
by nature (customers' phones follow the links) and need nothing.

A callback is checked (size, credentials, shape) before anything is stored: a malformed
or unauthenticated one gets 400/401 and leaves no trace. A valid one is stored (a
re-posted duplicate once) and acknowledged; then its delivery reports are applied to their
sends, and its inbound messages' keyword replies are sent (`engine/inbound.py`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from typing import Any

import httpx
import orjson
import uvicorn
from fastapi import BackgroundTasks, FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

from engine.clicks import click_router
from engine.delivery import ReportWriter
from engine.errors import ConfigError, InputError
from engine.inbound import receive_inbound, send_replies
from engine.runtime import utc_now
from engine.settings import Settings, WebhookSettings
from engine.store import Store
from engine.text_parts import TextPartReader, trusted_origins
from integrations.gateways import GatewayPool
from integrations.webhooks import fields
from integrations.webhooks.inbound import INBOUND_PARSERS, InboundMessage, is_inbound
from integrations.webhooks.reports import PARSERS, SINCH_MMS, DeliveryReport
from integrations.webhooks.security import (
    EVENTS,
    SETTINGS_KEYS,
    Credentials,
    ReplayGuard,
    Scheme,
    authenticate,
)

logger = logging.getLogger("scenarist.webhooks")


def _error(status: int, message: str) -> Response:
    return Response(orjson.dumps({"error": message}), status, media_type="application/json")


def webhook_credentials(config: WebhookSettings) -> Credentials:
    """The credentials the settings configure, read from their environment variables; an
    unset variable is an error naming the settings key."""

    def secret(key: str) -> str | None:
        try:
            return config.secret(getattr(config, key))
        except ConfigError as exc:
            raise ConfigError(f"webhooks.{key}: {exc}") from exc

    password = secret("basic_auth_password_env")
    username = config.basic_auth_username
    return Credentials(
        sinch_secret=secret("sinch_signing_secret_env"),
        basic_auth=(username, password) if username and password else None,
        token=secret("token_env"),
        events_open=config.events_open,
    )


def check_exposure(app: FastAPI, host: str) -> None:
    """Before `app` listens on `host`: with no credential configured, refuse a host that is
    not loopback (anyone could post callbacks: consent changes, reports), and warn on
    loopback (local use, the demo, tests). Every place that serves the app calls this."""
    credentials: Credentials = app.state.credentials
    if credentials.configured:
        return
    keys = " or ".join(dict.fromkeys(SETTINGS_KEYS[scheme] for scheme in Scheme))
    if not _loopback(host):
        raise ConfigError(
            f"refusing to serve webhooks on {host} with no authentication configured: "
            f"set {keys} in the settings, or listen on 127.0.0.1"
        )
    logger.warning(
        "webhooks on %s accept callbacks without authentication (local use); set %s "
        "before exposing them",
        host,
        keys,
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


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
    gateways: GatewayPool | None = None,
    text_parts: TextPartReader | None = None,
) -> FastAPI:
    """The app. `on_events` is called with the running event-triggered scenarios that new
    customer events (posted, or inbound messages) may enrol into (by default nothing: they
    wait for the next tick). `gateways` send keyword replies (by default, the settings');
    `text_parts` reads the text parts of Sinch MMS MO messages (by default over HTTP, the
    simulator integrations' origins trusted: `engine.text_parts`)."""
    config = settings.webhooks
    credentials = webhook_credentials(config)
    replays = ReplayGuard()  # per process: see its docstring
    reply_gateways = gateways or GatewayPool(settings)
    text_parts = text_parts or TextPartReader(httpx.Client(), trusted_origins(settings))
    reports_writer = ReportWriter(store, settings.campaign_event_name, now)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        reports_writer.close()
        reply_gateways.close()
        text_parts.close()

    app = FastAPI(title="Scenarist webhooks", version="1", lifespan=lifespan)
    app.state.report_writer = reports_writer  # `settle()` it to wait for reports applied
    app.state.credentials = credentials  # for `check_exposure`
    app.include_router(click_router(settings, store, now))

    async def trigger(event_types: set[str]) -> list[str]:
        """Start a tick of the running scenarios listening to `event_types`, if any."""
        scenarios = await run_in_threadpool(store.scenarios.triggered_by, event_types)
        if scenarios and on_events is not None:
            await run_in_threadpool(on_events, scenarios)
        return scenarios

    def refused(endpoint: str, body: bytes, request: Request) -> Response | None:
        """The 401 answer to a request to `endpoint` that is not authenticated, else None."""
        reason = authenticate(
            endpoint,
            credentials,
            request.headers,
            request.query_params,
            body,
            now=time.time(),
            replays=replays,
        )
        return None if reason is None else _error(401, reason)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/events")
    async def track_events(request: Request) -> Response:
        body = await request.body()
        if len(body) > config.max_body_bytes:
            return _error(413, f"body over {config.max_body_bytes} bytes")
        if (answer := refused(EVENTS, body, request)) is not None:
            return answer
        try:
            rows = _event_rows(orjson.loads(body), now())
        except orjson.JSONDecodeError as exc:
            return _error(400, f"body is not JSON: {exc}")
        except InputError as exc:
            return _error(400, str(exc))
        if not rows:
            return _error(400, "no events: send {customer_id, type, properties} or {events: [...]}")
        known = await run_in_threadpool(store.customers.by_id, {r["customer_id"] for r in rows})
        unknown = sorted({r["customer_id"] for r in rows} - set(known))
        if unknown:  # nothing half applied: all the events or none
            return _error(400, f"unknown customers: {', '.join(unknown[:10])}")
        await run_in_threadpool(store.customers.track_events, rows)
        scenarios = await trigger({row["type"] for row in rows})
        return Response(
            orjson.dumps({"tracked": len(rows), "scenarios": scenarios}),
            200,
            media_type="application/json",
        )

    @app.post("/webhooks/{provider}")
    async def receive(provider: str, request: Request, background: BackgroundTasks) -> Response:
        if provider not in PARSERS:
            return _error(404, f"no webhook for '{provider}'; known: {', '.join(sorted(PARSERS))}")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > config.max_body_bytes:
            return _error(413, f"body over {config.max_body_bytes} bytes")
        body = await request.body()
        if len(body) > config.max_body_bytes:
            return _error(413, f"body over {config.max_body_bytes} bytes")
        if (answer := refused(provider, body, request)) is not None:
            return answer
        try:
            payload = orjson.loads(body)
            inbound = is_inbound(provider, payload)
            parsed = (INBOUND_PARSERS if inbound else PARSERS)[provider](payload)
        except orjson.JSONDecodeError as exc:
            return _error(400, f"body is not JSON: {exc}")
        except InputError as exc:
            return _error(400, str(exc))
        if inbound:
            return await receive_messages(parsed, background)
        return await receive_reports(parsed)

    async def receive_reports(reports: list[DeliveryReport]) -> Response:
        received = now()
        # Answered once committed: the provider may forget them then. The writer applies
        # them next; a report whose send is not recorded yet stays pending for later.
        new = await asyncio.wrap_future(reports_writer.store(reports, received))
        return Response(
            orjson.dumps({"received": len(reports), "new": new}), 200, media_type="application/json"
        )

    async def receive_messages(
        messages: list[InboundMessage], background: BackgroundTasks
    ) -> Response:
        received = now()
        if any(message.provider == SINCH_MMS for message in messages):
            messages = await run_in_threadpool(
                lambda: [text_parts.read(message) for message in messages]
            )
        result = await run_in_threadpool(receive_inbound, store, settings, messages, received)
        # Stored: replies go out after the answer, so a provider (or the simulator) waiting
        # for it is never held up by them.
        background.add_task(run_in_threadpool, reply, result.replies, received)
        if result.event_types:
            background.add_task(trigger, result.event_types)
        return Response(
            orjson.dumps({"received": result.received, "new": result.new}),
            200,
            media_type="application/json",
        )

    def reply(reply_keys: list[str], at: datetime) -> None:
        try:
            send_replies(store, reply_gateways, settings, reply_keys, at)
        except Exception:  # the intents are stored: the tick sends what is left
            logger.exception("keyword replies stored but not sent yet")

    return app


@contextmanager
def serving_in_background(app: FastAPI, host: str, port: int) -> Iterator[str]:
    """Serve `app` with uvicorn in a thread of this process while the block runs (the
    demo, tests); yields its base URL."""
    check_exposure(app, host)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="scenarist-webhooks", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"the webhook server could not start on {host}:{port}")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def _event_rows(payload: Any, at: datetime) -> list[dict[str, Any]]:
    """The customer events of a `/events` body, one event or `{"events": [...]}`, each
    named `events[n]` in errors; none when the body is neither."""
    if not isinstance(payload, dict):
        return []
    items = fields.get(payload, "events", "", list) if "events" in payload else [payload]
    return [_event_row(item, f"events[{n}]", at) for n, item in enumerate(items or [])]


def _event_row(item: Any, where: str, at: datetime) -> dict[str, Any]:
    item = fields.obj(item, where)
    return {
        "customer_id": fields.need(item, "customer_id", where, str),
        "type": fields.need(item, "type", where, str),
        "properties": fields.get(item, "properties", where, dict) or {},
        "at": at,
    }
