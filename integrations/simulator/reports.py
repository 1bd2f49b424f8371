"""Delivery reports: for what it accepted, the simulator posts each provider's real delivery
report webhook to a callback URL, so a send, its reports and the webhook server can run as
one loop on one machine. The provider modules call `Reporter` from their `accept`; nothing
here delays an answer.

Where reports go (the first that is set; none: no report, and no work at all):

    sinch_sms           the batch's `callback_url`, then `report_urls["sinch_sms"]`; the
                        batch's `delivery_report` picks the shape ("none", the default, posts
                        nothing)
    infobip_sms, _mms   the message's `webhooks.delivery.url`, its legacy `notifyUrl` (then
                        in the v2 shape), then `report_urls["infobip_sms" | "infobip_mms"]`
    sinch_mms           `report_urls["sinch_mms"]` (Sinch provisions it per account)
    sinch_conversation  `report_urls["sinch_conversation"]` (the app's MESSAGE_DELIVERY webhook)

What they say, one example each (`client_reference`, `callbackData` and
`client-reference` only when the request gave one):

    Sinch SMS per_recipient / per_recipient_final: one POST per recipient
      {"type":"recipient_delivery_report_sms","batch_id":"01JHFFHQ0P99JPPNQPJDV7JTBP",
       "recipient":"15551231234","code":0,"status":"Delivered","at":"2025-01-13T09:22:40.914Z",
       "operator_status_at":"2025-01-13T09:22:40Z","client_reference":"ref-1"}
    Sinch SMS summary / full: one POST per batch (`recipients` with full only)
      {"type":"delivery_report_sms","batch_id":"01JHFFHQ0P99JPPNQPJDV7JTBP",
       "total_message_count":2,"statuses":[{"code":0,"status":"Delivered","count":2,
       "recipients":["15551231234","15551234567"]}],"client_reference":"ref-1"}
    Infobip SMS and MMS (v3): up to 100 results a POST
      {"results":[{"bulkId":"bulk-1","messageId":"m-1","to":"41793026727","sender":"InfoSMS",
       "sentAt":"2025-01-13T09:22:40.914+0000","doneAt":"2025-01-13T09:22:41.002+0000",
       "messageCount":1,"price":{"pricePerMessage":0.0,"currency":"EUR"},
       "status":{"groupId":3,"groupName":"DELIVERED","id":5,"name":"DELIVERED_TO_HANDSET",
       "description":"Message delivered to handset"},"error":{"groupId":0,"groupName":"OK",
       "id":0,"name":"NO_ERROR","description":"No Error","permanent":false},
       "callbackData":"c-1"}]}
      (v2, for a legacy `notifyUrl`: `from` and `smsCount` for `sender` and `messageCount`)
    Sinch MMS postback: one POST per MMS
      {"origin":"MMS_MT","code":"N102","sent-as":"MMS","status":"Delivered",
       "status-details":"MMS delivered","to":"15551234567","from":"15557654321",
       "timestamp":"2025-01-13T09:22:40Z","tracking-id":"01J...","client-reference":"ref-1"}
    Conversation MESSAGE_DELIVERY: one POST per message
      {"app_id":"app","accepted_time":"2025-01-13T09:22:40.914Z",
       "event_time":"2025-01-13T09:22:41.002Z","project_id":"project",
       "message_delivery_report":{"message_id":"01J...","conversation_id":"01J...",
       "status":"DELIVERED","channel_identity":{"channel":"MMS","identity":"15551234567",
       "app_id":""},"contact_id":"01J...","metadata":"ref-1","processing_mode":"CONVERSATION"},
       "message_metadata":"ref-1","correlation_id":"ref-1"}
      (FAILED adds `"reason":{"code","description","sub_code"}`)

Outcomes, per recipient:

    delivered           Sinch SMS 0 Delivered; Infobip DELIVERED_TO_HANDSET; Sinch MMS N102;
                        Conversation DELIVERED
    failed (drawn)      Sinch SMS 402 Failed; Infobip UNDELIVERABLE_NOT_DELIVERED with error
                        EC_ABSENT_SUBSCRIBER; Sinch MMS E101; Conversation FAILED with reason
                        RECIPIENT_NOT_REACHABLE
    fallback SMS        Infobip MMS DELIVERED_TO_HANDSET with the SMS count and the failover
                        sender; Sinch MMS N202 `sent-as: SMS`; Conversation DELIVERED
    fallback, failed    Infobip as failed; Sinch MMS E202 `sent-as: SMS`; Conversation FAILED
    failed at send      Sinch SMS 405 Aborted (a parameter without a value for the recipient);
                        Infobip the answer's REJECTED_* status, and an MMS whose fallback had
                        no smsFailover as failed; Sinch MMS whose fallback was disabled E101;
                        Conversation (a `reject_prefixes` number) FAILED with reason
                        RECIPIENT_INVALID_CHANNEL_IDENTITY
    intermediate        Sinch SMS 401 Dispatched; Infobip PENDING_ENROUTE; Sinch MMS N101;
                        Conversation QUEUED_ON_CHANNEL

A failure is drawn with `report_failure_rate` for each recipient that would be delivered.
A recipient whose number is in a country without delivery reports (`SILENT_REGIONS`, from
the seeds) gets no report at all (a Sinch summary leaves it out of `statuses`; its
`total_message_count` still counts every recipient of the batch). Sinch only reports
intermediate statuses per recipient (`per_recipient`), so summaries and
`per_recipient_final` get none. An Infobip destination refused as a duplicate messageId is
not reported (its messageId belongs to the first message).

Posting: one asyncio task per accepted request. After `report_delay_ms` it posts in steps:
the intermediate reports, then the final ones (the other way round with
`report_out_of_order`), each step followed by a step with the copies drawn with
`report_duplicate_rate`. The posts of a step run concurrently, at most `MAX_IN_FLIGHT` at
once through one shared `httpx.AsyncClient`. A post answered 5xx or 429, or not answered, is
tried again after `report_retry_backoff_ms`, doubling, `report_retries` times (as Sinch and
Infobip retry their callbacks); any other non-2xx answer is final. Failure and duplicate
draws, and the ids made up for Conversation, come from generators of their own seeded from
`seed`, drawn when the request is accepted, so a run is reproducible.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import httpx
import orjson
import phonenumbers

from integrations.simulator.config import SimulatorConfig

SINCH_SMS = "sinch_sms"
INFOBIP_SMS = "infobip_sms"
INFOBIP_MMS = "infobip_mms"
SINCH_MMS = "sinch_mms"
CONVERSATION = "sinch_conversation"
MAX_RESULTS = 100  # Infobip results per POST
MAX_IN_FLIGHT = 32  # report POSTs under way at once, over every task
POST_TIMEOUT = 10.0

# Countries without delivery reports (the Sinch and Infobip pages among the seeds):
# Bangladesh, Benin, Brazil, Burundi, Cambodia, Germany, Guadeloupe, Guam, Hong Kong,
# Indonesia, Kuwait, Malaysia, Marshall Islands, Mauritania, Mexico, Nauru, Northern Mariana
# Islands, Pakistan, Panama, Papua New Guinea, Peru, Samoa, Solomon Islands, South Sudan,
# Sri Lanka, Sudan, Tajikistan, Timor-Leste, Tonga, Tuvalu, Uzbekistan, Venezuela, Vietnam,
# Wallis and Futuna.
SILENT_REGIONS = frozenset(
    ("BD", "BJ", "BR", "BI", "KH", "DE", "GP", "GU", "HK", "ID", "KW", "MY", "MH", "MR", "MX")
    + ("NR", "MP", "PK", "PA", "PG", "PE", "WS", "SB", "SS", "LK", "SD", "TJ", "TL", "TO")
    + ("TV", "UZ", "VE", "VN", "WF")
)

# -- Sinch SMS ---------------------------------------------------------------------------
SINCH_DELIVERED = (0, "Delivered")
SINCH_DISPATCHED = (401, "Dispatched")
# 402 ("unroutable") reported as Failed; Sinch's code table may file 402 under Aborted
# (unverified): a receiver should treat both as final failures.
SINCH_FAILED = (402, "Failed")
SINCH_UNMATCHED = (405, "Aborted")  # no parameter value for the recipient: before the SMSC
PER_RECIPIENT = frozenset({"per_recipient", "per_recipient_final"})


def _infobip_status(group_id: int, group: str, status_id: int, name: str, text: str):
    return {
        "groupId": group_id,
        "groupName": group,
        "id": status_id,
        "name": name,
        "description": text,
    }


# -- Infobip -----------------------------------------------------------------------------
DELIVERED_TO_HANDSET = _infobip_status(
    3, "DELIVERED", 5, "DELIVERED_TO_HANDSET", "Message delivered to handset"
)
PENDING_ENROUTE = _infobip_status(
    1, "PENDING", 7, "PENDING_ENROUTE", "Message sent to next instance"
)
UNDELIVERABLE_NOT_DELIVERED = _infobip_status(
    2, "UNDELIVERABLE", 9, "UNDELIVERABLE_NOT_DELIVERED", "Message sent not delivered"
)
NO_ERROR = {
    "groupId": 0,
    "groupName": "OK",
    "id": 0,
    "name": "NO_ERROR",
    "description": "No Error",
    "permanent": False,
}
EC_ABSENT_SUBSCRIBER = {
    "groupId": 1,
    "groupName": "HANDSET_ERRORS",
    "id": 27,
    "name": "EC_ABSENT_SUBSCRIBER",
    "description": "Absent Subscriber",
    "permanent": False,
}
PRICE = {"pricePerMessage": 0.0, "currency": "EUR"}  # the simulator charges nothing

# -- Sinch MMS: (code, status, status-details) --------------------------------------------
MMS_SENT = ("N101", "Sent", "MMS sent")
MMS_DELIVERED = ("N102", "Delivered", "MMS delivered")
MMS_FAILED = ("E101", "Failed", "Sending failure")
MMS_FALLBACK_DELIVERED = ("N202", "Delivered", "MMS delivered as fallback SMS")
MMS_FALLBACK_FAILED = ("E202", "Failed", "Fallback SMS delivery failure")

# -- Conversation: reason of a FAILED report -----------------------------------------------
NOT_REACHABLE = {
    "code": "RECIPIENT_NOT_REACHABLE",
    "description": "The underlying channel reported: the recipient could not be reached",
    "sub_code": "UNSPECIFIED_SUB_CODE",
}
INVALID_IDENTITY = {
    "code": "RECIPIENT_INVALID_CHANNEL_IDENTITY",
    "description": "The underlying channel reported: the recipient number was refused",
    "sub_code": "UNSPECIFIED_SUB_CODE",
}

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


# -- helpers -----------------------------------------------------------------------------


def _millis_z(moment: datetime) -> str:
    """`2025-01-13T09:22:40.914Z` (Sinch SMS, Conversation)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _seconds_z(moment: datetime) -> str:
    """`2025-01-13T09:22:40Z` (Sinch's `operator_status_at`, MMS postbacks)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _infobip_time(moment: datetime) -> str:
    """`2025-01-13T09:22:40.914+0000` (Infobip)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def sinch_signature(secret: str, body: bytes, nonce: str, timestamp: str) -> str:
    """Sinch's callback signature: base64(HMAC-SHA256(secret, body.nonce.timestamp))."""
    signed = body + b"." + nonce.encode() + b"." + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()


