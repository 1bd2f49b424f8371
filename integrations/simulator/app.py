"""The local provider simulator: the REST endpoints Scenarist uses, with each provider's
shapes and error bodies, plus a few `/_simulator/*` endpoints for tests and benchmarks.

Each provider lives in its own module, which documents its endpoints:

    sinch_sms.py      Sinch SMS REST API       /xms/v1/{service_plan_id}/batches[/{id}]
    infobip.py        Infobip SMS and MMS APIs /sms/3/messages, /mms/2/messages
    sinch_mms.py      Sinch MMS JSON API       /ep/v2/ (action sendmms)
    conversation.py   Sinch Conversation API   /oauth2/token, /v1/projects/{id}/messages:send

They share one ledger (`state.py`): the per-recipient counters, the fault and fallback
draws, the hang bookkeeping, the optional rate limiter (`rate_limit_per_second`: one
token bucket over every send endpoint) and the arrival log, and the reporter that posts
delivery reports for what was accepted to the configured callback URLs (`reports.py`).
This module only composes them and serves:

    GET  /_simulator/stats      counters over every provider (see `SimulatorState.stats`)
    GET  /_simulator/messages   `?to=+1555...`: what one number received, rendered
    GET  /_simulator/arrivals   `{"arrivals": [[seconds_since_first, recipients], ...]}`: every
                                accepted send request (rate-limited, invalid and faulted ones
                                are not listed), timed when it was admitted
    POST /_simulator/reset      forget every batch, message, token, counter and arrival, and
                                drop the delivery reports not posted yet
    GET|PUT /_simulator/config  read or replace the configuration
    POST /_simulator/inbound    post an inbound message from a phone to the webhook server, in
                                one API's shape (see `inbound.py`)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from pydantic import ValidationError

from integrations.simulator import conversation, inbound, infobip, sinch_mms, sinch_sms
from integrations.simulator.config import SimulatorConfig
from integrations.simulator.sinch_sms import sinch_error
from integrations.simulator.state import SimulatorState, json_bytes, json_response

PROVIDERS = (sinch_sms, infobip, sinch_mms, conversation)


def create_app(
    config: SimulatorConfig | None = None, *, clock: Callable[[], float] | None = None
) -> FastAPI:
    """A fresh simulator app; its state is at `app.state.simulator`. `clock` (monotonic
    seconds, default `time.monotonic`) drives the rate limiter and the arrival log."""
    state = SimulatorState(config or SimulatorConfig(), clock=clock)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await state.reporter.aclose()  # reports not posted yet are dropped

    app = FastAPI(title="Scenarist provider simulator", version="1", lifespan=lifespan)
    app.state.simulator = state
    for provider in PROVIDERS:
        app.include_router(provider.router(state))
    app.include_router(inbound.router(state))

    @app.get("/_simulator/stats")
    async def stats() -> Response:
        return json_response(json_bytes(state.stats()))

    @app.get("/_simulator/messages")
    async def messages(to: str) -> Response:
        received = state.messages_for(to)
        return json_response(json_bytes({"to": to, "count": len(received), "messages": received}))

    @app.get("/_simulator/arrivals")
    async def arrivals() -> Response:
        return json_response(json_bytes({"arrivals": state.arrivals()}))

    @app.post("/_simulator/reset")
    async def reset() -> Response:
        state.reset()
        return json_response(json_bytes(state.stats()))

    @app.get("/_simulator/config")
    async def get_config() -> Response:
        return json_response(state.config.model_dump_json().encode())

    @app.put("/_simulator/config")
    async def put_config(request: Request) -> Response:
        try:
            new = SimulatorConfig.model_validate_json(await request.body())
        except ValidationError as exc:
            return sinch_error(400, "invalid_config", str(exc))
        state.configure(new)
        return json_response(new.model_dump_json().encode())

    return app
