"""SinchMmsClient against httpx.MockTransport handlers built from the MMS JSON API's real
shapes (`sendmms` request, `Success` and `Failure` answers, Sinch's error codes)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import httpx
import pytest

from engine.errors import ProviderError
from integrations.sinch_mms import (
    UNKNOWN_OUTCOME_COMMENT,
    MmsMessage,
    MmsReceipt,
    SinchMmsClient,
    SinchMmsCredentials,
)
from tests.integrations.providers import (
    RecordingBucket,
    ScriptedProvider,
    assert_refused_before_sending,
    assert_sleeps,
    mock_client,
)

API_KEY = "mms-key-7c1e0f9a42"
SERVICE_ID = "30011"
URL = "https://api.ci.mblox.com/ep/v2/"
CREDENTIALS = SinchMmsCredentials(service_id=SERVICE_ID, api_key=API_KEY)

MESSAGE = MmsMessage(
    to="+15551231234",
    sender="28444",
    subject="Summer sale",
    text="Hi Ann, 20% off today only",
    media_url="https://cdn.example.com/mms/sale.jpg",
    media_type="image",
    fallback_text="Hi Ann, 20% off today only",
    fallback_disabled=False,
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


def success(to: str, tracking_id: str) -> dict[str, Any]:
    """Sinch's answer to an accepted sendmms."""
    return {
        "status": "Success",
        "to": to,
        "mms-id": "35674",
        "tracking-id": tracking_id,
        "status-details": "MMS request accepted and queued for delivery",
    }


def failure(code: str, info: str, status: int = 200, **headers: str) -> httpx.Response:
    """Sinch's `Failure` answer (the HTTP status that comes with it is unverified)."""
    body = {"status": "Failure", "error-code": code, "to": "15551231234", "error-info": info}
    return httpx.Response(status, json=body, headers=headers)


@dataclass
class FakeMms(ScriptedProvider):
    """A stateful Sinch MMS API: each post follows `script`, then is accepted (see
    `providers` for the steps)."""

    accepted: list[dict[str, Any]] = field(default_factory=list)

    def accept(self, request: httpx.Request) -> httpx.Response:
        payload = json.loads(request.content)
        self.accepted.append(payload)
        return httpx.Response(
            200, json=success(payload["to"], f"DrXAFP-Ylpc-{len(self.accepted):03d}")
        )


make_client = partial(mock_client, SinchMmsClient, credentials=CREDENTIALS)


# -- request shape ----------------------------------------------------------------------


def test_send_posts_the_sendmms_shape_and_returns_the_tracking_id():
    fake = FakeMms()
    with make_client(fake) as client:
        receipt = client.send(MESSAGE)

    (request,) = fake.requests
    assert (request.method, str(request.url)) == ("POST", URL)
    assert request.headers["x-api-key"] == API_KEY
    assert request.headers["Content-Type"] == "application/json"
    assert "Authorization" not in request.headers
    assert json.loads(request.content) == {
        "action": "sendmms",
        "service-id": SERVICE_ID,
        "to": "15551231234",  # international format without '+'
        "from": "28444",
        "message-subject": "Summer sale",
        "fallback-sms-text": "Hi Ann, 20% off today only",
        "disable-fallback-sms": False,
        "client-reference": "v3:summer:mms-1:cust-42:1",
        "slide": [
            {
                "image": {"url": "https://cdn.example.com/mms/sale.jpg"},
                "message-text": "Hi Ann, 20% off today only",
            }
        ],
    }
    assert receipt == MmsReceipt(
        to="+15551231234", tracking_id="DrXAFP-Ylpc-001", accepted=True, status_code=None
    )


TEXT = MESSAGE.text


