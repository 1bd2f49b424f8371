"""InfobipSmsClient against httpx.MockTransport handlers built from Infobip's real payloads."""

from __future__ import annotations

import json
import logging
from functools import partial
from typing import Any

import httpx
import pytest

from engine.errors import ProviderError
from integrations.infobip_sms import (
    DestinationResult,
    InfobipCredentials,
    InfobipMessage,
    InfobipSmsClient,
    destination_result,
)
from tests.integrations.providers import (
    DUPLICATE,
    PENDING_ACCEPTED,
    REJECTED_DESTINATION,
    FakeInfobip,
    RecordingBucket,
    legacy_error,
    mock_client,
    status,
    v3_error,
)

KEY = "0f8e4c2b9a7d41e3b5c6a1d2e3f40516-7c3b2a19-48d6-4e0f-9a21-5b6c7d8e9f00"
BASE = "https://xyz.api.infobip.com"
CREDENTIALS = InfobipCredentials(base_url=BASE, api_key=KEY)
BULK = "v3:welcome:sms-1:b0"

MESSAGES = [
    InfobipMessage(
        sender="InfoSMS",
        destinations=[("+41793026727", "v3:welcome:c-1"), ("+41793026834", "v3:welcome:c-2")],
        text="Hi Ann, your code is A1",
    ),
    InfobipMessage(
        sender="41793026700",
        destinations=[("+447491163443", "v3:welcome:c-3")],
        text="Hi Bob, your code is B2",
    ),
]