@functools.cache
def _silent_prefixes() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(digit prefixes whose numbers are all in `SILENT_REGIONS`, calling codes shared
    with countries that do report, whose numbers need parsing). Guam and the Northern
    Mariana Islands are +1 671 and +1 670; Guadeloupe shares +590."""
    exact: set[str] = set()
    shared: set[str] = set()
    for region in SILENT_REGIONS:
        code = phonenumbers.country_code_for_region(region)
        owners = phonenumbers.region_codes_for_country_code(code)
        if all(owner in SILENT_REGIONS for owner in owners):
            exact.add(str(code))
            continue
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
        leading = (metadata.leading_digits or "") if metadata else ""
        alternatives = leading.split("|")
        if leading and all(a.isdigit() for a in alternatives):
            exact.update(f"{code}{a}" for a in alternatives)
        else:
            shared.add(str(code))
    return tuple(sorted(exact)), tuple(sorted(shared))


def is_silent(digits: str) -> bool:
    """Whether a number (international digits, no `+`) is in a country without delivery
    reports."""
    exact, shared = _silent_prefixes()
    if digits.startswith(exact):
        return True
    if shared and digits.startswith(shared):
        try:
            number = phonenumbers.parse("+" + digits)
        except phonenumbers.NumberParseException:
            return False
        return phonenumbers.region_code_for_number(number) in SILENT_REGIONS
    return False


# -- what a task posts -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Style:
    """How one provider's reports are posted."""

    provider: str
    batched: bool = False  # Infobip: `{"results": [...]}`, up to MAX_RESULTS a POST
    signed: bool = False  # Sinch: x-sinch-webhook-signature headers, with a secret
    basic_auth: bool = False  # Infobip, Conversation: HTTP Basic, with credentials


