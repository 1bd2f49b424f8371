"""Delivery reports posted by the simulator: a simulator process over loopback posts to a
small receiver (FastAPI under uvicorn in a thread) started here, and the tests check each
provider's report shape, the ids that match a report to its send, injected failures,
duplicates and ordering, Sinch signing, Basic credentials and silent countries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import httpx
import orjson
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response
from pydantic import ValidationError

from integrations.simulator.config import REPORT_PROVIDERS, SimulatorConfig
from integrations.simulator.reports import is_silent, sinch_signature
from integrations.simulator.server import SimulatorProcess, free_port

MILLIS_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
SECONDS_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
INFOBIP_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$")
US = "15551230001"
US2 = "15551230002"
GERMAN = "4915112345678"
IMAGE = "https://cdn.example.com/sale.jpg"
CONVERSATION_AUTH = ("simulator-key-id", "simulator-key-secret")


# -- the receiver -------------------------------------------------------------------------


class Call(NamedTuple):
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


class Receiver:
    """Records every POST (path, headers, raw body); answers the statuses in `script` first,
    then 200."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.script: list[int] = []
        self._lock = threading.Lock()
        app = FastAPI()

        @app.post("/{path:path}")
        async def hook(path: str, request: Request) -> Response:
            body = await request.body()
            with self._lock:
                status = self.script.pop(0) if self.script else 200
                self.calls.append(Call(path, dict(request.headers), body))
            return Response(status_code=status)

        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "the receiver did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()
            self.script.clear()

    def at(self, path: str) -> list[Call]:
        with self._lock:
            return [call for call in self.calls if call.path == path]

    def bodies(self, path: str) -> list[Any]:
        return [call.json() for call in self.at(path)]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorProcess]:
    with SimulatorProcess(port=0) as sim:
        yield sim


@pytest.fixture
def configure(simulator, receiver) -> Iterator[Callable[..., SimulatorProcess]]:
    """Configures the simulator with a report URL per provider (`/{provider}` on the
    receiver) and quick retries, plus `changes`; forgets earlier reports and calls."""

    def apply(**changes: Any) -> SimulatorProcess:
        config: dict[str, Any] = {
            "report_urls": {p: f"{receiver.url}/{p}" for p in REPORT_PROVIDERS},
            "report_retry_backoff_ms": 10,
            **changes,
        }
        simulator.set_config(SimulatorConfig(**config))
        simulator.reset()
        receiver.clear()
        return simulator

    yield apply
    simulator.set_config(SimulatorConfig())
    simulator.reset()


def settle(sim: SimulatorProcess) -> dict[str, Any]:
    """The report counters once nothing is pending."""
    return sim.settle_reports(timeout=10)


# -- sending ------------------------------------------------------------------------------


def send_sinch(sim: SimulatorProcess, to: list[str], **changes: Any) -> dict[str, Any]:
    payload = {
        "from": "12345",
        "to": to,
        "body": "Hi",
        "client_reference": "ref-1",
        "delivery_report": "per_recipient",
        **changes,
    }
    response = httpx.post(
        f"{sim.url}/xms/v1/simulator/batches",
        json={k: v for k, v in payload.items() if v is not None},
        headers={"Authorization": "Bearer simulator-token"},
    )
    assert response.status_code == 201, response.text
    return response.json()


def infobip_message(*destinations: tuple[str, str], **changes: Any) -> dict[str, Any]:
    message = {
        "sender": "InfoSMS",
        "destinations": [{"to": to, "messageId": mid} for to, mid in destinations],
        "content": {"text": "Hi"},
        **changes,
    }
    return message


def send_infobip(
    sim: SimulatorProcess, *messages: dict[str, Any], path: str = "/sms/3/messages"
) -> dict[str, Any]:
    response = httpx.post(
        f"{sim.url}{path}",
        json={"messages": list(messages), "options": {"schedule": {"bulkId": "bulk-1"}}},
        headers={"Authorization": "App simulator-key"},
    )
    assert response.status_code == 200, response.text
    return response.json()


def infobip_mms(*destinations: tuple[str, str], failover: dict[str, str] | None = None):
    message: dict[str, Any] = {
        "sender": "441134960000",
        "destinations": [{"to": to, "messageId": mid} for to, mid in destinations],
        "content": {
            "title": "Sale",
            "messageSegments": [
                {"type": "TEXT", "text": "20% off"},
                {"type": "LINK", "contentType": "image/jpeg", "contentUrl": IMAGE},
            ],
        },
    }
    if failover is not None:
        message["options"] = {"smsFailover": failover}
    return message


