"""InfobipMmsClient against httpx.MockTransport handlers built from Infobip's real payloads
(OpenAPI 3.210, `POST /mms/2/messages`: request examples, 200 and ApiError bodies)."""

from __future__ import annotations

import dataclasses
import json
import logging
from functools import partial
from typing import Any

import httpx
import pytest

from engine.errors import ProviderError
from integrations.infobip_mms import InfobipMmsClient, InfobipMmsMessage
from integrations.infobip_sms import DestinationResult, InfobipCredentials
from tests.integrations.providers import (
    DUPLICATE,
    PENDING_ACCEPTED,
    FakeInfobip,
    RecordingBucket,
    legacy_error,
    mock_client,
    status,
    v3_error,
)

KEY = "5d1e7c3a9b8f42d6a0c4e2f1b3d5a7c9-1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
BASE = "https://xyz.api.infobip.com"
CREDENTIALS = InfobipCredentials(base_url=BASE, api_key=KEY)
BULK = "v3:promo:mms-1:b0"
IMAGE = "https://cdn.example.com/promo/summer.jpg"

MESSAGES = [
    InfobipMmsMessage(
        sender="441134960000",
        destinations=[("+441134960001", "v3:promo:c-1"), ("+441134960002", "v3:promo:c-2")],
        title="Summer sale",
        text="Hi Ann, 20% off this week",
        media_url=IMAGE,
        media_content_type="image/jpeg",
        fallback_text="Hi Ann, 20% off this week: https://ex.co/s",
        fallback_sender="InfoSMS",
    ),
    InfobipMmsMessage(
        sender="441134960000",
        destinations=[("+14155550100", "v3:promo:c-3")],
        title=None,
        text="Hi Bob, 20% off this week",
        media_url=None,
        media_content_type=None,
        fallback_text=None,
    ),
]

ALL_ACCEPTED = [
    DestinationResult("+441134960001", "v3:promo:c-1", True),
    DestinationResult("+441134960002", "v3:promo:c-2", True),
    DestinationResult("+14155550100", "v3:promo:c-3", True),
]


make_client = partial(mock_client, InfobipMmsClient, credentials=CREDENTIALS)


def mms(**changes: Any) -> InfobipMmsMessage:
    """A valid one-destination MMS with `changes` applied."""
    base = InfobipMmsMessage(
        sender="441134960000",
        destinations=[("+441134960001", "m-1")],
        title="Title",
        text="Text",
        media_url=IMAGE,
        media_content_type="image/jpeg",
        fallback_text=None,
    )
    return dataclasses.replace(base, **changes)


def many(count: int, start: int = 0) -> list[tuple[str, str]]:
    return [(f"+1415555{i:04d}", f"m-{i}") for i in range(start, start + count)]


# -- request shape ----------------------------------------------------------------------


def test_send_posts_infobip_mms_v2_shape():
    fake = FakeInfobip()
    with make_client(fake) as client:
        results = client.send(MESSAGES, bulk_id=BULK)

    (request,) = fake.requests
    assert request.method == "POST"
    assert str(request.url) == f"{BASE}/mms/2/messages"
    assert request.headers["Authorization"] == f"App {KEY}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "application/json"
    assert json.loads(request.content) == {
        "messages": [
            {
                "sender": "441134960000",
                "destinations": [
                    {"to": "441134960001", "messageId": "v3:promo:c-1"},
                    {"to": "441134960002", "messageId": "v3:promo:c-2"},
                ],
                "content": {
                    "title": "Summer sale",
                    "messageSegments": [
                        {"type": "TEXT", "text": "Hi Ann, 20% off this week"},
                        {"type": "LINK", "contentType": "image/jpeg", "contentUrl": IMAGE},
                    ],
                },
                "options": {
                    "smsFailover": {
                        "sender": "InfoSMS",
                        "text": "Hi Ann, 20% off this week: https://ex.co/s",
                    }
                },
            },
            {  # no title, no media, no failover: none of those keys is sent
                "sender": "441134960000",
                "destinations": [{"to": "14155550100", "messageId": "v3:promo:c-3"}],
                "content": {
                    "messageSegments": [{"type": "TEXT", "text": "Hi Bob, 20% off this week"}]
                },
            },
        ],
        "options": {"schedule": {"bulkId": BULK}},
    }
    assert results == ALL_ACCEPTED