@pytest.mark.parametrize(
    ("changes", "expected", "left_out"),
    [
        # text only, no subject, fallback disabled: no subject and no fallback text are sent
        (
            {
                "subject": None,
                "media_url": None,
                "media_type": None,
                "fallback_text": None,
                "fallback_disabled": True,
            },
            {"disable-fallback-sms": True, "slide": [{"message-text": TEXT}]},
            {"message-subject", "fallback-sms-text"},
        ),
        # a video without text: the slide has no message-text
        (
            {"text": "", "media_url": "https://cdn.example.com/a.mp4", "media_type": "video"},
            {"slide": [{"video": {"url": "https://cdn.example.com/a.mp4"}}]},
            set(),
        ),
        # a contact card; an empty subject counts as none
        (
            {"subject": "", "media_url": "https://cdn.example.com/c.vcf", "media_type": "vcard"},
            {"slide": [{"vcard": {"url": "https://cdn.example.com/c.vcf"}, "message-text": TEXT}]},
            {"message-subject"},
        ),
        # a PDF; a sender written with '+' is sent in international format
        (
            {"sender": "+15557654321", "media_url": "https://x.example/t.pdf", "media_type": "pdf"},
            {
                "from": "15557654321",
                "slide": [{"pdf": {"url": "https://x.example/t.pdf"}, "message-text": TEXT}],
            },
            set(),
        ),
    ],
)
def test_optional_fields_and_media_types(changes, expected, left_out):
    fake = FakeMms()
    with make_client(fake) as client:
        assert client.send(replace(MESSAGE, **changes)).accepted
    sent = json.loads(fake.requests[0].content)
    assert {key: sent[key] for key in expected} == expected
    assert not left_out & set(sent)
    assert sent["client-reference"] == MESSAGE.client_reference  # always sent


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        (None, "https://api.ci.mblox.com/ep/v2/"),  # Sinch's documented host
        ("unset", "https://api.ci.mblox.com/ep/v2/"),  # base_url=None means the same
        ("http://127.0.0.1:8765/", "http://127.0.0.1:8765/ep/v2/"),  # the simulator
    ],
)
def test_base_url(base_url, expected):
    fields = {"base_url": None if base_url == "unset" else base_url} if base_url else {}
    credentials = SinchMmsCredentials(service_id=SERVICE_ID, api_key=API_KEY, **fields)
    fake = FakeMms()
    with make_client(fake, credentials=credentials) as client:
        client.send(MESSAGE)
    assert str(fake.requests[0].url) == expected


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        # fallback enabled without its text: Sinch would answer E622
        ({"fallback_text": None}, "E622"),
        ({"fallback_text": "  "}, "E622"),  # a blank one is none
        ({"subject": "s" * 81}, "MMS allows 80"),  # the subject limit
        ({"subject": "Sale \N{FIRE}"}, "ASCII"),  # no emoji in a subject
        ({"text": "x" * 1601}, "MMS allows 1600"),  # the text limit
        ({"to": "15551231234"}, "E.164"),  # '+' required
        ({"to": "+1555-123"}, "E.164"),  # not digits
        ({"media_type": None}, "go together"),  # a URL without its type
        ({"media_url": None}, "go together"),  # a type without its URL
        ({"media_type": "gif"}, "media_type"),  # not a slide object kind
        ({"media_url": "ftp://x.example/a.jpg"}, "http"),  # Sinch fetches over HTTP(S)
        ({"text": "", "media_url": None, "media_type": None}, "1 to 8 slides"),  # empty MMS
        ({"client_reference": ""}, "required"),  # no send key
        ({"client_reference": "r" * 129}, "at most 128"),  # our limit (Sinch publishes none)
        ({"sender": " "}, "sender"),  # no short code or long number
    ],
)
def test_invalid_messages_raise_before_any_http_call(changes, message):
    invalid = replace(MESSAGE, **changes)
    assert_refused_before_sending(make_client, FakeMms(), lambda c: c.send(invalid), message)


def test_exactly_80_ascii_subject_characters_and_1600_text_characters_are_sent():
    fake = FakeMms()
    with make_client(fake) as client:
        assert client.send(replace(MESSAGE, subject="s" * 80, text="t" * 1600)).accepted
    assert len(json.loads(fake.requests[0].content)["message-subject"]) == 80


# -- refusals: per recipient, or for the whole account -------------------------------------


