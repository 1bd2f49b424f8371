"""Inbound message parsers: the documented examples (PROVIDERS.md, seed 003, the providers'
references and SDK fixtures), multi-part MMS, several messages in one body, malformed bodies
naming their field, and telling inbound messages from delivery reports."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from engine.errors import InputError
from integrations.webhooks.inbound import INBOUND_PARSERS, InboundMessage, is_inbound
from tests.integrations.test_webhook_reports import EXAMPLES as REPORT_EXAMPLES
from tests.integrations.test_webhook_reports import SIMULATED as SIMULATED_REPORTS

# -- documented examples -------------------------------------------------------------------

SINCH_MO_TEXT = {  # sinch-sdk-java sms/v1/inbounds/MOTextDto.json
    "body": "a body",
    "client_reference": "a client reference",
    "from": "+11203494390",
    "id": "01FC66621XXXXX119Z8PMV1QPA",
    "operator_id": "35000",
    "received_at": "2019-08-24T14:17:22Z",
    "sent_at": "2019-08-24T14:15:22Z",
    "to": "11203453453",
    "type": "mo_text",
}
SINCH_MO_BINARY = {  # sinch-sdk-java sms/v1/MOBinaryDto.json
    **SINCH_MO_TEXT,
    "type": "mo_binary",
    "udh": "foo udh",
}
SINCH_MO_MEDIA = {  # sinch-sdk-java sms/v1/inbounds/InboundMediaDto.json, media in the SDKs' names
    **SINCH_MO_TEXT,
    "type": "mo_media",
    "body": {
        "subject": "mmy subject",
        "message": "my message",
        "media": [
            {
                "url": "https://foo.url",
                "content_type": "image/jpeg",
                "status": "Uploaded",
                "code": 0,
            }
        ],
    },
}
INFOBIP_MO = {  # PROVIDERS.md inbound SMS webhook, its ".." filled in
    "results": [
        {
            "messageId": "817790313235066447",
            "from": "385916242493",
            "to": "385921004026",
            "text": "QUIZ Paris",
            "cleanText": "Paris",
            "keyword": "QUIZ",
            "receivedAt": "2019-11-09T16:00:00.000+0000",
            "smsCount": 1,
            "callbackData": "cb",
        }
    ],
    "messageCount": 1,
    "pendingMessageCount": 0,
}
INFOBIP_MMS_MO = {  # infobip-api-python-client MMS tests, the inbound webhook (MO_MMS_2)
    "results": [
        {
            "from": "385916242493",
            "to": "385921004026",
            "receivedAt": "2020-10-06T09:28:39.220+0000",
            "messageId": "817790313235066447-3af1-78856-aabe-1362af1edfd2",
            "pairedMessageId": "100200",
            "callbackData": "my-callback-data",
            "userAgent": "custom-user-agent",
            "message": [
                {"contentType": "image/jpeg", "url": "https://example.com/123456"},
                {"contentType": "text/plain", "value": "This is message text"},
            ],
            "price": {"pricePerMessage": 0.01, "currency": "EUR"},
            "applicationId": "given-application-id",
            "entityId": "given-entity-id",
        }
    ],
    "messageCount": 1,
    "pendingMessageCount": 0,
}
SINCH_MMS_MO = {  # Sinch's "MMS MO postbacks" reference, JSON example
    "origin": "MMS_MO",
    "code": "N401",
    "from": "17745550001",
    "to": "18885551234",
    "keyword": "INFO",
    "tracking-id": "mo123xyz",
    "operator-id": "310012",
    "timestamp": "2026-04-24T18:34:00Z",
    "message-subject": "Question",
    "content": [
        {"file": "https://example.sinch.com/mo-content/file1.jpg"},
        {"file": "https://example.sinch.com/mo-content/file2.txt"},
    ],
}
SINCH_MMS_MO_XML_EXAMPLE = {  # the same reference's older example (short code, no subject)
    "origin": "MMS_MO",
    "code": "N401",
    "from": "14082257140",
    "to": "28444",
    "keyword": "all",
    "tracking-id": "MMS_MO_iLnCRrL6",
    "operator-id": "31002",
    "timestamp": "2014-02-03T11:19:49-05:00",
    "message-subject": "",
    "content": [
        {"file": "https://example.sinch.com/1.jpg"},
        {"file": "https://example.sinch.com/2.gif"},
        {"file": "https://example.sinch.com/3.txt"},
    ],
}


def _seed(contact_message: dict[str, Any]) -> dict[str, Any]:
    """Seed 003's MESSAGE_INBOUND envelope around one contact message."""
    return {
        "app_id": "01E3S8B6YCMRNR0GGM94H80ACX",
        "accepted_time": "2020-04-24T08:02:50.184581Z",
        "message": {
            "id": "01E6NKBV63YG6K01ENEW7S1N80",
            "direction": "TO_APP",
            "contact_message": contact_message,
            "channel": "MMS",
            "conversation_id": "01E6K4A8PGZ6MV0GD3C7M901MZ",
            "contact_id": "01E6K4A8N3NANZ05VM0FS80EHD",
            "metadata": "",
            "accept_time": "2020-04-24T08:02:50.179021Z",
        },
    }