def send_sinch_mms(sim: SimulatorProcess, to: str = US, **changes: Any) -> dict[str, Any]:
    payload = {
        "action": "sendmms",
        "service-id": "svc",
        "to": to,
        "from": "15557654321",
        "message-subject": "Sale",
        "fallback-sms-text": "Sale: https://example.com/s",
        "client-reference": "mref-1",
        "slide": [{"image": {"url": IMAGE}, "message-text": "20% off"}],
        **changes,
    }
    response = httpx.post(
        f"{sim.url}/ep/v2/", json=payload, headers={"x-api-key": "simulator-mms-key"}
    )
    assert response.json()["status"] == "Success", response.text
    return response.json()


def send_conversation(sim: SimulatorProcess, identity: str = "+" + US) -> dict[str, Any]:
    payload = {
        "app_id": "app-1",
        "recipient": {
            "identified_by": {"channel_identities": [{"channel": "MMS", "identity": identity}]}
        },
        "message": {"text_message": {"text": "Hi"}},
        "channel_priority_order": ["MMS"],
        "correlation_id": "corr-1",
        "message_metadata": "meta-1",
    }
    response = httpx.post(
        f"{sim.url}/v1/projects/proj-1/messages:send", json=payload, auth=CONVERSATION_AUTH
    )
    assert response.status_code == 200, response.text
    return response.json()


def send_everywhere(sim: SimulatorProcess, to: str = US) -> dict[str, Any]:
    """One message to `to` through every provider; their answers by provider."""
    return {
        "sinch_sms": send_sinch(sim, [to]),
        "infobip_sms": send_infobip(sim, infobip_message((to, "sms-1"))),
        "infobip_mms": send_infobip(sim, infobip_mms((to, "mms-1")), path="/mms/2/messages"),
        "sinch_mms": send_sinch_mms(sim, to),
        "sinch_conversation": send_conversation(sim, "+" + to),
    }


def status_of(provider: str, body: dict[str, Any]) -> str:
    """The status a report says, whatever the provider."""
    if provider == "sinch_sms":
        return body["status"]
    if provider.startswith("infobip"):
        (result,) = body["results"]
        return result["status"]["name"]
    if provider == "sinch_mms":
        return body["code"]
    return body["message_delivery_report"]["status"]


# -- Sinch SMS ----------------------------------------------------------------------------


def test_sinch_per_recipient_reports_match_the_batch(configure, receiver):
    sim = configure()
    batch = send_sinch(sim, ["+" + US, US2])
    own = send_sinch(sim, [US], callback_url=f"{receiver.url}/own", client_reference=None)
    send_sinch(sim, [US], delivery_report=None)  # Sinch's default "none": no report

    reports = settle(sim)
    bodies = sorted(receiver.bodies("sinch_sms"), key=lambda b: b["recipient"])
    assert [b["recipient"] for b in bodies] == [US, US2]
    for body in bodies:
        assert set(body) == {
            "type",
            "batch_id",
            "recipient",
            "code",
            "status",
            "at",
            "operator_status_at",
            "client_reference",
        }
        assert body["type"] == "recipient_delivery_report_sms"
        assert (body["batch_id"], body["client_reference"]) == (batch["id"], "ref-1")
        assert (body["code"], body["status"]) == (0, "Delivered")
        assert MILLIS_Z.match(body["at"]) and SECONDS_Z.match(body["operator_status_at"])
    # the batch's own callback_url wins; without a client_reference the field is absent
    (mine,) = receiver.bodies("own")
    assert mine["batch_id"] == own["id"] and "client_reference" not in mine
    assert reports["posted"] == 3 and reports["outcomes"]["delivered"] == 3
    assert len(receiver.calls) == 3


@pytest.mark.parametrize("kind", ["summary", "full"])
def test_sinch_summary_and_full_post_one_report_per_batch(configure, receiver, kind):
    sim = configure()
    batch = send_sinch(
        sim,
        [US, US2],
        body="Hi ${name}",
        parameters={"name": {US: "Ann"}},  # no value and no default for US2: code 405
        delivery_report=kind,
    )
    settle(sim)
    (body,) = receiver.bodies("sinch_sms")
    delivered = {"code": 0, "status": "Delivered", "count": 1}
    unmatched = {"code": 405, "status": "Aborted", "count": 1}
    if kind == "full":
        delivered["recipients"], unmatched["recipients"] = [US], [US2]
    assert body == {
        "type": "delivery_report_sms",
        "batch_id": batch["id"],
        "total_message_count": 2,
        "statuses": [delivered, unmatched],
        "client_reference": "ref-1",
    }


