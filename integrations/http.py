"""HTTP plumbing every provider client uses the same way, vendor-neutral.

- Secret header auth: `BearerAuth` (`Authorization: Bearer`), `AppKeyAuth`
  (`Authorization: App`, Infobip) and `ApiKeyAuth` (`x-api-key`) add the secret to each
  request at send time, so it never sits in client defaults, and never show it in a repr.
- The client: `json_client` builds the httpx.Client (asking for JSON); `ProviderClient`
  is the base of every provider client: it holds the credentials, the retries, the rate
  limiter and the httpx.Client built from what `_connection()` says, and gives `close()`,
  `with` and `_pace()`.
- Reading answers: `read_json` (None for a body that is not JSON), `http_summary` (the
  fallback text for an error body that cannot be read), `google_error` (the
  `{"error": {"code", "message", "status"}}` shape), `retry_after` (`Retry-After` as
  delta-seconds or an HTTP date).
- Failed attempts: `Failure` records what an attempt came to; `transport_failure` sorts
  httpx's transport errors into "nothing was sent" (a connection that could not be opened)
  and "outcome unknown" (the request may have reached the provider).
- Retries: `Retries` holds the attempt count, the backoff base and the sleep function;
  `backoff` is exponential (doubling per failure, capped at `MAX_BACKOFF_SECONDS`) with up
  to 50% jitter added; `retry` is the loop every client runs around one attempt.

Nothing here raises `ProviderError`: the provider modules turn a `Failure` into one, with
their own words.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, NamedTuple, Self, TypeVar

import httpx
from pydantic import SecretStr

from integrations.rate_limit import TokenBucket

MAX_BACKOFF_SECONDS = 60.0
JSON_HEADERS = {"Accept": "application/json"}

# Failures raised before any byte of the request was written: safe to resend blindly.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

T = TypeVar("T")
C = TypeVar("C")


# -- auth -----------------------------------------------------------------------------------


class SecretHeaderAuth(httpx.Auth):
    """Sets `header: {prefix}{secret}` on each request; subclasses name the header."""

    header: ClassVar[str]
    prefix: ClassVar[str] = ""

    def __init__(self, secret: SecretStr):
        self._secret = secret

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[self.header] = self.prefix + self._secret.get_secret_value()
        yield request

    def __repr__(self) -> str:
        return f"{type(self).__name__}(secret=**********)"


class BearerAuth(SecretHeaderAuth):
    """`Authorization: Bearer {token}` (Sinch SMS, the Conversation API's access token)."""

    header = "Authorization"
    prefix = "Bearer "


class AppKeyAuth(SecretHeaderAuth):
    """`Authorization: App {key}` (Infobip)."""

    header = "Authorization"
    prefix = "App "


class ApiKeyAuth(SecretHeaderAuth):
    """`x-api-key: {key}` (the Sinch MMS JSON API)."""

    header = "x-api-key"


def json_client(
    *,
    transport: httpx.BaseTransport | None,
    timeout_seconds: float,
    base_url: str = "",
    auth: httpx.Auth | None = None,
) -> httpx.Client:
    """An httpx.Client that asks for JSON answers."""
    return httpx.Client(
        base_url=base_url,
        auth=auth,
        transport=transport,
        timeout=timeout_seconds,
        headers=JSON_HEADERS,
    )


class Connection(NamedTuple):
    """How a provider client's httpx.Client reaches its API: a base URL for relative paths
    and the auth added to every request (none: each request gives its own URL and auth)."""

    base_url: str = ""
    auth: httpx.Auth | None = None


class ProviderClient(Generic[C]):
    """The base of every provider client: its credentials, how often to try a request, the
    rate limiter charged before sending and the httpx.Client, closed by `close()` or at the
    end of a `with` block. Subclasses say how to connect (`_connection`).

    `transport` replaces the network (tests pass an `httpx.MockTransport`); `sleep` is what
    waits between attempts.
    """

    def __init__(
        self,
        credentials: C,
        *,
        transport: httpx.BaseTransport | None = None,
        rate_limiter: TokenBucket | None = None,
        max_attempts: int = 5,
        backoff_seconds: float = 0.5,
        timeout_seconds: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.credentials = credentials
        self._retries = Retries(max_attempts, backoff_seconds, sleep)
        self._rate_limiter = rate_limiter
        base_url, auth = self._connection()
        self._http = json_client(
            base_url=base_url, auth=auth, transport=transport, timeout_seconds=timeout_seconds
        )

    def _connection(self) -> Connection:
        """The base URL and auth of every request; none by default."""
        return Connection()

    def _pace(self, messages: int) -> None:
        """Wait for the rate limiter to allow `messages` more, when there is one."""
        if self._rate_limiter is not None:
            self._rate_limiter.acquire(messages)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# -- reading answers --------------------------------------------------------------------


def read_json(response: httpx.Response) -> Any:
    """The body as JSON, or None when it is not JSON."""
    try:
        return response.json()
    except ValueError:  # json.JSONDecodeError and UnicodeDecodeError both are
        return None


def http_summary(response: httpx.Response) -> str:
    """`HTTP 502 Bad Gateway: <first 200 characters of the body>`."""
    snippet = " ".join(response.text.split())[:200] if response.content else ""
    reason = response.reason_phrase or "error"
    return f"HTTP {response.status_code} {reason}" + (f": {snippet}" if snippet else "")


def google_error(data: Any) -> tuple[str, str | None] | None:
    """(message, status or code) from `{"error": {"code", "message", "status"}}`, the
    Google-style body of the Conversation API and of some Sinch gateways; None otherwise."""
    nested = data.get("error") if isinstance(data, dict) else None
    if isinstance(nested, dict) and isinstance(nested.get("message"), str):
        code = nested.get("status") or nested.get("code")
        return nested["message"], str(code) if code is not None else None
    return None


def retry_after(response: httpx.Response) -> float | None:
    """`Retry-After` in seconds (delta-seconds or an HTTP date), or None."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


# -- failed attempts ------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """What one attempt came to, when it did not succeed. `unknown`: the request may have
    been accepted (only clients that must not resend blindly look at it)."""

    text: str
    status_code: int | None = None
    code: str | None = None
    retry_after: float | None = None
    unknown: bool = False


def transport_failure(exc: httpx.TransportError) -> Failure:
    """The Failure for an exception raised while sending: a connection that could not be
    opened sent nothing; a timeout or a dropped connection leaves the outcome unknown."""
    if isinstance(exc, NOT_SENT):
        return Failure(f"could not connect ({type(exc).__name__}: {exc})")
    if isinstance(exc, httpx.TimeoutException):
        return Failure(f"timed out ({type(exc).__name__})", unknown=True)
    return Failure(f"connection failed ({type(exc).__name__}: {exc})", unknown=True)


# -- retries --------------------------------------------------------------------------------


def backoff(failures: int, base_seconds: float, *, cap: float = MAX_BACKOFF_SECONDS) -> float:
    """Seconds to wait after `failures` failed attempts: `base_seconds` doubled for each
    failure after the first, capped at `cap`, plus up to 50% of that as jitter."""
    delay = min(cap, base_seconds * 2 ** (failures - 1))
    return delay * (1.0 + 0.5 * random.random())


@dataclass(frozen=True)
class Retries:
    """How often to try one request and how long to wait in between."""

    max_attempts: int
    backoff_seconds: float
    sleep: Callable[[float], None]

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")

    def delay(self, failures: int, retry_after: float | None) -> float:
        """`Retry-After` when the answer gave one, else `backoff`."""
        return retry_after if retry_after is not None else backoff(failures, self.backoff_seconds)


def _never(failure: Failure) -> bool:
    return False


def retry(
    attempt: Callable[[], T | Failure],
    retries: Retries,
    *,
    what: str,
    logger: logging.Logger,
    stop: Callable[[Failure], bool] = _never,
) -> T | Failure:
    """Call `attempt` until it returns something other than a Failure, at most
    `retries.max_attempts` times, sleeping `retries.delay(...)` in between; each failure is
    logged as `{what} attempt n/N failed: {text}`. Returns what succeeded, or the last
    Failure once the attempts ran out or `stop(failure)` is true."""
    number = 1
    while True:
        outcome = attempt()
        if not isinstance(outcome, Failure):
            return outcome
        logger.warning(
            "%s attempt %d/%d failed: %s", what, number, retries.max_attempts, outcome.text
        )
        if number >= retries.max_attempts or stop(outcome):
            return outcome
        retries.sleep(retries.delay(number, outcome.retry_after))
        number += 1