SEED_IMAGE = (
    "https://convapi-eu1tst.s3.eu-west-1.amazonaws.com/01EPRZJ0HXTDEH1BTYJT4417GE/"
    "01F2K124T4513Q0CCHQ5SN0DH6.png"
)
SEED_TEXT = _seed({"text_message": {"text": "Hi from contact"}})
SEED_MEDIA = _seed({"media_message": {"url": SEED_IMAGE}})
SEED_MEDIA_CARD = _seed({"media_card_message": {"url": SEED_IMAGE, "caption": "caption text"}})
SEED_CHOICE = _seed(
    {
        "choice_response_message": {
            "message_id": "01EKJ2SWHGDMYA0F0F1PQJ09WQ",
            "postback_data": "postback",
        }
    }
)
CONVERSATION_SDK = {  # sinch-sdk-java conversation webhooks MessageInboundEventDto.json, on SMS
    "app_id": "app id value",
    "accepted_time": "2020-11-17T16:05:51.724083Z",
    "event_time": "2020-11-17T16:05:45Z",
    "message_metadata": "metadata value",
    "project_id": "project id value",
    "correlation_id": "correlation id value",
    "message": {
        "id": "event id",
        "direction": "TO_APP",
        "channel_identity": {"app_id": "an app id", "channel": "SMS", "identity": "46732000000"},
        "conversation_id": "conversation id",
        "contact_id": "contact ID",
        "metadata": "metadata value",
        "accept_time": "2020-11-17T16:07:15Z",
        "sender_id": "40404",
        "processing_mode": "DISPATCH",
        "injected": True,
        "contact_message": {
            "text_message": {"text": "This is a text message."},
            "reply_to": {"message_id": "message id value"},
        },
    },
}
SEED_AT = datetime(2020, 4, 24, 8, 2, 50, 179021, tzinfo=UTC)