class FakeInfobipSms(FakeInfobip):
    """The stateful Infobip of `providers`, answering POST /sms/3/messages: `sent` also
    keeps each text, (to, messageId, text), and answers carry the SMS count."""

    def sent_entry(self, message: dict[str, Any], destination: dict[str, Any]) -> tuple[str, ...]:
        return (*super().sent_entry(message, destination), message["content"]["text"])

    def answer_entry(self, destination: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
        return {**super().answer_entry(destination, state), "details": {"messageCount": 1}}


make_client = partial(mock_client, InfobipSmsClient, credentials=CREDENTIALS)


ALL_ACCEPTED = [
    DestinationResult("+41793026727", "v3:welcome:c-1", True),
    DestinationResult("+41793026834", "v3:welcome:c-2", True),
    DestinationResult("+447491163443", "v3:welcome:c-3", True),
]


# -- request shape ----------------------------------------------------------------------


def test_send_posts_infobip_v3_shape():
    fake = FakeInfobipSms()
    with make_client(fake) as client:
        results = client.send(MESSAGES, bulk_id=BULK)

    (request,) = fake.requests
    assert request.method == "POST"
    assert str(request.url) == f"{BASE}/sms/3/messages"
    assert request.headers["Authorization"] == f"App {KEY}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "application/json"
    assert json.loads(request.content) == {
        "messages": [
            {
                "sender": "InfoSMS",
                "destinations": [
                    {"to": "41793026727", "messageId": "v3:welcome:c-1"},
                    {"to": "41793026834", "messageId": "v3:welcome:c-2"},
                ],
                "content": {"text": "Hi Ann, your code is A1"},
            },
            {
                "sender": "41793026700",
                "destinations": [{"to": "447491163443", "messageId": "v3:welcome:c-3"}],
                "content": {"text": "Hi Bob, your code is B2"},
            },
        ],
        "options": {"schedule": {"bulkId": BULK}, "includeSmsCountInResponse": True},
    }
    assert results == ALL_ACCEPTED


def test_base_url_is_normalised_and_must_be_http():
    assert InfobipCredentials(base_url=" http://127.0.0.1:8765/ ", api_key="k").base_url == (
        "http://127.0.0.1:8765"
    )
    with pytest.raises(ValueError, match="https://"):
        InfobipCredentials(base_url="xyz.api.infobip.com", api_key="k")


def _message(destinations, text="Hi", sender="InfoSMS") -> InfobipMessage:
    return InfobipMessage(sender=sender, destinations=destinations, text=text)


def _many(count: int, start: int = 0) -> list[tuple[str, str]]:
    return [(f"+4179{i:07d}", f"m-{i}") for i in range(start, start + count)]


@pytest.mark.parametrize(
    ("messages", "bulk_id", "error"),
    [
        ([], BULK, "at least one message"),  # nothing to send
        ([_message([])], BULK, "no destinations"),  # a message with no destination
        ([_message([("41793026727", "m-1")])], BULK, "not an E.164 number"),  # no "+"
        ([_message([("+4179302672x", "m-1")])], BULK, "E.164"),  # not digits
        ([_message(_many(600)), _message(_many(401, 600))], BULK, "got 1001"),  # 1,000 max
        ([_message([("+41793026727", "")])], BULK, "messageId"),  # exactly-once needs an id
        ([_message([("+41793026727", "m" * 201)])], BULK, "200"),  # Infobip's maximum
        (  # the second would be refused as a duplicate and read as sent
            [_message([("+41793026727", "m-1")]), _message([("+41793026834", "m-1")])],
            BULK,
            "used twice",
        ),
        ([_message([("+41793026727", "m-1")], text="")], BULK, "no text"),
        ([_message([("+41793026727", "m-1")], sender="")], BULK, "no sender"),
        ([_message([("+41793026727", "m-1")])], "", "bulk_id"),
        ([_message([("+41793026727", "m-1")])], "b" * 101, "at most 100"),  # Infobip clips
    ],
)
def test_invalid_requests_raise_before_any_http_call(messages, bulk_id, error):
    fake = FakeInfobipSms()
    limiter = RecordingBucket(1000)
    with (
        make_client(fake, rate_limiter=limiter) as client,
        pytest.raises(ValueError, match=error),
    ):
        client.send(messages, bulk_id=bulk_id)
    assert fake.requests == []
    assert limiter.calls == []


def test_exactly_1000_destinations_over_several_messages_go_in_one_request():
    fake = FakeInfobipSms()
    messages = [_message(_many(400), text="A"), _message(_many(600, 400), text="B")]
    with make_client(fake) as client:
        results = client.send(messages, bulk_id=BULK)
    assert len(fake.requests) == 1
    assert len(results) == 1000 and all(r.accepted for r in results)
    assert [r.message_id for r in results] == [f"m-{i}" for i in range(1000)]
    assert len(fake.sent) == 1000


# -- per-destination results ---------------------------------------------------------------


def test_mixed_results_map_each_destination():
    fake = FakeInfobipSms(blocked=("4179302683",))  # the second destination is blocked
    with make_client(fake) as client:
        results = client.send(MESSAGES, bulk_id=BULK)
    assert results == [
        DestinationResult("+41793026727", "v3:welcome:c-1", True),
        DestinationResult(
            to="+41793026834",
            message_id="v3:welcome:c-2",
            accepted=False,
            status_code=14,
            error="REJECTED_DESTINATION",
            comment="By Destination",
        ),
        DestinationResult("+447491163443", "v3:welcome:c-3", True),
    ]
    assert len(fake.requests) == 1  # a per-destination rejection is not retried


@pytest.mark.parametrize(
    ("state", "accepted"),
    [
        (status(0, "ACCEPTED", 0, "MESSAGE_ACCEPTED", "Message accepted"), True),
        (PENDING_ACCEPTED, True),
        (status(1, "PENDING", 7, "PENDING_ENROUTE", "Message sent to next instance"), True),
        (status(3, "DELIVERED", 5, "DELIVERED_TO_HANDSET", "Message delivered to handset"), True),
        # exactly-once: an earlier attempt already sent this messageId
        (DUPLICATE, True),
        # groupName alone (no groupId) is enough
        ({"groupName": "PENDING", "id": 26, "name": "PENDING_ACCEPTED"}, True),
        (REJECTED_DESTINATION, False),
        (status(5, "REJECTED", 8, "REJECTED_PREFIX_MISSING", "Number prefix missing"), False),
        (status(5, "REJECTED", 10, "REJECTED_DND", "Destination on DND list"), False),
        (status(2, "UNDELIVERABLE", 9, "UNDELIVERABLE_NOT_DELIVERED", "Not delivered"), False),
        (status(4, "EXPIRED", 15, "EXPIRED_EXPIRED", "Message expired"), False),
        # no status at all is not taken as accepted
        ({}, False),
    ],
)
def test_status_groups_map_to_accepted_or_refused(state, accepted):
    result = destination_result("+41793026727", "m-1", state)
    assert result.accepted is accepted
    assert (result.to, result.message_id) == ("+41793026727", "m-1")
    if accepted:
        assert (result.status_code, result.error, result.comment) == (None, None, None)
    else:
        assert result.status_code == state.get("id")
        assert result.error == state.get("name", "UNKNOWN_STATUS")
        assert result.comment == state.get("description")


def test_duplicate_message_id_from_an_earlier_send_counts_as_accepted():
    fake = FakeInfobipSms()
    with make_client(fake) as client:
        first = client.send(MESSAGES, bulk_id=BULK)
        again = client.send(MESSAGES, bulk_id=BULK)  # say, after a crash
    assert first == again == ALL_ACCEPTED
    assert len(fake.requests) == 2
    assert len(fake.sent) == 3  # every destination got its message once


# -- errors that are not retried ------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "text", "code"),
    [
        # v3 validation error, violations named
        (
            v3_error(
                400,
                "E400",
                "Request cannot be processed.",
                [{"property": "messages[0].destinations", "violation": "must not be empty"}],
            ),
            "Request cannot be processed. (messages[0].destinations: must not be empty)",
            "E400",
        ),
        # v3 without violations
        (
            v3_error(400, "E400", "Request cannot be processed."),
            "Request cannot be processed.",
            "E400",
        ),
        # legacy body with validationErrors
        (
            legacy_error(
                400,
                "BAD_REQUEST",
                "Bad request",
                {"messages[0].destinations": ["must not be empty"]},
            ),
            "Bad request (messages[0].destinations: must not be empty)",
            "BAD_REQUEST",
        ),
        # legacy 401 and v3 401
        (
            legacy_error(401, "UNAUTHORIZED", "Invalid login details"),
            "Invalid login details",
            "UNAUTHORIZED",
        ),
        (v3_error(401, "E401", "Unauthorized"), "Unauthorized", "E401"),
        # 401 without a body
        (httpx.Response(401), "HTTP 401 Unauthorized", None),
        # 403 (legacy answers FORBIDDEN)
        (legacy_error(403, "FORBIDDEN", "Forbidden access"), "Forbidden access", "FORBIDDEN"),
        # a proxy's HTML page is not JSON
        (
            httpx.Response(404, html="<html>Not Found</html>"),
            "HTTP 404 Not Found: <html>Not Found</html>",
            None,
        ),
    ],
)
def test_client_errors_raise_provider_error_without_retry(response, text, code):
    fake = FakeInfobipSms(script=[response])
    sleeps: list[float] = []
    with make_client(fake, sleeps) as client, pytest.raises(ProviderError) as caught:
        client.send(MESSAGES, bulk_id=BULK)
    error = caught.value
    assert (error.text, error.status_code, error.code, error.retryable) == (
        text,
        response.status_code,
        code,
        False,
    )
    assert len(fake.requests) == 1
    assert sleeps == []
    assert fake.sent == []


