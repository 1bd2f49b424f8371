"""The simulator's server-side rate limiter (`rate_limit_per_second`, one token bucket over
every send endpoint, one token per recipient) and its arrival log, through Starlette's
TestClient with an injected clock."""

from __future__ import annotations

import base64
import contextlib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from integrations.simulator.app import create_app
from integrations.simulator.config import SimulatorConfig

with warnings.catch_warnings():
    # Starlette 1.x asks for httpx2 under its TestClient; the project pins httpx.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient


@dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client_for(clock) -> Iterator[Callable[..., TestClient]]:
    with contextlib.ExitStack() as stack:

        def make(**config: Any) -> TestClient:
            app = create_app(SimulatorConfig(**config), clock=clock)
            return stack.enter_context(TestClient(app))

        yield make


def numbers(count: int, start: int = 0) -> list[str]:
    return [f"1555{i:07d}" for i in range(start, start + count)]


_serial = iter(range(10**9))


def _id() -> str:
    return f"id-{next(_serial)}"


def sinch_sms(http: TestClient, to: list[str]) -> httpx.Response:
    return http.post(
        "/xms/v1/simulator/batches",
        json={"from": "12345", "to": to, "body": "Hi"},
        headers={"Authorization": "Bearer simulator-token"},
    )


def infobip_sms(http: TestClient, to: list[str]) -> httpx.Response:
    message = {
        "sender": "InfoSMS",
        "destinations": [{"to": n, "messageId": _id()} for n in to],
        "content": {"text": "Hi"},
    }
    return http.post(
        "/sms/3/messages",
        json={"messages": [message]},
        headers={"Authorization": "App simulator-key"},
    )


def infobip_mms(http: TestClient, to: list[str]) -> httpx.Response:
    message = {
        "sender": "441134960000",
        "destinations": [{"to": n, "messageId": _id()} for n in to],
        "content": {"title": "Sale", "messageSegments": [{"type": "TEXT", "text": "Hi"}]},
    }
    return http.post(
        "/mms/2/messages",
        json={"messages": [message]},
        headers={"Authorization": "App simulator-key"},
    )


def sinch_mms(http: TestClient, to: list[str]) -> httpx.Response:
    (number,) = to
    payload = {
        "action": "sendmms",
        "service-id": "30011",
        "to": number,
        "from": "28444",
        "disable-fallback-sms": True,
        "slide": [{"message-text": "Hi"}],
    }
    return http.post("/ep/v2/", json=payload, headers={"x-api-key": "simulator-mms-key"})


def conversation(http: TestClient, to: list[str]) -> httpx.Response:
    (number,) = to
    key = base64.b64encode(b"simulator-key-id:simulator-key-secret").decode()
    payload = {
        "app_id": "simulator-app",
        "recipient": {
            "identified_by": {"channel_identities": [{"channel": "MMS", "identity": number}]}
        },
        "message": {"text_message": {"text": "Hi"}},
    }
    return http.post(
        "/v1/projects/simulator-project/messages:send",
        json=payload,
        headers={"Authorization": f"Basic {key}"},
    )


def sinch_429(body: dict[str, Any]) -> bool:
    return body == {"code": "too_many_requests", "text": "Too many outstanding requests"}


def infobip_429(body: dict[str, Any]) -> bool:
    return body["errorCode"] == "E429" and body["violations"] == []


def mms_429(body: dict[str, Any]) -> bool:
    return body["status"] == "Failure" and body["error-code"] == "E113"


def conversation_429(body: dict[str, Any]) -> bool:
    return body["error"]["code"] == 429 and body["error"]["status"] == "RESOURCE_EXHAUSTED"


# (send, refusal check, success status, recipients a request carries)
PROVIDERS = {
    "sinch_sms": (sinch_sms, sinch_429, 201, 5),
    "infobip_sms": (infobip_sms, infobip_429, 200, 5),
    "infobip_mms": (infobip_mms, infobip_429, 200, 5),
    "sinch_mms": (sinch_mms, mms_429, 200, 1),
    "conversation": (conversation, conversation_429, 200, 1),
}


def stats(http: TestClient) -> dict[str, Any]:
    return http.get("/_simulator/stats").json()


