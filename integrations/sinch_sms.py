"""Sinch SMS REST API client (`/xms/v1/{service_plan_id}/batches`), synchronous httpx.

One `SmsBatch` is one `POST /batches`: up to 1,000 recipients, per-recipient text through
`parameters` (`${name}` in the body). Every batch carries the send key as
`client_reference`, which makes sends exactly-once:

- 429 means nothing was accepted: wait (`Retry-After` when given) and post again.
- A timeout, a broken connection or a 5xx leaves the outcome unknown: before posting
  again the client lists batches by `client_reference` and returns the batch found.
  A failure to *open* the connection (`httpx.ConnectError`, `ConnectTimeout`,
  `PoolTimeout`) means no byte of the request left, so it is retried without a look-up.
- Other 4xx raise `ProviderError(retryable=False)` with Sinch's `text` and `code`.
  Exhausted retries raise `ProviderError(retryable=True)`; when an attempt's outcome was
  unknown the text says so and the caller must pass `reconcile=True` (or call
  `find_batches`) before sending that batch again. (A request stuck upstream could still
  be accepted after the look-up; the backoff before each look-up narrows that window.)

Vendor errors become `ProviderError` here and nowhere else. The API token lives in a
`SecretStr` and is added to each request by an `httpx.Auth`; it is never logged, shown in
a repr or put in an exception message.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from pydantic import BaseModel, SecretStr, field_validator

from engine.errors import ProviderError
from integrations.rate_limit import TokenBucket

logger = logging.getLogger(__name__)

SINCH_SMS_REGIONS: dict[str, str] = {
    region: f"https://{region}.sms.api.sinch.com" for region in ("us", "eu", "au", "br", "ca")
}
MAX_RECIPIENTS = 1000
MAX_CLIENT_REFERENCE = 128
LIST_PAGE_SIZE = 100
DELIVERY_REPORTS = frozenset({"none", "summary", "full", "per_recipient", "per_recipient_final"})
MAX_BACKOFF_SECONDS = 60.0

# Failures raised before any byte of the request was written: safe to resend blindly.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class SinchSmsCredentials(BaseModel):
    """Where and as whom to call the Sinch SMS API."""

    service_plan_id: str
    api_token: SecretStr
    region: Literal["us", "eu", "au", "br", "ca"] = "us"
    base_url: str | None = None
    """Overrides the regional host, e.g. `http://127.0.0.1:8765` for the simulator."""

    @field_validator("service_plan_id")
    @classmethod
    def _plan_id_not_blank(cls, value: str) -> str:
        if not value.strip() or "/" in value:
            raise ValueError("service_plan_id must be a non-empty id without '/'")
        return value

    def endpoint(self) -> str:
        """The service plan's API root: `{base}/xms/v1/{service_plan_id}`."""
        base = (self.base_url or SINCH_SMS_REGIONS[self.region]).rstrip("/")
        return f"{base}/xms/v1/{self.service_plan_id}"


@dataclass(frozen=True)
class SmsBatch:
    """One `POST /batches`. Recipients are E.164 (`+` included); `parameters` maps a
    parameter name to `{E.164 recipient or "default": value}`."""

    sender: str
    recipients: list[str]
    body: str
    client_reference: str
    parameters: dict[str, dict[str, str]] | None = None
    delivery_report: str = "per_recipient"
    callback_url: str | None = None


@dataclass(frozen=True)
class BatchReceipt:
    """A batch Sinch accepted."""

    batch_id: str
    client_reference: str | None
    recipients: int


class _BearerAuth(httpx.Auth):
    """Adds the bearer token at send time so it never sits in client defaults."""

    def __init__(self, token: SecretStr):
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        yield request

    def __repr__(self) -> str:
        return "_BearerAuth(token=**********)"


def _msisdn(number: str) -> str:
    """Sinch wants numbers without the leading '+'."""
    return number[1:] if number.startswith("+") else number


