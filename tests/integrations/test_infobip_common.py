"""What the Infobip SMS and MMS clients share (`integrations/infobip_common.py`): the
request checks of `build_request`, a result per destination, retries that resend the
same messageIds so each destination is sent once, exhausted retries, the rate limiter, the
API key kept out of sight. Each test runs against both clients, with the requests of
`test_infobip_sms` and `test_infobip_mms`."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx
import pytest

from engine.errors import ProviderError
from integrations.infobip_mms import InfobipMmsClient
from integrations.infobip_sms import DestinationResult, InfobipSmsClient
from tests.integrations import test_infobip_mms as mms
from tests.integrations import test_infobip_sms as sms
from tests.integrations.providers import (
    FakeInfobip,
    RecordingBucket,
    assert_refused_before_sending,
    assert_sleeps,
    legacy_error,
    v3_error,
)


@dataclass(frozen=True)
class Api:
    """One Infobip API as its test module sets it up."""

    client_class: type
    make_client: Callable[..., Any]
    fake: type[FakeInfobip]
    messages: list[Any]
    bulk: str
    key: str
    all_accepted: list[DestinationResult]
    valid: Any  # a valid message to one destination, messageId "m-1"

    def one(self, **changes: Any) -> Any:
        """The valid message with `changes`."""
        return dataclasses.replace(self.valid, **changes)

    def send(self, client: Any, **options: Any) -> list[DestinationResult]:
        return client.send(self.messages, bulk_id=self.bulk, **options)


APIS = {
    "sms": Api(
        InfobipSmsClient,
        sms.make_client,
        sms.FakeInfobipSms,
        sms.MESSAGES,
        sms.BULK,
        sms.KEY,
        sms.ALL_ACCEPTED,
        sms.InfobipMessage(sender="InfoSMS", destinations=[("+41793026727", "m-1")], text="Hi"),
    ),
    "mms": Api(
        InfobipMmsClient,
        mms.make_client,
        FakeInfobip,
        mms.MESSAGES,
        mms.BULK,
        mms.KEY,
        mms.ALL_ACCEPTED,
        mms.mms(),
    ),
}


@pytest.fixture(params=sorted(APIS))
def api(request) -> Api:
    return APIS[request.param]


def message_ids(fake: FakeInfobip) -> list[str]:
    return sorted(entry[1] for entry in fake.sent)


def many(count: int, start: int = 0) -> list[tuple[str, str]]:
    return [(f"+1415555{i:04d}", f"m-{i}") for i in range(start, start + count)]


# -- the request ---------------------------------------------------------------------------

# (the messages, built from `Api.one`; the bulk id; the error)
INVALID: list[tuple[Callable[[Api], list[Any]], str, str]] = [
    (lambda api: [], "bulk", "at least one message"),  # nothing to send
    (lambda api: [api.one(destinations=[])], "bulk", "no destinations"),
    (lambda api: [api.one(destinations=[("14155550001", "m-1")])], "bulk", "E.164"),  # no "+"
    (lambda api: [api.one(destinations=[("+141555500x1", "m-1")])], "bulk", "E.164"),  # digits
    (lambda api: [api.one(destinations=[("+", "m-1")])], "bulk", "E.164"),  # a bare "+"
    (  # 1,000 destinations at most, over all messages
        lambda api: [api.one(destinations=many(600)), api.one(destinations=many(401, 600))],
        "bulk",
        "got 1001",
    ),
    # exactly-once needs a messageId, of at most 200 characters (Infobip's maximum)
    (lambda api: [api.one(destinations=[("+14155550001", "")])], "bulk", "messageId"),
    (lambda api: [api.one(destinations=[("+14155550001", "m" * 201)])], "bulk", "200"),
    (  # the second would be refused as a duplicate and read as sent
        lambda api: [api.one(), api.one(destinations=[("+14155550002", "m-1")])],
        "bulk",
        "used twice",
    ),
    (lambda api: [api.one(sender="")], "bulk", "no sender"),
    (lambda api: [api.one()], "", "bulk_id"),
    (lambda api: [api.one()], "b" * 101, "at most 100"),  # Infobip clips longer bulk ids
]


@pytest.mark.parametrize(("build", "bulk_id", "error"), INVALID)
def test_invalid_requests_raise_before_any_http_call(api, build, bulk_id, error):
    messages = build(api)
    send = partial(_send, messages, bulk_id)
    assert_refused_before_sending(api.make_client, api.fake(), send, error)


def _send(messages: list[Any], bulk_id: str, client: Any) -> Any:
    return client.send(messages, bulk_id=bulk_id)


def test_exactly_1000_destinations_over_several_messages_go_in_one_request(api):
    fake = api.fake()
    messages = [api.one(destinations=many(400)), api.one(destinations=many(600, 400), text="B")]
    with api.make_client(fake) as client:
        results = client.send(messages, bulk_id=api.bulk)
    assert len(fake.requests) == 1
    assert len(results) == 1000 and all(r.accepted for r in results)
    assert [r.message_id for r in results] == [f"m-{i}" for i in range(1000)]
    assert len(fake.sent) == 1000


# -- per-destination results -----------------------------------------------------------------


def test_a_refused_destination_is_that_ones_alone(api):
    second = api.all_accepted[1]
    fake = api.fake(blocked=(second.to[1:],))
    with api.make_client(fake) as client:
        results = api.send(client)
    refused = DestinationResult(
        to=second.to,
        message_id=second.message_id,
        accepted=False,
        status_code=14,
        error="REJECTED_DESTINATION",
        comment="By Destination",
    )
    assert results == [api.all_accepted[0], refused, *api.all_accepted[2:]]
    assert len(fake.requests) == 1  # a per-destination rejection is not retried


def test_duplicate_message_id_from_an_earlier_send_counts_as_accepted(api):
    fake = api.fake()
    with api.make_client(fake) as client:
        first = api.send(client)
        again = api.send(client)  # say, after a crash
    assert first == again == api.all_accepted
    assert len(fake.requests) == 2
    assert len(fake.sent) == 3  # every destination got its message once


# -- retries and exactly-once ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "posts", "sleeps"),
    [
        # 429 with Retry-After: nothing was accepted, wait as told and post again
        ([v3_error(429, "E429", "Too many requests", **{"Retry-After": "2"})], 2, [2.0]),
        # 429 without Retry-After, v3 or legacy: backoff with jitter (0.5 s to 0.75 s)
        ([v3_error(429, "E429", "Too many requests")], 2, [(0.5, 0.75)]),
        ([legacy_error(429, "TOO_MANY_REQUESTS", "Too many requests")], 2, [(0.5, 0.75)]),
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
        # a 500 (v3, then legacy), then a proxy's 502: the backoff doubles
        (
            [
                v3_error(500, "E500", "Something went wrong."),
                httpx.Response(502, text="<html>Bad Gateway</html>"),
            ],
            3,
            [(0.5, 0.75), (1.0, 1.5)],
        ),
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
        ([httpx.Response(200, json={"bulkId": "b", "messages": []})], 2, [(0.5, 0.75)]),
    ],
)
def test_retries_send_each_destination_exactly_once(api, script, posts, sleeps):
    fake = api.fake(script=list(script))
    recorded: list[float] = []
    with api.make_client(fake, recorded) as client:
        results = api.send(client)

    assert results == api.all_accepted
    assert message_ids(fake) == sorted(result.message_id for result in api.all_accepted)
    assert len(fake.requests) == posts
    # every attempt is the same request: same bulkId, same messageIds
    assert len({r.content for r in fake.requests}) == 1
    assert all(r.headers["Authorization"] == f"App {api.key}" for r in fake.requests)
    assert_sleeps(recorded, sleeps)


def test_a_lost_answer_keeps_rejections_visible_on_the_resend(api):
    # Infobip rejected the last destination, then the answer was lost; the resend rejects
    # it again (it was never accepted), the others come back as duplicates.
    last = api.all_accepted[-1].to
    fake = api.fake(script=[("accept", httpx.ReadTimeout)], blocked=(last[1:],))
    with api.make_client(fake) as client:
        results = api.send(client)
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
def test_exhausted_retries_raise_retryable_provider_error(api, response, status_code, code):
    fake = api.fake(script=[response] * 5)
    sleeps: list[float] = []
    with (
        api.make_client(fake, sleeps, max_attempts=5) as client,
        pytest.raises(ProviderError) as caught,
    ):
        api.send(client)
    error = caught.value
    assert error.retryable is True
    assert (error.status_code, error.code) == (status_code, code)
    assert "failed 5 times" in error.text and api.bulk in error.text
    assert len(fake.requests) == 5 and len(sleeps) == 4
    assert fake.sent == []


def test_exhausted_timeouts_raise_retryable_error_without_status(api):
    fake = api.fake(script=[httpx.ReadTimeout] * 3)
    with api.make_client(fake, max_attempts=3) as client, pytest.raises(ProviderError) as caught:
        api.send(client)
    assert caught.value.retryable is True
    assert caught.value.status_code is None and "timed out" in caught.value.text
    assert len(fake.requests) == 3


def test_reconcile_simply_resends_and_duplicates_count_as_sent(api):
    fake = api.fake(script=[("accept", httpx.ReadTimeout)])
    with api.make_client(fake, max_attempts=1) as client:
        with pytest.raises(ProviderError) as caught:
            api.send(client)
        assert caught.value.retryable is True
        results = api.send(client, reconcile=True)
    assert results == api.all_accepted
    assert len(fake.requests) == 2  # no look-up, one resend
    assert len(fake.sent) == 3


def test_rate_limiter_is_charged_once_per_request_per_destination(api):
    fake = api.fake(script=[v3_error(429, "E429", "Too many"), httpx.Response(500)])
    limiter = RecordingBucket(100)
    with api.make_client(fake, rate_limiter=limiter) as client:
        api.send(client)
    assert limiter.calls == [3]
    assert len(fake.requests) == 3


def test_max_attempts_must_be_positive(api):
    with pytest.raises(ValueError, match="max_attempts"):
        api.client_class(sms.CREDENTIALS, max_attempts=0)


def test_api_key_never_reaches_reprs_logs_or_errors(api, caplog):
    caplog.set_level(logging.DEBUG)
    fake = api.fake(
        script=[
            httpx.ReadTimeout,
            v3_error(503, "E503", "busy"),
            legacy_error(401, "UNAUTHORIZED", "Invalid login details"),
        ]
    )
    with api.make_client(fake) as client:
        with pytest.raises(ProviderError) as caught:
            api.send(client)
        credentials = client.credentials
        shown = [repr(credentials), str(credentials), repr(client), credentials.model_dump_json()]
    assert all(api.key not in text for text in shown)
    assert caught.value.status_code == 401
    assert caplog.records, "retries are logged"
    assert api.key not in caplog.text
    assert api.key not in str(caught.value) and api.key not in repr(caught.value)
    assert fake.requests[0].headers["Authorization"] == f"App {api.key}"
