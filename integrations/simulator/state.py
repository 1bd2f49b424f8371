"""The simulator's shared ledger: what every number received, the counters over every
provider, fault and fallback drawing, and hang bookkeeping.

Each provider module (`sinch_sms`, `infobip`, `sinch_mms`, `conversation`) keeps its own
indexes in a `Part` attached here, so a reset and the stats cover them too, and adds what
a recipient received as a `Record`. Storage is kept small enough for a million messages:
each recipient keeps one int, the index of the record it got, which becomes a list only
for the rare recipient messaged twice. Everything runs on the event loop; hangs are
`asyncio.sleep`s.

The ledger also holds the optional server-side rate limiter (a token bucket shared by
every send endpoint, one token per recipient) and the arrival log of accepted send
requests, both driven by `clock` (`time.monotonic` unless a test injects another), and the
`reporter` that posts delivery reports for what was accepted (`reports.py`).
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from array import array
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from fastapi import Response

from integrations.simulator.config import SimulatorConfig
from integrations.simulator.reports import Reporter

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
MMS_ACCEPTED = "mms"
FALLBACK_SMS = "sms"


def json_bytes(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def json_response(data: bytes, status: int = 200, headers: dict[str, str] | None = None):
    return Response(data, status_code=status, media_type="application/json", headers=headers)


def timestamp(moment: datetime) -> str:
    """`2025-01-13T09:22:40.914Z`: UTC with milliseconds, as Sinch writes them."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def now_timestamp() -> str:
    return timestamp(datetime.now(UTC))


def digits_of(number: str) -> str:
    return number.strip().lstrip("+")


def retry_after_header(seconds: float) -> str:
    """A `Retry-After` value: seconds, rounded up to the millisecond (at least 0.001)."""
    return f"{max(1, math.ceil(seconds * 1000)) / 1000:g}"


class RateLimited(Exception):
    """A send request refused by the rate limiter; `retry_after` is the number of seconds
    until the bucket holds enough tokens for it."""

    def __init__(self, retry_after: float):
        self.retry_after = retry_after

    @property
    def header(self) -> str:
        return retry_after_header(self.retry_after)


def is_msisdn(digits: str) -> bool:
    """7 to 15 ASCII digits, not starting with 0: what every simulated provider accepts."""
    return 7 <= len(digits) <= 15 and digits.isascii() and digits.isdigit() and digits[0] != "0"


class Record(Protocol):
    """Something one or more recipients received (a Sinch batch, an Infobip message, an
    MMS). `client_reference` is the send key the client chose, if any."""

    client_reference: str | None

    def received(self, digits: str, nth: int) -> dict[str, Any]:
        """The `/_simulator/messages` entry for the `nth` (0-based) time `digits` got it."""
        ...


class Part(Protocol):
    """One provider's own bookkeeping, attached to the state: `provider` names its message
    counter, `channel` ("sms" or "mms") the stats key it is reported under, `requests`
    the request counters it keeps in `state.requests`."""

    provider: str
    channel: Literal["sms", "mms"]
    requests: tuple[str, ...]

    def reset(self) -> None: ...

    def stats(self) -> dict[str, Any]: ...


class MmsRecord:
    """One MMS accepted by an MMS API, for its one recipient. `type` is "mms", or "sms"
    when it was delivered as fallback SMS (then `body` is the fallback text)."""

    __slots__ = (
        "provider",
        "client_reference",
        "message_id",
        "sender",
        "subject",
        "body",
        "media_url",
        "type",
        "created_at",
    )

    def __init__(
        self,
        provider: str,
        client_reference: str | None,
        message_id: str,
        sender: str | None,
        subject: str | None,
        body: str,
        media_url: str | None,
        kind: str,
        created_at: str,
    ):
        self.provider = provider
        self.client_reference = client_reference
        self.message_id = message_id
        self.sender = sender
        self.subject = subject
        self.body = body
        self.media_url = media_url
        self.type = kind
        self.created_at = created_at

    def received(self, digits: str, nth: int) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "channel": "mms",
            "type": self.type,
            "batch_id": None,
            "client_reference": self.client_reference,
            "message_id": self.message_id,
            "from": self.sender,
            "subject": self.subject,
            "body": self.body,
            "media_url": self.media_url,
            "created_at": self.created_at,
        }