EXAMPLES = [
    # Sinch mo_text: `from` with "+", `to` digits (a long number: E.164)
    (
        "sinch_sms",
        SINCH_MO_TEXT,
        dict(
            message_id="01FC66621XXXXX119Z8PMV1QPA",
            sender="+11203494390",
            recipient="+11203453453",
            channel="sms",
            texts=("a body",),
            media=(),
            subject=None,
            at=datetime(2019, 8, 24, 14, 17, 22, tzinfo=UTC),
        ),
    ),
    # Sinch mo_binary: the base64 body is no text part
    ("sinch_sms", SINCH_MO_BINARY, dict(channel="sms", texts=(), media=())),
    # Sinch mo_media: an MMS through the SMS API
    (
        "sinch_sms",
        SINCH_MO_MEDIA,
        dict(
            channel="mms", texts=("my message",), media=("https://foo.url",), subject="mmy subject"
        ),
    ),
    # Infobip SMS: the whole text, keyword included; numbers without "+"
    (
        "infobip_sms",
        INFOBIP_MO,
        dict(
            message_id="817790313235066447",
            sender="+385916242493",
            recipient="+385921004026",
            channel="sms",
            texts=("QUIZ Paris",),
            at=datetime(2019, 11, 9, 16, tzinfo=UTC),
        ),
    ),
    # Infobip MMS: parts in order, the text/plain value a text part
    (
        "infobip_mms",
        INFOBIP_MMS_MO,
        dict(
            message_id="817790313235066447-3af1-78856-aabe-1362af1edfd2",
            sender="+385916242493",
            channel="mms",
            texts=("This is message text",),
            media=("https://example.com/123456",),
            subject=None,
            at=datetime(2020, 10, 6, 9, 28, 39, 220000, tzinfo=UTC),
        ),
    ),
    # Sinch MMS MO: every part a file, the text one too; identified by tracking-id
    (
        "sinch_mms",
        SINCH_MMS_MO,
        dict(
            message_id="mo123xyz",
            sender="+17745550001",
            recipient="+18885551234",
            channel="mms",
            texts=(),
            media=(
                "https://example.sinch.com/mo-content/file1.jpg",
                "https://example.sinch.com/mo-content/file2.txt",
            ),
            subject="Question",
            at=datetime(2026, 4, 24, 18, 34, tzinfo=UTC),
        ),
    ),
    # Sinch MMS MO to a short code, empty subject, three files, an offset timestamp
    (
        "sinch_mms",
        SINCH_MMS_MO_XML_EXAMPLE,
        dict(
            recipient="28444",
            subject=None,
            media=(
                "https://example.sinch.com/1.jpg",
                "https://example.sinch.com/2.gif",
                "https://example.sinch.com/3.txt",
            ),
            at=datetime(2014, 2, 3, 16, 19, 49, tzinfo=UTC),
        ),
    ),
    # Seed 003, text message: no channel_identity, so no sender
    (
        "sinch_conversation",
        SEED_TEXT,
        dict(
            message_id="01E6NKBV63YG6K01ENEW7S1N80",
            sender=None,
            recipient=None,
            channel="mms",
            texts=("Hi from contact",),
            media=(),
            postback=None,
            contact_id="01E6K4A8N3NANZ05VM0FS80EHD",
            at=SEED_AT,
        ),
    ),
    # Seed 003, media message: one attachment per event
    ("sinch_conversation", SEED_MEDIA, dict(channel="mms", texts=(), media=(SEED_IMAGE,))),
    # Seed 003, media card: the caption is a text part
    (
        "sinch_conversation",
        SEED_MEDIA_CARD,
        dict(texts=("caption text",), media=(SEED_IMAGE,), postback=None),
    ),
    # Seed 003, choice response: postback_data, no text part
    (
        "sinch_conversation",
        SEED_CHOICE,
        dict(texts=(), media=(), postback="postback", contact_id="01E6K4A8N3NANZ05VM0FS80EHD"),
    ),
    # Sinch SDK fixture on the SMS channel: sender from channel_identity, sender_id a short code
    (
        "sinch_conversation",
        CONVERSATION_SDK,
        dict(
            message_id="event id",
            sender="+46732000000",
            recipient="40404",
            channel="sms",
            texts=("This is a text message.",),
            contact_id="contact ID",
            at=datetime(2020, 11, 17, 16, 7, 15, tzinfo=UTC),
        ),
    ),
]


@pytest.mark.parametrize(("provider", "body", "expected"), EXAMPLES)
def test_documented_examples(provider: str, body: dict, expected: dict) -> None:
    (message,) = INBOUND_PARSERS[provider](body)
    assert isinstance(message, InboundMessage)
    assert message.provider == provider
    for field, value in expected.items():
        assert getattr(message, field) == value, field


