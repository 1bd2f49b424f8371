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

import logging
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from pydantic import BaseModel, SecretStr, field_validator

from engine.errors import ProviderError
from integrations.http import (
    BearerAuth,
    Connection,
    Failure,
    ProviderClient,
    google_error,
    http_summary,
    read_json,
    retry,
    retry_after,
    transport_failure,
)

logger = logging.getLogger(__name__)

SINCH_SMS_REGIONS: dict[str, str] = {
    region: f"https://{region}.sms.api.sinch.com" for region in ("us", "eu", "au", "br", "ca")
}
MAX_RECIPIENTS = 1000
MAX_CLIENT_REFERENCE = 128
LIST_PAGE_SIZE = 100
DELIVERY_REPORTS = frozenset({"none", "summary", "full", "per_recipient", "per_recipient_final"})


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
    data = read_json(response)
    if isinstance(data, dict) and isinstance(data.get("text"), str):
        code = data.get("code")
        return data["text"], str(code) if code is not None else None
    # the Google-style shape some Sinch gateways answer with
    return google_error(data) or (http_summary(response), None)


class SinchSmsClient(ProviderClient[SinchSmsCredentials]):
    """Sends batches to one Sinch service plan; see the module docstring for retries."""

    def _connection(self) -> Connection:
        return Connection(self.credentials.endpoint(), BearerAuth(self.credentials.api_token))

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
        self._pace(len(batch.recipients))

        failures: list[Failure] = []

        def attempt() -> BatchReceipt | Failure:
            # After an attempt whose outcome is unknown, look before posting again.
            previous = failures[-1] if failures else None
            if previous and previous.unknown and (found := self._find_existing(ref)) is not None:
                logger.info("Sinch batch %s found by client_reference %r", found.batch_id, ref)
                return found
            outcome = self._post_once(payload)
            if isinstance(outcome, Failure):
                failures.append(outcome)
            return outcome

        outcome = retry(
            attempt,
            self._retries,
            what=f"Sinch POST /batches (client_reference {ref!r})",
            logger=logger,
        )
        if isinstance(outcome, BatchReceipt):
            return outcome
        text = f"Sinch POST /batches failed {self._retries.max_attempts} times: {outcome.text}"
        if any(failure.unknown for failure in failures):
            if (found := self._find_existing(ref)) is not None:
                return found
            text += (
                f"; an attempt's outcome is unknown: reconcile client_reference {ref!r} "
                "before sending again"
            )
        raise ProviderError(
            text, status_code=outcome.status_code, code=outcome.code, retryable=True
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

    # -- internals ----------------------------------------------------------------------

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

    def _post_once(self, payload: dict[str, Any]) -> BatchReceipt | Failure:
        try:
            response = self._http.post("/batches", json=payload)
        except httpx.TransportError as exc:
            return transport_failure(exc)

        status = response.status_code
        if 200 <= status < 300:
            try:
                return _receipt(read_json(response))
            except ValueError:
                # Accepted, but we cannot read the id: the look-up will find it.
                return Failure(f"unreadable {status} answer", status_code=status, unknown=True)
        text, code = _error_details(response)
        if status == 429:
            return Failure(text, status_code=status, code=code, retry_after=retry_after(response))
        if status >= 500:
            return Failure(
                text,
                status_code=status,
                code=code,
                retry_after=retry_after(response),
                unknown=True,
            )
        raise ProviderError(text, status_code=status, code=code, retryable=False)

    def _get_json(self, path: str, params: dict[str, Any]) -> Any:
        """GET with retries (a GET is safe to repeat); ProviderError when it cannot."""
        outcome = retry(
            lambda: self._get_once(path, params),
            self._retries,
            what=f"Sinch GET {path}",
            logger=logger,
        )
        if not isinstance(outcome, Failure):
            return outcome
        raise ProviderError(
            f"Sinch GET {path} failed after {self._retries.max_attempts} attempts: {outcome.text}",
            status_code=outcome.status_code,
            code=outcome.code,
            retryable=True,
        )

    def _get_once(self, path: str, params: dict[str, Any]) -> Any:
        try:
            response = self._http.get(path, params=params)
        except httpx.TransportError as exc:
            return Failure(f"request failed ({type(exc).__name__})")
        status = response.status_code
        if 200 <= status < 300:
            try:
                return response.json()
            except ValueError:
                return Failure(f"unreadable {status} answer", status_code=status)
        text, code = _error_details(response)
        if status != 429 and status < 500:
            raise ProviderError(text, status_code=status, code=code, retryable=False)
        return Failure(text, status_code=status, code=code, retry_after=retry_after(response))
