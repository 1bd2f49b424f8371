"""Delivery report webhooks, parsed: each provider's callback body (a decoded JSON object)
into `DeliveryReport`s, one per recipient and status. Pure functions: no I/O.

A malformed body (not an object, missing what is needed to match the report to a send or
to know its status, a status value not in `integrations.webhooks.statuses`, a value that
could not be stored: see `integrations.webhooks.fields`) raises `InputError` naming the
field, e.g. "results[0].status.groupName is missing".

`dedupe_key` is built from what identifies a report and never from its timestamps, so a
re-posted copy (providers retry, and rebuild the body when they do) has the same key,
while another status of the same message has another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from engine.errors import InputError
from integrations.webhooks import fields
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
    body = fields.obj(body, "body")
    kind = fields.need(body, "type", "", str)
    per_recipient, mms = fields.lookup(_SINCH_TYPES, kind, "type")
    batch_id = fields.need(body, "batch_id", "", str)
    reference = fields.text(body, "client_reference", "")

    def report(
        recipient: str, code: int | None, status: str, path: str, at: datetime | None, parts
    ) -> DeliveryReport:
        return DeliveryReport(
            provider=SINCH_SMS,
            dedupe_key=_key(SINCH_SMS, batch_id, recipient, status, code),
            send_key=None,
            dispatch_key=reference,
            recipient=recipient,
            status=fields.lookup(st.SINCH_SMS_STATUSES, status, fields.join(path, "status")),
            type=mms,
            parts=parts,
            status_code=None if code is None else str(code),
            error=status,
            comment=None if code is None else st.SINCH_SMS_CODES.get(code),
            at=at,
        )

    if per_recipient:
        recipient = fields.e164(fields.need(body, "recipient", "", str), "recipient")
        return [
            report(
                recipient,
                fields.get(body, "code", "", int),
                fields.need(body, "status", "", str),
                "",
                fields.timestamp(body, "at", ""),
                fields.get(body, "number_of_message_parts", "", int),
            )
        ]
    entries = fields.get(body, "statuses", "", list)
    if entries is None:
        raise InputError("statuses is missing")
    reports = []
    for i, entry in enumerate(entries):
        path = f"statuses[{i}]"
        entry = fields.obj(entry, path)
        code = fields.get(entry, "code", path, int)
        status = fields.need(entry, "status", path, str)
        fields.lookup(st.SINCH_SMS_STATUSES, status, fields.join(path, "status"))
        recipients = fields.get(entry, "recipients", path, list) or []
        for j, number in enumerate(recipients):
            field = f"{path}.recipients[{j}]"
            number = fields.checked(number, field, str)
            reports.append(report(fields.e164(number, field), code, status, path, None, None))
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
    body = fields.obj(body, "body")
    results = fields.get(body, "results", "", list)
    if results is None:
        raise InputError("results is missing")
    kind = "sms" if provider == INFOBIP_SMS else "mms"
    reports = []
    for i, item in enumerate(results):
        path = f"results[{i}]"
        item = fields.obj(item, path)
        message_id = fields.need(item, "messageId", path, str)
        to = fields.text(item, "to", path)
        status = fields.get(item, "status", path, dict)
        if status is None:
            raise InputError(f"{path}.status is missing")
        spath = f"{path}.status"
        group = fields.get(status, "groupName", spath, str)
        if group is None:
            group_id = fields.get(status, "groupId", spath, int)
            if group_id is None:
                raise InputError(f"{spath}.groupName is missing")
            group = fields.lookup(st.INFOBIP_GROUP_IDS, group_id, f"{spath}.groupId")
        outcome = fields.lookup(st.INFOBIP_GROUPS, group, f"{spath}.groupName")
        error = fields.get(item, "error", path, dict) or {}
        epath = f"{path}.error"
        error_id = fields.get(error, "id", epath, int)
        error_name = fields.text(error, "name", epath)
        status_id = fields.get(status, "id", spath, int)
        status_name = fields.text(status, "name", spath)
        if error_id or (error_name not in (None, "NO_ERROR")):
            code, name, comment = error_id, error_name, fields.text(error, "description", epath)
        else:
            code, name, comment = status_id, status_name, fields.text(status, "description", spath)
        parts = fields.get(item, "messageCount", path, int)
        if parts is None:
            parts = fields.get(item, "smsCount", path, int)
        at = fields.timestamp(item, "doneAt", path) or fields.timestamp(item, "sentAt", path)
        reports.append(
            DeliveryReport(
                provider=provider,
                dedupe_key=_key(provider, message_id, group, status_id, status_name, error_id),
                send_key=message_id,
                dispatch_key=None,
                recipient=None if to is None else fields.e164(to, f"{path}.to"),
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
    body = fields.obj(body, "body")
    origin = fields.text(body, "origin", "")
    if origin is not None and origin != "MMS_MT":
        raise InputError(f"origin is {origin!r}, not a delivery postback (MMS_MT)")
    code = fields.need(body, "code", "", str)
    outcome, kind = fields.lookup(st.SINCH_MMS_CODES, code, "code")
    reference = fields.text(body, "client-reference", "")
    tracking = fields.text(body, "tracking-id", "")
    if reference is None and tracking is None:
        raise InputError("client-reference and tracking-id are missing")
    to = fields.text(body, "to", "")
    recipient = None if to is None else fields.e164(to, "to")
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
            error=fields.text(body, "status", ""),
            comment=fields.text(body, "status-details", ""),
            at=fields.timestamp(body, "timestamp", ""),
        )
    ]


# -- Conversation API --------------------------------------------------------------------


def parse_conversation(body: dict) -> list[DeliveryReport]:
    """A Conversation API MESSAGE_DELIVERY callback: one report. `send_key` is the
    report's `metadata` (else the envelope's `message_metadata`), `type` "mms" on the MMS
    channel ("sms" on SMS). `status_code`/`comment` are the FAILED `reason`'s code and
    description; `error` is the Conversation status."""
    body = fields.obj(body, "body")
    report = fields.get(body, "message_delivery_report", "", dict)
    if report is None:
        raise InputError("message_delivery_report is missing")
    path = "message_delivery_report"
    message_id = fields.need(report, "message_id", path, str)
    status = fields.need(report, "status", path, str)
    outcome = fields.lookup(st.CONVERSATION_STATUSES, status, f"{path}.status")
    identity = fields.get(report, "channel_identity", path, dict) or {}
    ipath = f"{path}.channel_identity"
    channel = fields.text(identity, "channel", ipath) or fields.text(report, "channel", path)
    number = fields.text(identity, "identity", ipath)
    reason = report.get("reason")
    description = None
    if isinstance(reason, dict):
        code = fields.text(reason, "code", f"{path}.reason")
        description = fields.text(reason, "description", f"{path}.reason")
    else:  # the MMS channel page shows `"reason": ""`
        code = fields.text(report, "reason", path)
    send_key = fields.text(report, "metadata", path) or fields.text(body, "message_metadata", "")
    return [
        DeliveryReport(
            provider=CONVERSATION,
            dedupe_key=_key(CONVERSATION, message_id, status, code),
            send_key=send_key,
            dispatch_key=None,
            recipient=None if number is None else fields.e164(number, f"{ipath}.identity"),
            status=outcome,
            type=st.CONVERSATION_CHANNEL_TYPES.get(channel or ""),
            parts=None,
            status_code=code,
            error=status,
            comment=description,
            at=fields.timestamp(body, "event_time", "")
            or fields.timestamp(body, "accepted_time", ""),
        )
    ]


PARSERS: dict[str, Callable[[dict], list[DeliveryReport]]] = {
    SINCH_SMS: parse_sinch_sms,
    INFOBIP_SMS: lambda body: parse_infobip(body, INFOBIP_SMS),
    INFOBIP_MMS: lambda body: parse_infobip(body, INFOBIP_MMS),
    SINCH_MMS: parse_sinch_mms,
    CONVERSATION: parse_conversation,
}