def test_sinch_signature_verifies_with_the_published_algorithm(configure, receiver):
    def verify(secret: str, headers: dict[str, str], raw: bytes) -> bool:
        signed = b".".join(
            [
                raw,
                headers["x-sinch-webhook-signature-nonce"].encode(),
                headers["x-sinch-webhook-signature-timestamp"].encode(),
            ]
        )
        expected = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest())
        return hmac.compare_digest(expected.decode(), headers["x-sinch-webhook-signature"])

    vector = (
        b'{"at":"2025-01-13T09:22:40.914Z","batch_id":"01JHFFHQ0P99JPPNQPJDV7JTBP",'
        b'"client_reference":"a client reference","code":0,'
        b'"operator_status_at":"2025-01-13T09:22:00Z","recipient":"33662162466",'
        b'"status":"Delivered","type":"recipient_delivery_report_sms"}'
    )
    vector_headers = {
        "x-sinch-webhook-signature-nonce": "01JHFFHWYY7HSS4FWTMDTQEK8V",
        "x-sinch-webhook-signature-timestamp": "1736760161",
        "x-sinch-webhook-signature": "ZoHei66PPN/kZjw7hFVfGhJOnml3iGNCMWoyQVcE5o0=",
    }
    assert verify("SMSWebhooksSecret", vector_headers, vector)  # the test's own check is right
    assert (
        sinch_signature("SMSWebhooksSecret", vector, "01JHFFHWYY7HSS4FWTMDTQEK8V", "1736760161")
        == (vector_headers["x-sinch-webhook-signature"])
    )

    sim = configure(report_signing_secret="SMSWebhooksSecret")
    send_sinch(sim, [US, US2])
    send_conversation(sim)
    settle(sim)
    signed = receiver.at("sinch_sms") + receiver.at("sinch_conversation")
    assert len(signed) == 3
    for call in signed:
        assert call.headers["x-sinch-webhook-signature-algorithm"] == "HmacSHA256"
        assert int(call.headers["x-sinch-webhook-signature-timestamp"]) == pytest.approx(
            time.time(), abs=60
        )
        assert verify("SMSWebhooksSecret", call.headers, call.body)
        assert not verify("another secret", call.headers, call.body)
        assert not verify("SMSWebhooksSecret", call.headers, call.body + b" ")
    nonces = {call.headers["x-sinch-webhook-signature-nonce"] for call in signed}
    assert len(nonces) == 3


# -- Infobip ------------------------------------------------------------------------------


def test_infobip_results_carry_the_senders_ids(configure, receiver):
    sim = configure(reject_prefixes=["1999"])
    send_infobip(
        sim,
        infobip_message((US, "m-1"), ("19990000001", "m-2"), webhooks={"callbackData": "cb-1"}),
        infobip_message((US2, "m-3"), webhooks={"delivery": {"url": f"{receiver.url}/own"}}),
        infobip_message(("15551230003", "m-4"), notifyUrl=f"{receiver.url}/legacy"),
    )
    settle(sim)
    (post,) = receiver.bodies("infobip_sms")
    delivered, rejected = post["results"]
    assert set(delivered) == {
        "bulkId",
        "messageId",
        "to",
        "sender",
        "sentAt",
        "doneAt",
        "messageCount",
        "price",
        "status",
        "error",
        "callbackData",
    }
    assert (delivered["bulkId"], delivered["messageId"], delivered["to"]) == ("bulk-1", "m-1", US)
    assert (delivered["sender"], delivered["messageCount"], delivered["callbackData"]) == (
        "InfoSMS",
        1,
        "cb-1",
    )
    assert INFOBIP_TIME.match(delivered["sentAt"]) and INFOBIP_TIME.match(delivered["doneAt"])
    assert delivered["status"] == {
        "groupId": 3,
        "groupName": "DELIVERED",
        "id": 5,
        "name": "DELIVERED_TO_HANDSET",
        "description": "Message delivered to handset",
    }
    assert delivered["error"]["name"] == "NO_ERROR" and delivered["error"]["groupId"] == 0
    # a destination refused in the answer is reported with the same status
    assert (rejected["messageId"], rejected["status"]["name"]) == ("m-2", "REJECTED_DESTINATION")
    # the message's own webhook URL wins; a legacy notifyUrl gets the v2 shape
    (own,) = receiver.bodies("own")
    assert [r["messageId"] for r in own["results"]] == ["m-3"]
    assert "callbackData" not in own["results"][0]
    (legacy,) = receiver.bodies("legacy")
    (result,) = legacy["results"]
    assert (result["from"], result["smsCount"]) == ("InfoSMS", 1)
    assert "sender" not in result and "messageCount" not in result


