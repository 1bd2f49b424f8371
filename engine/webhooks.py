"""The webhook server: what providers send back, stored before it is acknowledged.

    POST /webhooks/sinch_sms            Sinch SMS delivery reports (HMAC-signed when set up)
    POST /webhooks/infobip_sms          Infobip SMS delivery reports
    POST /webhooks/infobip_mms          Infobip MMS delivery reports
    POST /webhooks/sinch_mms            Sinch MMS postbacks
    POST /webhooks/sinch_conversation   Conversation API MESSAGE_DELIVERY callbacks
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


def create_webhook_app(
    settings: Settings, store: Store, now: Callable[[], datetime] = utc_now
) -> FastAPI:
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