def _with(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of `body` with the dotted `path` (list indexes as digits) set to `value`,
    or removed when `value` is ...; the examples stay as written."""
    body = copy.deepcopy(body)
    keys: list[Any] = [int(key) if key.isdigit() else key for key in path.split(".")]
    target: Any = body
    for key in keys[:-1]:
        target = target[key]
    if value is ...:
        del target[keys[-1]]
    else:
        target[keys[-1]] = value
    return body


# -- several parts, several messages ---------------------------------------------------------


def test_an_infobip_mms_keeps_every_part_in_order() -> None:
    parts = [
        {"contentType": "text/plain", "value": "Look"},
        {"contentType": "image/jpeg", "url": "https://example.com/1.jpg"},
        {"contentType": "text/plain", "value": "and this"},
        {"contentType": "video/mp4", "url": "https://example.com/2.mp4"},
        {"contentType": "text/plain", "value": ""},  # an empty text is no part
    ]
    (message,) = INBOUND_PARSERS["infobip_mms"](_with(INFOBIP_MMS_MO, "results.0.message", parts))
    assert message.texts == ("Look", "and this")
    assert message.media == ("https://example.com/1.jpg", "https://example.com/2.mp4")


def test_one_infobip_body_carries_several_messages() -> None:
    second = {**INFOBIP_MO["results"][0], "messageId": "m-2", "from": "15551234567", "text": "STOP"}
    body = _with(INFOBIP_MO, "results", [INFOBIP_MO["results"][0], second])
    messages = INBOUND_PARSERS["infobip_sms"](body)
    assert [(m.message_id, m.sender, m.texts) for m in messages] == [
        ("817790313235066447", "+385916242493", ("QUIZ Paris",)),
        ("m-2", "+15551234567", ("STOP",)),
    ]
    assert INBOUND_PARSERS["infobip_sms"](_with(INFOBIP_MO, "results", [])) == []


def test_sinch_mo_media_skips_attachments_that_failed_to_upload() -> None:
    media = [
        {
            "url": "https://a.example/1.jpg",
            "content_type": "image/jpeg",
            "status": "Uploaded",
            "code": 0,
        },
        {"content_type": "image/png", "status": "Failed", "code": 1},
        {
            "url": "https://a.example/3.mp4",
            "content_type": "video/mp4",
            "status": "Uploaded",
            "code": 0,
        },
    ]
    (message,) = INBOUND_PARSERS["sinch_sms"](_with(SINCH_MO_MEDIA, "body.media", media))
    assert message.media == ("https://a.example/1.jpg", "https://a.example/3.mp4")


def test_three_images_with_a_text_are_three_media_cards_with_one_caption() -> None:
    """Seed 003: each attachment is its own MESSAGE_INBOUND, the text every one's caption."""
    urls = [f"https://example.com/{n}.png" for n in range(3)]
    messages = [
        message
        for n, url in enumerate(urls)
        for message in INBOUND_PARSERS["sinch_conversation"](
            _with(
                _with(SEED_MEDIA_CARD, "message.contact_message.media_card_message.url", url),
                "message.id",
                f"01E6NKBV63YG6K01ENEW7S1N8{n}",
            )
        )
    ]
    assert [m.media for m in messages] == [(url,) for url in urls]
    assert {m.texts for m in messages} == {("caption text",)}
    assert len({m.message_id for m in messages}) == 3


def test_conversation_events_on_other_channels_yield_nothing() -> None:
    body = _with(CONVERSATION_SDK, "message.channel_identity.channel", "WHATSAPP")
    assert INBOUND_PARSERS["sinch_conversation"](body) == []


def test_a_sinch_mms_mo_text_part_given_inline_is_a_text_part() -> None:
    """A STOP posted as `{"text": ...}` rather than as a file is read, not refused."""
    content = [{"text": "STOP"}, {"file": "https://example.sinch.com/1.jpg"}, {"text": ""}]
    (message,) = INBOUND_PARSERS["sinch_mms"](_with(SINCH_MMS_MO, "content", content))
    assert message.texts == ("STOP",)
    assert message.media == ("https://example.sinch.com/1.jpg",)


# A provider time that cannot be used, in each inbound shape (the path to it, its field).
UNUSABLE_TIMES = [
    ("sinch_sms", SINCH_MO_TEXT, "received_at", "received_at"),
    ("infobip_sms", INFOBIP_MO, "results.0.receivedAt", "results[0].receivedAt"),
    ("infobip_mms", INFOBIP_MMS_MO, "results.0.receivedAt", "results[0].receivedAt"),
    ("sinch_mms", SINCH_MMS_MO, "timestamp", "timestamp"),
    ("sinch_conversation", CONVERSATION_SDK, "message.accept_time", "message.accept_time"),
]


@pytest.mark.parametrize(("provider", "body", "path", "field"), UNUSABLE_TIMES)
@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
        "9999-12-31T23:59:59-01:00",  # after year 9999 in UTC
        "1970-01-01T00:00:00Z",  # a real instant, but no provider's clock
        "yesterday",
        5,
    ],
)
def test_an_inbound_message_with_an_unusable_time_is_taken_without_it(
    provider: str, body: dict, path: str, field: str, value: Any, caplog
) -> None:
    """Refusing it would lose it (a STOP above all): its arrival time stands in, logged."""
    if provider == "sinch_conversation":  # its other times would stand in first
        body = _with(_with(body, "event_time", ...), "accepted_time", ...)
    (message,) = INBOUND_PARSERS[provider](_with(body, path, value))
    assert message.at is None
    assert f"{field} " in caplog.text