# -- retries and exactly-once -------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "posts", "sleeps"),
    [
        # 429 with Retry-After: nothing was accepted, wait as told and post again
        ([v3_error(429, "E429", "Too many requests", **{"Retry-After": "2"})], 2, [2.0]),
        # legacy 429 without Retry-After: exponential backoff with jitter (0.5 s to 0.75 s)
        ([legacy_error(429, "TOO_MANY_REQUESTS", "Too many requests")], 2, [(0.5, 0.75)]),
        # Retry-After as an HTTP date in the past: no wait
        (
            [
                v3_error(
                    429, "E429", "Slow down", **{"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}
                )
            ],
            2,
            [0.0],
        ),
        # 503 then success
        ([v3_error(503, "E503", "Service unavailable")], 2, [(0.5, 0.75)]),
        # 503 with Retry-After: honoured
        ([v3_error(503, "E503", "Service unavailable", **{"Retry-After": "3"})], 2, [3.0]),
        # legacy 500, then a proxy's 502: the backoff doubles (0.5-0.75 s, then 1-1.5 s)
        (
            [
                legacy_error(500, "GENERAL_ERROR", "Something went wrong"),
                httpx.Response(502, text="<html>Bad Gateway</html>"),
            ],
            3,
            [(0.5, 0.75), (1.0, 1.5)],
        ),
        # a timeout before Infobip recorded anything: post again
        ([httpx.ReadTimeout], 2, [(0.5, 0.75)]),
        # accepted but the answer timed out: the resend comes back as duplicates
        ([("accept", httpx.ReadTimeout)], 2, [(0.5, 0.75)]),
        # accepted but the connection dropped: same
        ([("accept", httpx.RemoteProtocolError)], 2, [(0.5, 0.75)]),
        # the connection could not be opened
        ([httpx.ConnectError], 2, [(0.5, 0.75)]),
        # a 200 we cannot read: outcome unknown, resend
        ([httpx.Response(200, text="<html>OK</html>")], 2, [(0.5, 0.75)]),
        # a 200 that lists no status for our destinations: resend
        ([httpx.Response(200, json={"bulkId": BULK, "messages": []})], 2, [(0.5, 0.75)]),
    ],
)
def test_retries_send_each_destination_exactly_once(script, posts, sleeps):
    fake = FakeInfobipSms(script=list(script))
    recorded: list[float] = []
    with make_client(fake, recorded) as client:
        results = client.send(MESSAGES, bulk_id=BULK)

    assert results == ALL_ACCEPTED
    assert sorted(mid for _, mid, _ in fake.sent) == [
        "v3:welcome:c-1",
        "v3:welcome:c-2",
        "v3:welcome:c-3",
    ]
    assert len(fake.requests) == posts
    # every attempt is the same request: same bulkId, same messageIds
    assert len({r.content for r in fake.requests}) == 1
    assert all(r.headers["Authorization"] == f"App {KEY}" for r in fake.requests)
    assert len(recorded) == len(sleeps)
    for actual, expected in zip(recorded, sleeps, strict=True):
        if isinstance(expected, tuple):
            assert expected[0] <= actual <= expected[1]
        else:
            assert actual == pytest.approx(expected)


