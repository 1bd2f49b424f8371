"""SinchConversationClient against httpx.MockTransport handlers built from the
Conversation API's real shapes: the OAuth2 client-credentials token, `messages:send`
with the MMS channel, `{"message_id", "accepted_time"}` and Google-style error bodies."""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from engine.dispatch import Choice, Location
from engine.errors import ProviderError
from integrations.sinch_conversation import (
    CarouselCard,
    ConversationCredentials,
    ConversationMessage,
    SinchConversationClient,
)
from integrations.sinch_mms import UNKNOWN_OUTCOME_COMMENT, MmsReceipt
from tests.integrations.providers import (
    Clock,
    RecordingBucket,
    ScriptedProvider,
    assert_refused_before_sending,
    assert_sleeps,
    error_fields,
    mock_client,
    play,
)

PROJECT = "c36f3d3d-1513-4edd-ae42-11995557ff61"
APP = "01E3S8B6YCMRNR0GGM94H80ACX"
KEY_ID = "8f1c2a5e-key-id"
KEY_SECRET = "s3cr3t-Key-Secret-9d7e"
AUTH_URL = "https://auth.sinch.com/oauth2/token"
SEND_URL = f"https://us.conversation.api.sinch.com/v1/projects/{PROJECT}/messages:send"
CREDENTIALS = ConversationCredentials(
    project_id=PROJECT, app_id=APP, key_id=KEY_ID, key_secret=KEY_SECRET
)

MESSAGE = ConversationMessage(
    to="+15551231234",
    sender="28444",
    subject="Summer sale",
    text="Hi Ann, 20% off today only",
    media_url="https://cdn.example.com/mms/sale.jpg",
    client_reference="v3:summer:mms-1:cust-42:1",
)
UNKNOWN = MmsReceipt(
    to=MESSAGE.to,
    tracking_id=None,
    accepted=False,
    status_code=None,
    error="unknown_outcome",
    comment=UNKNOWN_OUTCOME_COMMENT,
)


def api_error(status: int, code: str, message: str, **headers: str) -> httpx.Response:
    """The Conversation API's error body."""
    body = {"error": {"code": status, "message": message, "status": code, "details": []}}
    return httpx.Response(status, json=body, headers=headers)


@dataclass
class FakeSinch(ScriptedProvider):
    """A stateful auth server plus Conversation API. Token requests follow `token_script`,
    then get `tok-1`, `tok-2`, ... valid until revoked; sends follow `script`, then are
    accepted (with a valid token). Script steps are those of `providers`, plus "revoke"
    to answer 401 as for an expired token."""

    token_script: list[Any] = field(default_factory=list)
    expires_in: Any = 3600
    tokens: list[str] = field(default_factory=list)
    valid: set[str] = field(default_factory=set)
    accepted: list[dict[str, Any]] = field(default_factory=list)

    def token_requests(self) -> list[httpx.Request]:
        return [r for r in self.requests if str(r.url) == AUTH_URL]

    def sends(self) -> list[httpx.Request]:
        return [r for r in self.requests if str(r.url) != AUTH_URL]

    def accept(self, request: httpx.Request) -> httpx.Response:
        self.accepted.append(json.loads(request.content))
        return httpx.Response(
            200,
            json={
                "message_id": f"01E6K7CMXY3KHH0AGCTY6D0{len(self.accepted):03d}",
                "accepted_time": "2020-04-23T09:55:04.766Z",
            },
        )

    def issue_token(self, request: httpx.Request) -> httpx.Response:
        token = f"tok-{len(self.tokens) + 1}"
        self.tokens.append(token)
        self.valid.add(token)
        body = {"access_token": token, "token_type": "bearer", "scope": ""}
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        return httpx.Response(200, json=body)

    def handle(self, request: httpx.Request) -> httpx.Response:
        if str(request.url) == AUTH_URL:
            step = self.token_script.pop(0) if self.token_script else "accept"
            return play(step, request, self.issue_token)
        step = self.next_step()
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if step == "revoke":
            self.valid.discard(token)
            step = "accept"
        if token not in self.valid:
            return api_error(401, "UNAUTHENTICATED", "Request had invalid credentials.")
        return play(step, request, self.accept)


