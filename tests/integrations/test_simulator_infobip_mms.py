"""The simulated Infobip MMS API (`POST /mms/2/messages`): validation, statuses, messageId
memory and fallback through Starlette's TestClient, then the real `InfobipMmsClient`
against a simulator process over loopback."""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from integrations.infobip_mms import InfobipMmsClient, InfobipMmsMessage
from integrations.simulator.app import create_app
from integrations.simulator.config import SimulatorConfig
from integrations.simulator.server import SimulatorProcess

with warnings.catch_warnings():
    # Starlette 1.x asks for httpx2 under its TestClient; the project pins httpx.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

MMS = "/mms/2/messages"
SMS = "/sms/3/messages"
APP_KEY = {"Authorization": "App simulator-key"}
IMAGE = "https://cdn.example.com/sale.jpg"


@pytest.fixture
def client_for() -> Iterator[Callable[..., TestClient]]:
    with contextlib.ExitStack() as stack:

        def make(**config: Any) -> TestClient:
            return stack.enter_context(TestClient(create_app(SimulatorConfig(**config))))

        yield make


def mms_request(*messages: dict[str, Any], bulk_id: str | None = "bulk-1") -> dict[str, Any]:
    body: dict[str, Any] = {"messages": list(messages)}
    if bulk_id is not None:
        body["options"] = {"schedule": {"bulkId": bulk_id}}
    return body


def mms_message(
    *destinations: tuple[str, str],
    title: str | None = "Summer sale",
    text: str | None = "20% off",
    media_url: str | None = IMAGE,
    failover: dict[str, str] | None = None,
    sender: str = "441134960000",
) -> dict[str, Any]:
    segments: list[dict[str, str]] = []
    if text is not None:
        segments.append({"type": "TEXT", "text": text})
    if media_url is not None:
        segments.append({"type": "LINK", "contentType": "image/jpeg", "contentUrl": media_url})
    content: dict[str, Any] = {"messageSegments": segments}
    if title is not None:
        content["title"] = title
    message: dict[str, Any] = {
        "sender": sender,
        "destinations": [{"to": to, "messageId": mid} for to, mid in destinations],
        "content": content,
    }
    if failover is not None:
        message["options"] = {"smsFailover": failover}
    return message


FAILOVER = {"sender": "InfoSMS", "text": "20% off: https://x.example/s"}


def stats(http: TestClient) -> dict[str, Any]:
    return http.get("/_simulator/stats").json()


def received(http: TestClient, number: str) -> list[dict[str, Any]]:
    return http.get("/_simulator/messages", params={"to": number}).json()["messages"]


def statuses(response) -> dict[str, tuple[int, str]]:
    return {
        m["messageId"]: (m["status"]["id"], m["status"]["name"])
        for m in response.json()["messages"]
    }


# -- auth and validation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},  # no Authorization header
        {"Authorization": "App wrong-key"},  # unknown key
        {"Authorization": "Bearer simulator-key"},  # another scheme
    ],
)
def test_bad_credentials_get_401_e401(client_for, headers):
    http = client_for()
    response = http.post(
        MMS, json=mms_request(mms_message(("41793026727", "m-1"))), headers=headers
    )
    assert response.status_code == 401
    body = response.json()
    assert (body["errorCode"], body["description"], body["violations"]) == (
        "E401",
        "Unauthorized",
        [],
    )
    counters = stats(http)
    assert counters["requests"]["infobip_mms_post"] == 1
    assert (counters["infobip_mms_bulks"], counters["messages"]) == (0, 0)


def test_the_sms_keys_are_the_mms_keys(client_for):
    http = client_for(infobip_api_keys=["key-a", "key-b"])
    sent = mms_request(mms_message(("41793026727", "m-1")))
    assert http.post(MMS, json=sent, headers=APP_KEY).status_code == 401
    assert http.post(MMS, json=sent, headers={"Authorization": "App key-b"}).status_code == 200