@pytest.mark.parametrize(
    ("message", "content", "options"),
    [
        # failover without its own sender: the SMS comes from the MMS sender
        (
            mms(fallback_text="See https://ex.co/s"),
            {
                "title": "Title",
                "messageSegments": [
                    {"type": "TEXT", "text": "Text"},
                    {"type": "LINK", "contentType": "image/jpeg", "contentUrl": IMAGE},
                ],
            },
            {"smsFailover": {"sender": "441134960000", "text": "See https://ex.co/s"}},
        ),
        # media only: no empty TEXT segment
        (
            mms(text=""),
            {
                "title": "Title",
                "messageSegments": [
                    {"type": "LINK", "contentType": "image/jpeg", "contentUrl": IMAGE}
                ],
            },
            None,
        ),
        # a media URL without a content type: Infobip only requires contentUrl
        (
            mms(media_content_type=None, title=""),
            {
                "messageSegments": [
                    {"type": "TEXT", "text": "Text"},
                    {"type": "LINK", "contentUrl": IMAGE},
                ]
            },
            None,
        ),
        # a title of exactly 66 characters goes through
        (
            mms(title="T" * 66, media_url=None, media_content_type=None),
            {"title": "T" * 66, "messageSegments": [{"type": "TEXT", "text": "Text"}]},
            None,
        ),
    ],
)
def test_optional_parts_of_a_message(message, content, options):
    fake = FakeInfobip()
    with make_client(fake) as client:
        results = client.send([message], bulk_id=BULK)
    (sent,) = json.loads(fake.requests[0].content)["messages"]
    assert sent["content"] == content
    assert sent.get("options") == options
    assert results == [DestinationResult("+441134960001", "m-1", True)]


def test_base_url_is_normalised_and_must_be_http():
    assert InfobipCredentials(base_url=" http://127.0.0.1:8765/ ", api_key="k").base_url == (
        "http://127.0.0.1:8765"
    )
    with pytest.raises(ValueError, match="https://"):
        InfobipCredentials(base_url="xyz.api.infobip.com", api_key="k")


# -- local validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("messages", "bulk_id", "error"),
    [
        ([], BULK, "at least one message"),  # nothing to send
        ([mms(destinations=[])], BULK, "no destinations"),  # a message with no destination
        ([mms(destinations=[("441134960001", "m-1")])], BULK, "E.164"),  # no "+"
        ([mms(destinations=[("+4411349600x1", "m-1")])], BULK, "E.164"),  # not digits
        ([mms(destinations=[("+", "m-1")])], BULK, "E.164"),  # a bare "+"
        ([mms(destinations=many(600)), mms(destinations=many(401, 600))], BULK, "got 1001"),
        ([mms(destinations=[("+441134960001", "")])], BULK, "messageId"),  # needed for once
        ([mms(destinations=[("+441134960001", "m" * 201)])], BULK, "200"),  # Infobip's max
        (  # the second would be refused as a duplicate and read as sent
            [mms(), mms(destinations=[("+441134960002", "m-1")])],
            BULK,
            "used twice",
        ),
        ([mms(title="T" * 67)], BULK, "at most 66"),  # Infobip's title limit
        ([mms(text="x" * 1601)], BULK, "at most 1600"),  # Infobip's MMS text limit
        ([mms(media_url="ftp://cdn.example.com/a.jpg")], BULK, "http"),  # not http(s)
        ([mms(media_url="cdn.example.com/a.jpg")], BULK, "http"),  # no scheme at all
        ([mms(media_url="https://")], BULK, "http"),  # no host
        ([mms(media_content_type="jpeg")], BULK, "MIME type"),  # not type/subtype
        ([mms(media_url=None)], BULK, "media_url is not"),  # a type for no media
        ([mms(text="", media_url=None, media_content_type=None)], BULK, "neither text"),
        ([mms(fallback_text="")], BULK, "fallback_text is empty"),  # None means no failover
        ([mms(fallback_sender="InfoSMS")], BULK, "fallback_text is not"),  # would be ignored
        ([mms(sender="")], BULK, "no sender"),
        ([mms()], "", "bulk_id"),
        ([mms()], "b" * 101, "at most 100"),  # Infobip clips longer bulk ids
    ],
)
def test_invalid_requests_raise_before_any_http_call(messages, bulk_id, error):
    fake = FakeInfobip()
    limiter = RecordingBucket(1000)
    with (
        make_client(fake, rate_limiter=limiter) as client,
        pytest.raises(ValueError, match=error),
    ):
        client.send(messages, bulk_id=bulk_id)
    assert fake.requests == []
    assert limiter.calls == []