# -- malformed bodies ----------------------------------------------------------------------

BAD = [
    ("sinch_sms", [], "body is not a JSON object"),
    ("sinch_sms", _with(SINCH_MO_TEXT, "type", "mo_video"), "type has an unknown value"),
    ("sinch_sms", _with(SINCH_MO_TEXT, "from", ...), "from is missing"),
    ("sinch_sms", _with(SINCH_MO_TEXT, "from", "ACME"), "from is not a phone number"),
    ("sinch_sms", _with(SINCH_MO_TEXT, "to", ...), "to is missing"),
    ("sinch_sms", _with(SINCH_MO_TEXT, "id", ""), "id is missing"),
    ("sinch_sms", _with(SINCH_MO_TEXT, "body", ...), "body is missing"),
    ("sinch_sms", _with(SINCH_MO_TEXT, "body", 7), "body has the wrong type"),
    ("sinch_sms", _with(SINCH_MO_MEDIA, "body.media", [3]), "body.media[0] is not a JSON object"),
    ("sinch_sms", _with(SINCH_MO_MEDIA, "body.message", ["hi"]), "body.message has the wrong type"),
    ("infobip_sms", {"messageCount": 0}, "results is missing"),
    ("infobip_sms", _with(INFOBIP_MO, "results.0.from", ...), "results[0].from is missing"),
    (
        "infobip_sms",
        _with(INFOBIP_MO, "results.0.messageId", 5),
        "results[0].messageId has the wrong",
    ),
    ("infobip_sms", _with(INFOBIP_MO, "results.0.to", "+38x"), "results[0].to is not a phone"),
    (
        "infobip_mms",
        _with(INFOBIP_MMS_MO, "results.0.message.1", {"contentType": "text/plain"}),
        "results[0].message[1] has neither value nor url",
    ),
    ("infobip_mms", _with(INFOBIP_MMS_MO, "results.0.message", "hi"), "results[0].message has the"),
    ("sinch_mms", _with(SINCH_MMS_MO, "origin", "MMS_MT"), "origin is 'MMS_MT', not an inbound"),
    ("sinch_mms", _with(SINCH_MMS_MO, "tracking-id", ...), "tracking-id is missing"),
    ("sinch_mms", _with(SINCH_MMS_MO, "content.1", {"url": "x"}), "content[1] has neither text"),
    # what could not be stored, or not be read: wrong JSON types, NULs, malformed URLs
    ("sinch_sms", _with(SINCH_MO_TEXT, "type", []), "type has the wrong type (list)"),
    ("sinch_sms", _with(SINCH_MO_TEXT, "id", "01F\x00"), "id contains a NUL character"),
    ("sinch_sms", _with(SINCH_MO_TEXT, "from", "+\u0661\u0662"), "from is not a phone number"),
    ("sinch_sms", _with(SINCH_MO_TEXT, "from", "+1" + "2" * 15), "from is not a phone number"),
    ("sinch_sms", _with(SINCH_MO_MEDIA, "body.media.0.url", "foo"), "body.media[0].url is not an"),
    (
        "infobip_sms",
        _with(INFOBIP_MO, "results.0.messageId", "8177\x00"),
        "results[0].messageId contains a NUL",
    ),
    (
        "infobip_mms",
        _with(INFOBIP_MMS_MO, "results.0.message.0.url", "javascript:alert(1)"),
        "results[0].message[0].url is not an http(s) URL",
    ),
    ("sinch_mms", _with(SINCH_MMS_MO, "content.0.file", "http://[::1"), "content[0].file is not a"),
    ("sinch_mms", _with(SINCH_MMS_MO, "content.0.file", "http://h:x/"), "content[0].file is not a"),
    ("sinch_mms", _with(SINCH_MMS_MO, "content.0.file", "file:///etc/x.txt"), "is not an http(s)"),
    ("sinch_mms", _with(SINCH_MMS_MO, "content.0", {"text": 5}), "content[0].text has the wrong"),
    (
        "sinch_conversation",
        _with(SEED_MEDIA, "message.contact_message.media_message.url", "//no-scheme"),
        "message.contact_message.media_message.url is not an http(s) URL",
    ),
    ("sinch_conversation", {"app_id": "a"}, "message is missing"),
    (
        "sinch_conversation",
        _with(SEED_TEXT, "message.direction", "TO_CONTACT"),
        "message.direction is 'TO_CONTACT'",
    ),
    ("sinch_conversation", _with(SEED_TEXT, "message.channel", ...), "channel_identity.channel is"),
    ("sinch_conversation", _with(SEED_TEXT, "message.id", ...), "message.id is missing"),
    (
        "sinch_conversation",
        _with(SEED_TEXT, "message.contact_message", {"location_message": {}}),
        "message.contact_message needs exactly one of",
    ),
    (
        "sinch_conversation",
        _with(SEED_MEDIA, "message.contact_message.media_message.url", ...),
        "message.contact_message.media_message.url is missing",
    ),
    (
        "sinch_conversation",
        _with(SEED_CHOICE, "message.contact_message.choice_response_message.postback_data", ...),
        "choice_response_message.postback_data is missing",
    ),
    (
        "sinch_conversation",
        _with(CONVERSATION_SDK, "message.channel_identity.identity", "someone"),
        "message.channel_identity.identity is not a phone number",
    ),
]