def build_batch_payload(batch: SmsBatch) -> dict[str, Any]:
    """The JSON body of `POST /batches`; raises ValueError on a batch Sinch would refuse."""
    count = len(batch.recipients)
    if not 1 <= count <= MAX_RECIPIENTS:
        raise ValueError(f"a batch needs 1 to {MAX_RECIPIENTS} recipients, got {count}")
    if not batch.client_reference:
        raise ValueError("client_reference is required (it makes sends exactly-once)")
    if len(batch.client_reference) > MAX_CLIENT_REFERENCE:
        raise ValueError(
            f"client_reference is {len(batch.client_reference)} characters long; "
            f"Sinch accepts at most {MAX_CLIENT_REFERENCE}"
        )
    if batch.delivery_report not in DELIVERY_REPORTS:
        raise ValueError(
            f"delivery_report {batch.delivery_report!r} is not one of {sorted(DELIVERY_REPORTS)}"
        )
    payload: dict[str, Any] = {
        "from": batch.sender,
        "to": [_msisdn(r) for r in batch.recipients],
        "body": batch.body,
        "delivery_report": batch.delivery_report,
        "client_reference": batch.client_reference,
    }
    if batch.parameters:
        payload["parameters"] = {
            name: {_msisdn(key): value for key, value in values.items()}
            for name, values in batch.parameters.items()
        }
    if batch.callback_url:
        payload["callback_url"] = batch.callback_url
    return payload


def _receipt(data: Any) -> BatchReceipt:
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        raise ValueError("not a Sinch batch object")
    to = data.get("to")
    return BatchReceipt(
        batch_id=data["id"],
        client_reference=data.get("client_reference"),
        recipients=len(to) if isinstance(to, list) else 0,
    )


def _error_details(response: httpx.Response) -> tuple[str, str | None]:
    """(text, code) from a Sinch error body; tolerant of other shapes and of non-JSON."""
    try:
        data = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        data = None
    if isinstance(data, dict):
        if isinstance(data.get("text"), str):
            code = data.get("code")
            return data["text"], str(code) if code is not None else None
        nested = data.get("error")  # the Google-style shape some Sinch gateways answer with
        if isinstance(nested, dict) and isinstance(nested.get("message"), str):
            code = nested.get("status") or nested.get("code")
            return nested["message"], str(code) if code is not None else None
    snippet = " ".join(response.text.split())[:200] if response.content else ""
    reason = response.reason_phrase or "error"
    text = f"HTTP {response.status_code} {reason}" + (f": {snippet}" if snippet else "")
    return text, None


def _retry_after(response: httpx.Response) -> float | None:
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


class _Attempt:
    """What one HTTP attempt came to, when it did not succeed."""

    __slots__ = ("text", "status_code", "code", "retry_after", "unknown")

    def __init__(
        self,
        text: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        unknown: bool = False,
    ):
        self.text = text
        self.status_code = status_code
        self.code = code
        self.retry_after = retry_after
        self.unknown = unknown