def test_infobip_posts_at_most_100_results_at_once(configure, receiver):
    sim = configure()
    destinations = [(f"1555{i:07d}", f"bulk-m-{i}") for i in range(150)]
    send_infobip(sim, infobip_message(*destinations))
    reports = settle(sim)
    posts = receiver.bodies("infobip_sms")
    assert sorted(len(p["results"]) for p in posts) == [50, 100]
    ids = {r["messageId"] for p in posts for r in p["results"]}
    assert ids == {mid for _, mid in destinations}
    assert reports["posted"] == 150


def test_infobip_mms_fallback_is_reported_with_the_sms_count(configure, receiver):
    sim = configure(mms_fallback_rate=1.0)
    failover = {"sender": "Fallback", "text": "x" * 200}  # GSM-7, 200 septets: 2 parts
    send_infobip(
        sim,
        infobip_mms((US, "mm-1"), failover=failover),
        infobip_mms((US2, "mm-2")),  # no smsFailover: the fallback fails
        path="/mms/2/messages",
    )
    reports = settle(sim)
    (post,) = receiver.bodies("infobip_mms")
    fallback, failed = post["results"]
    assert (fallback["messageId"], fallback["status"]["name"]) == ("mm-1", "DELIVERED_TO_HANDSET")
    assert (fallback["messageCount"], fallback["sender"]) == (2, "Fallback")
    assert (failed["messageId"], failed["status"]["name"]) == (
        "mm-2",
        "UNDELIVERABLE_NOT_DELIVERED",
    )
    assert reports["outcomes"] == {"delivered": 0, "failed": 1, "rejected": 0, "fallback": 1}


# -- Sinch MMS ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fallback_rate", "code", "sent_as"),
    [
        (0.0, "N102", "MMS"),  # delivered as MMS
        (1.0, "N202", "SMS"),  # delivered as fallback SMS
    ],
)
def test_sinch_mms_postback(configure, receiver, fallback_rate, code, sent_as):
    sim = configure(mms_fallback_rate=fallback_rate)
    answer = send_sinch_mms(sim)
    settle(sim)
    (body,) = receiver.bodies("sinch_mms")
    assert set(body) == {
        "origin",
        "code",
        "sent-as",
        "status",
        "status-details",
        "to",
        "from",
        "timestamp",
        "tracking-id",
        "client-reference",
    }
    assert (body["origin"], body["code"], body["sent-as"], body["status"]) == (
        "MMS_MT",
        code,
        sent_as,
        "Delivered",
    )
    assert (body["tracking-id"], body["client-reference"]) == (answer["tracking-id"], "mref-1")
    assert (body["to"], body["from"]) == (US, "15557654321")
    assert SECONDS_Z.match(body["timestamp"])


# -- Conversation -------------------------------------------------------------------------


def test_conversation_delivery_event(configure, receiver):
    sim = configure(mms_fallback_rate=1.0, reject_prefixes=["1999"])
    answer = send_conversation(sim)
    refused = send_conversation(sim, "+19990000001")
    settle(sim)
    delivered, failed = sorted(
        receiver.bodies("sinch_conversation"),
        key=lambda b: b["message_delivery_report"]["status"],
    )
    assert set(delivered) == {
        "app_id",
        "accepted_time",
        "event_time",
        "project_id",
        "message_delivery_report",
        "message_metadata",
        "correlation_id",
    }
    assert (delivered["app_id"], delivered["project_id"]) == ("app-1", "proj-1")
    assert delivered["accepted_time"] == answer["accepted_time"]
    assert (delivered["message_metadata"], delivered["correlation_id"]) == ("meta-1", "corr-1")
    report = delivered["message_delivery_report"]
    assert report["message_id"] == answer["message_id"]
    assert report["status"] == "DELIVERED"  # a fallback SMS too: no fallback status exists
    assert report["metadata"] == "meta-1"
    assert report["channel_identity"] == {"channel": "MMS", "identity": US, "app_id": ""}
    assert report["conversation_id"] and report["contact_id"]
    assert "reason" not in report
    report = failed["message_delivery_report"]
    assert (report["message_id"], report["status"]) == (refused["message_id"], "FAILED")
    assert report["reason"]["code"] == "RECIPIENT_INVALID_CHANNEL_IDENTITY"