def test_a_partly_lost_answer_keeps_earlier_rejections_visible():
    # Infobip rejected one destination, then the answer was lost; the resend rejects it
    # again (a rejected messageId was never accepted), the others come back as duplicates.
    fake = FakeInfobipSms(script=[("accept", httpx.ReadTimeout)], blocked=("447",))
    with make_client(fake) as client:
        results = client.send(MESSAGES, bulk_id=BULK)
    assert [r.accepted for r in results] == [True, True, False]
    assert results[2].error == "REJECTED_DESTINATION"
    assert len(fake.sent) == 2


@pytest.mark.parametrize(
    ("response", "status_code", "code"),
    [
        (v3_error(503, "E503", "Service unavailable"), 503, "E503"),  # server side
        (legacy_error(429, "TOO_MANY_REQUESTS", "Too many requests"), 429, "TOO_MANY_REQUESTS"),
    ],
)
def test_exhausted_retries_raise_retryable_provider_error(response, status_code, code):
    fake = FakeInfobipSms(script=[response] * 5)
    sleeps: list[float] = []
    with (
        make_client(fake, sleeps, max_attempts=5) as client,
        pytest.raises(ProviderError) as caught,
    ):
        client.send(MESSAGES, bulk_id=BULK)
    error = caught.value
    assert error.retryable is True
    assert (error.status_code, error.code) == (status_code, code)
    assert "failed 5 times" in error.text and BULK in error.text
    assert len(fake.requests) == 5
    assert len(sleeps) == 4
    assert fake.sent == []


def test_exhausted_timeouts_raise_retryable_error_without_status():
    fake = FakeInfobipSms(script=[httpx.ReadTimeout] * 3)
    with make_client(fake, max_attempts=3) as client, pytest.raises(ProviderError) as caught:
        client.send(MESSAGES, bulk_id=BULK)
    assert caught.value.retryable is True
    assert caught.value.status_code is None and "timed out" in caught.value.text
    assert len(fake.requests) == 3


def test_reconcile_simply_resends_and_duplicates_count_as_sent():
    fake = FakeInfobipSms(script=[("accept", httpx.ReadTimeout)])
    with make_client(fake, max_attempts=1) as client:
        with pytest.raises(ProviderError) as caught:
            client.send(MESSAGES, bulk_id=BULK)
        assert caught.value.retryable is True
        results = client.send(MESSAGES, bulk_id=BULK, reconcile=True)
    assert results == ALL_ACCEPTED
    assert len(fake.requests) == 2  # no look-up, one resend
    assert len(fake.sent) == 3


def test_rate_limiter_is_charged_once_per_request_per_destination():
    fake = FakeInfobipSms(script=[v3_error(429, "E429", "Too many requests"), httpx.Response(500)])
    limiter = RecordingBucket(100)
    with make_client(fake, rate_limiter=limiter) as client:
        client.send(MESSAGES, bulk_id=BULK)
    assert limiter.calls == [3]
    assert len(fake.requests) == 3


# -- secrets ----------------------------------------------------------------------------


def test_api_key_never_reaches_reprs_logs_or_errors(caplog):
    caplog.set_level(logging.DEBUG)
    fake = FakeInfobipSms(
        script=[
            httpx.ReadTimeout,
            v3_error(503, "E503", "busy"),
            legacy_error(401, "UNAUTHORIZED", "Invalid login details"),
        ]
    )
    with make_client(fake) as client:
        with pytest.raises(ProviderError) as caught:
            client.send(MESSAGES, bulk_id=BULK)
        shown = [repr(CREDENTIALS), str(CREDENTIALS), repr(client), CREDENTIALS.model_dump_json()]
    assert all(KEY not in text for text in shown)
    assert caught.value.status_code == 401
    assert caplog.records, "retries are logged"
    assert KEY not in caplog.text
    assert KEY not in str(caught.value) and KEY not in repr(caught.value)
    assert fake.requests[0].headers["Authorization"] == f"App {KEY}"