@pytest.mark.parametrize(
    ("content", "properties"),
    [
        (b'{"messages": [', [""]),  # not JSON
        (b"[1]", [""]),  # not an object
        ({"options": {}}, ["messages"]),  # no messages
        ({"messages": []}, ["messages"]),
        (  # no destinations, no sender
            mms_request({**mms_message(("41793026727", "m-1")), "destinations": [], "sender": ""}),
            ["messages[0].sender", "messages[0].destinations"],
        ),
        (  # no segments at all
            mms_request(mms_message(("41793026727", "m-1"), text=None, media_url=None)),
            ["messages[0].content.messageSegments"],
        ),
        (  # a title over Infobip's 66 characters, every violation reported at once
            mms_request(
                mms_message(("41793026727", "m-1"), title="t" * 66),
                mms_message(("41793026834", "m-2"), title="t" * 67),
            ),
            ["messages[1].content.title"],
        ),
        (  # a LINK without contentUrl, an empty TEXT, an unknown segment type
            mms_request(
                {
                    "sender": "441134960000",
                    "destinations": [{"to": "41793026727", "messageId": "m-1"}],
                    "content": {
                        "messageSegments": [
                            {"type": "LINK", "contentType": "image/jpeg"},
                            {"type": "TEXT", "text": ""},
                            {"type": "SMIL", "text": "<smil/>"},
                        ]
                    },
                }
            ),
            [
                "messages[0].content.messageSegments[0].contentUrl",
                "messages[0].content.messageSegments[1].text",
                "messages[0].content.messageSegments[2].type",
            ],
        ),
        (  # media that is not an http(s) URL
            mms_request(mms_message(("41793026727", "m-1"), media_url="ftp://x.example/a.jpg")),
            ["messages[0].content.messageSegments[1].contentUrl"],
        ),
        (  # a failover without text, a destination without `to`
            mms_request(
                {
                    **mms_message(("41793026727", "m-1"), failover={"sender": "InfoSMS"}),
                    "destinations": [{"messageId": "m-1"}],
                }
            ),
            ["messages[0].options.smsFailover.text", "messages[0].destinations[0].to"],
        ),
    ],
)
def test_invalid_requests_get_e400_with_violations_and_record_nothing(
    client_for, content, properties
):
    http = client_for()
    if isinstance(content, bytes):
        headers = {**APP_KEY, "Content-Type": "application/json"}
        response = http.post(MMS, content=content, headers=headers)
    else:
        response = http.post(MMS, json=content, headers=APP_KEY)
    assert response.status_code == 400
    body = response.json()
    assert (body["errorCode"], body["description"]) == ("E400", "Request cannot be processed.")
    assert [v["property"] for v in body["violations"]] == properties
    assert all(v["violation"] for v in body["violations"])
    counters = stats(http)
    assert (counters["infobip_mms_bulks"], counters["messages"], counters["failed"]) == (0, 0, 0)


# -- statuses and the ledger -------------------------------------------------------------------


def test_mixed_destinations_are_accepted_or_rejected_one_by_one(client_for):
    http = client_for(reject_prefixes=["447"])
    sent = mms_request(
        mms_message(("41793026727", "m-1"), ("447491163443", "m-2"), failover=FAILOVER),
        mms_message(("+41793026834", "m-3"), ("12", "m-4"), title=None, media_url=None),
    )
    response = http.post(MMS, json=sent, headers=APP_KEY)

    assert response.status_code == 200
    body = response.json()
    assert body["bulkId"] == "bulk-1"
    assert statuses(response) == {
        "m-1": (26, "PENDING_ACCEPTED"),
        "m-2": (14, "REJECTED_DESTINATION"),  # a reject_prefixes number
        "m-3": (26, "PENDING_ACCEPTED"),
        "m-4": (8, "REJECTED_PREFIX_MISSING"),  # not a phone number
    }
    first = body["messages"][0]
    assert (first["status"]["groupId"], first["status"]["groupName"]) == (1, "PENDING")
    assert (first["destination"], first["details"]) == ("41793026727", {"messageCount": 1})

    (entry,) = received(http, "+41793026727")
    assert entry == {
        "provider": "infobip_mms",
        "channel": "mms",
        "type": "mms",
        "batch_id": None,
        "client_reference": "bulk-1",  # the bulkId the client chose
        "message_id": "m-1",
        "from": "441134960000",
        "subject": "Summer sale",  # the title
        "body": "20% off",  # the TEXT segments
        "media_url": IMAGE,  # the LINK segment
        "created_at": entry["created_at"],
    }
    (text_only,) = received(http, "41793026834")
    assert (text_only["subject"], text_only["media_url"], text_only["message_id"]) == (
        None,
        None,
        "m-3",
    )
    assert received(http, "447491163443") == []
    counters = stats(http)
    assert counters["infobip_mms_bulks"] == 1 and counters["bulks"] == 0
    assert (counters["messages"], counters["failed"], counters["recipients"]) == (2, 2, 2)
    assert counters["mms_messages"]["infobip_mms"] == 2
    assert counters["provider_messages"]["infobip_sms"] == 0
    assert counters["requests"]["infobip_mms_post"] == 1