@pytest.mark.parametrize(("provider", "body", "message"), BAD)
def test_malformed_bodies_name_the_field(provider: str, body: Any, message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        INBOUND_PARSERS[provider](body)


# -- inbound or delivery report --------------------------------------------------------------


@pytest.mark.parametrize(("provider", "body", "expected"), EXAMPLES)
def test_every_inbound_example_is_inbound(provider: str, body: dict, expected: dict) -> None:
    assert is_inbound(provider, body)


@pytest.mark.parametrize(("provider", "body", "expected"), REPORT_EXAMPLES + SIMULATED_REPORTS)
def test_no_delivery_report_is_inbound(provider: str, body: dict, expected: dict) -> None:
    assert not is_inbound(provider, body)


@pytest.mark.parametrize(
    ("provider", "body", "inbound"),
    [
        ("sinch_sms", None, False),  # not an object: the report parser says what is wrong
        ("sinch_sms", {"type": "mo_text"}, True),  # malformed, but said to be inbound
        ("sinch_sms", {"type": []}, False),  # not a string: the report parser says so
        ("infobip_sms", {"results": [], "messageCount": 0, "pendingMessageCount": 0}, True),
        ("infobip_sms", {"results": []}, False),  # an empty report
        ("infobip_mms", {"results": ["x"]}, False),
        ("sinch_mms", {"origin": "MMS_MT"}, False),
        ("sinch_conversation", {"message_delivery_report": {}}, False),
        ("telegram", SINCH_MO_TEXT, False),  # not a provider
    ],
)
def test_is_inbound_looks_only_at_the_telling_shape(
    provider: str, body: Any, inbound: bool
) -> None:
    assert is_inbound(provider, body) is inbound


def test_every_provider_has_a_parser() -> None:
    from integrations.webhooks.reports import PARSERS

    assert set(INBOUND_PARSERS) == set(PARSERS)
