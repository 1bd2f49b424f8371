"""Inbound messages posted by the simulator: its app runs in-process (Starlette's TestClient)
and posts to a small receiver over loopback; what arrives must parse, with the webhook
parsers, into the message that was asked for. Also: copies keep their message id, Sinch
signing and Basic credentials, `inbound_urls`, bad requests naming their field, and
`SimulatorProcess.inbound` against a simulator process."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from integrations.simulator.app import create_app
from integrations.simulator.config import REPORT_PROVIDERS, SimulatorConfig
from integrations.simulator.inbound import text_part_url
from integrations.simulator.server import SimulatorProcess, free_port
from integrations.webhooks.inbound import INBOUND_PARSERS, InboundMessage, is_inbound
from integrations.webhooks.security import verify_sinch_signature
from tests.integrations.test_simulator_reports import Receiver

PHONE = "+15551234567"
SHORT_CODE = "40404"
LONG_NUMBER = "+12025550100"
IMAGES = tuple(f"https://cdn.example.com/{n}.jpg" for n in range(3))
VIDEO = "https://cdn.example.com/clip.mp4"
BASE = "http://testserver"  # where the in-process simulator is reached, and serves from


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def simulator(receiver: Receiver) -> Iterator[Callable[..., TestClient]]:
    """Starts the simulator app in-process with a report URL per provider (`/{provider}` on
    the receiver) plus `config`; forgets what the receiver got before."""
    started: list[TestClient] = []

    def start(**config: Any) -> TestClient:
        receiver.clear()
        urls = {provider: f"{receiver.url}/{provider}" for provider in REPORT_PROVIDERS}
        client = TestClient(create_app(SimulatorConfig(**{"report_urls": urls, **config})))
        started.append(client.__enter__())
        return client

    yield start
    for client in started:
        client.__exit__(None, None, None)


def post(client: TestClient, api: str, to: str = SHORT_CODE, **fields: Any) -> dict[str, Any]:
    response = client.post(
        "/_simulator/inbound", json={"api": api, "from": PHONE, "to": to, **fields}
    )
    assert response.status_code == 200, response.text
    return response.json()


def parsed(receiver: Receiver, api: str, path: str | None = None) -> list[InboundMessage]:
    """Every message the receiver got at `/{path}` (default `/{api}`), through `api`'s
    webhook parser."""
    bodies = receiver.bodies(path or api)
    assert all(is_inbound(api, body) for body in bodies)
    return [message for body in bodies for message in INBOUND_PARSERS[api](body)]


# -- round trips ---------------------------------------------------------------------------

ROUND_TRIPS = [
    # a keyword by SMS to a short code
    ("sinch_sms", SHORT_CODE, dict(texts=["STOP"]), [dict(channel="sms", texts=("STOP",))]),
    # an MMS through the SMS API: mo_media
    (
        "sinch_sms",
        LONG_NUMBER,
        dict(texts=["Look"], media=[IMAGES[0]], subject="Hi"),
        [dict(channel="mms", texts=("Look",), media=(IMAGES[0],), subject="Hi")],
    ),
    # a subject alone is an MMS too
    ("sinch_sms", SHORT_CODE, dict(subject="Hi"), [dict(channel="mms", texts=(), subject="Hi")]),
    (
        "infobip_sms",
        LONG_NUMBER,
        dict(texts=["HELP me"]),
        [dict(channel="sms", texts=("HELP me",))],
    ),
    # several text parts and media: media first, then the texts
    (
        "infobip_mms",
        LONG_NUMBER,
        dict(texts=["one", "two"], media=[IMAGES[0], VIDEO]),
        [dict(channel="mms", texts=("one", "two"), media=(IMAGES[0], VIDEO), subject=None)],
    ),
    # every part a file: the texts are files the simulator serves
    (
        "sinch_mms",
        SHORT_CODE,
        dict(texts=["one", "two"], media=[IMAGES[0]], subject="Question"),
        [
            dict(
                channel="mms",
                texts=(),
                media=(IMAGES[0], text_part_url(BASE, "one"), text_part_url(BASE, "two")),
                subject="Question",
            )
        ],
    ),
    # a plain text reaches a Conversation app on the SMS channel
    (
        "sinch_conversation",
        SHORT_CODE,
        dict(texts=["STOP"]),
        [dict(channel="sms", texts=("STOP",), media=(), postback=None)],
    ),
    # seed 003: three images are three media messages
    (
        "sinch_conversation",
        LONG_NUMBER,
        dict(media=list(IMAGES)),
        [dict(channel="mms", texts=(), media=(url,)) for url in IMAGES],
    ),
    # seed 003: three images with a text are three media cards with the same caption
    (
        "sinch_conversation",
        LONG_NUMBER,
        dict(texts=["Mine"], media=list(IMAGES)),
        [dict(channel="mms", texts=("Mine",), media=(url,)) for url in IMAGES],
    ),
    # a choice response: the postback, no text part
    (
        "sinch_conversation",
        SHORT_CODE,
        dict(postback="opt-in"),
        [dict(channel="sms", texts=(), media=(), postback="opt-in")],
    ),
]


@pytest.mark.parametrize(("api", "to", "fields", "expected"), ROUND_TRIPS)
def test_what_the_simulator_posts_parses_into_the_message_asked_for(
    simulator, receiver, api: str, to: str, fields: dict, expected: list[dict]
) -> None:
    answer = post(simulator(), api, to, **fields)
    messages = parsed(receiver, api)
    assert answer["posted"] == len(expected) and answer["statuses"] == [200] * len(expected)
    assert [m.message_id for m in messages] == answer["message_ids"]
    assert answer["message_id"] == answer["message_ids"][0]
    assert len(set(answer["message_ids"])) == len(expected)
    for message, wanted in zip(messages, expected, strict=True):
        assert (message.provider, message.sender, message.recipient) == (api, PHONE, to)
        assert message.at is not None
        for field, value in wanted.items():
            assert getattr(message, field) == value, field


def test_sinch_mms_text_parts_are_served_by_the_simulator(simulator, receiver) -> None:
    client = simulator()
    post(client, "sinch_mms", texts=["STOP", "Ünïcode ✓"])
    (message,) = parsed(receiver, "sinch_mms")
    texts = [client.get(url.removeprefix(BASE)) for url in message.media]
    assert [(r.status_code, r.headers["content-type"]) for r in texts] == [
        (200, "text/plain; charset=utf-8")
    ] * 2
    assert [r.text for r in texts] == ["STOP", "Ünïcode ✓"]
    assert client.get("/_simulator/inbound/%FF.txt").status_code == 404


def test_a_conversation_contact_is_the_same_for_every_message_of_a_phone(simulator, receiver):
    client = simulator()
    post(client, "sinch_conversation", texts=["hi"])
    post(client, "sinch_conversation", media=list(IMAGES[:2]))
    contacts = {m.contact_id for m in parsed(receiver, "sinch_conversation")}
    assert len(contacts) == 1 and None not in contacts


# -- copies, answers -----------------------------------------------------------------------


@pytest.mark.parametrize("api", REPORT_PROVIDERS)
def test_copies_repeat_the_same_body_and_message_id(simulator, receiver, api: str) -> None:
    fields = {"media": [IMAGES[0]]} if api in ("infobip_mms", "sinch_mms") else {}
    answer = post(simulator(), api, texts=["STOP"], copies=2, **fields)
    first, second = receiver.at(api)
    assert first.body == second.body
    assert answer["posted"] == 2 and answer["statuses"] == [200, 200]
    assert [m.message_id for m in parsed(receiver, api)] == [answer["message_id"]] * 2


def test_each_post_is_made_once_and_its_answer_reported(simulator, receiver) -> None:
    client = simulator()
    receiver.script[:] = [503, 202]
    answer = post(client, "sinch_conversation", media=list(IMAGES[:2]), copies=2)
    assert answer["statuses"] == [503, 202, 200, 200]  # not retried: the caller decides
    assert len(receiver.at("sinch_conversation")) == 4


def test_an_unreachable_url_answers_status_zero(simulator, receiver) -> None:
    client = simulator(inbound_urls={"sinch_sms": f"http://127.0.0.1:{free_port()}/nobody"})
    assert post(client, "sinch_sms", texts=["STOP"])["statuses"] == [0]


# -- where, signed how ---------------------------------------------------------------------


def test_inbound_urls_win_over_report_urls(simulator, receiver) -> None:
    client = simulator(inbound_urls={"infobip_sms": f"{receiver.url}/inbox"})
    post(client, "infobip_sms", texts=["HELP"])
    post(client, "sinch_sms", texts=["HELP"])  # no inbound URL: its report URL
    assert len(receiver.at("inbox")) == 1 and receiver.at("infobip_sms") == []
    assert len(receiver.at("sinch_sms")) == 1


def test_no_url_at_all_is_a_bad_request(simulator) -> None:
    client = simulator(report_urls={})
    response = client.post(
        "/_simulator/inbound", json={"api": "sinch_sms", "from": PHONE, "to": SHORT_CODE}
    )
    assert response.status_code == 400
    assert response.json()["text"] == "api: no inbound_urls or report_urls entry for sinch_sms"


def test_signed_and_authenticated_as_the_providers_reports_are(simulator, receiver) -> None:
    client = simulator(
        report_signing_secret="SMSWebhooksSecret",
        report_basic_auth={"username": "hooks", "password": "s3cret"},
    )
    for api in REPORT_PROVIDERS:
        fields = {"media": [IMAGES[0]]} if api in ("infobip_mms", "sinch_mms") else {}
        post(client, api, texts=["STOP"], **fields)
    basic = "Basic " + base64.b64encode(b"hooks:s3cret").decode()
    for api in REPORT_PROVIDERS:
        (call,) = receiver.at(api)
        signed = api in ("sinch_sms", "sinch_conversation")
        assert ("x-sinch-webhook-signature" in call.headers) is signed, api
        if signed:
            assert call.headers["x-sinch-webhook-signature-algorithm"] == "HmacSHA256"
            assert verify_sinch_signature(
                "SMSWebhooksSecret", call.body, call.headers, now=time.time()
            )
        credentials = api in ("infobip_sms", "infobip_mms", "sinch_conversation")
        assert (call.headers.get("authorization") == basic) is credentials, api


# -- bad requests --------------------------------------------------------------------------

BAD = [
    ({"api": "telegram"}, "api: unknown api 'telegram'"),
    ({"from": "ACME"}, "from: 'ACME' is not a phone number"),
    ({"from": None}, "from: Input should be a valid string"),
    ({"to": "+1-202"}, "to: '+1-202' is neither a phone number nor a short code"),
    ({"texts": ["STOP", ""]}, "texts: a text part is empty"),
    ({"media": ["ftp://x/a.jpg"]}, "media: 'ftp://x/a.jpg' is not an http(s) URL"),
    ({"copies": 0}, "copies: Input should be greater than or equal to 1"),
    ({"copies": 11}, "copies: Input should be less than or equal to 10"),
    ({"color": "red"}, "color: Extra inputs are not permitted"),
    ({"texts": []}, "texts: the message needs a text, media, a subject or a postback"),
    ({"texts": ["a", "b"]}, "texts: sinch_sms carries at most 1 text part"),
    (
        {"api": "infobip_sms", "media": [VIDEO]},
        "media: infobip_sms inbound messages carry no media",
    ),
    ({"api": "infobip_sms", "subject": "x"}, "subject: infobip_sms inbound messages carry no"),
    ({"api": "infobip_mms", "subject": "x"}, "subject: infobip_mms inbound messages carry no"),
    ({"postback": "yes"}, "postback: only sinch_conversation carries a postback, not sinch_sms"),
    (
        {"api": "sinch_conversation", "postback": "yes"},
        "postback: a choice response carries no texts or media",
    ),
    ({"api": "sinch_conversation", "subject": "x"}, "subject: sinch_conversation inbound"),
]


@pytest.mark.parametrize(("change", "message"), BAD)
def test_bad_requests_name_the_field(simulator, receiver, change: dict, message: str) -> None:
    payload = {"api": "sinch_sms", "from": PHONE, "to": SHORT_CODE, "texts": ["STOP"], **change}
    response = simulator().post("/_simulator/inbound", json=payload)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_inbound" and body["text"].startswith(message), body["text"]
    assert receiver.calls == []


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"inbound_urls": {"sinch": "http://x"}}, "inbound_urls: unknown provider 'sinch'"),
        ({"inbound_urls": {"sinch_sms": "ftp://x"}}, "inbound_urls.sinch_sms: 'ftp://x' is not"),
    ],
)
def test_bad_inbound_urls_are_refused(config: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        SimulatorConfig(**config)


def test_inbound_urls_default_to_report_urls() -> None:
    config = SimulatorConfig(
        report_urls={"sinch_sms": "http://reports/sms", "sinch_mms": "http://reports/mms"},
        inbound_urls={"sinch_mms": "http://inbox/mms"},
    )
    assert config.inbound_url("sinch_sms") == "http://reports/sms"
    assert config.inbound_url("sinch_mms") == "http://inbox/mms"
    assert config.inbound_url("infobip_sms") is None


# -- the process helper --------------------------------------------------------------------


def test_simulator_process_posts_inbound_messages(receiver) -> None:
    config = SimulatorConfig(inbound_urls={"sinch_sms": f"{receiver.url}/process"})
    receiver.clear()
    with SimulatorProcess(config, port=0) as sim:
        answer = sim.inbound("sinch_sms", PHONE, SHORT_CODE, texts=["STOP"], copies=2)
        with pytest.raises(ValueError, match="postback: only sinch_conversation"):
            sim.inbound("sinch_sms", PHONE, SHORT_CODE, postback="yes")
    assert answer["posted"] == 2 and answer["statuses"] == [200, 200]
    messages = parsed(receiver, "sinch_sms", "process")
    assert [(m.message_id, m.texts, m.sender, m.recipient) for m in messages] == [
        (answer["message_id"], ("STOP",), PHONE, SHORT_CODE)
    ] * 2