make_client = partial(mock_client, SinchConversationClient, credentials=CREDENTIALS)


# -- request shape ----------------------------------------------------------------------


def test_send_fetches_a_token_then_posts_the_mms_card():
    fake = FakeSinch()
    with make_client(fake) as client:
        receipt = client.send(MESSAGE)

    token_request, send = fake.requests
    assert (token_request.method, str(token_request.url)) == ("POST", AUTH_URL)
    basic = base64.b64encode(f"{KEY_ID}:{KEY_SECRET}".encode()).decode()
    assert token_request.headers["Authorization"] == f"Basic {basic}"
    assert token_request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(token_request.content.decode()) == {"grant_type": ["client_credentials"]}

    assert (send.method, str(send.url)) == ("POST", SEND_URL)
    assert send.headers["Authorization"] == "Bearer tok-1"
    assert send.headers["Content-Type"] == "application/json"
    assert json.loads(send.content) == {
        "app_id": APP,
        "recipient": {
            "identified_by": {
                # the number without '+'
                "channel_identities": [{"channel": "MMS", "identity": "15551231234"}]
            }
        },
        "message": {
            "card_message": {
                "title": "Summer sale",  # the card title is the MMS subject
                "description": "Hi Ann, 20% off today only",
                "media_message": {"url": "https://cdn.example.com/mms/sale.jpg"},
            }
        },
        "channel_priority_order": ["MMS"],
        "channel_properties": {"MMS_SENDER": "28444"},
        "correlation_id": "v3:summer:mms-1:cust-42:1",
        "message_metadata": "v3:summer:mms-1:cust-42:1",
    }
    assert receipt == MmsReceipt(
        to="+15551231234", tracking_id="01E6K7CMXY3KHH0AGCTY6D0001", accepted=True
    )


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        # a subject and a text without media: a card with title and description
        (
            {"media_url": None},
            {"card_message": {"title": "Summer sale", "description": MESSAGE.text}},
        ),
        # text and media without a subject: a card, so the text is not lost
        (
            {"subject": None},
            {
                "card_message": {
                    "description": MESSAGE.text,
                    "media_message": {"url": MESSAGE.media_url},
                }
            },
        ),
        # media only
        ({"subject": None, "text": ""}, {"media_message": {"url": MESSAGE.media_url}}),
        # text only; an empty subject counts as none
        ({"subject": "", "media_url": None}, {"text_message": {"text": MESSAGE.text}}),
        # a subject alone on a media: the card has no description
        (
            {"text": ""},
            {"card_message": {"title": "Summer sale", "media_message": {"url": MESSAGE.media_url}}},
        ),
    ],
)
def test_message_kind_follows_subject_text_and_media(changes, expected):
    fake = FakeSinch()
    with make_client(fake) as client:
        assert client.send(replace(MESSAGE, **changes)).accepted
    assert json.loads(fake.sends()[0].content)["message"] == expected


@pytest.mark.parametrize(
    ("sender", "properties"),
    [
        ("28444", {"MMS_SENDER": "28444"}),  # a short code
        ("+15557654321", {"MMS_SENDER": "15557654321"}),  # a long number, '+' dropped
        (None, None),  # no sender: the app's default sender is used
        ("", None),
    ],
)
def test_sender_goes_in_channel_properties_or_is_left_out(sender, properties):
    fake = FakeSinch()
    with make_client(fake) as client:
        client.send(replace(MESSAGE, sender=sender))
    sent = json.loads(fake.sends()[0].content)
    assert sent.get("channel_properties") == properties
    assert sent["channel_priority_order"] == ["MMS"]


