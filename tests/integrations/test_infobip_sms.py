"""InfobipSmsClient against httpx.MockTransport handlers built from Infobip's real payloads."""

from __future__ import annotations

import json
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
    assert_refused_before_sending,
    error_fields,
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


def test_an_sms_needs_a_text():
    empty = InfobipMessage(sender="InfoSMS", destinations=[("+41793026727", "m-1")], text="")
    assert_refused_before_sending(
        make_client, FakeInfobipSms(), lambda c: c.send([empty], bulk_id=BULK), "no text"
    )


# -- per-destination results ---------------------------------------------------------------


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
    assert error_fields(caught.value) == (text, response.status_code, code, False)
    assert len(fake.requests) == 1
    assert sleeps == []
    assert fake.sent == []