class SinchSmsClient:
    """Sends batches to one Sinch service plan; see the module docstring for retries."""

    def __init__(
        self,
        credentials: SinchSmsCredentials,
        *,
        transport: httpx.BaseTransport | None = None,
        rate_limiter: TokenBucket | None = None,
        max_attempts: int = 5,
        backoff_seconds: float = 0.5,
        timeout_seconds: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        self.credentials = credentials
        self._rate_limiter = rate_limiter
        self._max_attempts = max_attempts
        self._backoff = backoff_seconds
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=credentials.endpoint(),
            auth=_BearerAuth(credentials.api_token),
            transport=transport,
            timeout=timeout_seconds,
            headers={"Accept": "application/json"},
        )

    def __repr__(self) -> str:
        return f"SinchSmsClient(endpoint={self.credentials.endpoint()!r})"

    # -- public API ---------------------------------------------------------------------

    def send_batch(self, batch: SmsBatch, *, reconcile: bool = False) -> BatchReceipt:
        """Send one batch exactly once and return Sinch's receipt.

        `reconcile=True` looks the client reference up before the first post; use it when
        resending a batch whose earlier outcome is unknown (a crash, an exhausted retry).
        """
        payload = build_batch_payload(batch)
        ref = batch.client_reference
        if reconcile and (found := self._find_existing(ref)) is not None:
            return found
        if self._rate_limiter is not None:
            self._rate_limiter.acquire(len(batch.recipients))

        failure: _Attempt | None = None
        unknown = False  # has any attempt possibly been accepted?
        for attempt in range(1, self._max_attempts + 1):
            if failure is not None:
                self._sleep(self._delay(attempt - 1, failure.retry_after))
                if failure.unknown and (found := self._find_existing(ref)) is not None:
                    logger.info("Sinch batch %s found by client_reference %r", found.batch_id, ref)
                    return found
            outcome = self._post_once(payload)
            if isinstance(outcome, BatchReceipt):
                return outcome
            failure = outcome
            unknown = unknown or failure.unknown
            logger.warning(
                "Sinch POST /batches (client_reference %r) attempt %d/%d failed: %s",
                ref,
                attempt,
                self._max_attempts,
                failure.text,
            )

        assert failure is not None
        text = f"Sinch POST /batches failed {self._max_attempts} times: {failure.text}"
        if unknown:
            if (found := self._find_existing(ref)) is not None:
                return found
            text += (
                f"; an attempt's outcome is unknown: reconcile client_reference {ref!r} "
                "before sending again"
            )
        raise ProviderError(
            text, status_code=failure.status_code, code=failure.code, retryable=True
        )

    def find_batches(self, client_reference: str) -> list[BatchReceipt]:
        """Every batch with this client reference (`GET /batches`, all pages)."""
        if not client_reference:
            raise ValueError("client_reference is required")
        receipts: list[BatchReceipt] = []
        page = 0
        while True:
            data = self._get_json(
                "/batches",
                {"client_reference": client_reference, "page": page, "page_size": LIST_PAGE_SIZE},
            )
            batches = data.get("batches") if isinstance(data, dict) else None
            if not isinstance(batches, list):
                raise ProviderError(
                    "Sinch GET /batches answered without a 'batches' list", retryable=True
                )
            for item in batches:
                try:
                    receipts.append(_receipt(item))
                except ValueError:
                    raise ProviderError(
                        "Sinch GET /batches listed a batch without an id", retryable=True
                    ) from None
            count = data.get("count")
            if not batches or not isinstance(count, int) or len(receipts) >= count:
                return receipts
            page += 1

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SinchSmsClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------

    def _delay(self, failures: int, retry_after: float | None) -> float:
        """Backoff before the next attempt after `failures` failed ones."""
        if retry_after is not None:
            return retry_after
        base = min(MAX_BACKOFF_SECONDS, self._backoff * 2 ** (failures - 1))
        return base * (1.0 + 0.5 * random.random())

    def _find_existing(self, client_reference: str) -> BatchReceipt | None:
        try:
            found = self.find_batches(client_reference)
        except ProviderError as exc:
            raise ProviderError(
                f"could not check whether a batch with client_reference {client_reference!r} "
                f"was already accepted: {exc.text}",
                status_code=exc.status_code,
                code=exc.code,
                retryable=exc.retryable,
            ) from exc
        return found[0] if found else None

    def _post_once(self, payload: dict[str, Any]) -> BatchReceipt | _Attempt:
        try:
            response = self._http.post("/batches", json=payload)
        except _NOT_SENT as exc:
            return _Attempt(f"could not connect ({type(exc).__name__}: {exc})")
        except httpx.TimeoutException as exc:
            return _Attempt(f"timed out ({type(exc).__name__})", unknown=True)
        except httpx.TransportError as exc:
            return _Attempt(f"connection failed ({type(exc).__name__}: {exc})", unknown=True)

        status = response.status_code
        if 200 <= status < 300:
            try:
                return _receipt(response.json())
            except ValueError:
                # Accepted, but we cannot read the id: the look-up will find it.
                return _Attempt(f"unreadable {status} answer", status_code=status, unknown=True)
        text, code = _error_details(response)
        if status == 429:
            return _Attempt(text, status_code=status, code=code, retry_after=_retry_after(response))
        if status >= 500:
            return _Attempt(
                text,
                status_code=status,
                code=code,
                retry_after=_retry_after(response),
                unknown=True,
            )
        raise ProviderError(text, status_code=status, code=code, retryable=False)

    def _get_json(self, path: str, params: dict[str, Any]) -> Any:
        """GET with retries (a GET is safe to repeat); ProviderError when it cannot."""
        failure: _Attempt | None = None
        for attempt in range(1, self._max_attempts + 1):
            if failure is not None:
                self._sleep(self._delay(attempt - 1, failure.retry_after))
            try:
                response = self._http.get(path, params=params)
            except httpx.TransportError as exc:
                failure = _Attempt(f"request failed ({type(exc).__name__})")
            else:
                status = response.status_code
                if 200 <= status < 300:
                    try:
                        return response.json()
                    except ValueError:
                        failure = _Attempt(f"unreadable {status} answer", status_code=status)
                else:
                    text, code = _error_details(response)
                    if status != 429 and status < 500:
                        raise ProviderError(text, status_code=status, code=code, retryable=False)
                    failure = _Attempt(
                        text, status_code=status, code=code, retry_after=_retry_after(response)
                    )
            logger.warning(
                "Sinch GET %s attempt %d/%d failed: %s",
                path,
                attempt,
                self._max_attempts,
                failure.text,
            )
        assert failure is not None
        raise ProviderError(
            f"Sinch GET {path} failed after {self._max_attempts} attempts: {failure.text}",
            status_code=failure.status_code,
            code=failure.code,
            retryable=True,
        )
