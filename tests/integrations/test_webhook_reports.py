"""Delivery report parsers: the documented examples (PROVIDERS.md, seed 003), the bodies
the simulator posts (built with its own builders), duplicates and malformed bodies."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engine.errors import InputError
from integrations.simulator import reports as sim
from integrations.webhooks import statuses as st
from integrations.webhooks.reports import (
    PARSERS,
    DeliveryReport,
    parse_conversation,
    parse_infobip,
    parse_sinch_mms,
    parse_sinch_sms,
)

NOW = datetime(2025, 1, 13, 9, 22, 40, 914000, tzinfo=UTC)

# -- documented examples -------------------------------------------------------------------

SINCH_RECIPIENT = {  # PROVIDERS.md, the signing test vector's body
    "at": "2025-01-13T09:22:40.914Z",
    "batch_id": "01JHFFHQ0P99JPPNQPJDV7JTBP",
    "client_reference": "a client reference",
    "code": 0,
    "operator_status_at": "2025-01-13T09:22:00Z",
    "recipient": "33662162466",
    "status": "Delivered",
    "type": "recipient_delivery_report_sms",
}
SINCH_FULL = {  # PROVIDERS.md summary/full example
    "type": "delivery_report_sms",
    "batch_id": "01JHFFHQ0P99JPPNQPJDV7JTBP",
    "total_message_count": 1,
    "statuses": [{"code": 0, "status": "Delivered", "count": 1, "recipients": ["44231235674"]}],
    "client_reference": "ref",
}
INFOBIP_V3 = {  # PROVIDERS.md delivery report webhook
    "results": [
        {
            "bulkId": "bulk",
            "messageId": "msg-1",
            "to": "41793026727",
            "sender": "InfoSMS",
            "sentAt": "2019-11-09T16:00:00.000+0000",
            "doneAt": "2019-11-09T16:00:00.000+0000",
            "messageCount": 1,
            "mccMnc": "22801",
            "callbackData": "cb",
            "price": {"pricePerMessage": 0.01, "currency": "EUR"},
            "status": {
                "groupId": 3,
                "groupName": "DELIVERED",
                "id": 5,
                "name": "DELIVERED_TO_HANDSET",
                "description": "Message delivered to handset",
            },
            "error": {
                "groupId": 0,
                "groupName": "OK",
                "id": 0,
                "name": "NO_ERROR",
                "description": "No Error",
                "permanent": False,
            },
        }
    ]
}
SINCH_MMS_POSTBACK = {  # PROVIDERS.md delivery postback (shape unverified)
    "origin": "MMS_MT",
    "code": "N102",
    "sent-as": "MMS",
    "status": "Delivered",
    "status-details": "MMS delivered",
    "to": "15551234567",
    "from": "15557654321",
    "timestamp": "2025-01-13T09:22:40Z",
    "operator-id": "310",
    "tracking-id": "trk-1",
    "client-reference": "send-1",
}
CONVERSATION_SEED = {  # seed 003, MMS channel MESSAGE_DELIVERY example
    "app_id": "01E3S8B6YCMRNR0GGM94H80ACX",
    "accepted_time": "2020-04-23T09:55:04.766Z",
    "message_delivery_report": {
        "message_id": "01E6K7CMXY3KHH0AGCTY6D04F2",
        "conversation_id": "01E6JY5HMCADX31SANQ0YE0CH6",
        "status": "DELIVERED",
        "channel": "MMS",
        "reason": "",
        "metadata": "",
    },
}


def _v2(body: dict[str, Any]) -> dict[str, Any]:
    """The same Infobip body in the v2 shape (`from`, `smsCount`)."""
    body = copy.deepcopy(body)
    for item in body["results"]:
        item["from"] = item.pop("sender")
        item["smsCount"] = item.pop("messageCount")
    return body


def _with(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(body)
    body.update(changes)
    return body


def _infobip_item(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(INFOBIP_V3)
    body["results"][0].update(changes)
    return body


INFOBIP_FAILED = _infobip_item(
    status={
        "groupId": 2,
        "groupName": "UNDELIVERABLE",
        "id": 9,
        "name": "UNDELIVERABLE_NOT_DELIVERED",
    },
    error={
        "groupId": 1,
        "groupName": "HANDSET_ERRORS",
        "id": 5,
        "name": "EC_UNIDENTIFIED_SUBSCRIBER",
        "description": "The number does not exist",
        "permanent": False,
    },
)

EXAMPLES = [
    # Sinch per-recipient report (the signing test vector's body)
    (
        "sinch_sms",
        SINCH_RECIPIENT,
        dict(
            dispatch_key="a client reference",
            send_key=None,
            recipient="+33662162466",
            status="delivered",
            type="sms",
            status_code="0",
            error="Delivered",
            at=NOW,
        ),
    ),
    # the same for an MMS sent through the SMS API, failed with 402
    (
        "sinch_sms",
        _with(
            SINCH_RECIPIENT,
            type="recipient_delivery_report_mms",
            code=402,
            status="Failed",
            number_of_message_parts=2,
        ),
        dict(status="failed", type="mms", status_code="402", error="Failed", parts=2),
    ),
    # Sinch full report: one per listed recipient, no timestamp
    (
        "sinch_sms",
        SINCH_FULL,
        dict(dispatch_key="ref", recipient="+44231235674", status="delivered", at=None),
    ),
    # Infobip v3: messageId is the send key; no error -> the status's id and name
    (
        "infobip_sms",
        INFOBIP_V3,
        dict(
            send_key="msg-1",
            dispatch_key=None,
            recipient="+41793026727",
            status="delivered",
            type="sms",
            parts=1,
            status_code="5",
            error="DELIVERED_TO_HANDSET",
            comment="Message delivered to handset",
            at=datetime(2019, 11, 9, 16, tzinfo=UTC),
        ),
    ),
    # Infobip v2 field names (`from`, `smsCount`) read the same
    ("infobip_sms", _v2(INFOBIP_V3), dict(send_key="msg-1", parts=1, status="delivered")),
    # Infobip MMS: type mms
    ("infobip_mms", INFOBIP_V3, dict(provider="infobip_mms", type="mms")),
    # Infobip failure: the error object's id, name and description
    (
        "infobip_sms",
        INFOBIP_FAILED,
        dict(
            status="failed",
            status_code="5",
            error="EC_UNIDENTIFIED_SUBSCRIBER",
            comment="The number does not exist",
        ),
    ),
    # Infobip rejection with NO_ERROR: the status's id and name
    (
        "infobip_sms",
        _infobip_item(
            status={"groupId": 5, "groupName": "REJECTED", "id": 14, "name": "REJECTED_DESTINATION"}
        ),
        dict(status="rejected", status_code="14", error="REJECTED_DESTINATION"),
    ),
    # Infobip EXPIRED, given by groupId only
    (
        "infobip_sms",
        _infobip_item(status={"groupId": 4, "id": 15, "name": "EXPIRED_EXPIRED"}),
        dict(status="failed", status_code="15"),
    ),
    # Sinch MMS postback: client-reference is the send key
    (
        "sinch_mms",
        SINCH_MMS_POSTBACK,
        dict(
            send_key="send-1",
            recipient="+15551234567",
            status="delivered",
            type="mms",
            status_code="N102",
            error="Delivered",
            comment="MMS delivered",
            at=datetime(2025, 1, 13, 9, 22, 40, tzinfo=UTC),
        ),
    ),
    # Sinch MMS delivered as fallback SMS
    ("sinch_mms", _with(SINCH_MMS_POSTBACK, code="N202"), dict(status="delivered", type="sms")),
    # Sinch MMS fallback SMS failed
    ("sinch_mms", _with(SINCH_MMS_POSTBACK, code="E202"), dict(status="failed", type="sms")),
    # Sinch MMS rejected, expired, sent
    ("sinch_mms", _with(SINCH_MMS_POSTBACK, code="E102"), dict(status="rejected", type="mms")),
    ("sinch_mms", _with(SINCH_MMS_POSTBACK, code="N103"), dict(status="failed")),
    ("sinch_mms", _with(SINCH_MMS_POSTBACK, code="N101"), dict(status="intermediate")),
    # Seed 003: empty metadata and reason read as absent, channel at the report's level
    (
        "sinch_conversation",
        CONVERSATION_SEED,
        dict(
            send_key=None,
            recipient=None,
            status="delivered",
            type="mms",
            status_code=None,
            error="DELIVERED",
            at=datetime(2020, 4, 23, 9, 55, 4, 766000, tzinfo=UTC),
        ),
    ),
]


@pytest.mark.parametrize(("provider", "body", "expected"), EXAMPLES)
def test_documented_examples(provider: str, body: dict, expected: dict) -> None:
    (report,) = PARSERS[provider](body)
    expected = dict(expected)  # the table row stays as written
    assert isinstance(report, DeliveryReport)
    assert report.provider == expected.pop("provider", provider)
    for field, value in expected.items():
        assert getattr(report, field) == value, field


def test_sinch_summary_without_recipients_yields_nothing() -> None:
    body = copy.deepcopy(SINCH_FULL)
    del body["statuses"][0]["recipients"]
    assert parse_sinch_sms(body) == []


def test_sinch_full_report_gives_one_report_per_recipient() -> None:
    body = _with(
        SINCH_FULL,
        statuses=[
            {"code": 0, "status": "Delivered", "count": 2, "recipients": ["111", "+222"]},
            {"code": 402, "status": "Failed", "count": 1, "recipients": ["333"]},
        ],
    )
    got = [(r.recipient, r.status, r.status_code) for r in parse_sinch_sms(body)]
    assert got == [
        ("+111", "delivered", "0"),
        ("+222", "delivered", "0"),
        ("+333", "failed", "402"),
    ]


# -- the simulator's bodies ----------------------------------------------------------------

ENVELOPE = {
    "app_id": "app",
    "accepted_time": "2025-01-13T09:22:40.914Z",
    "project_id": "project",
    "message_id": "01JMSG",
    "conversation_id": "01JCONV",
    "contact_id": "01JCONTACT",
    "identity": "15551234567",
    "metadata": "send-7",
    "correlation_id": "send-7",
}


def _infobip(legacy: bool, status: dict, error: dict, provider: str = "infobip_sms") -> dict:
    target = sim.InfobipTarget("http://x", legacy, "cb", False)
    result = sim.InfobipResult("+41793026727", "m-1", "sent", 2, "InfoSMS")
    item = sim._infobip_result(
        "bulk-1",
        "2025-01-13T09:22:40.000+0000",
        result,
        "41793026727",
        target,
        2,
        status,
        error,
        NOW,
    )
    return {"results": [item]}


SIMULATED = [
    # Sinch per recipient, delivered
    (
        "sinch_sms",
        sim._sinch_recipient("B1", "15551231234", sim.SINCH_DELIVERED, "ref-1", NOW),
        dict(dispatch_key="ref-1", recipient="+15551231234", status="delivered", at=NOW),
    ),
    # Sinch per recipient, dispatched (intermediate)
    (
        "sinch_sms",
        sim._sinch_recipient("B1", "15551231234", sim.SINCH_DISPATCHED, None, NOW),
        dict(dispatch_key=None, status="intermediate", status_code="401"),
    ),
    # Sinch per recipient, failed 402
    (
        "sinch_sms",
        sim._sinch_recipient("B1", "15551231234", sim.SINCH_FAILED, "ref-1", NOW),
        dict(status="failed", status_code="402", comment="Unroutable"),
    ),
    # Sinch per recipient, 405 Aborted (no parameter value)
    (
        "sinch_sms",
        sim._sinch_recipient("B1", "15551231234", sim.SINCH_UNMATCHED, "ref-1", NOW),
        dict(status="rejected", status_code="405", error="Aborted"),
    ),
    # Sinch full: recipients listed
    (
        "sinch_sms",
        sim._sinch_summary("B1", 1, {sim.SINCH_DELIVERED: ["15551231234"]}, True, "ref-1", NOW),
        dict(dispatch_key="ref-1", recipient="+15551231234", status="delivered"),
    ),
    # Infobip v3 delivered
    (
        "infobip_sms",
        _infobip(False, sim.DELIVERED_TO_HANDSET, sim.NO_ERROR),
        dict(send_key="m-1", recipient="+41793026727", status="delivered", parts=2, type="sms"),
    ),
    # Infobip v2 (legacy notifyUrl) failed with EC_ABSENT_SUBSCRIBER
    (
        "infobip_sms",
        _infobip(True, sim.UNDELIVERABLE_NOT_DELIVERED, sim.EC_ABSENT_SUBSCRIBER),
        dict(status="failed", parts=2, status_code="27", error="EC_ABSENT_SUBSCRIBER"),
    ),
    # Infobip MMS pending (intermediate)
    (
        "infobip_mms",
        _infobip(False, sim.PENDING_ENROUTE, sim.NO_ERROR, "infobip_mms"),
        dict(provider="infobip_mms", status="intermediate", type="mms", error="PENDING_ENROUTE"),
    ),
    # Sinch MMS delivered
    (
        "sinch_mms",
        sim._sinch_mms("T1", "ref-1", "15551234567", "15557654321", sim.MMS_DELIVERED, "MMS", NOW),
        dict(send_key="ref-1", status="delivered", type="mms", status_code="N102"),
    ),
    # Sinch MMS fallback SMS delivered, no client-reference: matched by tracking-id only
    (
        "sinch_mms",
        sim._sinch_mms("T1", None, "15551234567", "1", sim.MMS_FALLBACK_DELIVERED, "SMS", NOW),
        dict(send_key=None, status="delivered", type="sms", status_code="N202"),
    ),
    # Sinch MMS fallback SMS failed
    (
        "sinch_mms",
        sim._sinch_mms("T1", "ref-1", "15551234567", "1", sim.MMS_FALLBACK_FAILED, "SMS", NOW),
        dict(status="failed", type="sms", status_code="E202"),
    ),
    # Conversation delivered
    (
        "sinch_conversation",
        sim._conversation(ENVELOPE, "DELIVERED", None, NOW),
        dict(send_key="send-7", recipient="+15551234567", status="delivered", type="mms", at=NOW),
    ),
    # Conversation failed with a reason
    (
        "sinch_conversation",
        sim._conversation(ENVELOPE, "FAILED", sim.NOT_REACHABLE, NOW),
        dict(status="failed", status_code="RECIPIENT_NOT_REACHABLE", error="FAILED"),
    ),
    # Conversation queued (intermediate)
    (
        "sinch_conversation",
        sim._conversation(ENVELOPE, "QUEUED_ON_CHANNEL", None, NOW),
        dict(status="intermediate"),
    ),
]


@pytest.mark.parametrize(("provider", "body", "expected"), SIMULATED)
def test_simulator_bodies(provider: str, body: dict, expected: dict) -> None:
    (report,) = PARSERS[provider](body)
    expected = dict(expected)  # the table row stays as written
    assert report.provider == expected.pop("provider", provider)
    for field, value in expected.items():
        assert getattr(report, field) == value, field


# -- dedupe keys ---------------------------------------------------------------------------

LATER = NOW + timedelta(seconds=30)
DUPLICATES = [
    # Sinch re-post: rebuilt later, other `at`
    (
        "sinch_sms",
        sim._sinch_recipient("B1", "1555", sim.SINCH_DELIVERED, "r", NOW),
        sim._sinch_recipient("B1", "1555", sim.SINCH_DELIVERED, "r", LATER),
    ),
    # Infobip re-post: other doneAt
    (
        "infobip_sms",
        _infobip(False, sim.DELIVERED_TO_HANDSET, sim.NO_ERROR),
        _infobip_item(
            messageId="m-1", status=sim.DELIVERED_TO_HANDSET, doneAt="2025-01-14T00:00:00.000+0000"
        ),
    ),
    # Sinch MMS re-post
    (
        "sinch_mms",
        sim._sinch_mms("T1", "r", "1555", "1", sim.MMS_DELIVERED, "MMS", NOW),
        sim._sinch_mms("T1", "r", "1555", "1", sim.MMS_DELIVERED, "MMS", LATER),
    ),
    # Conversation re-post: other event_time
    (
        "sinch_conversation",
        sim._conversation(ENVELOPE, "DELIVERED", None, NOW),
        sim._conversation(ENVELOPE, "DELIVERED", None, LATER),
    ),
]


@pytest.mark.parametrize(("provider", "first", "again"), DUPLICATES)
def test_a_duplicate_has_the_same_dedupe_key(provider: str, first: dict, again: dict) -> None:
    assert PARSERS[provider](first)[0].dedupe_key == PARSERS[provider](again)[0].dedupe_key


STATUS_PAIRS = [
    # Sinch: dispatched, then delivered
    (
        "sinch_sms",
        sim._sinch_recipient("B1", "1555", sim.SINCH_DISPATCHED, "r", NOW),
        sim._sinch_recipient("B1", "1555", sim.SINCH_DELIVERED, "r", NOW),
    ),
    # Infobip: pending, then delivered
    (
        "infobip_sms",
        _infobip(False, sim.PENDING_ENROUTE, sim.NO_ERROR),
        _infobip(False, sim.DELIVERED_TO_HANDSET, sim.NO_ERROR),
    ),
    # Sinch MMS: sent, then delivered
    (
        "sinch_mms",
        sim._sinch_mms("T1", "r", "1555", "1", sim.MMS_SENT, "MMS", NOW),
        sim._sinch_mms("T1", "r", "1555", "1", sim.MMS_DELIVERED, "MMS", NOW),
    ),
    # Conversation: queued, then failed
    (
        "sinch_conversation",
        sim._conversation(ENVELOPE, "QUEUED_ON_CHANNEL", None, NOW),
        sim._conversation(ENVELOPE, "FAILED", sim.NOT_REACHABLE, NOW),
    ),
]


@pytest.mark.parametrize(("provider", "first", "then"), STATUS_PAIRS)
def test_another_status_has_another_dedupe_key(provider: str, first: dict, then: dict) -> None:
    assert PARSERS[provider](first)[0].dedupe_key != PARSERS[provider](then)[0].dedupe_key


def test_keys_differ_across_recipients_and_providers() -> None:
    a = parse_sinch_sms(sim._sinch_recipient("B1", "1555", sim.SINCH_DELIVERED, "r", NOW))
    b = parse_sinch_sms(sim._sinch_recipient("B1", "1666", sim.SINCH_DELIVERED, "r", NOW))
    assert a[0].dedupe_key != b[0].dedupe_key
    sms = parse_infobip(INFOBIP_V3, "infobip_sms")[0].dedupe_key
    assert sms != parse_infobip(INFOBIP_V3, "infobip_mms")[0].dedupe_key


# -- malformed bodies ----------------------------------------------------------------------


def _drop(body: dict, *path: Any) -> dict:
    body = copy.deepcopy(body)
    target = body
    for step in path[:-1]:
        target = target[step]
    del target[path[-1]]
    return body


MALFORMED = [
    # not an object
    ("sinch_sms", ["a list"], "body is not a JSON object"),
    ("infobip_sms", "text", "body is not a JSON object"),
    # Sinch: unknown type, missing recipient, unknown status, bad number, missing statuses
    ("sinch_sms", _with(SINCH_RECIPIENT, type="mo_text"), "type has an unknown value"),
    ("sinch_sms", _drop(SINCH_RECIPIENT, "recipient"), "recipient is missing"),
    ("sinch_sms", _drop(SINCH_RECIPIENT, "batch_id"), "batch_id is missing"),
    ("sinch_sms", _with(SINCH_RECIPIENT, status="Lost"), "status has an unknown value"),
    ("sinch_sms", _with(SINCH_RECIPIENT, recipient="abc"), "recipient is not a phone number"),
    ("sinch_sms", _with(SINCH_RECIPIENT, at="yesterday"), "at is not a timestamp"),
    ("sinch_sms", _with(SINCH_RECIPIENT, code="0"), "code has the wrong type"),
    ("sinch_sms", _drop(SINCH_FULL, "statuses"), "statuses is missing"),
    ("sinch_sms", _drop(SINCH_FULL, "statuses", 0, "status"), "statuses[0].status is missing"),
    # Infobip: no results, no messageId, no status group, unknown group
    ("infobip_sms", {}, "results is missing"),
    ("infobip_sms", {"results": [1]}, "results[0] is not a JSON object"),
    (
        "infobip_sms",
        _drop(INFOBIP_V3, "results", 0, "messageId"),
        "results[0].messageId is missing",
    ),
    ("infobip_sms", _drop(INFOBIP_V3, "results", 0, "status"), "results[0].status is missing"),
    (
        "infobip_sms",
        _drop(
            _drop(INFOBIP_V3, "results", 0, "status", "groupName"),
            "results",
            0,
            "status",
            "groupId",
        ),
        "results[0].status.groupName is missing",
    ),
    (
        "infobip_mms",
        _infobip_item(status={"groupName": "LOST"}),
        "results[0].status.groupName has an unknown value",
    ),
    # Sinch MMS: inbound origin, no code, unknown code, nothing to match
    ("sinch_mms", _with(SINCH_MMS_POSTBACK, origin="MMS_MO"), "origin is 'MMS_MO'"),
    ("sinch_mms", _drop(SINCH_MMS_POSTBACK, "code"), "code is missing"),
    ("sinch_mms", _with(SINCH_MMS_POSTBACK, code="N401"), "code has an unknown value"),
    (
        "sinch_mms",
        _drop(_drop(SINCH_MMS_POSTBACK, "tracking-id"), "client-reference"),
        "client-reference and tracking-id are missing",
    ),
    # Conversation: not a delivery report, no message_id, unknown status
    ("sinch_conversation", {"message": {}}, "message_delivery_report is missing"),
    (
        "sinch_conversation",
        _drop(CONVERSATION_SEED, "message_delivery_report", "message_id"),
        "message_delivery_report.message_id is missing",
    ),
    (
        "sinch_conversation",
        _drop(CONVERSATION_SEED, "message_delivery_report", "status"),
        "message_delivery_report.status is missing",
    ),
    (
        "sinch_conversation",
        sim._conversation(ENVELOPE, "LOST", None, NOW),
        "message_delivery_report.status has an unknown value",
    ),
    # values that could not be stored: integers over the columns' range, out-of-range
    # timestamps, wrong JSON types, NUL characters
    ("infobip_sms", _infobip_item(messageCount=2**63), "results[0].messageCount is out of range"),
    ("infobip_sms", _v2(_infobip_item(messageCount=2**31)), "results[0].smsCount is out of range"),
    ("infobip_mms", _infobip_item(messageCount=-1), "results[0].messageCount is out of range"),
    (
        "sinch_sms",
        _with(SINCH_RECIPIENT, number_of_message_parts=2**63),
        "number_of_message_parts is out of range",
    ),
    ("sinch_sms", _with(SINCH_RECIPIENT, code=2**64), "code is out of range"),
    ("infobip_sms", _infobip_item(messageCount=1.5), "results[0].messageCount has the wrong type"),
    (
        "infobip_sms",
        _infobip_item(doneAt="0001-01-01T00:00:00+01:00"),
        "results[0].doneAt is not a timestamp",
    ),
    (
        "infobip_sms",
        _infobip_item(doneAt="9999-12-31T23:59:59-01:00"),
        "results[0].doneAt is not a timestamp",
    ),
    ("sinch_sms", _with(SINCH_RECIPIENT, at="1999-12-31T23:59:59Z"), "at is out of range"),
    ("sinch_mms", _with(SINCH_MMS_POSTBACK, timestamp="2100-01-01T00:00:00Z"), "timestamp is out"),
    ("sinch_sms", _with(SINCH_RECIPIENT, type=[]), "type has the wrong type (list)"),
    ("sinch_sms", _with(SINCH_RECIPIENT, type={}), "type has the wrong type (dict)"),
    (
        "sinch_sms",
        _with(SINCH_FULL, statuses=[{"status": "Delivered", "recipients": [1]}]),
        "statuses[0].recipients[0] has the wrong type",
    ),
    ("infobip_sms", _infobip_item(messageId="msg\x00"), "results[0].messageId contains a NUL"),
    ("sinch_mms", _with(SINCH_MMS_POSTBACK, code="N102\x00"), "code contains a NUL character"),
    (
        "sinch_conversation",
        {"message_delivery_report": {**CONVERSATION_SEED["message_delivery_report"], "reason": 3}},
        "message_delivery_report.reason has the wrong type (int)",
    ),
]


@pytest.mark.parametrize(("provider", "body", "message"), MALFORMED)
def test_malformed_bodies_raise_naming_the_field(provider: str, body: Any, message: str) -> None:
    with pytest.raises(InputError) as caught:
        PARSERS[provider](body)
    assert message in str(caught.value)


def test_parse_infobip_refuses_another_provider() -> None:
    with pytest.raises(InputError, match="not an Infobip provider"):
        parse_infobip(INFOBIP_V3, "sinch_sms")


# -- the tables ----------------------------------------------------------------------------


def test_every_table_maps_to_a_campaign_status() -> None:
    values = [
        *st.SINCH_SMS_STATUSES.values(),
        *st.INFOBIP_GROUPS.values(),
        *(status for status, _ in st.SINCH_MMS_CODES.values()),
        *st.CONVERSATION_STATUSES.values(),
    ]
    assert set(values) == st.CAMPAIGN_STATUSES
    assert set(st.INFOBIP_GROUP_IDS.values()) == set(st.INFOBIP_GROUPS)


def test_parsers_cover_every_provider() -> None:
    assert set(PARSERS) == {
        "sinch_sms",
        "infobip_sms",
        "infobip_mms",
        "sinch_mms",
        "sinch_conversation",
    }
    assert parse_conversation is PARSERS["sinch_conversation"]
    assert parse_sinch_mms is PARSERS["sinch_mms"]