def test_without_message_ids_or_bulk_id_gets_generated_ones(client_for):
    http = client_for()
    message = mms_message(("41793026727", "unused"))
    message["destinations"] = [{"to": "41793026727"}]
    response = http.post(MMS, json=mms_request(message, bulk_id=None), headers=APP_KEY)
    (answer,) = response.json()["messages"]
    assert response.json()["bulkId"] and answer["messageId"]
    (entry,) = received(http, "41793026727")
    assert (entry["message_id"], entry["client_reference"]) == (answer["messageId"], None)


def test_duplicate_message_id_is_refused_and_not_counted_again(client_for):
    http = client_for()
    sent = mms_request(mms_message(("41793026727", "m-1"), ("41793026834", "m-2")))
    assert http.post(MMS, json=sent, headers=APP_KEY).status_code == 200
    again = mms_request(
        mms_message(("41793026727", "m-1"), ("41793026834", "m-2"), ("41793026700", "m-3"))
    )
    response = http.post(MMS, json=again, headers=APP_KEY)

    assert statuses(response) == {
        "m-1": (23, "REJECTED_DUPLICATE_MESSAGE_ID"),
        "m-2": (23, "REJECTED_DUPLICATE_MESSAGE_ID"),
        "m-3": (26, "PENDING_ACCEPTED"),
    }
    counters = stats(http)
    assert (counters["messages"], counters["recipients"], counters["failed"]) == (3, 3, 0)
    assert counters["max_per_recipient"] == 1 and counters["duplicates"] == 0
    assert counters["infobip_mms_duplicate_message_ids"] == 2
    assert counters["duplicate_message_ids"] == 0  # the SMS counter
    # reset forgets the messageIds
    http.post("/_simulator/reset")
    assert statuses(http.post(MMS, json=sent, headers=APP_KEY))["m-1"][1] == "PENDING_ACCEPTED"


def test_sms_and_mms_keep_their_own_message_ids(client_for):
    http = client_for()
    sms = {
        "messages": [
            {
                "sender": "InfoSMS",
                "destinations": [{"to": "41793026727", "messageId": "shared"}],
                "content": {"text": "Hi"},
            }
        ]
    }
    mms = mms_request(mms_message(("41793026727", "shared")))
    assert statuses(http.post(SMS, json=sms, headers=APP_KEY))["shared"][0] == 26
    assert statuses(http.post(MMS, json=mms, headers=APP_KEY))["shared"][0] == 26
    assert statuses(http.post(SMS, json=sms, headers=APP_KEY))["shared"][0] == 23
    assert statuses(http.post(MMS, json=mms, headers=APP_KEY))["shared"][0] == 23
    assert [m["provider"] for m in received(http, "41793026727")] == ["infobip_sms", "infobip_mms"]


@pytest.mark.parametrize(
    ("failover", "kind", "body", "sender", "failed"),
    [
        # every MMS falls back: an SMS with the failover text, from the failover sender
        (FAILOVER, "sms", FAILOVER["text"], "InfoSMS", 0),
        # a failover without sender comes from the MMS sender
        ({"text": "plain"}, "sms", "plain", "441134960000", 0),
        # no smsFailover: the MMS fails (still PENDING_ACCEPTED in the answer)
        (None, None, None, None, 1),
    ],
)
def test_fallback_injection(client_for, failover, kind, body, sender, failed):
    http = client_for(mms_fallback_rate=1)
    sent = mms_request(mms_message(("41793026727", "m-1"), failover=failover))
    response = http.post(MMS, json=sent, headers=APP_KEY)
    assert statuses(response) == {"m-1": (26, "PENDING_ACCEPTED")}
    entries = received(http, "41793026727")
    assert [(m["type"], m["body"], m["from"]) for m in entries] == (
        [(kind, body, sender)] if kind else []
    )
    counters = stats(http)
    assert (counters["fallback_sms"], counters["failed"]) == (1 - failed, failed)
    assert counters["messages"] == counters["mms_messages"]["infobip_mms"] == 1 - failed


# -- faults ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "status", "code"),
    [
        ({"error_429_rate": 1, "retry_after_seconds": 2}, 429, "E429"),
        ({"error_5xx_rate": 1}, 500, "E500"),
        ({"timeout_rate": 1, "hang_seconds": 0.01}, 504, "E504"),
    ],
)
def test_faults_answer_errors_and_record_nothing(client_for, config, status, code):
    http = client_for(**config)
    sent = mms_request(mms_message(("41793026727", "m-1")))
    response = http.post(MMS, json=sent, headers=APP_KEY)
    assert response.status_code == status
    assert response.json()["errorCode"] == code
    if status == 429:
        assert response.headers["Retry-After"] == "2"
    counters = stats(http)
    assert (counters["infobip_mms_bulks"], counters["messages"]) == (0, 0)
    assert sum(counters["faults"].values()) == 1
    http.put("/_simulator/config", json={})  # nothing was recorded: the messageId is free
    assert statuses(http.post(MMS, json=sent, headers=APP_KEY))["m-1"][0] == 26


