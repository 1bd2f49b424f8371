"""Short-link clicks: `GET /l/{code}` on the webhook app redirects and tracks.

    GET  /l/{code}   302 to the link's target (with the customer id when identity
                     transfers: every click, the first click only, or never); the click
                     is counted and tracked as a campaign event with status `clicked`
    HEAD /l/{code}   302 to the target, nothing tracked: link-preview bots and
                     scanners ask with HEAD, and their visits are not customers' clicks

An unknown code is a 404 page and leaves no trace. Every click is an event, as
Bloomreach tracks each: the send's enqueue event's properties (action, campaign, the
scenario's custom tracking attributes), with status `clicked`, the `url` clicked (the
target without the identity parameter) and the link's position in the message. Responses
are never cached, so every click reaches the server.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from engine.links import is_short_code, redirect_url
from engine.settings import Settings
from engine.store import Store

NOT_FOUND_PAGE = (
    "<!doctype html><html><head><title>Link not found</title></head>"
    "<body><p>This link does not exist.</p></body></html>"
)
_NO_STORE = {"Cache-Control": "no-store"}


def click_router(settings: Settings, store: Store, now: Callable[[], datetime]) -> APIRouter:
    """The short-link routes, for the webhook app to include."""
    router = APIRouter()
    event_name = settings.campaign_event_name
    parameter = settings.links.identity_parameter

    def follow(code: str, tracked: bool) -> Response:
        link = store.links.get(code) if is_short_code(code) else None
        if link is None:
            return HTMLResponse(NOT_FOUND_PAGE, 404, headers=_NO_STORE)
        if not tracked:
            return _redirect(link["url"])
        at = now()
        enqueued = store.evaluation.campaign_event_for(link["send_key"])
        first = store.links.record_click(code, at, clicked_event(link, enqueued, event_name, at))
        return _redirect(
            redirect_url(link["url"], link["identity"], parameter, link["customer_id"], first)
        )

    @router.api_route("/l/{code}", methods=["GET", "HEAD"], include_in_schema=False)
    async def click(code: str, request: Request) -> Response:
        return await run_in_threadpool(follow, code, request.method == "GET")

    return router


def clicked_event(
    link: dict[str, Any], enqueued: dict[str, Any] | None, event_name: str, at: datetime
) -> dict[str, Any]:
    """The campaign event of one click: its send's enqueue event with status `clicked`.

    A click can only beat its enqueue event by the milliseconds between a send and its
    tracking; it then carries what the link itself knows.
    """
    sent = (
        enqueued["properties"]
        if enqueued is not None
        else {"campaign_id": link["scenario_id"], "action_name": link["node_id"]}
    )
    properties = {
        **sent,
        "status": "clicked",
        "url": link["url"],
        "link_position": link["position"],
    }
    if link["test"]:
        properties["test"] = True
    return {
        "name": event_name,
        "customer_id": link["customer_id"],
        "scenario_id": link["scenario_id"],
        "status": "clicked",
        "send_key": None,  # the enqueue event holds the send key; clicks are extra events
        "test": link["test"],
        "timestamp": at,
        "properties": properties,
    }


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, 302, headers=_NO_STORE)
