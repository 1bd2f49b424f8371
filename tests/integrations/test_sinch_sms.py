"""SinchSmsClient against httpx.MockTransport handlers built from Sinch's real payloads."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx
import pytest

from engine.errors import ProviderError
from integrations.sinch_sms import (
    SINCH_SMS_REGIONS,
    BatchReceipt,
    SinchSmsClient,
    SinchSmsCredentials,
    SmsBatch,
)
from tests.integrations.providers import (
    RecordingBucket,
    ScriptedProvider,
    assert_refused_before_sending,
    assert_sleeps,
    error_fields,
    mock_client,
    play,
)

TOKEN = "tok-3f9a1c77e2b54d0e"
PLAN = "a1b2c3d4e5f6"
ENDPOINT = f"https://us.sms.api.sinch.com/xms/v1/{PLAN}"
CREDENTIALS = SinchSmsCredentials(service_plan_id=PLAN, api_token=TOKEN)

BATCH = SmsBatch(
    sender="12345",
    recipients=["+15551231234", "+15551234567", "+33662162466"],
    body="Hi ${name}, your code is ${code}",
    client_reference="v3:welcome:sms-1:cust-42:1",
    parameters={
        "name": {"+15551231234": "Ann", "+15551234567": "Bob", "default": "there"},
        "code": {"+15551231234": "A1", "+15551234567": "B2", "+33662162466": "C3"},
    },
    callback_url="https://hooks.example.com/sinch/dlr",
)


def accepted(payload: dict[str, Any], batch_id: str) -> dict[str, Any]:
    """Sinch's 201 answer: the request echoed plus id, timestamps and canceled."""
    return {
        "id": batch_id,
        **payload,
        "type": "mt_text",
        "created_at": "2025-01-13T09:22:40.914Z",
        "modified_at": "2025-01-13T09:22:40.914Z",
        "canceled": False,
        "send_at": "2025-01-13T09:22:40.914Z",
        "expire_at": "2025-01-16T09:22:40.914Z",
        "flash_message": False,
    }


@dataclass
class FakeSinch(ScriptedProvider):
    """A stateful Sinch: POST /batches follows `script`, then accepts (see `providers` for
    the steps); GET follows `list_script`, then lists what it accepted."""

    list_script: list[Any] = field(default_factory=list)
    accepted: list[dict[str, Any]] = field(default_factory=list)

    def posts(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == "POST"]

    def gets(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == "GET"]

    def accept(self, request: httpx.Request) -> httpx.Response:
        batch = accepted(
            json.loads(request.content), f"01JHFFHQ0P99JPPNQPJDV7J{len(self.accepted):03d}"
        )
        self.accepted.append(batch)
        return httpx.Response(201, json=batch)

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return super().handle(request)
        step = self.list_script.pop(0) if self.list_script else "accept"
        return play(step, request, self.list_batches)

    def list_batches(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        matching = [
            b for b in self.accepted if b.get("client_reference") == params["client_reference"]
        ]
        page, size = int(params["page"]), int(params["page_size"])
        chosen = matching[page * size : (page + 1) * size]
        return httpx.Response(
            200,
            json={
                "count": len(matching),
                "page": page,
                "page_size": len(chosen),
                "batches": chosen,
            },
        )


make_client = partial(mock_client, SinchSmsClient, credentials=CREDENTIALS)


def sinch_error(status: int, code: str, text: str, **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"code": code, "text": text}, headers=headers)


# -- request shape ----------------------------------------------------------------------


def test_send_batch_posts_sinch_shape_and_returns_receipt():
    fake = FakeSinch()
    with make_client(fake) as client:
        receipt = client.send_batch(BATCH)

    (request,) = fake.requests
    assert request.method == "POST"
    assert str(request.url) == f"{ENDPOINT}/batches"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == {
        "from": "12345",
        "to": ["15551231234", "15551234567", "33662162466"],
        "body": "Hi ${name}, your code is ${code}",
        "delivery_report": "per_recipient",
        "client_reference": "v3:welcome:sms-1:cust-42:1",
        "parameters": {
            "name": {"15551231234": "Ann", "15551234567": "Bob", "default": "there"},
            "code": {"15551231234": "A1", "15551234567": "B2", "33662162466": "C3"},
        },
        "callback_url": "https://hooks.example.com/sinch/dlr",
    }
    assert receipt == BatchReceipt(
        batch_id="01JHFFHQ0P99JPPNQPJDV7J000",
        client_reference="v3:welcome:sms-1:cust-42:1",
        recipients=3,
    )