def arrivals(http: TestClient) -> list[list[float]]:
    return http.get("/_simulator/arrivals").json()["arrivals"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_burst_over_the_limit_is_refused_with_the_providers_429(client_for, clock, provider):
    send, refused, ok, size = PROVIDERS[provider]
    http = client_for(rate_limit_per_second=10)  # burst: one second's worth, 10 tokens
    batches = [numbers(size, i * size) for i in range(10 // size)]
    for to in batches:  # the whole burst fits
        assert send(http, to).status_code == ok
    response = send(http, numbers(size, 100))
    assert response.status_code == 429
    assert refused(response.json())
    assert float(response.headers["Retry-After"]) == pytest.approx(size / 10)
    counters = stats(http)
    assert counters["faults"]["rate_limited"] == 1
    assert counters["messages"] == 10  # the refused request recorded nothing
    assert counters["recipients"] == 10
    # once enough tokens are back, the same request goes through
    clock.advance(size / 10)
    assert send(http, numbers(size, 100)).status_code == ok
    assert stats(http)["messages"] == 10 + size


@pytest.mark.parametrize("provider", PROVIDERS)
def test_paced_requests_are_all_accepted_and_logged(client_for, clock, provider):
    send, _, ok, size = PROVIDERS[provider]
    rate = 20.0
    http = client_for(rate_limit_per_second=rate, rate_limit_burst=size)  # no slack at all
    for i in range(12):
        assert send(http, numbers(size, i * size)).status_code == ok
        clock.advance(size / rate)
    counters = stats(http)
    assert counters["faults"]["rate_limited"] == 0
    assert counters["messages"] == 12 * size
    logged = arrivals(http)
    assert [n for _, n in logged] == [size] * 12
    assert [t for t, _ in logged] == pytest.approx([i * size / rate for i in range(12)])


def test_the_bucket_is_shared_across_providers(client_for, clock):
    http = client_for(rate_limit_per_second=4)
    assert sinch_sms(http, numbers(2)).status_code == 201
    assert infobip_mms(http, numbers(1, 2)).status_code == 200
    assert sinch_mms(http, numbers(1, 3)).status_code == 200
    response = conversation(http, numbers(1, 4))  # the 5th token in the same instant
    assert response.status_code == 429 and conversation_429(response.json())
    assert response.headers["Retry-After"] == "0.25"
    response = infobip_sms(http, numbers(1, 4))
    assert response.status_code == 429 and infobip_429(response.json())
    clock.advance(0.25)
    assert conversation(http, numbers(1, 4)).status_code == 200
    assert stats(http)["faults"]["rate_limited"] == 2
    assert [n for _, n in arrivals(http)] == [2, 1, 1, 1]


def test_a_request_over_the_burst_is_never_accepted(client_for, clock):
    http = client_for(rate_limit_per_second=10, rate_limit_burst=5)
    clock.advance(60)  # the bucket holds no more than its burst
    response = sinch_sms(http, numbers(6))
    assert response.status_code == 429
    assert sinch_sms(http, numbers(5)).status_code == 201


def test_partial_refill_and_the_default_burst(client_for, clock):
    http = client_for(rate_limit_per_second=100)  # 100 tokens of burst
    assert sinch_sms(http, numbers(100)).status_code == 201
    clock.advance(0.5)  # 50 tokens back
    assert sinch_sms(http, numbers(60, 100)).status_code == 429
    assert sinch_sms(http, numbers(50, 100)).status_code == 201
    assert sinch_sms(http, numbers(1, 200)).status_code == 429


def test_invalid_and_unauthorized_requests_take_no_tokens(client_for):
    http = client_for(rate_limit_per_second=2)
    bad = http.post(
        "/xms/v1/simulator/batches",
        json={"from": "12345", "to": ["123"], "body": "Hi"},
        headers={"Authorization": "Bearer simulator-token"},
    )
    assert bad.status_code == 400
    unauthorized = http.post(
        "/xms/v1/simulator/batches",
        json={"from": "12345", "to": numbers(2), "body": "Hi"},
        headers={"Authorization": "Bearer wrong"},
    )
    assert unauthorized.status_code == 401
    assert sinch_sms(http, numbers(2)).status_code == 201
    assert stats(http)["faults"]["rate_limited"] == 0


def test_without_a_rate_nothing_is_limited_but_arrivals_are_logged(client_for, clock):
    http = client_for()
    for i in range(5):
        assert sinch_sms(http, numbers(1000, 1000 * i)).status_code == 201
        clock.advance(0.001)
    assert stats(http)["faults"]["rate_limited"] == 0
    assert arrivals(http) == [[pytest.approx(i / 1000), 1000] for i in range(5)]


def test_reset_clears_arrivals_and_refills_config_changes_refill(client_for, clock):
    http = client_for(rate_limit_per_second=2)
    assert sinch_sms(http, numbers(2)).status_code == 201
    assert sinch_sms(http, numbers(1, 2)).status_code == 429
    http.post("/_simulator/reset")
    assert arrivals(http) == [] and stats(http)["faults"]["rate_limited"] == 0
    assert sinch_sms(http, numbers(2)).status_code == 201  # the bucket is full again
    assert http.put("/_simulator/config", json={"rate_limit_per_second": 3}).status_code == 200
    assert sinch_sms(http, numbers(3)).status_code == 201
    assert [n for _, n in arrivals(http)] == [2, 3]  # a config change keeps the log
    # lifting the limit
    http.put("/_simulator/config", json={})
    assert sinch_sms(http, numbers(1000)).status_code == 201


def test_burst_without_a_rate_is_refused(client_for):
    http = client_for()
    response = http.put("/_simulator/config", json={"rate_limit_burst": 5})
    assert response.status_code == 400 and "rate_limit_burst" in response.json()["text"]
    assert http.put("/_simulator/config", json={"rate_limit_per_second": 0}).status_code == 400


def test_faults_are_drawn_before_the_limiter_and_take_no_tokens(client_for):
    http = client_for(rate_limit_per_second=1, error_5xx_rate=1)
    assert infobip_mms(http, numbers(1)).status_code == 500
    http.put("/_simulator/config", json={"rate_limit_per_second": 1})
    assert infobip_mms(http, numbers(1)).status_code == 200
    assert stats(http)["faults"] == {
        "429": 0,
        "5xx": 1,
        "timeout": 0,
        "hang_after_accept": 0,
        "rate_limited": 0,
    }