# -- faults and ordering ------------------------------------------------------------------


def test_failure_rate_one_fails_every_report_with_the_providers_codes(configure, receiver):
    sim = configure(report_failure_rate=1.0)
    send_everywhere(sim)
    reports = settle(sim)
    (sinch,) = receiver.bodies("sinch_sms")
    assert (sinch["code"], sinch["status"]) == (402, "Failed")
    for provider in ("infobip_sms", "infobip_mms"):
        ((result,),) = [post["results"] for post in receiver.bodies(provider)]
        assert result["status"]["name"] == "UNDELIVERABLE_NOT_DELIVERED"
        assert result["status"]["groupName"] == "UNDELIVERABLE"
        assert result["error"] == {
            "groupId": 1,
            "groupName": "HANDSET_ERRORS",
            "id": 27,
            "name": "EC_ABSENT_SUBSCRIBER",
            "description": "Absent Subscriber",
            "permanent": False,
        }
    (mms,) = receiver.bodies("sinch_mms")
    assert (mms["code"], mms["status"]) == ("E101", "Failed")
    (event,) = receiver.bodies("sinch_conversation")
    report = event["message_delivery_report"]
    assert report["status"] == "FAILED"
    assert report["reason"]["code"] == "RECIPIENT_NOT_REACHABLE" and report["reason"]["description"]
    assert reports["outcomes"]["failed"] == 5 and reports["outcomes"]["delivered"] == 0


def test_duplicate_rate_one_posts_every_report_twice(configure, receiver):
    sim = configure(report_duplicate_rate=1.0)
    send_everywhere(sim)
    reports = settle(sim)
    for provider in REPORT_PROVIDERS:
        first, second = receiver.bodies(provider)
        assert status_of(provider, first) == status_of(provider, second)
    first, second = receiver.bodies("sinch_sms")
    assert (first["batch_id"], first["recipient"]) == (second["batch_id"], second["recipient"])
    assert reports["duplicates"] == 5 and reports["posted"] == 10


@pytest.mark.parametrize("out_of_order", [False, True])
def test_intermediate_reports_come_first_or_last(configure, receiver, out_of_order):
    sim = configure(report_intermediate=True, report_out_of_order=out_of_order)
    send_everywhere(sim)
    send_sinch(sim, [US2], delivery_report="per_recipient_final")  # final statuses only
    reports = settle(sim)
    expected = {
        "sinch_sms": ["Dispatched", "Delivered", "Delivered"],
        "infobip_sms": ["PENDING_ENROUTE", "DELIVERED_TO_HANDSET"],
        "infobip_mms": ["PENDING_ENROUTE", "DELIVERED_TO_HANDSET"],
        "sinch_mms": ["N101", "N102"],
        "sinch_conversation": ["QUEUED_ON_CHANNEL", "DELIVERED"],
    }
    for provider, statuses in expected.items():
        bodies = receiver.bodies(provider)
        if provider == "sinch_sms":
            bodies = [b for b in bodies if b["recipient"] == US]
            statuses = statuses[:2]
            (final_only,) = [b for b in receiver.bodies(provider) if b["recipient"] == US2]
            assert final_only["status"] == "Delivered"
        if out_of_order:
            statuses = statuses[::-1]
        assert [status_of(provider, b) for b in bodies] == statuses, provider
    (dispatched,) = [b for b in receiver.bodies("sinch_sms") if b["status"] == "Dispatched"]
    assert dispatched["code"] == 401 and "operator_status_at" not in dispatched
    assert reports["intermediate"] == 5


def test_reports_wait_for_the_delay_not_the_answer(configure, receiver):
    sim = configure(report_delay_ms=400)
    started = time.monotonic()
    send_sinch(sim, [US])
    answered = time.monotonic() - started
    time.sleep(0.15)
    assert receiver.calls == []  # not yet
    settle(sim)
    assert answered < 0.4 and len(receiver.at("sinch_sms")) == 1