def test_optional_fields_are_left_out():
    fake = FakeSinch()
    batch = SmsBatch(
        sender="+15550000000",
        recipients=["+15551231234"],
        body="Hello",
        client_reference="k",
        delivery_report="none",
    )
    with make_client(fake) as client:
        client.send_batch(batch)
    assert json.loads(fake.requests[0].content) == {
        "from": "+15550000000",
        "to": ["15551231234"],
        "body": "Hello",
        "delivery_report": "none",
        "client_reference": "k",
    }


@pytest.mark.parametrize(
    ("region", "base_url", "expected"),
    [
        ("us", None, f"https://us.sms.api.sinch.com/xms/v1/{PLAN}"),  # the default region
        ("eu", None, f"https://eu.sms.api.sinch.com/xms/v1/{PLAN}"),
        ("au", None, f"https://au.sms.api.sinch.com/xms/v1/{PLAN}"),
        ("br", None, f"https://br.sms.api.sinch.com/xms/v1/{PLAN}"),
        ("ca", None, f"https://ca.sms.api.sinch.com/xms/v1/{PLAN}"),
        # the simulator override wins over the region; a trailing slash is tolerated
        ("eu", "http://127.0.0.1:8765/", f"http://127.0.0.1:8765/xms/v1/{PLAN}"),
    ],
)
def test_endpoint(region, base_url, expected):
    credentials = SinchSmsCredentials(
        service_plan_id=PLAN, api_token=TOKEN, region=region, base_url=base_url
    )
    assert credentials.endpoint() == expected
    assert set(SINCH_SMS_REGIONS) == {"us", "eu", "au", "br", "ca"}


def _batch(**changes: Any) -> SmsBatch:
    fields = {
        "sender": "12345",
        "recipients": ["+15551231234"],
        "body": "Hi",
        "client_reference": "ref",
        **changes,
    }
    return SmsBatch(**fields)


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        (_batch(recipients=[]), "1 to 1000 recipients"),  # Sinch needs at least one
        (  # Sinch's to[] maximum is 1,000
            _batch(recipients=[f"+1555{i:07d}" for i in range(1001)]),
            "got 1001",
        ),
        (_batch(client_reference="x" * 129), "at most 128"),  # Sinch's limit
        (_batch(client_reference=""), "required"),  # no key, no exactly-once
        (_batch(delivery_report="sometimes"), "delivery_report"),  # not a Sinch value
    ],
)
def test_invalid_batch_raises_before_any_http_call(batch, message):
    assert_refused_before_sending(make_client, FakeSinch(), lambda c: c.send_batch(batch), message)


def test_exactly_1000_recipients_is_accepted():
    fake = FakeSinch()
    with make_client(fake) as client:
        receipt = client.send_batch(_batch(recipients=[f"+1555{i:07d}" for i in range(1000)]))
    assert receipt.recipients == 1000
    assert len(json.loads(fake.requests[0].content)["to"]) == 1000


# -- errors that are not retried ------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "text", "code"),
    [
        # a bad recipient fails the whole batch
        (
            sinch_error(
                400,
                "syntax_invalid_parameter_format",
                "The format of parameter 'to[0]' is invalid. Expected an MSISDN or a group ID",
            ),
            "The format of parameter 'to[0]' is invalid. Expected an MSISDN or a group ID",
            "syntax_invalid_parameter_format",
        ),
        (
            sinch_error(400, "syntax_invalid_json", "The JSON body could not be parsed"),
            "The JSON body could not be parsed",
            "syntax_invalid_json",
        ),
        # a wrong token: Sinch may answer without a JSON body
        (httpx.Response(401, text="Unauthorized"), "HTTP 401 Unauthorized: Unauthorized", None),
        (httpx.Response(401), "HTTP 401 Unauthorized", None),
        # 403 carries Sinch's sub-codes
        (
            sinch_error(403, "blocked_account", "The account is blocked"),
            "The account is blocked",
            "blocked_account",
        ),
        (
            sinch_error(403, "illegal_number_type", "Illegal number type: 15550000000"),
            "Illegal number type: 15550000000",
            "illegal_number_type",
        ),
        (
            sinch_error(403, "missing_callback_url", "No callback URL configured"),
            "No callback URL configured",
            "missing_callback_url",
        ),
        # a proxy's HTML page is not JSON
        (
            httpx.Response(404, html="<html><body>Not <b>Found</b></body></html>"),
            "HTTP 404 Not Found: <html><body>Not <b>Found</b></body></html>",
            None,
        ),
        # the Google-style error body some Sinch gateways answer with
        (
            httpx.Response(
                400,
                json={
                    "error": {
                        "code": 400,
                        "message": 'parsing field "type": "XXX" is not a valid value',
                        "status": "INVALID_ARGUMENT",
                        "details": [],
                    }
                },
            ),
            'parsing field "type": "XXX" is not a valid value',
            "INVALID_ARGUMENT",
        ),
    ],
)
def test_client_errors_raise_provider_error_without_retry(response, text, code):
    fake = FakeSinch(script=[response])
    sleeps: list[float] = []
    with make_client(fake, sleeps) as client, pytest.raises(ProviderError) as caught:
        client.send_batch(BATCH)
    assert error_fields(caught.value) == (text, response.status_code, code, False)
    assert len(fake.requests) == 1
    assert sleeps == []
    assert TOKEN not in str(caught.value)