@pytest.mark.parametrize(
    ("code", "info", "status"),
    [
        ("E110", "Invalid 'to' / receiver number.", 200),  # a bad number
        ("E111", "Invalid 'from' / shortcode.", 200),  # a sender not on the account
        ("E114", "Phone number is blacklisted. API call rejected.", 200),  # blocked number
        ("E628", "Mobile operator / carrier not supported.", 200),  # no MMS reach
        ("E629", "Unrecognized content type.", 200),  # the media's Content-Type
        ("E351", "Could not copy Image in slide 1.", 200),  # the media URL failed
        ("E110", "Invalid 'to' / receiver number.", 400),  # the same refusal as a 4xx
    ],
)
def test_failure_answers_are_per_recipient_refusals_not_exceptions(code, info, status):
    fake = FakeMms(script=[failure(code, info, status)])
    sleeps: list[float] = []
    with make_client(fake, sleeps) as client:
        receipt = client.send(MESSAGE)
    assert receipt == MmsReceipt(
        to=MESSAGE.to,
        tracking_id=None,
        accepted=False,
        status_code=code,
        error=code,
        comment=info,
    )
    assert len(fake.requests) == 1 and sleeps == []


def test_a_failure_without_error_code_is_still_a_refusal():
    body = {"status": "Failure", "error-info": "Rejected"}
    fake = FakeMms(script=[httpx.Response(200, json=body)])
    with make_client(fake) as client:
        receipt = client.send(MESSAGE)
    assert (receipt.accepted, receipt.status_code, receipt.error) == (False, None, "Failure")
    assert receipt.comment == "Rejected" and len(fake.requests) == 1


@pytest.mark.parametrize(
    ("response", "status", "code"),
    [
        # a bad API key, as 401 or as a Failure body
        (failure("E104", "Authentication failed, Invalid API-key.", 401), 401, "E104"),
        (failure("E104", "Authentication failed, Invalid API-key."), 200, "E104"),
        (httpx.Response(403, text="Forbidden"), 403, None),  # IP not whitelisted at the edge
        # the calling host is not allowed
        (failure("E112", "IP was not whitelisted. API call rejected."), 200, "E112"),
        # a wrong service id in the credentials
        (failure("E627", "Invalid service-id / service-id is required."), 200, "E627"),
        # a request this client built wrongly
        (failure("E100", "Invalid request, please make a valid Post request."), 200, "E100"),
        (httpx.Response(404, html="<html>Not Found</html>"), 404, None),  # a wrong base URL
    ],
)
def test_account_wide_errors_raise_without_retry(response, status, code):
    fake = FakeMms(script=[response])
    sleeps: list[float] = []
    with make_client(fake, sleeps) as client, pytest.raises(ProviderError) as caught:
        client.send(MESSAGE)
    error = caught.value
    assert (error.status_code, error.code, error.retryable) == (status, code, False)
    if code:
        assert error.text.startswith(f"{code}: ")
    assert len(fake.requests) == 1 and sleeps == []
    assert API_KEY not in str(error)


# -- retries: only when nothing can have been sent -----------------------------------------


@pytest.mark.parametrize(
    ("script", "sleeps"),
    [
        # 429 with Retry-After: honoured
        ([httpx.Response(429, headers={"Retry-After": "2"})], [2.0]),
        # 429 without: exponential backoff with jitter (0.5 s to 0.75 s)
        ([httpx.Response(429)], [(0.5, 0.75)]),
        # Sinch's "calls too frequent" and "throughput exceeded" refusals
        (
            [failure("E106", "Time interval between each API call should be at least 1s")],
            [(0.5, 0.75)],
        ),
        ([failure("E113", "Exceeded the allowed throughput.", 429, **{"Retry-After": "1"})], [1.0]),
        # "carrier look-up failed, please retry"
        ([failure("E618", "Carrier lookup failed. Please retry.")], [(0.5, 0.75)]),
        # the connection could not even be opened: no byte left
        ([httpx.ConnectError], [(0.5, 0.75)]),
        ([httpx.ConnectTimeout], [(0.5, 0.75)]),
        # two refusals: the backoff doubles
        ([httpx.Response(429), httpx.ConnectError], [(0.5, 0.75), (1.0, 1.5)]),
    ],
)
def test_safe_failures_are_retried_and_the_mms_sent_once(script, sleeps):
    fake = FakeMms(script=list(script))
    recorded: list[float] = []
    with make_client(fake, recorded) as client:
        receipt = client.send(MESSAGE)
    assert receipt.accepted and receipt.tracking_id == "DrXAFP-Ylpc-001"
    assert len(fake.accepted) == 1
    assert len(fake.requests) == len(script) + 1
    assert_sleeps(recorded, sleeps)