def test_exactly_1000_destinations_over_several_messages_go_in_one_request():
    fake = FakeInfobip()
    messages = [mms(destinations=many(400)), mms(destinations=many(600, 400), text="B")]
    with make_client(fake) as client:
        results = client.send(messages, bulk_id=BULK)
    assert len(fake.requests) == 1
    assert len(results) == 1000 and all(r.accepted for r in results)
    assert [r.message_id for r in results] == [f"m-{i}" for i in range(1000)]
    assert len(fake.sent) == 1000


# -- per-destination results ------------------------------------------------------------


def test_mixed_results_map_each_destination():
    fake = FakeInfobip(blocked=("441134960002",))  # the second destination is blocked
    with make_client(fake) as client:
        results = client.send(MESSAGES, bulk_id=BULK)
    assert results == [
        DestinationResult("+441134960001", "v3:promo:c-1", True),
        DestinationResult(
            to="+441134960002",
            message_id="v3:promo:c-2",
            accepted=False,
            status_code=14,
            error="REJECTED_DESTINATION",
            comment="By Destination",
        ),
        DestinationResult("+14155550100", "v3:promo:c-3", True),
    ]
    assert len(fake.requests) == 1  # a per-destination rejection is not retried


def test_answer_statuses_are_matched_by_message_id_not_order():
    answer = {
        "bulkId": BULK,
        "messages": [  # Infobip's order differs from ours
            {"messageId": "v3:promo:c-3", "status": PENDING_ACCEPTED, "destination": "14155550100"},
            {
                "messageId": "v3:promo:c-1",
                "status": status(5, "REJECTED", 10, "REJECTED_DND", "Destination on DND list"),
                "destination": "441134960001",
            },
            {"messageId": "v3:promo:c-2", "status": DUPLICATE, "destination": "441134960002"},
        ],
    }
    fake = FakeInfobip(script=[httpx.Response(200, json=answer)])
    with make_client(fake) as client:
        results = client.send(MESSAGES, bulk_id=BULK)
    assert [(r.message_id, r.accepted, r.error) for r in results] == [
        ("v3:promo:c-1", False, "REJECTED_DND"),
        ("v3:promo:c-2", True, None),  # duplicate: an earlier attempt sent it
        ("v3:promo:c-3", True, None),
    ]


def test_duplicate_message_id_from_an_earlier_send_counts_as_accepted():
    fake = FakeInfobip()
    with make_client(fake) as client:
        first = client.send(MESSAGES, bulk_id=BULK)
        again = client.send(MESSAGES, bulk_id=BULK)  # say, after a crash
    assert first == again == ALL_ACCEPTED
    assert len(fake.requests) == 2
    assert len(fake.sent) == 3  # every destination got its MMS once


# -- errors that are not retried --------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "text", "code"),
    [
        # v3 validation error: the violations are named
        (
            v3_error(
                400,
                "E400",
                "Request cannot be processed.",
                [
                    {
                        "property": "messages[0].content.messageSegments[1].contentUrl",
                        "violation": "must be a valid URL",
                    },
                    {"property": "messages[0].sender", "violation": "must not be blank"},
                ],
            ),
            "Request cannot be processed. (messages[0].content.messageSegments[1].contentUrl: "
            "must be a valid URL; messages[0].sender: must not be blank)",
            "E400",
        ),
        # v3 401, as in the spec's ApiError401
        (
            v3_error(
                401,
                "E401",
                "The request lacks valid authentication credentials for the requested resource.",
            ),
            "The request lacks valid authentication credentials for the requested resource.",
            "E401",
        ),
        # legacy 401 body
        (
            legacy_error(401, "UNAUTHORIZED", "Invalid login details"),
            "Invalid login details",
            "UNAUTHORIZED",
        ),
        # 401 without a body
        (httpx.Response(401), "HTTP 401 Unauthorized", None),
        # 403: the key lacks the MMS scope
        (
            v3_error(403, "E403", "Insufficient permissions to access the requested resource."),
            "Insufficient permissions to access the requested resource.",
            "E403",
        ),
        # a proxy's HTML page is not JSON
        (
            httpx.Response(404, html="<html>Not Found</html>"),
            "HTTP 404 Not Found: <html>Not Found</html>",
            None,
        ),
    ],
)
def test_client_errors_raise_provider_error_without_retry(response, text, code):
    fake = FakeInfobip(script=[response])
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


