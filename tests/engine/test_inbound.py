"""Inbound messages: keywords change consent with a ledger entry, answer from the number
the customer wrote to, become customer events, and count once however often posted."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta
from ipaddress import IPv4Address
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from engine.inbound import (
    plan_inbound,
    receive_inbound,
    reply_integration,
    send_abandoned_replies,
    send_replies,
)
from engine.store import KEYWORD_REPLIES
from engine.text_parts import TextPartReader
from engine.webhooks import create_webhook_app
from integrations.gateways import DispatchOutcome, GatewayPool
from integrations.webhooks.inbound import InboundMessage
from tests.conftest import NOW, project_settings

PHONE = "+12125550199"
SHORT_CODE = "40404"
STOP = InboundMessage(
    provider="sinch_sms",
    message_id="01FC66621XXXXX119Z8PMV1QPQ",
    sender=PHONE,
    recipient=SHORT_CODE,
    channel="sms",
    texts=("Stop",),
    media=(),
    subject=None,
    postback=None,
    contact_id=None,
    at=NOW - timedelta(seconds=5),
)


class RecordingGateway:
    """Accepts every request and remembers it."""

    name = "simulator"

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any], bool]] = []

    def send(self, key: str, payload: dict[str, Any], *, reconcile: bool = False):
        self.sent.append((key, payload, reconcile))
        return DispatchOutcome(provider_id=f"batch-{len(self.sent)}")

    def close(self) -> None:
        pass


def settings(**keywords):
    return project_settings(keywords={"auto_responses": {"JOIN": "Welcome!"}, **keywords})


def customers(store, *ids: str, phone: str = PHONE) -> None:
    store.customers.upsert([{"id": i, "phone": phone, "attributes": {}} for i in ids], NOW)
    store.customers.change_consents(
        [
            {
                "customer_id": i,
                "category": "sms_marketing",
                "granted": True,
                "source": "import",
                "at": NOW - timedelta(days=1),
                "details": {},
            }
            for i in ids
        ]
    )


# -- what one message does (pure) ----------------------------------------------------------


def test_stop_revokes_for_every_customer_with_the_phone_and_answers_from_our_number():
    effects = plan_inbound(STOP, ["c1", "c2"], settings(), NOW)
    assert [(c["customer_id"], c["granted"], c["source"]) for c in effects.consent_changes] == [
        ("c1", False, "keyword"),
        ("c2", False, "keyword"),
    ]
    assert effects.consent_changes[0]["at"] == STOP.at
    assert effects.consent_changes[0]["details"] == {
        "keyword": "STOP",
        "sender": PHONE,
        "recipient": SHORT_CODE,
        "message_id": STOP.message_id,
        "provider": "sinch_sms",
    }
    assert [e["customer_id"] for e in effects.events] == ["c1", "c2"]
    assert effects.events[0]["type"] == "inbound_message"
    assert effects.events[0]["properties"]["keyword_family"] == "stop"
    assert effects.dispatch is not None and effects.send is not None
    assert effects.dispatch["integration"] == "simulator"
    assert effects.dispatch["payload"]["sender"] == SHORT_CODE
    assert effects.dispatch["payload"]["recipients"] == [PHONE]
    assert effects.dispatch["payload"]["body"] == settings().keywords.stop_response
    assert effects.send["scenario_id"] == KEYWORD_REPLIES
    assert effects.send["customer_id"] == "c1" and not effects.send["tracked"]
    assert effects.message["keyword"] == "STOP" and effects.message["customer_ids"] == ["c1", "c2"]


@pytest.mark.parametrize(
    ("texts", "granted", "answer"),
    [
        (("START",), True, "start_response"),
        (("yes",), True, "start_response"),
        (("HELP",), None, "help_text"),
        (("info",), None, "help_text"),
        (("join",), None, "Welcome!"),
        (("Where is my order?",), None, None),
        (("nice", "QUIT"), False, "stop_response"),  # a later MMS text part
    ],
)
def test_each_keyword_family(texts, granted, answer):
    project = settings()
    effects = plan_inbound(replace(STOP, texts=texts), ["c1"], project, NOW)
    changes = [c["granted"] for c in effects.consent_changes]
    assert changes == ([] if granted is None else [granted])
    assert len(effects.events) == 1  # every inbound message is a customer event
    expected = getattr(project.keywords, answer, answer) if answer else None
    body = effects.dispatch["payload"]["body"] if effects.dispatch else None
    assert body == expected


def test_a_stranger_gets_the_answer_but_no_ledger_entry_or_event():
    effects = plan_inbound(STOP, [], settings(), NOW)
    assert effects.consent_changes == [] and effects.events == []
    assert effects.send is not None and effects.send["tracked"]  # sent, never tracked


def test_no_answer_when_the_project_gives_none():
    effects = plan_inbound(STOP, ["c1"], settings(stop_response=None), NOW)
    assert effects.dispatch is None and effects.send is None
    assert [c["granted"] for c in effects.consent_changes] == [False]


def test_without_our_number_the_default_sender_answers():
    conversation = replace(STOP, provider="sinch_conversation", recipient=None, channel="mms")
    effects = plan_inbound(conversation, ["c1"], settings(), NOW)
    assert effects.dispatch["payload"]["sender"] == "+12025550100"
    assert effects.dispatch["integration"] == "simulator"  # the default SMS provider


@pytest.mark.parametrize(
    ("provider", "configured", "expected"),
    [
        ("sinch_sms", None, "simulator"),  # the integration speaking the API it came on
        ("infobip_sms", None, "infobip"),
        ("sinch_mms", None, "simulator"),  # MMS APIs do not send SMS: the default
        ("sinch_conversation", None, "simulator"),
        ("infobip_sms", "simulator", "simulator"),  # configured wins
    ],
)
def test_reply_integration(provider, configured, expected):
    project = project_settings(
        integrations={
            "simulator": {"type": "simulator"},
            "infobip": {"type": "simulator", "api": "infobip_sms"},
            "mms": {"type": "simulator", "api": "sinch_mms"},
        },
        keywords={"reply_integration": configured},
    )
    assert reply_integration(project, provider) == expected


def test_keyword_settings_are_checked_against_the_project():
    with pytest.raises(ValueError, match="keywords.consent_category 'promo' is not one of"):
        project_settings(keywords={"consent_category": "promo"})
    with pytest.raises(ValueError, match="keywords.reply_integration 'mms' is not an SMS"):
        project_settings(keywords={"reply_integration": "mms"})


# -- stored once, with all it causes -------------------------------------------------------


def test_stop_is_stored_once_and_revokes_with_a_ledger_entry(store):
    customers(store, "c1", "c2")
    project = settings()
    first = receive_inbound(store, project, [STOP, STOP], NOW)  # a copy in the same body
    again = receive_inbound(store, project, [STOP], NOW + timedelta(minutes=1))  # a retry
    assert (first.received, first.new, again.new) == (2, 1, 0)
    assert first.event_types == {"inbound_message"}
    assert store.customers.consented(["c1", "c2"], "sms_marketing") == set()
    ledger = store.customers.consent_history("c1")
    assert [(e["source"], e["granted"]) for e in ledger] == [("import", True), ("keyword", False)]
    assert ledger[-1]["details"]["message_id"] == STOP.message_id
    assert len(store.customers.events_after("inbound_message", 0, 10)) == 2
    [stored] = store.inbound.messages()
    assert stored["keyword"] == "STOP" and stored["customer_ids"] == ["c1", "c2"]
    assert stored["reply_key"] == first.replies[0]


def test_start_restores_consent(store):
    customers(store, "c1")
    receive_inbound(store, settings(), [STOP], NOW)
    start = replace(STOP, message_id="second", texts=("START",))
    receive_inbound(store, settings(), [start], NOW + timedelta(minutes=1))
    assert store.customers.consented(["c1"], "sms_marketing") == {"c1"}


def test_replies_are_sent_once_tracked_and_not_counted_by_frequency_policies(store):
    customers(store, "c1")
    project = settings()
    gateway = RecordingGateway()
    pool = GatewayPool(project, opened={"simulator": gateway})
    result = receive_inbound(store, project, [replace(STOP, texts=("help",))], NOW)
    send_replies(store, pool, project, result.replies, NOW)
    send_replies(store, pool, project, result.replies, NOW)  # a second call sends nothing
    assert len(gateway.sent) == 1
    _, payload, reconcile = gateway.sent[0]
    assert payload["sender"] == SHORT_CODE and payload["recipients"] == [PHONE]
    assert not reconcile
    [event] = store.evaluation.campaign_events(KEYWORD_REPLIES)
    assert event["status"] == "enqueued" and event["customer_id"] == "c1"
    assert event["properties"]["keyword"] == "HELP"
    assert store.sends.sent_since(["c1"], NOW - timedelta(days=1)) == {}


def test_a_reply_left_pending_by_a_dead_process_is_sent_by_the_tick(store):
    customers(store, "c1")
    project = settings()
    gateway = RecordingGateway()
    pool = GatewayPool(project, opened={"simulator": gateway})
    receive_inbound(store, project, [STOP], NOW)  # stored; the process died before sending
    assert send_abandoned_replies(store, pool, project, NOW + timedelta(seconds=10)) == 0
    assert send_abandoned_replies(store, pool, project, NOW + timedelta(minutes=2)) == 1
    assert [reconcile for _, _, reconcile in gateway.sent] == [True]  # looked up first
    assert [e["status"] for e in store.evaluation.campaign_events(KEYWORD_REPLIES)] == ["enqueued"]
    assert send_abandoned_replies(store, pool, project, NOW + timedelta(minutes=3)) == 0


def test_a_reply_being_sent_is_left_to_its_sender_until_it_held_it_for_the_lease(store):
    customers(store, "c1")
    project = settings()
    gateway = RecordingGateway()
    pool = GatewayPool(project, opened={"simulator": gateway})
    result = receive_inbound(store, project, [STOP], NOW)
    dispatch_key = store.sends.by_key(result.replies)[result.replies[0]].dispatch_key
    # The webhook process takes the reply to send it, and dies making the request.
    assert store.dispatches.take(dispatch_key, NOW, NOW) is not None
    for later in (timedelta(minutes=2), project.claim_lease):
        send_replies(store, pool, project, result.replies, NOW + later)
        assert send_abandoned_replies(store, pool, project, NOW + later) == 0
    assert gateway.sent == [] and store.evaluation.campaign_events(KEYWORD_REPLIES) == []
    later = NOW + project.claim_lease + timedelta(seconds=1)
    assert send_abandoned_replies(store, pool, project, later) == 1
    assert [reconcile for _, _, reconcile in gateway.sent] == [True]  # looked up first
    assert [e["status"] for e in store.evaluation.campaign_events(KEYWORD_REPLIES)] == ["enqueued"]


# -- over HTTP -------------------------------------------------------------------------------

SINCH_MO = {
    "type": "mo_text",
    "id": "01FC66621XXXXX119Z8PMV1QPQ",
    "from": PHONE,
    "to": SHORT_CODE,
    "body": "STOP",
    "operator_id": "35000",
    "received_at": "2026-11-23T14:59:55Z",
}
INFOBIP_MO = {
    "results": [
        {
            "messageId": "817790313235066447",
            "from": PHONE[1:],
            "to": "12025550100",
            "text": "HELP me",
            "cleanText": "me",
            "keyword": "HELP",
            "receivedAt": "2026-11-23T14:59:55.000+0000",
            "smsCount": 1,
        }
    ],
    "messageCount": 1,
    "pendingMessageCount": 0,
}
CONVERSATION_CARD = {
    "app_id": "01E3S8B6YCMRNR0GGM94H80ACX",
    "accepted_time": "2026-11-23T14:59:55.184581Z",
    "message": {
        "id": "01E6NKBV63YG6K01ENEW7S1N80",
        "direction": "TO_APP",
        "contact_message": {
            "media_card_message": {"url": "https://example.com/a.png", "caption": "stop"}
        },
        "channel_identity": {"channel": "MMS", "identity": PHONE[1:], "app_id": "app"},
        "conversation_id": "01E6K4A8PGZ6MV0GD3C7M901MZ",
        "contact_id": "01E6K4A8N3NANZ05VM0FS80EHD",
        "metadata": "",
    },
}


@pytest.fixture
def client_and_gateway(sqlite_store):
    customers(sqlite_store, "c1")
    project = settings()
    gateway = RecordingGateway()
    started: list[list[str]] = []
    app = create_webhook_app(
        project,
        sqlite_store,
        now=lambda: NOW,
        on_events=started.append,
        gateways=GatewayPool(project, opened={"simulator": gateway}),
    )
    with TestClient(app) as client:
        yield client, gateway, started


@pytest.mark.parametrize(
    ("provider", "body", "keyword", "granted"),
    [
        ("sinch_sms", SINCH_MO, "STOP", set()),
        ("infobip_sms", INFOBIP_MO, "HELP", {"c1"}),
        ("sinch_conversation", CONVERSATION_CARD, "STOP", set()),
    ],
)
def test_inbound_over_http(client_and_gateway, sqlite_store, provider, body, keyword, granted):
    client, gateway, _ = client_and_gateway
    for _ in range(2):  # the provider retries: stored, answered and revoked once
        answer = client.post(f"/webhooks/{provider}", json=body)
        assert answer.status_code == 200, answer.text
    assert answer.json() == {"received": 1, "new": 0}
    assert len(gateway.sent) == 1  # the reply went out after the first acknowledgement
    assert sqlite_store.customers.consented(["c1"], "sms_marketing") == granted
    [stored] = sqlite_store.inbound.messages()
    assert stored["keyword"] == keyword and stored["provider"] == provider
    [event] = sqlite_store.evaluation.campaign_events(KEYWORD_REPLIES)
    assert event["properties"]["keyword"] == keyword


def test_an_inbound_message_starts_the_scenarios_listening_to_it(client_and_gateway, monkeypatch):
    client, _, started = client_and_gateway
    monkeypatch.setattr(
        "engine.store.scenarios.Scenarios.triggered_by",
        lambda self, types: ["replies"] if "inbound_message" in types else [],
    )
    client.post("/webhooks/sinch_sms", json={**SINCH_MO, "body": "Where is my order?"})
    assert started == [["replies"]]


def test_a_malformed_inbound_message_is_refused_and_nothing_stored(
    client_and_gateway, sqlite_store
):
    client, gateway, _ = client_and_gateway
    answer = client.post("/webhooks/sinch_sms", json={**SINCH_MO, "from": None})
    assert answer.status_code == 400 and "from" in answer.json()["error"]
    assert sqlite_store.inbound.messages() == [] and gateway.sent == []


def public_address(host: str) -> list[IPv4Address]:
    """Every host name at a public address (tests resolve no names)."""
    return [IPv4Address("93.184.215.14")]


def test_a_sinch_mms_mo_is_scanned_in_its_text_files(sqlite_store):
    """Sinch MMS MO postbacks carry text parts as files: they are read, then scanned."""
    customers(sqlite_store, "c1")
    project = settings()
    files = {
        "/mo/file1.jpg": b"\xff\xd8not text",
        "/mo/file2.txt": b"Lovely picture",
        "/mo/file3.txt": b"stop sending these",
    }
    fetched: list[str] = []

    def serve(request: httpx.Request) -> httpx.Response:
        fetched.append(request.url.path)
        return httpx.Response(200, content=files[request.url.path])

    gateway = RecordingGateway()
    app = create_webhook_app(
        project,
        sqlite_store,
        now=lambda: NOW,
        gateways=GatewayPool(project, opened={"simulator": gateway}),
        text_parts=TextPartReader(
            httpx.Client(transport=httpx.MockTransport(serve)), resolve=public_address
        ),
    )
    body = {
        "origin": "MMS_MO",
        "code": "N401",
        "from": PHONE[1:],
        "to": SHORT_CODE,
        "tracking-id": "TR-1",
        "message-subject": "Hello",
        "content": [{"file": f"https://mms.example.com{path}"} for path in files],
    }
    with TestClient(app) as client:
        assert client.post("/webhooks/sinch_mms", json=body).status_code == 200
    assert fetched == ["/mo/file2.txt", "/mo/file3.txt"]  # images are not fetched
    [stored] = sqlite_store.inbound.messages()
    assert stored["texts"] == ["Lovely picture", "stop sending these"]
    assert stored["keyword"] == "STOP" and stored["subject"] == "Hello"
    assert sqlite_store.customers.consented(["c1"], "sms_marketing") == set()


# -- the whole loop: the simulator posts, the webhook server answers through the simulator --


@pytest.mark.parametrize(
    ("api", "texts", "media", "keyword"),
    [
        ("sinch_sms", ["stop"], [], "STOP"),
        ("infobip_sms", ["HELP"], [], "HELP"),
        ("infobip_mms", ["Nice", "join"], ["https://cdn.example.com/a.jpg"], "JOIN"),
        ("sinch_mms", ["Lovely", "STOP please"], ["https://cdn.example.com/a.jpg"], "STOP"),
        ("sinch_conversation", ["info"], [], "INFO"),
    ],
)
def test_the_simulator_posts_inbound_messages_and_gets_the_reply(
    sqlite_store, api, texts, media, keyword
):
    from engine.webhooks import serving_in_background
    from integrations.simulator.config import REPORT_PROVIDERS, SimulatorConfig
    from integrations.simulator.server import SimulatorProcess, free_port

    customers(sqlite_store, "c1")
    port = free_port()
    config = SimulatorConfig(
        report_urls={p: f"http://127.0.0.1:{port}/webhooks/{p}" for p in REPORT_PROVIDERS}
    )
    with SimulatorProcess(config) as simulator:
        project = project_settings(
            integrations={"simulator": {"type": "simulator", "url": simulator.url}},
            default_mms_provider=None,
            keywords={"auto_responses": {"JOIN": "Welcome!"}},
        )
        app = create_webhook_app(project, sqlite_store)
        with serving_in_background(app, "127.0.0.1", port):
            answer = simulator.inbound(
                api, sender=PHONE, to=SHORT_CODE, texts=texts, media=media, copies=2
            )
            assert set(answer["statuses"]) == {200}
            deadline = time.monotonic() + 10
            while not simulator.messages(PHONE) and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.2)  # a second reply, were there one, would have come by now
            replies = simulator.messages(PHONE)
    assert [r["body"] for r in replies] == [project.keywords.response(*_family(keyword))]
    assert replies[0]["from"].lstrip("+") == SHORT_CODE  # from the number written to
    [stored] = sqlite_store.inbound.messages()  # posted twice, stored once
    assert stored["keyword"] == keyword and stored["provider"] == api
    assert stored["customer_ids"] == ["c1"] and stored["reply_state"] == "enqueued"
    granted = {"STOP": set()}.get(keyword, {"c1"})
    assert sqlite_store.customers.consented(["c1"], "sms_marketing") == granted


def _family(keyword: str) -> tuple[str, str]:
    families = {"STOP": "stop", "HELP": "help", "INFO": "help", "JOIN": "custom"}
    return families[keyword], keyword


# -- one request, however many messages it arrives as ------------------------------------------


def card(message_id: str, texts: tuple[str, ...] = ("STOP",)) -> InboundMessage:
    """One of the media cards the Conversation API posts for one captioned MMS."""
    return replace(
        STOP, provider="sinch_conversation", message_id=message_id, channel="mms", texts=texts
    )


def test_an_mms_arriving_as_several_messages_is_acted_on_once(store):
    customers(store, "c1")
    project = settings()
    first = receive_inbound(store, project, [card("m1"), card("m2")], NOW)
    third = receive_inbound(store, project, [card("m3")], NOW + timedelta(seconds=2))
    assert (first.new, third.new) == (2, 1)
    assert len(first.replies) == 1 and third.replies == []  # one answer
    keyword_changes = [c for c in store.customers.consent_history("c1") if c["source"] == "keyword"]
    assert len(keyword_changes) == 1  # one ledger entry
    repeats = {m["message_id"]: m["repeat_of"] for m in store.inbound.messages()}
    assert repeats == {"m1": None, "m2": "m1", "m3": "m1"}
    assert (
        len(store.customers.events_after("inbound_message", 0, 10)) == 3
    )  # every message an event


@pytest.mark.parametrize(
    ("later", "gap", "acted"),
    [
        (("STOP",), timedelta(minutes=2), True),  # a minute later: asked again
        (("STOP please",), timedelta(seconds=5), True),  # another text: another request
        (("HELP",), timedelta(seconds=5), True),  # another keyword
    ],
)
def test_what_is_not_a_repeat(store, later, gap, acted):
    customers(store, "c1")
    receive_inbound(store, settings(), [card("m1")], NOW)
    result = receive_inbound(store, settings(), [card("m2", later)], NOW + gap)
    assert bool(result.replies) == acted


def test_stop_start_stop_within_a_minute_ends_revoked(store):
    customers(store, "c1")
    for n, word in enumerate(("STOP", "START", "STOP")):
        receive_inbound(store, settings(), [card(f"m{n}", (word,))], NOW + timedelta(seconds=n))
    assert store.customers.consented(["c1"], "sms_marketing") == set()
    keyword_changes = [
        c["granted"] for c in store.customers.consent_history("c1") if c["source"] == "keyword"
    ]
    assert keyword_changes == [False, True, False]


# -- a phone that texted STOP, whoever has it ---------------------------------------------------


def test_a_phone_that_texted_stop_is_not_sent_to_until_it_texts_start(store):
    from engine.runtime import launch, tick_scenario
    from engine.scenario import parse_scenario
    from tests.engine.test_runtime import HELLO, FakeSinch, make_runtime

    stranger = replace(STOP, sender="+12025550001")  # no customer has this phone yet
    receive_inbound(store, settings(), [stranger], NOW)
    assert store.customers.opted_out_phones(["+12025550001", PHONE], "sms_marketing") == {
        "+12025550001"
    }

    # Later the phone's owner is imported, with consent collected before the STOP.
    sinch = FakeSinch()
    runtime = make_runtime(store, sinch)
    customers(store, "c1", phone="+12025550001")
    scenario = parse_scenario(HELLO, "hello.yaml", runtime.settings)
    launch(runtime, scenario, NOW)
    tick_scenario(runtime, scenario.id, now=lambda: NOW)
    assert sinch.texts() == {}  # not sent
    assert store.evaluation.suppression_counts("test") == [
        ("the phone texted STOP: sms_marketing", 1)
    ]

    start = replace(stranger, message_id="again", texts=("START",))
    receive_inbound(store, settings(), [start], NOW + timedelta(minutes=5))
    assert store.customers.opted_out_phones(["+12025550001"], "sms_marketing") == set()