@pytest.mark.parametrize(
    ("region", "base_url", "expected"),
    [
        ("us", None, SEND_URL),  # the default region
        ("eu", None, f"https://eu.conversation.api.sinch.com/v1/projects/{PROJECT}/messages:send"),
        # the simulator override wins over the region; a trailing slash is tolerated
        (
            "eu",
            "http://127.0.0.1:8765/",
            f"http://127.0.0.1:8765/v1/projects/{PROJECT}/messages:send",
        ),
    ],
)
def test_endpoint(region, base_url, expected):
    credentials = ConversationCredentials(
        project_id=PROJECT,
        app_id=APP,
        key_id=KEY_ID,
        key_secret=KEY_SECRET,
        region=region,
        base_url=base_url,
    )
    assert credentials.endpoint() == expected
    fake = FakeSinch()
    with make_client(fake, credentials=credentials) as client:
        client.send(MESSAGE)
    assert str(fake.sends()[0].url) == expected


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"subject": "s" * 81}, "MMS allows 80"),  # the card title / MMS subject limit
        ({"subject": "Sale \N{FIRE}"}, "ASCII"),
        ({"text": "x" * 1601}, "MMS allows 1600"),
        ({"to": "15551231234"}, "E.164"),
        ({"text": "", "media_url": None}, "a text or a media"),
        ({"media_url": "file:///tmp/a.jpg"}, "http"),
        ({"client_reference": ""}, "required"),
        ({"client_reference": "r" * 129}, "at most 128"),  # correlation_id's limit
    ],
)
def test_invalid_messages_raise_before_any_http_call(changes, message):
    invalid = replace(MESSAGE, **changes)
    assert_refused_before_sending(make_client, FakeSinch(), lambda c: c.send(invalid), message)


# -- the access token ---------------------------------------------------------------------


def test_token_is_cached_across_sends():
    fake = FakeSinch()
    with make_client(fake) as client:
        for _ in range(3):
            client.send(MESSAGE)
    assert len(fake.token_requests()) == 1
    assert [r.headers["Authorization"] for r in fake.sends()] == ["Bearer tok-1"] * 3


@pytest.mark.parametrize(
    ("expires_in", "later", "tokens"),
    [
        (3600, 3539, 1),  # still cached a minute before expiry
        (3600, 3541, 2),  # refreshed within the last minute
        (300, 269, 1),  # a short-lived token: refreshed in its last tenth (30 s)
        (300, 271, 2),
        (None, 3539, 1),  # no expires_in: an hour is assumed
        ("soon", 3541, 2),
    ],
)
def test_token_is_refreshed_shortly_before_it_expires(expires_in, later, tokens):
    fake = FakeSinch(expires_in=expires_in)
    clock = Clock()
    with make_client(fake, clock=clock) as client:
        client.send(MESSAGE)
        clock.now += later
        client.send(MESSAGE)
    assert len(fake.token_requests()) == tokens
    assert fake.sends()[-1].headers["Authorization"] == f"Bearer tok-{tokens}"


def test_a_401_fetches_a_new_token_once_and_sends_again():
    fake = FakeSinch(script=["accept", "revoke"])
    sleeps: list[float] = []
    with make_client(fake, sleeps, max_attempts=1) as client:
        client.send(MESSAGE)
        receipt = client.send(MESSAGE)  # tok-1 was revoked meanwhile
    assert receipt.accepted
    assert len(fake.token_requests()) == 2
    assert [r.headers["Authorization"] for r in fake.sends()] == [
        "Bearer tok-1",
        "Bearer tok-1",  # refused with 401: nothing was accepted
        "Bearer tok-2",
    ]
    assert len(fake.accepted) == 2 and sleeps == []


def test_a_second_401_raises_without_retry():
    fake = FakeSinch(script=["revoke", "revoke"])
    with make_client(fake) as client, pytest.raises(ProviderError) as caught:
        client.send(MESSAGE)
    error = caught.value
    assert (error.status_code, error.code, error.retryable) == (401, "UNAUTHENTICATED", False)
    assert len(fake.token_requests()) == 2 and len(fake.sends()) == 2
    assert fake.accepted == []