# -- retries and exactly-once -----------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "posts", "sleeps"),
    [
        # 429 with Retry-After: nothing was accepted, wait as told and post again
        ([v3_error(429, "E429", "Too many requests sent.", **{"Retry-After": "2"})], 2, [2.0]),
        # 429 without Retry-After: exponential backoff with jitter (0.5 s to 0.75 s)
        ([v3_error(429, "E429", "Too many requests sent.")], 2, [(0.5, 0.75)]),
        # Retry-After as an HTTP date in the past: no wait
        (
            [v3_error(429, "E429", "Slow", **{"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})],
            2,
            [0.0],
        ),
        # 503 then success
        ([v3_error(503, "E503", "Service unavailable")], 2, [(0.5, 0.75)]),
        # 503 with Retry-After: honoured
        ([v3_error(503, "E503", "Service unavailable", **{"Retry-After": "3"})], 2, [3.0]),
        # 500 then a proxy's 502: the backoff doubles (0.5-0.75 s, then 1-1.5 s)
        (
            [
                v3_error(500, "E500", "Something went wrong."),
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
    fake = FakeInfobip(script=list(script))
    recorded: list[float] = []
    with make_client(fake, recorded) as client:
        results = client.send(MESSAGES, bulk_id=BULK)

    assert results == ALL_ACCEPTED
    assert sorted(mid for _, mid in fake.sent) == ["v3:promo:c-1", "v3:promo:c-2", "v3:promo:c-3"]
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


def test_a_lost_answer_keeps_rejections_visible_on_the_resend():
    # Infobip rejected one destination, then the answer was lost; the resend rejects it
    # again (it was never accepted), the others come back as duplicates.
    fake = FakeInfobip(script=[("accept", httpx.ReadTimeout)], blocked=("1415",))
    with make_client(fake) as client:
        results = client.send(MESSAGES, bulk_id=BULK)
    assert [r.accepted for r in results] == [True, True, False]
    assert results[2].error == "REJECTED_DESTINATION"
    assert len(fake.sent) == 2


@pytest.mark.parametrize(
    ("response", "status_code", "code"),
    [
        (v3_error(503, "E503", "Service unavailable"), 503, "E503"),  # server side
        (v3_error(429, "E429", "Too many requests sent."), 429, "E429"),  # v3 throttling
        (legacy_error(429, "TOO_MANY_REQUESTS", "Too many requests"), 429, "TOO_MANY_REQUESTS"),
    ],
)
def test_exhausted_retries_raise_retryable_provider_error(response, status_code, code):
    fake = FakeInfobip(script=[response] * 5)
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
    fake = FakeInfobip(script=[httpx.ReadTimeout] * 3)
    with make_client(fake, max_attempts=3) as client, pytest.raises(ProviderError) as caught:
        client.send(MESSAGES, bulk_id=BULK)
    assert caught.value.retryable is True
    assert caught.value.status_code is None and "timed out" in caught.value.text
    assert len(fake.requests) == 3


def test_reconcile_simply_resends_and_duplicates_count_as_sent():
    fake = FakeInfobip(script=[("accept", httpx.ReadTimeout)])
    with make_client(fake, max_attempts=1) as client:
        with pytest.raises(ProviderError) as caught:
            client.send(MESSAGES, bulk_id=BULK)
        assert caught.value.retryable is True
        results = client.send(MESSAGES, bulk_id=BULK, reconcile=True)
    assert results == ALL_ACCEPTED
    assert len(fake.requests) == 2  # no look-up, one resend
    assert len(fake.sent) == 3


def test_rate_limiter_is_charged_once_per_request_per_destination():
    fake = FakeInfobip(script=[v3_error(429, "E429", "Too many"), httpx.Response(500)])
    limiter = RecordingBucket(100)
    with make_client(fake, rate_limiter=limiter) as client:
        client.send(MESSAGES, bulk_id=BULK)
    assert limiter.calls == [3]
    assert len(fake.requests) == 3


def test_max_attempts_must_be_positive():
    with pytest.raises(ValueError, match="max_attempts"):
        InfobipMmsClient(CREDENTIALS, max_attempts=0)


# -- secrets ----------------------------------------------------------------------------


def test_api_key_never_reaches_reprs_logs_or_errors(caplog):
    caplog.set_level(logging.DEBUG)
    fake = FakeInfobip(
        script=[
            httpx.ReadTimeout,
            v3_error(503, "E503", "busy"),
            v3_error(401, "E401", "Unauthorized"),
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