# -- retries and exactly-once -------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "posts", "gets", "sleeps", "batch_index"),
    [
        # 429: nothing was accepted, wait Retry-After and post again, no look-up
        (
            [sinch_error(429, "too_many_requests", "Too many", **{"Retry-After": "2"})],
            2,
            0,
            [2.0],
            0,
        ),
        # 429 without Retry-After: exponential backoff with jitter (0.5 s to 0.75 s)
        ([sinch_error(429, "too_many_requests", "Too many")], 2, 0, [(0.5, 0.75)], 0),
        # 503: the outcome is unknown; the look-up finds nothing, so post again
        ([sinch_error(503, "service_unavailable", "Try later")], 2, 1, [(0.5, 0.75)], 0),
        # 503 with Retry-After: honoured
        ([sinch_error(503, "x", "y", **{"Retry-After": "3"})], 2, 1, [3.0], 0),
        # a 502 from a proxy, not JSON
        ([httpx.Response(502, text="<html>Bad Gateway</html>")], 2, 1, [(0.5, 0.75)], 0),
        # two 500s: the backoff doubles (0.5-0.75 s, then 1-1.5 s)
        ([httpx.Response(500), httpx.Response(500)], 3, 2, [(0.5, 0.75), (1.0, 1.5)], 0),
        # the batch was accepted but the answer timed out: found, never posted again
        ([("accept", httpx.ReadTimeout)], 1, 1, [(0.5, 0.75)], 0),
        # the connection dropped after Sinch accepted: found, never posted again
        ([("accept", httpx.RemoteProtocolError)], 1, 1, [(0.5, 0.75)], 0),
        # the request timed out before Sinch recorded it: look-up, then post again
        ([httpx.WriteTimeout], 2, 1, [(0.5, 0.75)], 0),
        # the connection could not even be opened: nothing was sent, no look-up needed
        ([httpx.ConnectError], 2, 0, [(0.5, 0.75)], 0),
        ([httpx.ConnectTimeout], 2, 0, [(0.5, 0.75)], 0),
    ],
)
def test_retries_send_each_batch_exactly_once(script, posts, gets, sleeps, batch_index):
    fake = FakeSinch(script=list(script))
    recorded: list[float] = []
    with make_client(fake, recorded) as client:
        receipt = client.send_batch(BATCH)

    assert len(fake.accepted) == 1, "Sinch must hold exactly one batch"
    assert receipt.batch_id == fake.accepted[batch_index]["id"]
    assert receipt.client_reference == BATCH.client_reference
    assert len(fake.posts()) == posts
    assert len(fake.gets()) == gets
    for get in fake.gets():
        assert get.url.params["client_reference"] == BATCH.client_reference
        assert get.headers["Authorization"] == f"Bearer {TOKEN}"
    assert_sleeps(recorded, sleeps)


@pytest.mark.parametrize(
    ("response", "unknown"),
    [
        (sinch_error(503, "service_unavailable", "Try later"), True),  # 5xx: may be accepted
        (sinch_error(429, "too_many_requests", "Too many"), False),  # 429: surely not
    ],
)
def test_exhausted_retries_raise_retryable_provider_error(response, unknown):
    fake = FakeSinch(script=[response] * 5)
    sleeps: list[float] = []
    with (
        make_client(fake, sleeps, max_attempts=5) as client,
        pytest.raises(ProviderError) as caught,
    ):
        client.send_batch(BATCH)
    error = caught.value
    assert error.retryable is True
    assert (error.status_code, error.code) == (response.status_code, response.json()["code"])
    assert len(fake.posts()) == 5
    assert len(sleeps) == 4
    # with an unknown outcome, every retry and the final answer are preceded by a look-up
    assert len(fake.gets()) == (5 if unknown else 0)
    assert ("outcome is unknown" in error.text) is unknown
    assert fake.accepted == []


def test_an_earlier_unknown_outcome_is_reconciled_even_if_the_last_was_a_429():
    too_many = sinch_error(429, "too_many_requests", "Too many")
    fake = FakeSinch(script=[httpx.WriteTimeout, too_many, too_many])
    with make_client(fake, max_attempts=3) as client, pytest.raises(ProviderError) as caught:
        client.send_batch(BATCH)
    assert caught.value.retryable is True and caught.value.status_code == 429
    assert "outcome is unknown" in caught.value.text
    assert len(fake.posts()) == 3
    # one look-up after the timeout, none after the first 429, one before giving up
    assert len(fake.gets()) == 2


