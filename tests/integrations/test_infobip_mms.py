"""InfobipMmsClient against httpx.MockTransport handlers built from Infobip's real payloads
(OpenAPI 3.210, `POST /mms/2/messages`: request examples, 200 and ApiError bodies)."""

from __future__ import annotations

import dataclasses
import json
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
    assert_refused_before_sending,
    error_fields,
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
    ("changes", "error"),
    [
        ({"title": "T" * 67}, "at most 66"),  # Infobip's title limit
        ({"text": "x" * 1601}, "at most 1600"),  # Infobip's MMS text limit
        ({"media_url": "ftp://cdn.example.com/a.jpg"}, "http"),  # not http(s)
        ({"media_url": "cdn.example.com/a.jpg"}, "http"),  # no scheme at all
        ({"media_url": "https://"}, "http"),  # no host
        ({"media_content_type": "jpeg"}, "MIME type"),  # not type/subtype
        ({"media_url": None}, "media_url is not"),  # a type for no media
        ({"text": "", "media_url": None, "media_content_type": None}, "neither text"),
        ({"fallback_text": ""}, "fallback_text is empty"),  # None means no failover
        ({"fallback_sender": "InfoSMS"}, "fallback_text is not"),  # would be ignored
    ],
)
def test_invalid_content_raises_before_any_http_call(changes, error):
    invalid = [mms(**changes)]
    assert_refused_before_sending(
        make_client, FakeInfobip(), lambda c: c.send(invalid, bulk_id=BULK), error
    )


# -- per-destination results ------------------------------------------------------------


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
    assert error_fields(caught.value) == (text, response.status_code, code, False)
    assert len(fake.requests) == 1
    assert sleeps == []
    assert fake.sent == []
