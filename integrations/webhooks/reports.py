"""Delivery report webhooks, parsed: each provider's callback body (a decoded JSON object)
into `DeliveryReport`s, one per recipient and status. Pure functions: no I/O.

A malformed body (not an object, missing what is needed to match the report to a send or
to know its status, a status value not in `integrations.webhooks.statuses`) raises
`InputError` naming the field, e.g. "results[0].status.groupName is missing".

`dedupe_key` is built from what identifies a report and never from its timestamps, so a
re-posted copy (providers retry, and rebuild the body when they do) has the same key,
while another status of the same message has another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from engine.errors import InputError
from integrations.webhooks import statuses as st

SINCH_SMS = "sinch_sms"
INFOBIP_SMS = "infobip_sms"
INFOBIP_MMS = "infobip_mms"
SINCH_MMS = "sinch_mms"
CONVERSATION = "sinch_conversation"


@dataclass(frozen=True)
class DeliveryReport:
    """One recipient's delivery status, as one provider reported it."""

    # "sinch_sms" | "infobip_sms" | "infobip_mms" | "sinch_mms" | "sinch_conversation"
    provider: str
    dedupe_key: str  # same for a re-posted copy; differs for another status of the message
    send_key: str | None  # our send key (Infobip messageId, MMS client-reference, metadata)
    dispatch_key: str | None  # Sinch SMS client_reference (our dispatch key), with recipient
    recipient: str | None  # E.164 with "+"
    status: str  # "delivered" | "failed" | "rejected" | "intermediate"
    type: str | None  # "sms" | "mms" when known
    parts: int | None  # number_of_message_parts when given
    status_code: str | None  # provider code as text ("0", "402", "E101", "5")
    error: str | None  # provider status/error name
    comment: str | None  # description
    at: datetime | None  # when the provider says it happened (aware, UTC)


# -- field access ------------------------------------------------------------------------


