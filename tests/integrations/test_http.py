"""The HTTP plumbing the provider clients share (`integrations.http`)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from pydantic import SecretStr

from integrations.http import (
    MAX_BACKOFF_SECONDS,
    ApiKeyAuth,
    AppKeyAuth,
    BearerAuth,
    Failure,
    Retries,
    backoff,
    google_error,
    http_summary,
    read_json,
    retry,
    retry_after,
    transport_failure,
)
from tests.integrations.providers import fake_sleep

SECRET = "s3cr3t-9f1c2a5e"
LOGGER = logging.getLogger("tests.integrations.test_http")


def answer(*, headers: dict[str, str] | None = None, **kwargs) -> httpx.Response:
    return httpx.Response(503, headers=headers, **kwargs)


# -- Retry-After --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),  # no header
        ("", None),
        ("2", 2.0),  # delta-seconds
        ("0.5", 0.5),  # not in the RFC, but some gateways send it
        ("-3", 0.0),  # never a negative wait
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # an HTTP date in the past: no wait
        ("soon", None),  # neither a number nor a date
    ],
)
def test_retry_after(value, expected):
    headers = {"Retry-After": value} if value is not None else {}
    assert retry_after(answer(headers=headers)) == expected


def test_retry_after_as_a_future_http_date():
    when = datetime.now(UTC) + timedelta(seconds=30)
    seconds = retry_after(answer(headers={"Retry-After": format_datetime(when, usegmt=True)}))
    assert seconds is not None and 25 <= seconds <= 30


# -- backoff and retries ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failures", "low", "high"),
    [
        (1, 0.5, 0.75),  # the base, plus up to 50% jitter
        (2, 1.0, 1.5),  # doubled
        (3, 2.0, 3.0),
        (20, MAX_BACKOFF_SECONDS, MAX_BACKOFF_SECONDS * 1.5),  # capped
    ],
)
def test_backoff_doubles_with_jitter_and_a_cap(failures, low, high):
    delays = [backoff(failures, 0.5) for _ in range(50)]
    assert all(low <= delay <= high for delay in delays)


def test_retries_prefer_retry_after_to_backoff():
    retries = Retries(5, 0.5, fake_sleep(None))
    assert retries.delay(3, 7.0) == 7.0
    assert 2.0 <= retries.delay(3, None) <= 3.0


def test_max_attempts_must_be_positive():
    with pytest.raises(ValueError, match="max_attempts must be >= 1, got 0"):
        Retries(0, 0.5, fake_sleep(None))


def scripted(*outcomes: object):
    """An attempt function answering `outcomes` in order, counting its calls."""
    remaining = list(outcomes)
    calls: list[object] = []

    def attempt() -> object:
        calls.append(remaining[0])
        return remaining.pop(0)

    return attempt, calls


def test_retry_returns_the_first_success_and_sleeps_in_between(caplog):
    caplog.set_level(logging.WARNING)
    attempt, calls = scripted(Failure("busy", retry_after=2.0), Failure("busy"), "ok")
    sleeps: list[float] = []
    result = retry(attempt, Retries(5, 0.5, fake_sleep(sleeps)), what="GET /x", logger=LOGGER)
    assert result == "ok" and len(calls) == 3
    assert sleeps[0] == 2.0 and 1.0 <= sleeps[1] <= 1.5
    assert [r.getMessage() for r in caplog.records] == [
        "GET /x attempt 1/5 failed: busy",
        "GET /x attempt 2/5 failed: busy",
    ]


def test_retry_returns_the_last_failure_once_attempts_run_out():
    last = Failure("third", status_code=503)
    attempt, calls = scripted(Failure("first"), Failure("second"), last)
    sleeps: list[float] = []
    outcome = retry(attempt, Retries(3, 0.5, fake_sleep(sleeps)), what="POST", logger=LOGGER)
    assert outcome is last
    assert len(calls) == 3 and len(sleeps) == 2  # no sleep after the last attempt


def test_retry_stops_early_when_told():
    unknown = Failure("timed out", unknown=True)
    attempt, calls = scripted(Failure("429"), unknown, "never reached")
    sleeps: list[float] = []
    outcome = retry(
        attempt,
        Retries(5, 0.5, fake_sleep(sleeps)),
        what="POST",
        logger=LOGGER,
        stop=lambda failure: failure.unknown,
    )
    assert outcome is unknown
    assert len(calls) == 2 and len(sleeps) == 1


# -- auth ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("auth_class", "header", "value"),
    [
        (BearerAuth, "Authorization", f"Bearer {SECRET}"),
        (AppKeyAuth, "Authorization", f"App {SECRET}"),
        (ApiKeyAuth, "x-api-key", SECRET),
    ],
)
def test_secret_header_auth_sets_the_header_and_hides_the_secret(auth_class, header, value):
    auth = auth_class(SecretStr(SECRET))
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    with httpx.Client(transport=httpx.MockTransport(handler), auth=auth) as client:
        client.get("https://provider.test/")
    assert seen[0].headers[header] == value
    assert SECRET not in repr(auth) and SECRET not in str(auth)
    assert repr(auth) == f"{auth_class.__name__}(secret=**********)"


# -- reading answers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (httpx.Response(200, json={"id": "b1"}), {"id": "b1"}),
        (httpx.Response(200, json=None), None),
        (httpx.Response(502, html="<html>Bad Gateway</html>"), None),  # not JSON
        (httpx.Response(200, content=b"\xff\xfe{"), None),  # not even text
        (httpx.Response(204), None),  # no body
    ],
)
def test_read_json(response, expected):
    assert read_json(response) == expected


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (httpx.Response(401), "HTTP 401 Unauthorized"),
        (
            httpx.Response(502, text="<html>\n  Bad   Gateway\n</html>"),
            "HTTP 502 Bad Gateway: <html> Bad Gateway </html>",
        ),  # white space folded
        (httpx.Response(500, text="x" * 300), "HTTP 500 Internal Server Error: " + "x" * 200),
        (httpx.Response(599), "HTTP 599 error"),  # no reason phrase
    ],
)
def test_http_summary(response, expected):
    assert http_summary(response) == expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}},
            ("bad", "INVALID_ARGUMENT"),
        ),
        ({"error": {"code": 404, "message": "gone"}}, ("gone", "404")),  # no status: the code
        ({"error": {"message": "odd"}}, ("odd", None)),
        ({"error": "invalid_client"}, None),  # OAuth2's shape is not this one
        ({"text": "Sinch SMS shape", "code": "x"}, None),
        (None, None),
        (["error"], None),
    ],
)
def test_google_error(data, expected):
    assert google_error(data) == expected


# -- transport failures -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exception", "text", "unknown"),
    [
        # the connection could not be opened: nothing was sent
        (httpx.ConnectError, "could not connect (ConnectError: boom)", False),
        (httpx.ConnectTimeout, "could not connect (ConnectTimeout: boom)", False),
        (httpx.PoolTimeout, "could not connect (PoolTimeout: boom)", False),
        # the request may have reached the provider
        (httpx.ReadTimeout, "timed out (ReadTimeout)", True),
        (httpx.WriteTimeout, "timed out (WriteTimeout)", True),
        (httpx.RemoteProtocolError, "connection failed (RemoteProtocolError: boom)", True),
        (httpx.ReadError, "connection failed (ReadError: boom)", True),
    ],
)
def test_transport_failure(exception, text, unknown):
    request = httpx.Request("POST", "https://provider.test/")
    assert transport_failure(exception("boom", request=request)) == Failure(text, unknown=unknown)