@pytest.mark.parametrize(
    ("response", "code"),
    [
        # wrong key id or secret: the OAuth2 error body
        (
            httpx.Response(
                401, json={"error": "invalid_client", "error_description": "Bad credentials"}
            ),
            "invalid_client",
        ),
        (httpx.Response(400, json={"error": "invalid_request"}), "invalid_request"),  # malformed
        (httpx.Response(403, text="Forbidden"), None),  # a gateway's page, not JSON
    ],
)
def test_token_refusals_raise_without_sending(response, code):
    fake = FakeSinch(token_script=[response])
    with make_client(fake) as client, pytest.raises(ProviderError) as caught:
        client.send(MESSAGE)
    error = caught.value
    assert (error.status_code, error.code, error.retryable) == (response.status_code, code, False)
    assert error.text.startswith("Sinch OAuth2 token request refused")
    assert fake.sends() == []


@pytest.mark.parametrize(
    "step",
    [
        httpx.Response(503),  # the auth server is down for a moment
        httpx.Response(429, headers={"Retry-After": "0.5"}),
        httpx.ReadTimeout,  # a token request is safe to repeat
        httpx.Response(200, json={"token_type": "bearer"}),  # no access_token
    ],
)
def test_token_failures_are_retried(step):
    fake = FakeSinch(token_script=[step])
    sleeps: list[float] = []
    with make_client(fake, sleeps) as client:
        assert client.send(MESSAGE).accepted
    assert len(fake.token_requests()) == 2 and len(sleeps) == 1


def test_exhausted_token_retries_raise_a_retryable_provider_error():
    fake = FakeSinch(token_script=[httpx.Response(503)] * 3)
    with make_client(fake, max_attempts=3) as client, pytest.raises(ProviderError) as caught:
        client.send(MESSAGE)
    assert caught.value.retryable is True and caught.value.status_code == 503
    assert fake.sends() == []


# -- request-wide errors, retries, unknown outcomes ------------------------------------------


@pytest.mark.parametrize(
    ("response", "text", "code"),
    [
        (  # the request itself is wrong
            api_error(400, "INVALID_ARGUMENT", "Invalid MMS channel identity"),
            "Invalid MMS channel identity",
            "INVALID_ARGUMENT",
        ),
        (  # the project or app does not allow it
            api_error(403, "PERMISSION_DENIED", "The app has no MMS channel"),
            "The app has no MMS channel",
            "PERMISSION_DENIED",
        ),
        (api_error(404, "NOT_FOUND", "App not found"), "App not found", "NOT_FOUND"),  # bad id
        # a proxy's page is not JSON
        (httpx.Response(400, text="Bad Request"), "HTTP 400 Bad Request: Bad Request", None),
    ],
)
def test_request_wide_errors_raise_without_retry(response, text, code):
    fake = FakeSinch(script=[response])
    sleeps: list[float] = []
    with make_client(fake, sleeps) as client, pytest.raises(ProviderError) as caught:
        client.send(MESSAGE)
    assert error_fields(caught.value) == (text, response.status_code, code, False)
    assert len(fake.sends()) == 1 and sleeps == []


@pytest.mark.parametrize(
    ("script", "sleeps"),
    [
        # 429 with Retry-After: honoured
        ([api_error(429, "RESOURCE_EXHAUSTED", "Too many", **{"Retry-After": "2"})], [2.0]),
        # 429 without: exponential backoff with jitter (0.5 s to 0.75 s)
        ([api_error(429, "RESOURCE_EXHAUSTED", "Too many")], [(0.5, 0.75)]),
        ([httpx.ConnectError], [(0.5, 0.75)]),  # nothing left the client
        ([httpx.PoolTimeout], [(0.5, 0.75)]),  # no connection free: nothing left either
    ],
)
def test_safe_failures_are_retried_and_the_mms_sent_once(script, sleeps):
    fake = FakeSinch(script=list(script))
    recorded: list[float] = []
    with make_client(fake, recorded) as client:
        assert client.send(MESSAGE).accepted
    assert len(fake.accepted) == 1 and len(fake.sends()) == 2
    assert len(fake.token_requests()) == 1  # the token was reused
    assert_sleeps(recorded, sleeps)