def test_failed_posts_are_retried_on_5xx_and_429_only(configure, receiver):
    sim = configure()
    receiver.script[:] = [503, 429]
    send_sinch(sim, [US])
    reports = settle(sim)
    assert len(receiver.at("sinch_sms")) == 3
    assert (reports["posted"], reports["retried"], reports["failed"]) == (1, 2, 0)

    sim = configure(report_retries=1)
    receiver.script[:] = [400, 503, 503]
    send_sinch(sim, [US])  # 400: final at once
    settle(sim)
    send_sinch(sim, [US2])  # 503 twice: one retry, then given up
    reports = settle(sim)
    assert len(receiver.at("sinch_sms")) == 3
    assert (reports["posted"], reports["retried"], reports["failed"]) == (0, 1, 2)


def test_an_unreachable_url_is_retried_then_counted_failed(configure, receiver):
    sim = configure(report_retries=2)
    send_sinch(sim, [US], callback_url=f"http://127.0.0.1:{free_port()}/nobody")
    reports = settle(sim)
    assert (reports["posted"], reports["retried"], reports["failed"]) == (0, 2, 1)


def test_reset_drops_the_reports_not_posted_yet(configure, receiver):
    sim = configure(report_delay_ms=60_000)
    send_everywhere(sim)
    assert sim.stats()["reports"]["pending"] == 5
    sim.reset()
    assert sim.stats()["reports"]["pending"] == 0
    assert receiver.calls == []


def test_basic_credentials_go_with_infobip_and_conversation_reports(configure, receiver):
    sim = configure(report_basic_auth={"username": "hooks", "password": "s3cret"})
    send_everywhere(sim)
    settle(sim)
    expected = "Basic " + base64.b64encode(b"hooks:s3cret").decode()
    for provider in ("infobip_sms", "infobip_mms", "sinch_conversation"):
        (call,) = receiver.at(provider)
        assert call.headers["authorization"] == expected, provider
    for provider in ("sinch_sms", "sinch_mms"):
        (call,) = receiver.at(provider)
        assert "authorization" not in call.headers, provider


# -- silent countries ---------------------------------------------------------------------


def test_a_german_recipient_gets_no_report(configure, receiver):
    sim = configure()
    send_sinch(sim, ["+" + GERMAN, US])
    send_sinch(sim, [GERMAN], delivery_report="full")
    send_infobip(sim, infobip_message((GERMAN, "de-1"), (US2, "us-1")))
    send_infobip(sim, infobip_mms((GERMAN, "de-2")), path="/mms/2/messages")
    reports = settle(sim)
    assert [b["recipient"] for b in receiver.bodies("sinch_sms")] == [US]
    (post,) = receiver.bodies("infobip_sms")
    assert [r["messageId"] for r in post["results"]] == ["us-1"]
    assert receiver.at("infobip_mms") == []
    assert reports["silent"] == 4
    assert sim.messages("+" + GERMAN)  # delivered all the same


@pytest.mark.parametrize(
    ("digits", "silent"),
    [
        (GERMAN, True),
        ("5511987654321", True),  # Brazil
        ("16715551234", True),  # Guam, +1 671
        ("16705551234", True),  # Northern Mariana Islands, +1 670
        ("590690001234", True),  # Guadeloupe, +590 shared with Saint-Barthélemy
        ("15551234567", False),
        ("447700900123", False),
        ("33612345678", False),
    ],
)
def test_countries_without_delivery_reports(digits, silent):
    assert is_silent(digits) is silent


# -- nothing configured, bad configuration ------------------------------------------------


def test_no_report_url_means_no_report_and_no_work(simulator, receiver):
    simulator.set_config(SimulatorConfig())
    simulator.reset()
    receiver.clear()
    send_everywhere(simulator)
    time.sleep(0.1)
    reports = simulator.stats()["reports"]
    assert reports == {
        "posted": 0,
        "failed": 0,
        "retried": 0,
        "pending": 0,
        "duplicates": 0,
        "intermediate": 0,
        "silent": 0,
        "outcomes": {"delivered": 0, "failed": 0, "rejected": 0, "fallback": 0},
    }
    assert receiver.calls == []


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"report_urls": {"sinch": "http://x"}}, "unknown provider 'sinch'"),
        ({"report_urls": {"sinch_sms": "ftp://x"}}, "not an http(s) URL"),
        ({"report_out_of_order": True}, "report_intermediate is not"),
        ({"report_basic_auth": {"user": "a", "password": "b"}}, "username and password"),
        ({"report_failure_rate": 1.5}, "less than or equal to 1"),
    ],
)
def test_bad_report_configuration_is_refused(config, message):
    with pytest.raises(ValidationError, match=re.escape(message)):
        SimulatorConfig(**config)