SINCH_STYLE = _Style(SINCH_SMS, signed=True)
INFOBIP_STYLES = {
    INFOBIP_SMS: _Style(INFOBIP_SMS, batched=True, basic_auth=True),
    INFOBIP_MMS: _Style(INFOBIP_MMS, batched=True, basic_auth=True),
}
SINCH_MMS_STYLE = _Style(SINCH_MMS)
CONVERSATION_STYLE = _Style(CONVERSATION, signed=True, basic_auth=True)
STYLES = {
    SINCH_SMS: SINCH_STYLE,
    **INFOBIP_STYLES,
    SINCH_MMS: SINCH_MMS_STYLE,
    CONVERSATION: CONVERSATION_STYLE,
}
"""Every provider's style, by provider name (for `Reporter.post_once`)."""


class _Report(NamedTuple):
    """One report: where it goes, and its JSON object built when it is posted (so its
    timestamps say when). Infobip results with the same `group` share POSTs."""

    url: str
    build: Callable[[datetime], dict[str, Any]]
    intermediate: bool = False
    group: str = ""


class InfobipTarget(NamedTuple):
    """Where an Infobip message's reports go and what they carry besides the result."""

    url: str
    legacy: bool  # a `notifyUrl`: the v2 shape (`from`, `smsCount`)
    callback_data: str | None
    intermediate: bool