def _object(body: Any, path: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InputError(f"{path} is not a JSON object")
    return body


def _get(obj: dict[str, Any], key: str, path: str, kinds: type | tuple[type, ...]) -> Any:
    """`obj[key]` if present and not null, checked against `kinds`; None if absent."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise InputError(f"{_join(path, key)} has the wrong type ({type(value).__name__})")
    return value


def _need(obj: dict[str, Any], key: str, path: str, kinds: type | tuple[type, ...]) -> Any:
    value = _get(obj, key, path, kinds)
    if value is None or value == "":
        raise InputError(f"{_join(path, key)} is missing")
    return value


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _text(obj: dict[str, Any], key: str, path: str) -> str | None:
    """An optional string; "" reads as absent."""
    value = _get(obj, key, path, str)
    return value or None


def _e164(value: str, field: str) -> str:
    digits = value.strip().removeprefix("+")
    if not digits.isdigit():
        raise InputError(f"{field} is not a phone number: {value!r}")
    return "+" + digits


def _time(obj: dict[str, Any], key: str, path: str) -> datetime | None:
    value = _text(obj, key, path)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(f"{_join(path, key)} is not a timestamp: {value!r}") from None
    # choice: a timestamp without an offset is read as UTC (every provider speaks UTC).
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _lookup(table: dict[str, Any], value: Any, field: str) -> Any:
    if value not in table:
        raise InputError(f"{field} has an unknown value: {value!r}")
    return table[value]


def _key(*parts: object) -> str:
    return "|".join("" if p is None else str(p) for p in parts)


# -- Sinch SMS ---------------------------------------------------------------------------

_SINCH_TYPES = {
    "recipient_delivery_report_sms": (True, "sms"),
    "recipient_delivery_report_mms": (True, "mms"),
    "delivery_report_sms": (False, "sms"),
    "delivery_report_mms": (False, "mms"),
}


def parse_sinch_sms(body: dict) -> list[DeliveryReport]:
    """A Sinch SMS delivery report callback: `recipient_delivery_report_sms` (or `_mms`,
    then `type` "mms") gives one report; `delivery_report_sms` / `_mms` (summary or full)
    one per recipient listed in `statuses[].recipients`.

    A summary report lists no recipients (only counts), so it yields no report at all:
    ask for `full` or `per_recipient` reports to learn each recipient's status. Reports
    are matched by `client_reference` (our dispatch key) and `recipient`."""
    body = _object(body, "body")
    kind = _need(body, "type", "", str)
    per_recipient, mms = _lookup(_SINCH_TYPES, kind, "type")
    batch_id = _need(body, "batch_id", "", str)
    reference = _text(body, "client_reference", "")

    def report(
        recipient: str, code: int | None, status: str, path: str, at: datetime | None, parts
    ) -> DeliveryReport:
        return DeliveryReport(
            provider=SINCH_SMS,
            dedupe_key=_key(SINCH_SMS, batch_id, recipient, status, code),
            send_key=None,
            dispatch_key=reference,
            recipient=recipient,
            status=_lookup(st.SINCH_SMS_STATUSES, status, _join(path, "status")),
            type=mms,
            parts=parts,
            status_code=None if code is None else str(code),
            error=status,
            comment=None if code is None else st.SINCH_SMS_CODES.get(code),
            at=at,
        )

    if per_recipient:
        recipient = _e164(_need(body, "recipient", "", str), "recipient")
        return [
            report(
                recipient,
                _get(body, "code", "", int),
                _need(body, "status", "", str),
                "",
                _time(body, "at", ""),
                _get(body, "number_of_message_parts", "", int),
            )
        ]
    entries = _get(body, "statuses", "", list)
    if entries is None:
        raise InputError("statuses is missing")
    reports = []
    for i, entry in enumerate(entries):
        path = f"statuses[{i}]"
        entry = _object(entry, path)
        code = _get(entry, "code", path, int)
        status = _need(entry, "status", path, str)
        _lookup(st.SINCH_SMS_STATUSES, status, _join(path, "status"))
        recipients = _get(entry, "recipients", path, list) or []
        for j, number in enumerate(recipients):
            field = f"{path}.recipients[{j}]"
            if not isinstance(number, str):
                raise InputError(f"{field} is not a string")
            reports.append(report(_e164(number, field), code, status, path, None, None))
    return reports


# -- Infobip -----------------------------------------------------------------------------


def parse_infobip(body: dict, provider: str) -> list[DeliveryReport]:
    """An Infobip SMS or MMS delivery report webhook: one report per `results[]` item, in
    the v3 (`sender`, `messageCount`) or v2 (`from`, `smsCount`) shape. Matched by
    `messageId` (our send key).

    `type` is "sms" for infobip_sms and "mms" for infobip_mms: an Infobip MMS report does
    not say whether the message went out as the failover SMS, so it stays "mms".
    `status_code`, `error` and `comment` are the `error` object's id, name and description
    when it reports an error (not id 0, "NO_ERROR"), else the `status` object's."""
    if provider not in (INFOBIP_SMS, INFOBIP_MMS):
        raise InputError(f"provider {provider!r} is not an Infobip provider")
    body = _object(body, "body")
    results = _get(body, "results", "", list)
    if results is None:
        raise InputError("results is missing")
    kind = "sms" if provider == INFOBIP_SMS else "mms"
    reports = []
    for i, item in enumerate(results):
        path = f"results[{i}]"
        item = _object(item, path)
        message_id = _need(item, "messageId", path, str)
        to = _text(item, "to", path)
        status = _get(item, "status", path, dict)
        if status is None:
            raise InputError(f"{path}.status is missing")
        spath = f"{path}.status"
        group = _get(status, "groupName", spath, str)
        if group is None:
            group_id = _get(status, "groupId", spath, int)
            if group_id is None:
                raise InputError(f"{spath}.groupName is missing")
            group = _lookup(st.INFOBIP_GROUP_IDS, group_id, f"{spath}.groupId")
        outcome = _lookup(st.INFOBIP_GROUPS, group, f"{spath}.groupName")
        error = _get(item, "error", path, dict) or {}
        epath = f"{path}.error"
        error_id = _get(error, "id", epath, int)
        error_name = _text(error, "name", epath)
        status_id = _get(status, "id", spath, int)
        status_name = _text(status, "name", spath)
        if error_id or (error_name not in (None, "NO_ERROR")):
            code, name, comment = error_id, error_name, _text(error, "description", epath)
        else:
            code, name, comment = status_id, status_name, _text(status, "description", spath)
        parts = _get(item, "messageCount", path, int)
        if parts is None:
            parts = _get(item, "smsCount", path, int)
        at = _time(item, "doneAt", path) or _time(item, "sentAt", path)
        reports.append(
            DeliveryReport(
                provider=provider,
                dedupe_key=_key(provider, message_id, group, status_id, status_name, error_id),
                send_key=message_id,
                dispatch_key=None,
                recipient=None if to is None else _e164(to, f"{path}.to"),
                status=outcome,
                type=kind,
                parts=parts,
                status_code=None if code is None else str(code),
                error=name,
                comment=comment,
                at=at,
            )
        )
    return reports


# -- Sinch MMS ---------------------------------------------------------------------------


def parse_sinch_mms(body: dict) -> list[DeliveryReport]:
    """A Sinch MMS delivery postback (`origin` MMS_MT): one report, matched by
    `client-reference` (our send key) or `tracking-id`. N202 and E202 (the fallback SMS)
    have `type` "sms", every other code "mms"."""
    body = _object(body, "body")
    origin = _text(body, "origin", "")
    if origin is not None and origin != "MMS_MT":
        raise InputError(f"origin is {origin!r}, not a delivery postback (MMS_MT)")
    code = _need(body, "code", "", str)
    outcome, kind = _lookup(st.SINCH_MMS_CODES, code, "code")
    reference = _text(body, "client-reference", "")
    tracking = _text(body, "tracking-id", "")
    if reference is None and tracking is None:
        raise InputError("client-reference and tracking-id are missing")
    to = _text(body, "to", "")
    recipient = None if to is None else _e164(to, "to")
    return [
        DeliveryReport(
            provider=SINCH_MMS,
            dedupe_key=_key(SINCH_MMS, tracking or reference, recipient, code),
            send_key=reference,
            dispatch_key=None,
            recipient=recipient,
            status=outcome,
            type=kind,
            parts=None,
            status_code=code,
            error=_text(body, "status", ""),
            comment=_text(body, "status-details", ""),
            at=_time(body, "timestamp", ""),
        )
    ]


# -- Conversation API --------------------------------------------------------------------


def parse_conversation(body: dict) -> list[DeliveryReport]:
    """A Conversation API MESSAGE_DELIVERY callback: one report. `send_key` is the
    report's `metadata` (else the envelope's `message_metadata`), `type` "mms" on the MMS
    channel ("sms" on SMS). `status_code`/`comment` are the FAILED `reason`'s code and
    description; `error` is the Conversation status."""
    body = _object(body, "body")
    report = _get(body, "message_delivery_report", "", dict)
    if report is None:
        raise InputError("message_delivery_report is missing")
    path = "message_delivery_report"
    message_id = _need(report, "message_id", path, str)
    status = _need(report, "status", path, str)
    outcome = _lookup(st.CONVERSATION_STATUSES, status, f"{path}.status")
    identity = _get(report, "channel_identity", path, dict) or {}
    ipath = f"{path}.channel_identity"
    channel = _text(identity, "channel", ipath) or _text(report, "channel", path)
    number = _text(identity, "identity", ipath)
    reason = report.get("reason")
    code = description = None
    if isinstance(reason, dict):
        code = _text(reason, "code", f"{path}.reason")
        description = _text(reason, "description", f"{path}.reason")
    elif isinstance(reason, str):  # the MMS channel page shows `"reason": ""`
        code = reason or None
    elif reason is not None:
        raise InputError(f"{path}.reason has the wrong type ({type(reason).__name__})")
    send_key = _text(report, "metadata", path) or _text(body, "message_metadata", "")
    return [
        DeliveryReport(
            provider=CONVERSATION,
            dedupe_key=_key(CONVERSATION, message_id, status, code),
            send_key=send_key,
            dispatch_key=None,
            recipient=None if number is None else _e164(number, f"{ipath}.identity"),
            status=outcome,
            type=st.CONVERSATION_CHANNEL_TYPES.get(channel or ""),
            parts=None,
            status_code=code,
            error=status,
            comment=description,
            at=_time(body, "event_time", "") or _time(body, "accepted_time", ""),
        )
    ]


PARSERS: dict[str, Callable[[dict], list[DeliveryReport]]] = {
    SINCH_SMS: parse_sinch_sms,
    INFOBIP_SMS: lambda body: parse_infobip(body, INFOBIP_SMS),
    INFOBIP_MMS: lambda body: parse_infobip(body, INFOBIP_MMS),
    SINCH_MMS: parse_sinch_mms,
    CONVERSATION: parse_conversation,
}