@pytest.mark.parametrize(
    "script",
    [
        [("accept", httpx.ReadTimeout)],  # accepted, the answer timed out
        [("accept", httpx.RemoteProtocolError)],  # accepted, the connection dropped
        [api_error(503, "UNAVAILABLE", "try later")],  # a 5xx: maybe accepted
        [httpx.Response(500)],  # a bare 500
        [httpx.Response(200, json={"accepted_time": "2020-04-23T09:55:04.766Z"})],  # no id
        # a safe retry, then an unknown outcome
        [api_error(429, "RESOURCE_EXHAUSTED", "Too many"), httpx.WriteTimeout],
    ],
)
def test_unknown_outcomes_are_not_sent_again(script):
    fake = FakeSinch(script=list(script))
    with make_client(fake) as client:
        assert client.send(MESSAGE) == UNKNOWN
    assert len(fake.sends()) == len(script)


def test_reconcile_never_sends_nor_fetches_a_token():
    fake = FakeSinch()
    limiter = RecordingBucket()
    with make_client(fake, rate_limiter=limiter) as client:
        assert client.send(MESSAGE, reconcile=True) == UNKNOWN
    assert fake.requests == [] and limiter.calls == []


def test_exhausted_retries_raise_a_retryable_provider_error():
    fake = FakeSinch(script=[api_error(429, "RESOURCE_EXHAUSTED", "Too many")] * 4)
    sleeps: list[float] = []
    with (
        make_client(fake, sleeps, max_attempts=4) as client,
        pytest.raises(ProviderError) as caught,
    ):
        client.send(MESSAGE)
    error = caught.value
    assert (error.status_code, error.code, error.retryable) == (429, "RESOURCE_EXHAUSTED", True)
    assert "sending again is safe" in error.text
    assert len(fake.sends()) == 4 and len(sleeps) == 3


def test_rate_limiter_is_charged_once_per_message():
    fake = FakeSinch(script=[httpx.ConnectError, "revoke"])
    limiter = RecordingBucket()
    with make_client(fake, rate_limiter=limiter) as client:
        assert client.send(MESSAGE).accepted
    assert limiter.calls == [1]


# -- secrets ----------------------------------------------------------------------------


def test_key_secret_and_token_never_reach_reprs_logs_or_errors(caplog):
    caplog.set_level(logging.DEBUG)
    fake = FakeSinch(script=[httpx.ConnectError, "revoke", "revoke"])
    with make_client(fake) as client:
        with pytest.raises(ProviderError) as caught:
            client.send(MESSAGE)
        shown = [repr(CREDENTIALS), str(CREDENTIALS), repr(client), CREDENTIALS.model_dump_json()]
    secrets = [KEY_SECRET, "tok-1", "tok-2", base64.b64encode(KEY_SECRET.encode()).decode()]
    for secret in secrets:
        assert all(secret not in text for text in shown)
        assert secret not in caplog.text
        assert secret not in str(caught.value) and secret not in repr(caught.value)
    assert caplog.records, "retries are logged"


# -- choice, location and carousel messages ------------------------------------------------
# Expected bodies follow the request fixtures of Sinch's Java SDK
# (openapi-contracts/.../conversation/v1/messages/request/Send{Choice,Location,Carousel}
# MessageRequestDto.json): the same keys and nesting, with this project's values.