class InfobipResult(NamedTuple):
    """One destination of an accepted Infobip request. `outcome`: "sent" (delivered unless
    a failure is drawn), "fallback" (an MMS delivered as SMS), "failed" or "rejected"
    (then `status` is the answer's REJECTED_* status)."""

    to: str
    message_id: str
    outcome: str
    message_count: int
    sender: str
    status: dict[str, Any] | None = None


class Reporter:
    """Draws, schedules and posts delivery reports; one per simulator, held by the state.
    Counts, in `stats()`: `posted` reports the receiver took (2xx; an Infobip result, a
    Sinch summary and every copy count one each), `failed` given up, `retried` posted
    again, `pending` not settled yet, `duplicates` and `intermediate` scheduled, `silent`
    recipients left without a report, and `outcomes` of the final reports scheduled
    (`delivered`, `failed`, `rejected`, `fallback`)."""

    def __init__(self, config: SimulatorConfig | None = None):
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots: asyncio.Semaphore | None = None
        self.generation = 0
        self.configure(config or SimulatorConfig())
        self.reset()

    def configure(self, config: SimulatorConfig) -> None:
        self.config = config
        self._draws = random.Random(f"reports-{config.seed}")
        self._ids = random.Random(f"report-ids-{config.seed}")

    def reset(self) -> None:
        """Zero the counters and cancel the reports not posted yet."""
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()
        self.generation += 1
        self.counts = dict.fromkeys(
            ("posted", "failed", "retried", "pending", "duplicates", "intermediate", "silent"),
            0,
        )
        self.outcomes = dict.fromkeys(("delivered", "failed", "rejected", "fallback"), 0)

    def stats(self) -> dict[str, Any]:
        return {**self.counts, "outcomes": dict(self.outcomes)}

    async def aclose(self) -> None:
        """Cancel what is under way and close the HTTP client (at app shutdown)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        if self._client is not None and self._loop is asyncio.get_running_loop():
            await self._client.aclose()
        self._client = None

    # -- drawing ------------------------------------------------------------------------

    def url(self, provider: str, own: Any = None) -> str | None:
        """The request's own URL when it gave one, else the configured one, else None."""
        if isinstance(own, str) and own:
            return own
        return self.config.report_urls.get(provider)

    def _fails(self) -> bool:
        rate = self.config.report_failure_rate
        return bool(rate) and self._draws.random() < rate

    def _silent(self, digits: str) -> bool:
        if is_silent(digits):
            self.counts["silent"] += 1
            return True
        return False

    def _ulid(self) -> str:
        value = (int(time.time() * 1000) << 80) | self._ids.getrandbits(80)
        return "".join(_CROCKFORD[(value >> s) & 31] for s in range(125, -1, -5))

    # -- the providers ------------------------------------------------------------------

    def sinch_sms(
        self,
        url: str,
        kind: str,
        batch_id: str,
        client_reference: str | None,
        recipients: Iterable[tuple[str, bool]],
    ) -> None:
        """Reports for one accepted Sinch batch: `kind` is its `delivery_report` (not
        "none"), `recipients` its (digits, whether a parameter had no value) in order."""
        reports: list[_Report] = []
        intermediate = kind == "per_recipient" and self.config.report_intermediate
        summary: dict[tuple[int, str], list[str]] = {}
        total = 0
        for digits, unmatched in recipients:
            total += 1
            if self._silent(digits):
                continue
            if unmatched:
                outcome = SINCH_UNMATCHED
                self.outcomes["failed"] += 1
            elif self._fails():
                outcome = SINCH_FAILED
                self.outcomes["failed"] += 1
            else:
                outcome = SINCH_DELIVERED
                self.outcomes["delivered"] += 1
            if kind not in PER_RECIPIENT:
                summary.setdefault(outcome, []).append(digits)
                continue
            if intermediate and not unmatched:
                build = functools.partial(
                    _sinch_recipient, batch_id, digits, SINCH_DISPATCHED, client_reference
                )
                reports.append(_Report(url, build, intermediate=True))
            build = functools.partial(_sinch_recipient, batch_id, digits, outcome, client_reference)
            reports.append(_Report(url, build))
        if summary:
            build = functools.partial(
                _sinch_summary, batch_id, total, summary, kind == "full", client_reference
            )
            reports.append(_Report(url, build))
        self._schedule(SINCH_STYLE, reports)

    def infobip_target(self, provider: str, message: dict[str, Any]) -> InfobipTarget | None:
        """Where the reports of one Infobip `messages[]` element go, or None."""
        own: str | None = None
        legacy = False
        callback_data: str | None = None
        intermediate = self.config.report_intermediate
        webhooks = message.get("webhooks")
        if isinstance(webhooks, dict):
            delivery = webhooks.get("delivery")
            if isinstance(delivery, dict):
                found = delivery.get("url")
                own = found if isinstance(found, str) and found else None
                intermediate = intermediate or delivery.get("intermediateReport") is True
            if isinstance(webhooks.get("callbackData"), str):
                callback_data = webhooks["callbackData"]
        if own is None:
            notify = message.get("notifyUrl")
            if isinstance(notify, str) and notify:
                own, legacy = notify, True
        if callback_data is None and isinstance(message.get("callbackData"), str):
            callback_data = message["callbackData"]
        url = own or self.config.report_urls.get(provider)
        return InfobipTarget(url, legacy, callback_data, intermediate) if url else None

    def infobip(
        self,
        provider: str,
        bulk_id: str,
        sent_at: datetime,
        messages: list[tuple[InfobipTarget, list[InfobipResult]]],
    ) -> None:
        """Reports for one accepted Infobip request (SMS or MMS, by `provider`)."""
        reports: list[_Report] = []
        sent = _infobip_time(sent_at)
        for target, results in messages:
            group = f"{int(target.legacy)}{target.url}"
            for result in results:
                digits = result.to[1:] if result.to[:1] == "+" else result.to
                if self._silent(digits):
                    continue
                error = NO_ERROR
                count = result.message_count
                if result.outcome == "rejected":
                    status = result.status or UNDELIVERABLE_NOT_DELIVERED
                    self.outcomes["rejected"] += 1
                elif result.outcome == "failed" or self._fails():
                    status, error = UNDELIVERABLE_NOT_DELIVERED, EC_ABSENT_SUBSCRIBER
                    self.outcomes["failed"] += 1
                elif result.outcome == "fallback":
                    status = DELIVERED_TO_HANDSET
                    self.outcomes["fallback"] += 1
                else:
                    status = DELIVERED_TO_HANDSET
                    self.outcomes["delivered"] += 1
                common = (bulk_id, sent, result, digits, target, count)
                if target.intermediate and result.outcome != "rejected":
                    build = functools.partial(_infobip_result, *common, PENDING_ENROUTE, NO_ERROR)
                    reports.append(_Report(target.url, build, True, group))
                build = functools.partial(_infobip_result, *common, status, error)
                reports.append(_Report(target.url, build, False, group))
        self._schedule(INFOBIP_STYLES[provider], reports)

    def sinch_mms(
        self,
        url: str,
        tracking_id: str,
        client_reference: str | None,
        to: str,
        sender: str,
        outcome: str,
    ) -> None:
        """The postbacks of one accepted Sinch MMS; `outcome` is what
        `SimulatorState.deliver_mms` returned ("mms", "sms" or "failed")."""
        if self._silent(to):
            return
        if outcome == "failed":
            code, sent_as = MMS_FAILED, "MMS"
            self.outcomes["failed"] += 1
        elif outcome == "sms":
            failed = self._fails()
            code, sent_as = (MMS_FALLBACK_FAILED if failed else MMS_FALLBACK_DELIVERED), "SMS"
            self.outcomes["failed" if failed else "fallback"] += 1
        elif self._fails():
            code, sent_as = MMS_FAILED, "MMS"
            self.outcomes["failed"] += 1
        else:
            code, sent_as = MMS_DELIVERED, "MMS"
            self.outcomes["delivered"] += 1
        common = (tracking_id, client_reference, to, sender)
        reports = []
        if self.config.report_intermediate:
            build = functools.partial(_sinch_mms, *common, MMS_SENT, "MMS")
            reports.append(_Report(url, build, intermediate=True))
        reports.append(_Report(url, functools.partial(_sinch_mms, *common, code, sent_as)))
        self._schedule(SINCH_MMS_STYLE, reports)

    def conversation(
        self,
        url: str,
        *,
        app_id: str,
        project_id: str,
        message_id: str,
        identity: str,
        metadata: str | None,
        correlation_id: str | None,
        accepted_time: str,
        outcome: str,
    ) -> None:
        """The MESSAGE_DELIVERY events of one accepted Conversation message; `outcome` is
        "mms", "sms" (delivered as fallback SMS) or "refused" (a `reject_prefixes` number)."""
        if self._silent(identity):
            return
        # The Conversation API has no status for an MMS delivered as fallback SMS: what
        # reached the handset is reported DELIVERED like any other message.
        if outcome == "refused":
            status, reason = "FAILED", INVALID_IDENTITY
            self.outcomes["failed"] += 1
        elif self._fails():
            status, reason = "FAILED", NOT_REACHABLE
            self.outcomes["failed"] += 1
        else:
            status, reason = "DELIVERED", None
            self.outcomes["fallback" if outcome == "sms" else "delivered"] += 1
        envelope = {
            "app_id": app_id,
            "accepted_time": accepted_time,
            "project_id": project_id,
            "message_id": message_id,
            "conversation_id": self._ulid(),
            "contact_id": self._ulid(),
            "identity": identity,
            "metadata": metadata or "",
            "correlation_id": correlation_id or "",
        }
        reports = []
        if self.config.report_intermediate and outcome != "refused":
            build = functools.partial(_conversation, envelope, "QUEUED_ON_CHANNEL", None)
            reports.append(_Report(url, build, intermediate=True))
        reports.append(_Report(url, functools.partial(_conversation, envelope, status, reason)))
        self._schedule(CONVERSATION_STYLE, reports)

    # -- scheduling and posting ---------------------------------------------------------

    def _schedule(self, style: _Style, reports: list[_Report]) -> None:
        """Order `reports` into steps, draw their copies and start the task posting them."""
        if not reports:
            return
        cfg = self.config
        intermediates = [r for r in reports if r.intermediate]
        finals = [r for r in reports if not r.intermediate]
        steps: list[list[_Report]] = []
        rate = cfg.report_duplicate_rate
        for step in (finals, intermediates) if cfg.report_out_of_order else (intermediates, finals):
            if not step:
                continue
            steps.append(step)
            copies = [r for r in step if rate and self._draws.random() < rate]
            if copies:
                steps.append(copies)
                self.counts["duplicates"] += len(copies)
        self.counts["intermediate"] += len(intermediates)
        self.counts["pending"] += sum(len(step) for step in steps)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on the event loop (a direct call in a test): nothing posted
            self.counts["pending"] -= sum(len(step) for step in steps)
            return
        task = loop.create_task(self._run(style, steps, cfg, self.generation))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _count(self, generation: int, key: str, n: int) -> None:
        if generation == self.generation:
            self.counts[key] += n

    def _http(self) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        loop = asyncio.get_running_loop()
        if self._client is None or self._slots is None or self._loop is not loop:
            limits = httpx.Limits(
                max_connections=MAX_IN_FLIGHT, max_keepalive_connections=MAX_IN_FLIGHT
            )
            # trust_env=False: loopback reports must not go through a proxy from the environment
            self._client = httpx.AsyncClient(timeout=POST_TIMEOUT, limits=limits, trust_env=False)
            self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
            self._loop = loop
        return self._client, self._slots

    async def _run(
        self, style: _Style, steps: list[list[_Report]], cfg: SimulatorConfig, generation: int
    ) -> None:
        if cfg.report_delay_ms:
            await asyncio.sleep(cfg.report_delay_ms / 1000)
        for step in steps:
            now = datetime.now(UTC)
            posts: list[tuple[str, bytes, int]] = []
            if style.batched:
                groups: dict[str, list[_Report]] = {}
                for report in step:
                    groups.setdefault(report.group, []).append(report)
                for group in groups.values():
                    for start in range(0, len(group), MAX_RESULTS):
                        chunk = group[start : start + MAX_RESULTS]
                        body = orjson.dumps({"results": [r.build(now) for r in chunk]})
                        posts.append((chunk[0].url, body, len(chunk)))
            else:
                posts = [(r.url, orjson.dumps(r.build(now)), 1) for r in step]
            await asyncio.gather(
                *(self._post(style, cfg, generation, url, body, n) for url, body, n in posts)
            )

    async def _post(
        self,
        style: _Style,
        cfg: SimulatorConfig,
        generation: int,
        url: str,
        body: bytes,
        count: int,
    ) -> None:
        """POST one body (`count` reports), retrying 5xx, 429 and transport errors."""
        for attempt in range(cfg.report_retries + 1):
            status = await self._attempt(style, cfg, url, body)
            if status is not None and 200 <= status < 300:
                self._count(generation, "posted", count)
                break
            retryable = status is None or status == 429 or status >= 500
            if not retryable or attempt == cfg.report_retries:
                self._count(generation, "failed", count)
                break
            self._count(generation, "retried", count)
            await asyncio.sleep(cfg.report_retry_backoff_ms / 1000 * 2**attempt)
        self._count(generation, "pending", -count)

    async def _attempt(
        self, style: _Style, cfg: SimulatorConfig, url: str, body: bytes
    ) -> int | None:
        """POST `body` once as `style` says: the answer's status, 0 for a URL that cannot be
        posted to, None when it was not answered."""
        client, slots = self._http()
        headers, auth = self._credentials(style, cfg, body)
        async with slots:
            try:
                response = await client.post(url, content=body, headers=headers, auth=auth)
            except (httpx.UnsupportedProtocol, httpx.InvalidURL, ValueError):
                return 0
            except httpx.HTTPError:
                return None
        return response.status_code

    def _credentials(
        self, style: _Style, cfg: SimulatorConfig, body: bytes
    ) -> tuple[dict[str, str], tuple[str, str] | None]:
        """The headers and HTTP Basic credentials of one POST of `body`: Sinch's signature
        headers (a fresh nonce and timestamp each time) when `style` is signed and a secret
        is configured, Basic credentials when it takes them and they are configured."""
        headers = {"Content-Type": "application/json"}
        secret = cfg.report_signing_secret if style.signed else None
        if secret:
            nonce, stamp = self._ulid(), str(int(time.time()))
            headers["x-sinch-webhook-signature"] = sinch_signature(secret, body, nonce, stamp)
            headers["x-sinch-webhook-signature-algorithm"] = "HmacSHA256"
            headers["x-sinch-webhook-signature-nonce"] = nonce
            headers["x-sinch-webhook-signature-timestamp"] = stamp
        auth = None
        if style.basic_auth and cfg.report_basic_auth:
            auth = (cfg.report_basic_auth["username"], cfg.report_basic_auth["password"])
        return headers, auth

    async def post_once(self, provider: str, url: str, body: bytes) -> int:
        """POST `body` to `url` once, signed and with credentials as `provider`'s reports
        are: the answer's status, 0 when there was none. Neither retried nor counted in
        `stats()`: for callbacks whose caller reports the outcome itself (inbound
        messages, see `inbound.py`)."""
        return await self._attempt(STYLES[provider], self.config, url, body) or 0