def test_hang_after_accept_records_then_answers_late(client_for):
    http = client_for(hang_after_accept=[2], hang_seconds=0.3)
    elapsed = []
    for i in range(3):
        sent = mms_request(mms_message((f"4179302672{i}", f"m-{i}")))
        started = time.monotonic()
        assert http.post(MMS, json=sent, headers=APP_KEY).status_code == 200
        elapsed.append(time.monotonic() - started)
    assert elapsed[1] >= 0.3 > max(elapsed[0], elapsed[2])
    counters = stats(http)
    assert counters["infobip_mms_bulks"] == 3 and counters["messages"] == 3
    assert counters["faults"]["hang_after_accept"] == 1


# -- end to end: the real InfobipMmsClient over loopback --------------------------------------


@pytest.fixture(scope="module")
def simulator():
    with SimulatorProcess(port=0) as sim:
        yield sim


@pytest.fixture
def sim(simulator):
    simulator.set_config(SimulatorConfig())
    simulator.reset()
    return simulator


def test_infobip_mms_through_the_real_client(sim):
    sim.set_config(SimulatorConfig(reject_prefixes=["15550000009"]))
    to = [f"+1555{i:07d}" for i in range(10)]  # to[9] is refused
    messages = [
        InfobipMmsMessage(
            sender="441134960000",
            destinations=[(number, f"e2e:ibmms:{i}") for i, number in enumerate(to[:5])],
            title="Summer sale",
            text="20% off this week",
            media_url=IMAGE,
            media_content_type="image/jpeg",
            fallback_text="20% off: https://x.example/s",
            fallback_sender="InfoSMS",
        ),
        InfobipMmsMessage(
            sender="441134960000",
            destinations=[(number, f"e2e:ibmms:{i}") for i, number in enumerate(to[5:], 5)],
            title=None,
            text="Text only",
            media_url=None,
            media_content_type=None,
            fallback_text=None,
        ),
    ]
    with InfobipMmsClient(sim.infobip_credentials()) as client:
        results = client.send(messages, bulk_id="e2e:ibmms:bulk")
        again = client.send(messages, bulk_id="e2e:ibmms:bulk")  # a resend is harmless

    assert [r.to for r in results] == to
    assert [r.accepted for r in results] == [True] * 9 + [False]
    assert (results[-1].status_code, results[-1].error) == (14, "REJECTED_DESTINATION")
    assert [r.accepted for r in again] == [True] * 9 + [False]  # status 23 reads as accepted
    counters = sim.stats()
    assert counters["requests"]["infobip_mms_post"] == 2
    assert counters["infobip_mms_duplicate_message_ids"] == 9
    assert counters["mms_messages"]["infobip_mms"] == 9 and counters["failed"] == 2
    assert counters["max_per_recipient"] == 1 and counters["duplicates"] == 0
    (entry,) = sim.messages(to[2])
    assert (entry["provider"], entry["type"], entry["subject"], entry["media_url"]) == (
        "infobip_mms",
        "mms",
        "Summer sale",
        IMAGE,
    )
    assert (entry["message_id"], entry["client_reference"]) == ("e2e:ibmms:2", "e2e:ibmms:bulk")
    assert sim.messages(to[7])[0]["body"] == "Text only"
    arrivals = sim.arrivals()
    assert [n for _, n in arrivals] == [10, 10]
    assert arrivals[0][0] == 0.0 and arrivals[1][0] >= 0.0


def test_infobip_mms_timeout_after_accept_is_resent_and_counted_once(sim):
    sim.set_config(SimulatorConfig(hang_after_accept=[1], hang_seconds=3))
    to = [f"+1555{i:07d}" for i in range(20)]
    message = InfobipMmsMessage(
        sender="441134960000",
        destinations=[(n, f"e2e:ibmms:hang:{i}") for i, n in enumerate(to)],
        title="Once",
        text="Once",
        media_url=None,
        media_content_type=None,
        fallback_text=None,
    )
    with InfobipMmsClient(
        sim.infobip_credentials(), timeout_seconds=0.4, backoff_seconds=0.05
    ) as client:
        results = client.send([message], bulk_id="e2e:ibmms:hang")

    assert len(results) == 20 and all(r.accepted for r in results)
    counters = sim.stats()
    assert counters["faults"]["hang_after_accept"] == 1
    assert counters["requests"]["infobip_mms_post"] == 2
    assert counters["infobip_mms_duplicate_message_ids"] == 20
    assert counters["messages"] == 20 and counters["duplicates"] == 0
