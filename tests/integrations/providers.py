"""Scaffolding the provider-client tests share: stateful `httpx.MockTransport` handlers
driven by a script, a stateful Infobip, a rate limiter that records its calls, a fake
clock and sleep, and the checks every client's tests make (`assert_sleeps`,
`error_fields`, `assert_refused_before_sending`).

A script is a list of steps, one per request, played in order; once it runs out every
request is accepted. A step is:

- "accept": the provider records the request and answers as it does on success;
- ("accept", exception class): it records the request, then the answer is lost (raised);
- an exception class: raised before the provider records anything;
- an httpx.Response: the answer as it is.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import pytest

from engine.errors import ProviderError
from integrations.rate_limit import TokenBucket

C = TypeVar("C")


def play(
    step: Any, request: httpx.Request, accept: Callable[[httpx.Request], httpx.Response]
) -> httpx.Response:
    """Answer `request` as script `step` says (see the module docstring)."""
    if step == "accept":
        return accept(request)
    if isinstance(step, tuple):
        accept(request)
        raise step[1]("lost answer", request=request)
    if isinstance(step, type):
        raise step("no answer", request=request)
    return step


@dataclass
class ScriptedProvider:
    """A MockTransport handler that records every request and answers the next step of
    `script`. Subclasses say what accepting a request means (`accept`) and may route
    requests themselves (`handle`)."""

    script: list[Any] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handle(request)

    def handle(self, request: httpx.Request) -> httpx.Response:
        return play(self.next_step(), request, self.accept)

    def next_step(self) -> Any:
        return self.script.pop(0) if self.script else "accept"

    def accept(self, request: httpx.Request) -> httpx.Response:
        raise NotImplementedError


def fake_sleep(sleeps: list[float] | None) -> Callable[[float], None]:
    """A sleep that records the seconds into `sleeps`, or does nothing when it is None."""
    return sleeps.append if sleeps is not None else (lambda seconds: None)


def mock_client(
    client_class: Callable[..., C],
    handler: Callable[[httpx.Request], httpx.Response],
    sleeps: list[float] | None = None,
    *,
    credentials: Any,
    **kwargs: Any,
) -> C:
    """A provider client whose requests go to `handler` and whose sleeps go to `sleeps`.
    Each test module binds its own: `partial(mock_client, Client, credentials=...)`."""
    return client_class(
        credentials, transport=httpx.MockTransport(handler), sleep=fake_sleep(sleeps), **kwargs
    )


def assert_sleeps(recorded: list[float], expected: list[float | tuple[float, float]]) -> None:
    """Each wait between attempts was as expected: exactly the seconds given (a
    `Retry-After`), or within (low, high) (a backoff with its jitter)."""
    assert len(recorded) == len(expected), recorded
    for actual, wanted in zip(recorded, expected, strict=True):
        if isinstance(wanted, tuple):
            assert wanted[0] <= actual <= wanted[1]
        else:
            assert actual == pytest.approx(wanted)


def error_fields(error: ProviderError) -> tuple[str, int | None, str | None, bool]:
    """(text, status_code, code, retryable) of a ProviderError, to compare in one go."""
    return error.text, error.status_code, error.code, error.retryable


class RecordingBucket(TokenBucket):
    """A rate limiter that never waits and remembers what each call asked for."""

    def __init__(self, rate: float = 100):
        super().__init__(rate, sleep=lambda seconds: None)
        self.calls: list[int] = []

    def acquire(self, n: int = 1) -> float:
        self.calls.append(n)
        return super().acquire(n)


def assert_refused_before_sending(
    make_client: Callable[..., Any], fake: ScriptedProvider, send: Callable[[Any], Any], match: str
) -> None:
    """`send(client)` raises a ValueError matching `match`, before any request and before
    the rate limiter is charged: a client checks what it sends first."""
    limiter = RecordingBucket()
    with make_client(fake, rate_limiter=limiter) as client, pytest.raises(ValueError, match=match):
        send(client)
    assert fake.requests == [] and limiter.calls == []


class Clock:
    """A monotonic clock that moves only when a test sets `now`."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- Infobip (SMS v3 and MMS v2 answer alike) -------------------------------------------------


def status(group_id: int, group_name: str, status_id: int, name: str, description: str):
    return {
        "groupId": group_id,
        "groupName": group_name,
        "id": status_id,
        "name": name,
        "description": description,
    }


PENDING_ACCEPTED = status(1, "PENDING", 26, "PENDING_ACCEPTED", "Message sent to next instance")
REJECTED_DESTINATION = status(5, "REJECTED", 14, "REJECTED_DESTINATION", "By Destination")
DUPLICATE = status(
    5, "REJECTED", 23, "REJECTED_DUPLICATE_MESSAGE_ID", "Rejected duplicate message ID"
)


def v3_error(status_code: int, code: str, description: str, violations=(), **headers: str):
    body = {
        "errorCode": code,
        "description": description,
        "action": "Check the syntax, violations and adjust the request.",
        "violations": list(violations),
        "resources": [],
    }
    return httpx.Response(status_code, json=body, headers=headers)


def legacy_error(status_code: int, code: str, text: str, validation=None, **headers: str):
    exception: dict[str, Any] = {"messageId": code, "text": text}
    if validation is not None:
        exception["validationErrors"] = validation
    return httpx.Response(
        status_code, json={"requestError": {"serviceException": exception}}, headers=headers
    )


@dataclass
class FakeInfobip(ScriptedProvider):
    """A stateful Infobip: each post follows `script`, then is accepted. Accepting
    remembers each messageId; a messageId seen before gets status 23, and destinations
    starting with a `blocked` prefix get REJECTED_DESTINATION (200 overall). `sent` keeps
    (to, messageId) of every destination sent."""

    blocked: tuple[str, ...] = ()
    sent: list[tuple[str, ...]] = field(default_factory=list)

    def sent_entry(self, message: dict[str, Any], destination: dict[str, Any]) -> tuple[str, ...]:
        return (destination["to"], destination["messageId"])

    def answer_entry(self, destination: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": destination["messageId"],
            "status": state,
            "destination": destination["to"],
        }

    def accept(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        answers = []
        for message in body["messages"]:
            for destination in message["destinations"]:
                to, mid = destination["to"], destination["messageId"]
                if any(mid == entry[1] for entry in self.sent):
                    state = DUPLICATE
                elif to.startswith(self.blocked):
                    state = REJECTED_DESTINATION
                else:
                    state = PENDING_ACCEPTED
                    self.sent.append(self.sent_entry(message, destination))
                answers.append(self.answer_entry(destination, state))
        return httpx.Response(
            200, json={"bulkId": body["options"]["schedule"]["bulkId"], "messages": answers}
        )