# -- the bodies ----------------------------------------------------------------------------


def _sinch_recipient(
    batch_id: str,
    digits: str,
    outcome: tuple[int, str],
    client_reference: str | None,
    now: datetime,
) -> dict[str, Any]:
    code, status = outcome
    body: dict[str, Any] = {
        "type": "recipient_delivery_report_sms",
        "batch_id": batch_id,
        "recipient": digits,
        "code": code,
        "status": status,
        "at": _millis_z(now),
    }
    if code not in (SINCH_DISPATCHED[0], SINCH_UNMATCHED[0]):  # the operator said something
        body["operator_status_at"] = _seconds_z(now)
    if client_reference is not None:
        body["client_reference"] = client_reference
    return body


def _sinch_summary(
    batch_id: str,
    total: int,
    by_outcome: dict[tuple[int, str], list[str]],
    full: bool,
    client_reference: str | None,
    now: datetime,
) -> dict[str, Any]:
    statuses = []
    for (code, status), recipients in by_outcome.items():
        entry: dict[str, Any] = {"code": code, "status": status, "count": len(recipients)}
        if full:
            entry["recipients"] = recipients
        statuses.append(entry)
    body: dict[str, Any] = {
        "type": "delivery_report_sms",
        "batch_id": batch_id,
        "total_message_count": total,
        "statuses": statuses,
    }
    if client_reference is not None:
        body["client_reference"] = client_reference
    return body