@pytest.mark.parametrize(
    "script",
    [
        [("accept", httpx.ReadTimeout)],  # accepted, the answer timed out
        [("accept", httpx.RemoteProtocolError)],  # accepted, the connection dropped
        [httpx.WriteTimeout],  # timed out while sending: maybe received
        [httpx.Response(503, json={"status": "Failure"})],  # a 5xx: maybe accepted
        [httpx.Response(502, text="<html>Bad Gateway</html>")],
        [httpx.Response(200, text="<html>maintenance</html>")],  # a 200 we cannot read
        [httpx.Response(429), ("accept", httpx.ReadTimeout)],  # a safe retry, then unknown
    ],
)
def test_unknown_outcomes_are_not_sent_again(script):
    fake = FakeMms(script=list(script))
    with make_client(fake) as client:
        receipt = client.send(MESSAGE)
    assert receipt == UNKNOWN
    assert len(fake.requests) == len(script)  # no post after the unknown outcome
    assert len(fake.accepted) <= 1


def test_reconcile_never_sends_nor_paces():
    fake = FakeMms()
    limiter = RecordingBucket()
    with make_client(fake, rate_limiter=limiter) as client:
        receipt = client.send(MESSAGE, reconcile=True)
    assert receipt == UNKNOWN
    assert fake.requests == [] and limiter.calls == []


def test_reconcile_still_validates_the_message():
    with make_client(FakeMms()) as client, pytest.raises(ValueError, match="E622"):
        client.send(replace(MESSAGE, fallback_text=None), reconcile=True)


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(429),  # refused for load every time
        failure("E113", "Exceeded the allowed throughput for this API action."),
    ],
)
def test_exhausted_retries_raise_a_retryable_provider_error(response):
    fake = FakeMms(script=[response] * 5)
    sleeps: list[float] = []
    with (
        make_client(fake, sleeps, max_attempts=5) as client,
        pytest.raises(ProviderError) as caught,
    ):
        client.send(MESSAGE)
    error = caught.value
    assert error.retryable is True
    assert error.status_code == response.status_code
    assert "sending again is safe" in error.text
    assert len(fake.requests) == 5 and len(sleeps) == 4
    assert fake.accepted == []


def test_rate_limiter_is_charged_once_per_message():
    fake = FakeMms(script=[httpx.Response(429), httpx.ConnectError])
    limiter = RecordingBucket()
    with make_client(fake, rate_limiter=limiter) as client:
        client.send(MESSAGE)
    assert limiter.calls == [1]
    assert len(fake.requests) == 3


# -- secrets ----------------------------------------------------------------------------


def test_api_key_never_reaches_reprs_logs_or_errors(caplog):
    caplog.set_level(logging.DEBUG)
    fake = FakeMms(script=[httpx.ConnectError, failure("E104", "Invalid API-key.", 401)])
    with make_client(fake) as client:
        with pytest.raises(ProviderError) as caught:
            client.send(MESSAGE)
        shown = [repr(CREDENTIALS), str(CREDENTIALS), repr(client), CREDENTIALS.model_dump_json()]
    assert all(API_KEY not in text for text in shown)
    assert caplog.records, "retries are logged"
    assert API_KEY not in caplog.text
    assert API_KEY not in str(caught.value) and API_KEY not in repr(caught.value)
    assert fake.requests[-1].headers["x-api-key"] == API_KEY