class SimulatorState:
    """Everything the simulator remembers; mutated only from the event loop. `clock`
    (seconds, monotonic) drives the rate limiter and the arrival log."""

    def __init__(self, config: SimulatorConfig, clock: Callable[[], float] | None = None):
        self.clock: Callable[[], float] = clock or time.monotonic
        self._ids = random.Random(f"ids-{config.seed}")
        self._parts: list[Part] = []
        self.reporter = Reporter(config)
        self.configure(config)
        self.reset()

    def configure(self, config: SimulatorConfig) -> None:
        self.config = config
        self._faults = random.Random(config.seed)
        self._fallbacks = random.Random(f"fallback-{config.seed}")
        self.reject_prefixes = tuple(config.reject_prefixes)
        self._hang = frozenset(config.hang_after_accept)
        self.accepted_since_config = 0
        self.reporter.configure(config)
        rate = config.rate_limit_per_second
        self._rate = rate
        self._burst = config.rate_limit_burst or max(1.0, rate or 0.0)
        self._fill_bucket()

    def _fill_bucket(self) -> None:
        self._tokens = self._burst
        self._tokens_at = self.clock()

    def attach(self, part: Part) -> None:
        """Add a provider's bookkeeping; done once, while the app is composed."""
        self._parts.append(part)
        self.reset()

    def reset(self) -> None:
        # What a recipient can have received, in arrival order.
        self.records: list[Record] = []
        # recipient (int of its digits) -> record index, or a list of them after the first
        self.received: dict[int, int | list[int]] = {}
        self.repeat_keys: list[int] = []
        self.messages = 0
        self.provider_messages = {p.provider: 0 for p in self._parts if p.channel == "sms"}
        self.mms_messages = {p.provider: 0 for p in self._parts if p.channel == "mms"}
        self.fallback_sms = 0
        self.failed = 0
        self.max_per_recipient = 0
        self.requests = {kind: 0 for p in self._parts for kind in p.requests}
        self.faults = {
            "429": 0,
            "5xx": 0,
            "timeout": 0,
            "hang_after_accept": 0,
            "rate_limited": 0,
        }
        self.accepted_since_config = 0
        # accepted send requests: clock() when admitted, and how many recipients
        self.arrival_times = array("d")
        self.arrival_recipients = array("q")
        self._fill_bucket()
        self.reporter.reset()
        for part in self._parts:
            part.reset()

    # -- recording ----------------------------------------------------------------------

    def add_record(self, record: Record) -> int:
        """Store a record; return the index recipients refer to it by."""
        self.records.append(record)
        return len(self.records) - 1

    def receive(self, key: int, index: int) -> None:
        """Count one message for recipient `key` (the int of its digits) from record `index`."""
        received = self.received
        entry = received.get(key)
        if entry is None:
            received[key] = index
            if not self.max_per_recipient:
                self.max_per_recipient = 1
        elif type(entry) is int:
            received[key] = [entry, index]
            self.repeat_keys.append(key)
            self.max_per_recipient = max(self.max_per_recipient, 2)
        else:
            entry.append(index)
            self.max_per_recipient = max(self.max_per_recipient, len(entry))

    def deliver_mms(
        self,
        provider: str,
        digits: str,
        *,
        message_id: str,
        client_reference: str | None,
        sender: str | None,
        subject: str | None,
        text: str,
        media_url: str | None,
        fallback_text: str | None = None,
        fallback_disabled: bool = False,
        fallback_sender: str | None = None,
    ) -> str:
        """Record one accepted MMS for `digits`: delivered as MMS, as fallback SMS (drawn
        with `mms_fallback_rate`; from `fallback_sender` when given, else `sender`), or
        failed when that fallback was disabled. Returns "mms", "sms" or "failed"."""
        rate = self.config.mms_fallback_rate
        as_sms = bool(rate) and self._fallbacks.random() < rate
        if as_sms and fallback_disabled:
            self.failed += 1
            return "failed"
        record = MmsRecord(
            provider,
            client_reference,
            message_id,
            (fallback_sender or sender) if as_sms else sender,
            subject,
            (fallback_text or text) if as_sms else text,
            media_url,
            FALLBACK_SMS if as_sms else MMS_ACCEPTED,
            now_timestamp(),
        )
        self.receive(int(digits), self.add_record(record))
        self.messages += 1
        self.mms_messages[provider] += 1
        if as_sms:
            self.fallback_sms += 1
        return record.type

    # -- rate limit and arrivals --------------------------------------------------------

    def admit(self, recipients: int) -> None:
        """Take `recipients` tokens for a valid send request about to be recorded, and log
        its arrival; raise RateLimited (counted in `faults.rate_limited`, nothing taken)
        when the bucket holds fewer. Without a configured rate, only logs the arrival."""
        now = self.clock()
        rate = self._rate
        if rate is not None:
            tokens = min(self._burst, self._tokens + max(0.0, now - self._tokens_at) * rate)
            self._tokens_at = max(now, self._tokens_at)
            if recipients > tokens + 1e-9:  # a hair of slack for float pacing
                self._tokens = tokens
                self.faults["rate_limited"] += 1
                raise RateLimited((recipients - tokens) / rate)
            self._tokens = max(0.0, tokens - recipients)
        self.arrival_times.append(now)
        self.arrival_recipients.append(recipients)

    def arrivals(self) -> list[list[float | int]]:
        """The arrival log: `[seconds since the first accepted request, recipients]` per
        accepted send request, oldest first (microsecond precision)."""
        times = self.arrival_times
        if not times:
            return []
        first = times[0]
        return [
            [round(t - first, 6), n] for t, n in zip(times, self.arrival_recipients, strict=True)
        ]

    # -- faults, hangs, ids -------------------------------------------------------------

    async def delay(self) -> None:
        """The configured latency, added to every provider API request."""
        if self.config.latency_ms:
            await asyncio.sleep(self.config.latency_ms / 1000)

    def draw_fault(self) -> str | None:
        """One draw per send request: "429", "5xx", "timeout" or None."""
        cfg = self.config
        if not (cfg.error_429_rate or cfg.error_5xx_rate or cfg.timeout_rate):
            return None
        draw = self._faults.random()
        for name, rate in (
            ("429", cfg.error_429_rate),
            ("5xx", cfg.error_5xx_rate),
            ("timeout", cfg.timeout_rate),
        ):
            if draw < rate:
                self.faults[name] += 1
                return name
            draw -= rate
        return None

    def accepted_request(self) -> bool:
        """Count an accepted send request; return whether its answer should hang."""
        self.accepted_since_config += 1
        hang = self.accepted_since_config in self._hang
        if hang:
            self.faults["hang_after_accept"] += 1
        return hang

    def new_ulid(self, taken: Any = ()) -> str:
        """A ULID not in `taken`: 48 bits of milliseconds and 80 random bits, in Crockford
        base 32 (what Sinch uses for batch and message ids)."""
        while True:
            value = (int(time.time() * 1000) << 80) | self._ids.getrandbits(80)
            new = "".join(_CROCKFORD[(value >> s) & 31] for s in range(125, -1, -5))
            if new not in taken:
                return new

    def new_uuid(self) -> str:
        """A random id in UUID layout (what Infobip uses for messageIds)."""
        value = f"{self._ids.getrandbits(128):032x}"
        return f"{value[:12]}-{value[12:16]}-{value[16:21]}-{value[21:25]}-{value[25:]}"

    # -- reading ------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters since start-up or the last reset, over every provider.

        `messages` counts delivered recipient messages of every provider
        (`provider_messages` splits the SMS ones, `mms_messages` the MMS ones, and
        `fallback_sms` says how many MMS went as fallback SMS); a recipient that was
        refused or whose message failed counts in `failed` instead; `recipients` the
        distinct numbers; `repeat_recipients` the numbers messaged more than once;
        `duplicates` the numbers that got more than one message with the same client
        reference (Sinch `client_reference`, Infobip `bulkId`, Sinch MMS
        `client-reference`, Conversation `correlation_id`: an exactly-once violation).
        `faults` counts injected faults ("429", "5xx", "timeout", "hang_after_accept")
        and requests refused by the rate limiter ("rate_limited").
        Each provider adds its own counters: `batches` and `duplicate_references` (Sinch
        SMS), `bulks` and `duplicate_message_ids` (Infobip SMS), `infobip_mms_bulks` and
        `infobip_mms_duplicate_message_ids` (Infobip MMS), `mms_refused` (Sinch MMS).
        `reports` counts delivery reports (see `Reporter`): `posted`, `failed`, `retried`,
        `pending`, `duplicates`, `intermediate`, `silent` and the final `outcomes`.
        """
        records = self.records
        duplicates = 0
        for key in self.repeat_keys:
            references = [records[i].client_reference for i in self.received[key]]
            named = [r for r in references if r is not None]
            if len(named) != len(set(named)):
                duplicates += 1
        out: dict[str, Any] = {
            "messages": self.messages,
            "provider_messages": dict(self.provider_messages),
            "mms_messages": dict(self.mms_messages),
            "fallback_sms": self.fallback_sms,
            "failed": self.failed,
            "recipients": len(self.received),
            "max_per_recipient": self.max_per_recipient,
            "repeat_recipients": len(self.repeat_keys),
            "duplicates": duplicates,
            "requests": dict(self.requests),
            "faults": dict(self.faults),
            "reports": self.reporter.stats(),
        }
        for part in self._parts:
            out.update(part.stats())
        return out

    def messages_for(self, number: str) -> list[dict[str, Any]]:
        """What one number received, oldest first: `{provider, channel, batch_id,
        client_reference, message_id, from, body, created_at}`, and for MMS also `type`
        ("mms" or "sms" for a fallback SMS), `subject` and `media_url`. `batch_id` is the
        Sinch batch id or Infobip bulkId (None for MMS); `message_id` is None for Sinch
        SMS, the Infobip messageId, the Sinch MMS tracking-id or the Conversation
        message_id."""
        digits = digits_of(number)
        if not digits.isdigit():
            return []
        entry = self.received.get(int(digits))
        if entry is None:
            return []
        indexes = [entry] if type(entry) is int else entry
        seen: dict[int, int] = {}  # a record can reach one number more than once
        out = []
        for i in indexes:
            nth = seen[i] = seen.get(i, -1) + 1
            out.append(self.records[i].received(digits, nth))
        return out