def _infobip_result(
    bulk_id: str,
    sent_at: str,
    result: InfobipResult,
    digits: str,
    target: InfobipTarget,
    count: int,
    status: dict[str, Any],
    error: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    legacy = target.legacy
    item: dict[str, Any] = {
        "bulkId": bulk_id,
        "messageId": result.message_id,
        "to": digits,
        "from" if legacy else "sender": result.sender,
        "sentAt": sent_at,
        "doneAt": _infobip_time(now),
        "smsCount" if legacy else "messageCount": count,
        "price": PRICE,
        "status": status,
        "error": error,
    }
    if target.callback_data is not None:
        item["callbackData"] = target.callback_data
    return item


def _sinch_mms(
    tracking_id: str,
    client_reference: str | None,
    to: str,
    sender: str,
    code: tuple[str, str, str],
    sent_as: str,
    now: datetime,
) -> dict[str, Any]:
    body = {
        "origin": "MMS_MT",
        "code": code[0],
        "sent-as": sent_as,
        "status": code[1],
        "status-details": code[2],
        "to": to,
        "from": sender,
        "timestamp": _seconds_z(now),
        "tracking-id": tracking_id,
    }
    if client_reference is not None:
        body["client-reference"] = client_reference
    return body


def _conversation(
    envelope: dict[str, str], status: str, reason: dict[str, str] | None, now: datetime
) -> dict[str, Any]:
    report: dict[str, Any] = {
        "message_id": envelope["message_id"],
        "conversation_id": envelope["conversation_id"],
        "status": status,
        "channel_identity": {"channel": "MMS", "identity": envelope["identity"], "app_id": ""},
        "contact_id": envelope["contact_id"],
        "metadata": envelope["metadata"],
        "processing_mode": "CONVERSATION",
    }
    if reason is not None:
        report["reason"] = reason
    return {
        "app_id": envelope["app_id"],
        "accepted_time": envelope["accepted_time"],
        "event_time": _millis_z(now),
        "project_id": envelope["project_id"],
        "message_delivery_report": report,
        "message_metadata": envelope["metadata"],
        "correlation_id": envelope["correlation_id"],
    }