PLAIN = replace(MESSAGE, subject=None, media_url=None)
YES = Choice(text="Yes", postback_data="newsletter-yes")
LINK = Choice(text="Read one first", url="https://example.com/n")
STORE = Location(
    title="Main Street store", label="Open 9 to 5", latitude=47.6279809, longitude=-2.8229159
)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (  # text choices and URL choices, postback_data when given
            {"text": "Newsletter?", "choices": (YES, LINK)},
            {
                "choice_message": {
                    "text_message": {"text": "Newsletter?"},
                    "choices": [
                        {"text_message": {"text": "Yes"}, "postback_data": "newsletter-yes"},
                        {
                            "url_message": {
                                "title": "Read one first",
                                "url": "https://example.com/n",
                            }
                        },
                    ],
                }
            },
        ),
        (  # a choice message without a text
            {"text": "", "choices": (Choice(text="No"),)},
            {"choice_message": {"choices": [{"text_message": {"text": "No"}}]}},
        ),
        (  # a location: coordinates, title and label
            {"text": "", "location": STORE},
            {
                "location_message": {
                    "coordinates": {"latitude": 47.6279809, "longitude": -2.8229159},
                    "title": "Main Street store",
                    "label": "Open 9 to 5",
                }
            },
        ),
        (  # a label is optional
            {"text": "", "location": STORE.model_copy(update={"label": None})},
            {
                "location_message": {
                    "coordinates": {"latitude": 47.6279809, "longitude": -2.8229159},
                    "title": "Main Street store",
                }
            },
        ),
        (  # a carousel: cards with their choices, then the outer choices
            {
                "text": "",
                "carousel": (
                    CarouselCard(
                        title="Sneakers",
                        description="20% off",
                        media_url="https://cdn.example.com/a.jpg",
                        choices=(YES,),
                    ),
                    CarouselCard(description="Boots"),
                ),
                "choices": (LINK,),
            },
            {
                "carousel_message": {
                    "cards": [
                        {
                            "title": "Sneakers",
                            "description": "20% off",
                            "media_message": {"url": "https://cdn.example.com/a.jpg"},
                            "choices": [
                                {"text_message": {"text": "Yes"}, "postback_data": "newsletter-yes"}
                            ],
                        },
                        {"description": "Boots"},
                    ],
                    "choices": [
                        {"url_message": {"title": "Read one first", "url": "https://example.com/n"}}
                    ],
                }
            },
        ),
    ],
)
def test_choice_location_and_carousel_messages(changes, expected):
    fake = FakeSinch()
    with make_client(fake) as client:
        assert client.send(replace(PLAIN, **changes)).accepted
    sent = json.loads(fake.sends()[0].content)
    assert sent["message"] == expected
    assert sent["channel_priority_order"] == ["MMS"]  # still pinned to MMS, which transcodes


TEN = tuple(Choice(text=f"Option {n}") for n in range(10))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"choices": (YES,), "subject": "Sale"}, "no subject"),  # a choice message has none
        ({"choices": (YES,), "media_url": "https://x.example/a.jpg"}, "no media_url"),
        ({"choices": (*TEN, YES)}, "11 choices; at most 10"),
        ({"location": STORE}, "no text"),  # a location message has no text
        ({"location": STORE, "text": "", "choices": (YES,)}, "no choices"),
        ({"text": "", "carousel": tuple(CarouselCard(title="c") for _ in range(11))}, "10 cards"),
        ({"text": "", "carousel": (CarouselCard(),)}, "card 1 needs"),  # an empty card
        (
            {"text": "", "carousel": (CarouselCard(title="c"),), "choices": TEN[:4]},
            "at most 3",  # outer choices
        ),
        ({"carousel": (CarouselCard(title="c"),)}, "no text"),
    ],
)
def test_invalid_rich_messages_raise_before_any_http_call(changes, message):
    invalid = replace(PLAIN, **changes)
    assert_refused_before_sending(make_client, FakeSinch(), lambda c: c.send(invalid), message)