def test_exhausted_retries_still_find_a_batch_accepted_on_the_last_attempt():
    fake = FakeSinch(script=[("accept", httpx.ReadTimeout)])
    with make_client(fake, max_attempts=1) as client:
        receipt = client.send_batch(BATCH)
    assert receipt.batch_id == fake.accepted[0]["id"]
    assert len(fake.posts()) == 1


def test_failed_look_up_stops_the_send():
    # Without an answer to "was it accepted?", posting again could send twice.
    fake = FakeSinch(
        script=[httpx.ReadTimeout],
        list_script=[sinch_error(401, "unauthorized", "Invalid token")],
    )
    with make_client(fake) as client, pytest.raises(ProviderError) as caught:
        client.send_batch(BATCH)
    assert caught.value.status_code == 401
    assert caught.value.retryable is False
    assert "Invalid token" in caught.value.text
    assert len(fake.posts()) == 1


def test_look_up_retries_its_own_transient_failures():
    fake = FakeSinch(
        script=[("accept", httpx.ReadTimeout)],
        list_script=[httpx.ConnectError, sinch_error(503, "service_unavailable", "busy")],
    )
    with make_client(fake) as client:
        receipt = client.send_batch(BATCH)
    assert receipt.batch_id == fake.accepted[0]["id"]
    assert len(fake.posts()) == 1
    assert len(fake.gets()) == 3


def test_reconcile_returns_the_existing_batch_without_posting_or_pacing():
    fake = FakeSinch()
    limiter = RecordingBucket(10)
    with make_client(fake, rate_limiter=limiter) as client:
        first = client.send_batch(BATCH)
        again = client.send_batch(BATCH, reconcile=True)
    assert again == first
    assert len(fake.posts()) == 1
    assert limiter.calls == [3]


def test_rate_limiter_is_charged_once_per_batch_per_recipient():
    fake = FakeSinch(
        script=[sinch_error(429, "too_many_requests", "Too many"), httpx.Response(500)]
    )
    limiter = RecordingBucket(100)
    with make_client(fake, rate_limiter=limiter) as client:
        client.send_batch(BATCH)
    assert limiter.calls == [3]
    assert len(fake.posts()) == 3


# -- find_batches -----------------------------------------------------------------------


def test_find_batches_follows_every_page():
    fake = FakeSinch()
    for i in range(250):
        fake.accepted.append(accepted({"to": ["15551231234"], "client_reference": "r"}, f"B{i}"))
    fake.accepted.append(accepted({"to": ["15551231234"], "client_reference": "other"}, "X"))
    with make_client(fake) as client:
        found = client.find_batches("r")
    assert [b.batch_id for b in found] == [f"B{i}" for i in range(250)]
    assert all(b.client_reference == "r" and b.recipients == 1 for b in found)
    pages = [(r.url.path, dict(r.url.params)) for r in fake.requests]
    assert pages == [
        (f"/xms/v1/{PLAN}/batches", {"client_reference": "r", "page": str(p), "page_size": "100"})
        for p in range(3)
    ]


def test_find_batches_with_no_match_makes_one_request():
    fake = FakeSinch()
    with make_client(fake) as client:
        assert client.find_batches("nothing") == []
    assert len(fake.requests) == 1


def test_find_batches_raises_on_a_malformed_list():
    fake = FakeSinch(list_script=[httpx.Response(200, json={"count": 1})])
    with make_client(fake) as client, pytest.raises(ProviderError, match="'batches'"):
        client.find_batches("r")


# -- secrets ----------------------------------------------------------------------------


def test_token_never_reaches_reprs_logs_or_errors(caplog):
    caplog.set_level(logging.DEBUG)
    fake = FakeSinch(
        script=[
            httpx.ReadTimeout,
            sinch_error(503, "service_unavailable", "busy"),
            httpx.Response(401, text="Unauthorized"),
        ]
    )
    with make_client(fake) as client:
        with pytest.raises(ProviderError) as caught:
            client.send_batch(BATCH)
        shown = [repr(CREDENTIALS), str(CREDENTIALS), repr(client), CREDENTIALS.model_dump_json()]
    assert all(TOKEN not in text for text in shown)
    assert caught.value.status_code == 401
    assert caplog.records, "retries are logged"
    assert TOKEN not in caplog.text
    assert TOKEN not in str(caught.value) and TOKEN not in repr(caught.value)
    assert fake.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"
