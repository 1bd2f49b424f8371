"""The provider simulator: Sinch's (SMS, MMS JSON API, Conversation API) and Infobip's
validation and shapes through Starlette's TestClient, then the real clients against a
simulator process over loopback."""

from __future__ import annotations

import base64
import contextlib
import re
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from integrations.infobip_sms import InfobipMessage, InfobipSmsClient
from integrations.simulator.app import create_app
from integrations.simulator.config import SimulatorConfig
from integrations.simulator.server import SimulatorProcess
from integrations.sinch_conversation import ConversationMessage, SinchConversationClient
from integrations.sinch_mms import MmsMessage, SinchMmsClient
from integrations.sinch_sms import SinchSmsClient, SmsBatch

with warnings.catch_warnings():
    # Starlette 1.x asks for httpx2 under its TestClient; the project pins httpx.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

PLAN = "simulator"
AUTH = {"Authorization": "Bearer simulator-token"}
BATCHES = f"/xms/v1/{PLAN}/batches"
ULID = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def client_for() -> Iterator[Callable[..., TestClient]]:
    """Builds a simulator app with this config and a TestClient kept open for the test."""
    with contextlib.ExitStack() as stack:

        def make(**config: Any) -> TestClient:
            app = create_app(SimulatorConfig(**config))
            return stack.enter_context(TestClient(app))

        yield make


def batch(**changes: Any) -> dict[str, Any]:
    payload = {
        "from": "12345",
        "to": ["15551231234", "+15551234567"],
        "body": "Hi ${name}",
        "client_reference": "ref-1",
        "parameters": {"name": {"15551231234": "Ann", "default": "there"}},
    }
    payload.update(changes)
    return {k: v for k, v in payload.items() if v is not None}


def stats(http: TestClient) -> dict[str, Any]:
    return http.get("/_simulator/stats").json()


# -- Sinch API ---------------------------------------------------------------------------


def test_accepted_batch_is_echoed_with_id_and_timestamps(client_for):
    http = client_for()
    sent = batch(delivery_report="per_recipient", callback_url="https://hooks.example/dlr")
    response = http.post(BATCHES, json=sent, headers=AUTH)

    assert response.status_code == 201
    body = response.json()
    assert ULID.match(body["id"])
    assert {k: body[k] for k in sent} == sent
    assert body["type"] == "mt_text"
    assert body["canceled"] is False
    assert TIMESTAMP.match(body["created_at"]) and body["modified_at"] == body["created_at"]
    # GET by id answers the same object
    fetched = http.get(f"{BATCHES}/{body['id']}", headers=AUTH)
    assert fetched.status_code == 200 and fetched.json() == body


@pytest.mark.parametrize(
    "headers",
    [
        {},  # no Authorization header
        {"Authorization": "Bearer wrong-token"},  # wrong token
        {"Authorization": "Basic simulator-token"},  # wrong scheme
    ],
)
def test_bad_credentials_get_401_with_sinch_error_shape(client_for, headers):
    http = client_for()
    for response in (
        http.post(BATCHES, json=batch(), headers=headers),
        http.get(BATCHES, headers=headers),
        http.get(f"{BATCHES}/01JHFFHQ0P99JPPNQPJDV7JTBP", headers=headers),
    ):
        assert response.status_code == 401
        assert set(response.json()) == {"code", "text"}
        assert response.json()["code"] == "unauthorized"
    assert stats(http)["batches"] == 0


def test_unknown_service_plan_gets_401(client_for):
    http = client_for(service_plans={"plan-a": "token-a"})
    response = http.post("/xms/v1/plan-b/batches", json=batch(), headers=AUTH)
    assert response.status_code == 401
    assert (
        http.post(
            "/xms/v1/plan-a/batches", json=batch(), headers={"Authorization": "Bearer token-a"}
        ).status_code
        == 201
    )


@pytest.mark.parametrize(
    ("content", "config", "code", "text"),
    [
        # not JSON at all
        (b'{"from": "12345", "to": [', {}, "syntax_invalid_json", "could not be parsed"),
        # JSON, but not an object
        (b"[1, 2]", {}, "syntax_invalid_json", "object"),
        # required fields
        (batch(**{"from": None}), {}, "syntax_constraint_violation", "'from'"),
        (batch(to=None), {}, "syntax_constraint_violation", "'to'"),
        (batch(to=[]), {}, "syntax_constraint_violation", "'to'"),
        (batch(body=None), {}, "syntax_constraint_violation", "'body'"),
        # Sinch's limits
        (
            batch(to=[f"1555{i:07d}" for i in range(1001)]),
            {},
            "syntax_constraint_violation",
            "1001",
        ),
        (batch(body="x" * 2001), {}, "syntax_constraint_violation", "2001"),
        (batch(client_reference="r" * 129), {}, "syntax_constraint_violation", "128"),
        # a bad number fails the whole batch and is named by its index
        (
            batch(to=["15551231234", "15551234567", "not-a-number"]),
            {},
            "syntax_invalid_parameter_format",
            "The format of parameter 'to[2]' is invalid",
        ),
        (batch(to=["15551231234", "123"]), {}, "syntax_invalid_parameter_format", "'to[1]'"),
        # a number the fault config rejects, as Sinch rejects unroutable prefixes
        (
            batch(to=["15551231234", "4479460000", "15551234567"]),
            {"reject_prefixes": ["447"]},
            "syntax_invalid_parameter_format",
            "'to[1]'",
        ),
        (batch(delivery_report="always"), {}, "syntax_invalid_parameter_format", "delivery"),
        (batch(parameters={"name": "Ann"}), {}, "syntax_invalid_parameter_format", "name"),
    ],
)
def test_invalid_batches_get_sinch_400s_and_are_not_recorded(
    client_for, content, config, code, text
):
    http = client_for(**config)
    if isinstance(content, bytes):
        response = http.post(
            BATCHES, content=content, headers={**AUTH, "Content-Type": "application/json"}
        )
    else:
        response = http.post(BATCHES, json=content, headers=AUTH)
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert text in response.json()["text"]
    assert stats(http)["batches"] == 0
    assert stats(http)["messages"] == 0


def test_exactly_1000_recipients_are_accepted(client_for):
    http = client_for()
    response = http.post(
        BATCHES, json=batch(to=[f"1555{i:07d}" for i in range(1000)]), headers=AUTH
    )
    assert response.status_code == 201
    assert stats(http)["messages"] == 1000


def test_unknown_batch_is_404_with_sinch_shape(client_for):
    http = client_for()
    response = http.get(f"{BATCHES}/01JHFFHQ0P99JPPNQPJDV7JTBP", headers=AUTH)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert "01JHFFHQ0P99JPPNQPJDV7JTBP" in response.json()["text"]


def test_list_filters_by_client_reference_and_pages(client_for):
    http = client_for()
    ids = {}
    for i in range(5):
        reference = "wanted" if i % 2 == 0 else "other"
        response = http.post(BATCHES, json=batch(client_reference=reference), headers=AUTH)
        ids.setdefault(reference, []).append(response.json()["id"])

    listed = http.get(BATCHES, params={"client_reference": "wanted"}, headers=AUTH).json()
    assert (listed["count"], listed["page"], listed["page_size"]) == (3, 0, 3)
    assert [b["id"] for b in listed["batches"]] == ids["wanted"][::-1]  # newest first

    second = http.get(BATCHES, params={"page": 1, "page_size": 2}, headers=AUTH).json()
    assert (second["count"], second["page"], second["page_size"]) == (5, 1, 2)
    everything = ids["wanted"] + ids["other"]
    assert {b["id"] for b in second["batches"]} <= set(everything)

    empty = http.get(BATCHES, params={"client_reference": "none"}, headers=AUTH).json()
    assert empty == {"count": 0, "page": 0, "page_size": 0, "batches": []}


@pytest.mark.parametrize(
    "params",
    [
        {"page_size": 101},  # Sinch's maximum is 100
        {"page_size": 0},
        {"page": -1},
        {"page": "first"},  # not a number
    ],
)
def test_list_rejects_bad_paging(client_for, params):
    response = client_for().get(BATCHES, params=params, headers=AUTH)
    assert response.status_code == 400
    assert response.json()["code"].startswith("syntax_")


# -- rendering and counting ------------------------------------------------------------


def test_parameters_render_per_recipient_default_or_fail_with_405(client_for):
    http = client_for()
    payload = batch(
        to=["15551231234", "15551234567", "33662162466"],
        body="Hi ${name}, code ${code}",
        parameters={
            "name": {"15551231234": "Ann", "default": "there"},
            # no default: the third recipient has no value and fails alone (code 405)
            "code": {"15551231234": "A1", "+15551234567": "B2"},
        },
    )
    assert http.post(BATCHES, json=payload, headers=AUTH).status_code == 201

    def texts(number: str) -> list[str]:
        received = http.get("/_simulator/messages", params={"to": number}).json()
        return [m["body"] for m in received["messages"]]

    assert texts("+15551231234") == ["Hi Ann, code A1"]
    assert texts("15551234567") == ["Hi there, code B2"]
    assert texts("+33662162466") == []
    counters = stats(http)
    assert (counters["messages"], counters["failed"], counters["recipients"]) == (2, 1, 2)


def test_stats_count_repeats_and_same_reference_duplicates(client_for):
    http = client_for()
    one, two = "15551231234", "15551234567"
    http.post(BATCHES, json=batch(to=[one, two], client_reference="a"), headers=AUTH)
    http.post(BATCHES, json=batch(to=[one], client_reference="b"), headers=AUTH)  # new send
    http.post(BATCHES, json=batch(to=[one], client_reference="a"), headers=AUTH)  # duplicate
    counters = stats(http)
    assert counters["batches"] == 3
    assert counters["messages"] == 4
    assert counters["recipients"] == 2
    assert counters["max_per_recipient"] == 3
    assert counters["repeat_recipients"] == 1
    assert counters["duplicates"] == 1  # only `one` got reference "a" twice
    assert counters["duplicate_references"] == 1
    received = http.get("/_simulator/messages", params={"to": "+" + one}).json()
    assert [m["client_reference"] for m in received["messages"]] == ["a", "b", "a"]


def test_reset_forgets_everything(client_for):
    http = client_for()
    http.post(BATCHES, json=batch(), headers=AUTH)
    assert http.post("/_simulator/reset").status_code == 200
    counters = stats(http)
    assert (counters["batches"], counters["messages"], counters["recipients"]) == (0, 0, 0)
    assert http.get(BATCHES, headers=AUTH).json()["count"] == 0


# -- fault injection --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "status", "code"),
    [
        # refused for load, with Retry-After
        ({"error_429_rate": 1, "retry_after_seconds": 2}, 429, "too_many_requests"),
        # a server error
        ({"error_5xx_rate": 1}, 503, "service_unavailable"),
        # a hang and then a gateway timeout
        ({"timeout_rate": 1, "hang_seconds": 0.01}, 504, "gateway_timeout"),
    ],
)
def test_faults_answer_errors_and_record_nothing(client_for, config, status, code):
    http = client_for(**config)
    response = http.post(BATCHES, json=batch(), headers=AUTH)
    assert response.status_code == status
    assert response.json()["code"] == code
    if status == 429:
        assert response.headers["Retry-After"] == "2"
    counters = stats(http)
    assert counters["batches"] == 0
    assert sum(counters["faults"].values()) == 1


def test_fault_rates_are_seeded_and_proportional(client_for):
    def outcomes(seed: int) -> list[int]:
        http = client_for(error_429_rate=0.3, error_5xx_rate=0.2, seed=seed)
        return [http.post(BATCHES, json=batch(), headers=AUTH).status_code for _ in range(200)]

    first = outcomes(7)
    assert first == outcomes(7)  # reproducible
    assert 40 <= first.count(429) <= 80
    assert 20 <= first.count(503) <= 60
    assert first.count(201) + first.count(429) + first.count(503) == 200


def test_config_can_be_replaced_at_run_time(client_for):
    http = client_for()
    new = {"error_5xx_rate": 1.0}
    assert http.put("/_simulator/config", json=new).status_code == 200
    assert http.get("/_simulator/config").json()["error_5xx_rate"] == 1.0
    assert http.post(BATCHES, json=batch(), headers=AUTH).status_code == 503
    http.put("/_simulator/config", json={})
    assert http.post(BATCHES, json=batch(), headers=AUTH).status_code == 201
    # a typo in a key is refused, naming it
    refused = http.put("/_simulator/config", json={"error_rate": 1})
    assert refused.status_code == 400 and "error_rate" in refused.json()["text"]


def test_hang_after_accept_records_then_answers_late(client_for):
    http = client_for(hang_after_accept=[2], hang_seconds=0.3)
    elapsed = []
    for _ in range(3):
        started = time.monotonic()
        assert http.post(BATCHES, json=batch(), headers=AUTH).status_code == 201
        elapsed.append(time.monotonic() - started)
    assert elapsed[1] >= 0.3 > max(elapsed[0], elapsed[2])  # only the 2nd accepted batch hung
    counters = stats(http)
    assert counters["batches"] == 3
    assert counters["faults"]["hang_after_accept"] == 1


# -- end to end: the real client over loopback --------------------------------------------


@pytest.fixture(scope="module")
def simulator():
    with SimulatorProcess(port=0) as sim:
        yield sim


@pytest.fixture
def sim(simulator):
    simulator.set_config(SimulatorConfig())
    simulator.reset()
    return simulator


def recipients(count: int) -> list[str]:
    return [f"+1555{i:07d}" for i in range(count)]


def test_thousand_recipient_batch_through_the_real_client(sim):
    to = recipients(1000)
    names = {number: f"Customer {i}" for i, number in enumerate(to[:-1])}  # the last has none
    sent = SmsBatch(
        sender="12345",
        recipients=to,
        body="Hi ${name}, use ${code} today",
        client_reference="e2e:batch:1",
        parameters={"name": names, "code": {"default": "SAVE10", to[3]: "VIP20"}},
    )
    with SinchSmsClient(sim.sms_credentials()) as client:
        receipt = client.send_batch(sent)
        assert client.find_batches("e2e:batch:1") == [receipt]

    assert receipt.recipients == 1000 and receipt.client_reference == "e2e:batch:1"
    counters = sim.stats()
    assert counters["batches"] == 1
    assert (counters["messages"], counters["failed"]) == (999, 1)  # code 405 for the last
    assert counters["recipients"] == 999
    assert counters["max_per_recipient"] == 1 and counters["duplicates"] == 0
    (message,) = sim.messages(to[3])
    assert message["body"] == "Hi Customer 3, use VIP20 today"
    assert message["batch_id"] == receipt.batch_id
    assert sim.messages(to[10])[0]["body"] == "Hi Customer 10, use SAVE10 today"
    assert sim.messages(to[-1]) == []


def test_429_then_retry_succeeds(sim):
    sim.set_config(SimulatorConfig(error_429_rate=1.0, retry_after_seconds=0.25))
    waited: list[float] = []

    def sleep(seconds: float) -> None:  # the provider recovers while the client waits
        waited.append(seconds)
        sim.set_config(SimulatorConfig())

    to = recipients(50)
    with SinchSmsClient(sim.sms_credentials(), sleep=sleep) as client:
        receipt = client.send_batch(
            SmsBatch(sender="12345", recipients=to, body="Hello", client_reference="e2e:429")
        )
    assert waited == [0.25]  # Retry-After honoured
    counters = sim.stats()
    assert counters["requests"]["post"] == 2
    assert counters["requests"]["list"] == 0  # a 429 needs no look-up
    assert counters["batches"] == 1 and counters["messages"] == 50
    assert sim.messages(to[0])[0]["batch_id"] == receipt.batch_id


def test_timeout_after_accept_is_reconciled_not_resent(sim):
    sim.set_config(SimulatorConfig(hang_after_accept=[1], hang_seconds=3))
    to = recipients(200)
    with SinchSmsClient(sim.sms_credentials(), timeout_seconds=0.4, backoff_seconds=0.05) as client:
        receipt = client.send_batch(
            SmsBatch(sender="12345", recipients=to, body="Once", client_reference="e2e:hang")
        )
    counters = sim.stats()
    assert counters["faults"]["hang_after_accept"] == 1
    assert counters["requests"]["post"] == 1  # never posted twice
    assert counters["requests"]["list"] >= 1  # the client looked the reference up
    assert counters["batches"] == 1
    assert counters["messages"] == 200 and counters["recipients"] == 200
    assert counters["max_per_recipient"] == 1 and counters["duplicates"] == 0
    assert sim.messages(to[42])[0]["batch_id"] == receipt.batch_id


# -- Infobip API ---------------------------------------------------------------------------

INFOBIP = "/sms/3/messages"
APP_KEY = {"Authorization": "App simulator-key"}


def infobip_request(*messages: dict[str, Any], bulk_id: str | None = "bulk-1") -> dict[str, Any]:
    body: dict[str, Any] = {"messages": list(messages)}
    if bulk_id is not None:
        body["options"] = {"schedule": {"bulkId": bulk_id}, "includeSmsCountInResponse": True}
    return body


def infobip_message(*destinations: tuple[str, str], text: str = "Hello", sender: str = "InfoSMS"):
    return {
        "sender": sender,
        "destinations": [{"to": to, "messageId": mid} for to, mid in destinations],
        "content": {"text": text},
    }


def statuses(response) -> dict[str, tuple[int, str]]:
    """messageId -> (status id, status name) from an Infobip 200 answer."""
    return {
        m["messageId"]: (m["status"]["id"], m["status"]["name"])
        for m in response.json()["messages"]
    }


@pytest.mark.parametrize(
    "headers",
    [
        {},  # no Authorization header
        {"Authorization": "App wrong-key"},  # unknown key
        {"Authorization": "Bearer simulator-key"},  # Sinch's scheme
        {"Authorization": "Basic simulator-key"},
    ],
)
def test_infobip_bad_credentials_get_401_with_v3_error_body(client_for, headers):
    http = client_for()
    sent = infobip_request(infobip_message(("41793026727", "m-1")))
    response = http.post(INFOBIP, json=sent, headers=headers)
    assert response.status_code == 401
    body = response.json()
    assert (body["errorCode"], body["description"]) == ("E401", "Unauthorized")
    assert body["violations"] == []
    counters = stats(http)
    assert (counters["bulks"], counters["messages"]) == (0, 0)


def test_infobip_keys_come_from_the_config(client_for):
    http = client_for(infobip_api_keys=["key-a", "key-b"])
    sent = infobip_request(infobip_message(("41793026727", "m-1")))
    assert http.post(INFOBIP, json=sent, headers=APP_KEY).status_code == 401
    assert http.post(INFOBIP, json=sent, headers={"Authorization": "App key-b"}).status_code == 200


@pytest.mark.parametrize(
    ("content", "properties"),
    [
        # not JSON at all
        (b'{"messages": [', [""]),
        # JSON, but not an object
        (b"[1, 2]", [""]),
        # no messages
        ({"options": {}}, ["messages"]),
        ({"messages": []}, ["messages"]),
        # each required field of a message, every violation reported at once
        (
            infobip_request(
                {"destinations": [{"to": "41793026727"}], "content": {"text": "Hi"}},
                {"sender": "InfoSMS", "destinations": [{"to": "41793026834"}], "content": {}},
                {"sender": "InfoSMS", "content": {"text": "Hi"}},
                {"sender": "InfoSMS", "destinations": [{"to": "41793026727"}]},
            ),
            [
                "messages[0].sender",
                "messages[1].content.text",
                "messages[2].destinations",
                "messages[3].content",
            ],
        ),
        # a destination without `to`, a messageId longer than Infobip's 200 characters
        (
            infobip_request(
                infobip_message(("41793026727", "m-1")),
                {
                    "sender": "InfoSMS",
                    "destinations": [
                        {"messageId": "m-2"},
                        {"to": "41793026834", "messageId": "x" * 201},
                    ],
                    "content": {"text": "Hi"},
                },
            ),
            ["messages[1].destinations[0].to", "messages[1].destinations[1].messageId"],
        ),
    ],
)
def test_infobip_invalid_requests_get_e400_with_violations_and_record_nothing(
    client_for, content, properties
):
    http = client_for()
    if isinstance(content, bytes):
        response = http.post(
            INFOBIP, content=content, headers={**APP_KEY, "Content-Type": "application/json"}
        )
    else:
        response = http.post(INFOBIP, json=content, headers=APP_KEY)
    assert response.status_code == 400
    body = response.json()
    assert body["errorCode"] == "E400"
    assert body["description"] == "Request cannot be processed."
    assert [v["property"] for v in body["violations"]] == properties
    assert all(v["violation"] for v in body["violations"])
    counters = stats(http)
    assert (counters["bulks"], counters["messages"], counters["failed"]) == (0, 0, 0)


def test_infobip_mixed_destinations_are_accepted_or_rejected_one_by_one(client_for):
    http = client_for(reject_prefixes=["447"])
    sent = infobip_request(
        infobip_message(("41793026727", "m-1"), ("447491163443", "m-2"), text="Hi Ann"),
        infobip_message(("+41793026834", "m-3"), ("12", "m-4"), text="Grüß dich", sender="Shop"),
    )
    response = http.post(INFOBIP, json=sent, headers=APP_KEY)

    assert response.status_code == 200  # a refused destination does not fail the request
    body = response.json()
    assert body["bulkId"] == "bulk-1"
    assert statuses(response) == {
        "m-1": (26, "PENDING_ACCEPTED"),
        "m-2": (14, "REJECTED_DESTINATION"),  # a reject_prefixes number
        "m-3": (26, "PENDING_ACCEPTED"),
        "m-4": (8, "REJECTED_PREFIX_MISSING"),  # not a phone number
    }
    first = body["messages"][0]
    assert first["status"]["groupId"] == 1 and first["status"]["groupName"] == "PENDING"
    assert body["messages"][1]["status"]["groupId"] == 5
    assert first["destination"] == "41793026727"
    assert first["details"] == {"messageCount": 1}

    counters = stats(http)
    assert (counters["bulks"], counters["batches"]) == (1, 0)
    assert (counters["messages"], counters["failed"], counters["recipients"]) == (2, 2, 2)
    assert counters["provider_messages"] == {"sinch_sms": 0, "infobip_sms": 2}
    (received,) = http.get("/_simulator/messages", params={"to": "+41793026834"}).json()["messages"]
    assert received["provider"] == "infobip_sms"
    assert (received["from"], received["body"]) == ("Shop", "Grüß dich")
    assert (received["batch_id"], received["client_reference"], received["message_id"]) == (
        "bulk-1",
        "bulk-1",
        "m-3",
    )
    assert http.get("/_simulator/messages", params={"to": "447491163443"}).json()["count"] == 0


def test_infobip_duplicate_message_id_is_refused_and_not_counted_again(client_for):
    http = client_for()
    sent = infobip_request(infobip_message(("41793026727", "m-1"), ("41793026834", "m-2")))
    assert http.post(INFOBIP, json=sent, headers=APP_KEY).status_code == 200
    # the same request again (a client retry), plus one new destination
    again = infobip_request(
        infobip_message(("41793026727", "m-1"), ("41793026834", "m-2"), ("41793026700", "m-3"))
    )
    response = http.post(INFOBIP, json=again, headers=APP_KEY)

    assert response.status_code == 200
    assert statuses(response) == {
        "m-1": (23, "REJECTED_DUPLICATE_MESSAGE_ID"),
        "m-2": (23, "REJECTED_DUPLICATE_MESSAGE_ID"),
        "m-3": (26, "PENDING_ACCEPTED"),
    }
    counters = stats(http)
    assert counters["messages"] == 3 and counters["recipients"] == 3
    assert counters["max_per_recipient"] == 1 and counters["duplicates"] == 0
    assert counters["duplicate_message_ids"] == 2
    assert counters["failed"] == 0


def test_infobip_without_message_ids_or_bulk_id_gets_generated_ones(client_for):
    http = client_for()
    sent = infobip_request(
        {
            "sender": "InfoSMS",
            "destinations": [{"to": "41793026727"}],
            "content": {"text": "x" * 161},
        },
        bulk_id=None,
    )
    response = http.post(INFOBIP, json=sent, headers=APP_KEY)
    (message,) = response.json()["messages"]
    assert response.json()["bulkId"] and message["messageId"]
    assert message["status"]["name"] == "PENDING_ACCEPTED"
    assert "details" not in message  # includeSmsCountInResponse was not asked for
    (received,) = http.get("/_simulator/messages", params={"to": "41793026727"}).json()["messages"]
    assert received["client_reference"] is None
    assert received["message_id"] == message["messageId"]


def test_sinch_and_infobip_share_the_per_recipient_counters(client_for):
    http = client_for()
    one = "15551231234"
    assert (
        http.post(BATCHES, json=batch(to=[one], client_reference="k"), headers=AUTH).status_code
        == 201
    )
    infobip = infobip_request(infobip_message((one, "m-1"), text="Hi again"), bulk_id="k")
    assert http.post(INFOBIP, json=infobip, headers=APP_KEY).status_code == 200

    counters = stats(http)
    assert (counters["batches"], counters["bulks"]) == (1, 1)
    assert counters["messages"] == 2 and counters["recipients"] == 1
    assert counters["provider_messages"] == {"sinch_sms": 1, "infobip_sms": 1}
    assert counters["max_per_recipient"] == 2 and counters["repeat_recipients"] == 1
    # the same send key reached the number through both providers: an exactly-once breach
    assert counters["duplicates"] == 1
    received = http.get("/_simulator/messages", params={"to": "+" + one}).json()["messages"]
    assert [(m["provider"], m["body"]) for m in received] == [
        ("sinch_sms", "Hi Ann"),
        ("infobip_sms", "Hi again"),
    ]


@pytest.mark.parametrize(
    ("config", "status", "code"),
    [
        # refused for load, with Retry-After
        ({"error_429_rate": 1, "retry_after_seconds": 2}, 429, "E429"),
        # a server error
        ({"error_5xx_rate": 1}, 500, "E500"),
        # a hang and then a gateway timeout
        ({"timeout_rate": 1, "hang_seconds": 0.01}, 504, "E504"),
    ],
)
def test_infobip_faults_answer_errors_and_record_nothing(client_for, config, status, code):
    http = client_for(**config)
    sent = infobip_request(infobip_message(("41793026727", "m-1")))
    response = http.post(INFOBIP, json=sent, headers=APP_KEY)
    assert response.status_code == status
    assert response.json()["errorCode"] == code
    if status == 429:
        assert response.headers["Retry-After"] == "2"
    counters = stats(http)
    assert (counters["bulks"], counters["messages"]) == (0, 0)
    assert sum(counters["faults"].values()) == 1
    # nothing was recorded, so the same messageId is accepted once the fault is gone
    http.put("/_simulator/config", json={})
    assert statuses(http.post(INFOBIP, json=sent, headers=APP_KEY)) == {
        "m-1": (26, "PENDING_ACCEPTED")
    }


def test_infobip_hang_after_accept_records_then_answers_late(client_for):
    http = client_for(hang_after_accept=[2], hang_seconds=0.3)
    elapsed = []
    for i in range(3):
        sent = infobip_request(infobip_message((f"4179302672{i}", f"m-{i}")))
        started = time.monotonic()
        assert http.post(INFOBIP, json=sent, headers=APP_KEY).status_code == 200
        elapsed.append(time.monotonic() - started)
    assert elapsed[1] >= 0.3 > max(elapsed[0], elapsed[2])  # only the 2nd request hung
    counters = stats(http)
    assert counters["bulks"] == 3 and counters["messages"] == 3
    assert counters["faults"]["hang_after_accept"] == 1


def test_reset_forgets_infobip_message_ids(client_for):
    http = client_for()
    sent = infobip_request(infobip_message(("41793026727", "m-1")))
    http.post(INFOBIP, json=sent, headers=APP_KEY)
    http.post("/_simulator/reset")
    assert statuses(http.post(INFOBIP, json=sent, headers=APP_KEY)) == {
        "m-1": (26, "PENDING_ACCEPTED")
    }
    assert stats(http)["duplicate_message_ids"] == 0


# -- end to end: the real Infobip client over loopback ---------------------------------------


def test_thousand_infobip_destinations_in_one_request_through_the_real_client(sim):
    to = recipients(1000)
    messages = [
        InfobipMessage(
            sender="InfoSMS",
            destinations=[(number, f"e2e:ib:{i}")],
            text=f"Hi Customer {i}",
        )
        for i, number in enumerate(to[:500])
    ]
    messages.append(
        InfobipMessage(
            sender="InfoSMS",
            destinations=[(number, f"e2e:ib:{i}") for i, number in enumerate(to[500:], 500)],
            text="Hello everyone else",
        )
    )
    sim.set_config(SimulatorConfig(reject_prefixes=["15550000999"]))  # rejects to[999]
    with InfobipSmsClient(sim.infobip_credentials()) as client:
        results = client.send(messages, bulk_id="e2e:bulk:1")

    assert [r.to for r in results] == to
    assert [r.accepted for r in results] == [True] * 999 + [False]
    assert (results[-1].status_code, results[-1].error) == (14, "REJECTED_DESTINATION")
    counters = sim.stats()
    assert counters["requests"]["infobip_post"] == 1 and counters["bulks"] == 1
    assert (counters["messages"], counters["failed"]) == (999, 1)
    assert counters["recipients"] == 999
    assert counters["max_per_recipient"] == 1 and counters["duplicates"] == 0
    (message,) = sim.messages(to[3])
    assert (message["provider"], message["body"]) == ("infobip_sms", "Hi Customer 3")
    assert (message["batch_id"], message["message_id"]) == ("e2e:bulk:1", "e2e:ib:3")
    assert sim.messages(to[700])[0]["body"] == "Hello everyone else"
    assert sim.messages(to[999]) == []


def test_infobip_timeout_after_accept_is_resent_and_counted_once(sim):
    sim.set_config(SimulatorConfig(hang_after_accept=[1], hang_seconds=3))
    to = recipients(200)
    message = InfobipMessage(
        sender="InfoSMS", destinations=[(n, f"e2e:hang:{i}") for i, n in enumerate(to)], text="Once"
    )
    with InfobipSmsClient(
        sim.infobip_credentials(), timeout_seconds=0.4, backoff_seconds=0.05
    ) as client:
        results = client.send([message], bulk_id="e2e:hang")

    assert all(r.accepted for r in results) and len(results) == 200
    counters = sim.stats()
    assert counters["faults"]["hang_after_accept"] == 1
    assert counters["requests"]["infobip_post"] == 2  # the lost answer made it resend
    assert counters["duplicate_message_ids"] == 200  # ... and every destination was refused
    assert counters["messages"] == 200 and counters["recipients"] == 200
    assert counters["max_per_recipient"] == 1 and counters["duplicates"] == 0


# -- Sinch MMS JSON API ----------------------------------------------------------------------

MMS = "/ep/v2/"
MMS_KEY = {"x-api-key": "simulator-mms-key"}


def sendmms(**changes: Any) -> dict[str, Any]:
    payload = {
        "action": "sendmms",
        "service-id": "30011",
        "to": "15551231234",
        "from": "28444",
        "message-subject": "Summer sale",
        "fallback-sms-text": "20% off: https://x.example/s",
        "disable-fallback-sms": False,
        "client-reference": "mms-ref-1",
        "slide": [{"image": {"url": "https://cdn.example.com/a.jpg"}, "message-text": "20% off"}],
    }
    payload.update(changes)
    return {k: v for k, v in payload.items() if v is not None}


@pytest.mark.parametrize(
    "headers",
    [
        {},  # no key
        {"x-api-key": "wrong-key"},  # unknown key
        {"Authorization": "Bearer simulator-mms-key"},  # right key, wrong header
    ],
)
def test_mms_bad_key_gets_401_e104_and_records_nothing(client_for, headers):
    http = client_for()
    response = http.post(MMS, json=sendmms(), headers=headers)
    assert response.status_code == 401
    assert response.json()["status"] == "Failure"
    assert response.json()["error-code"] == "E104"
    counters = stats(http)
    assert counters["requests"]["mms_post"] == 1
    assert counters["messages"] == 0 and counters["mms_messages"]["sinch_mms"] == 0


def test_mms_keys_come_from_the_config(client_for):
    http = client_for(sinch_mms_api_keys=["key-a", "key-b"])
    assert http.post(MMS, json=sendmms(), headers=MMS_KEY).status_code == 401
    response = http.post(MMS, json=sendmms(), headers={"x-api-key": "key-b"})
    assert response.json()["status"] == "Success"


def test_mms_success_answer_and_message_entry(client_for):
    http = client_for()
    response = http.post(MMS, json=sendmms(), headers=MMS_KEY)

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["to"]) == ("Success", "15551231234")
    assert body["tracking-id"] and body["mms-id"] and body["status-details"]
    (entry,) = http.get("/_simulator/messages", params={"to": "+15551231234"}).json()["messages"]
    assert entry == {
        "provider": "sinch_mms",
        "channel": "mms",
        "type": "mms",
        "batch_id": None,
        "client_reference": "mms-ref-1",
        "message_id": body["tracking-id"],
        "from": "28444",
        "subject": "Summer sale",
        "body": "20% off",
        "media_url": "https://cdn.example.com/a.jpg",
        "created_at": entry["created_at"],
    }
    assert TIMESTAMP.match(entry["created_at"])
    counters = stats(http)
    assert counters["mms_messages"] == {"sinch_mms": 1, "sinch_conversation": 0, "infobip_mms": 0}
    assert counters["provider_messages"] == {"sinch_sms": 0, "infobip_sms": 0}
    assert (counters["messages"], counters["recipients"], counters["fallback_sms"]) == (1, 1, 0)


def test_mms_with_fallback_disabled_needs_no_fallback_text(client_for):
    http = client_for()
    payload = sendmms(**{"fallback-sms-text": None, "disable-fallback-sms": True})
    assert http.post(MMS, json=payload, headers=MMS_KEY).json()["status"] == "Success"


@pytest.mark.parametrize(
    ("payload", "config", "code"),
    [
        (b'{"action": "sendmms", ', {}, "E100"),  # not JSON
        (b"[1, 2]", {}, "E100"),  # JSON, but not an object
        (sendmms(action="savemms"), {}, "E107"),  # the simulator implements sendmms only
        (sendmms(**{"service-id": None}), {}, "E627"),  # no service (campaign) id
        (sendmms(to="+15551231234"), {}, "E110"),  # international format has no '+'
        (sendmms(to="123"), {}, "E110"),  # too short
        (sendmms(to="4479460000"), {"reject_prefixes": ["447"]}, "E110"),  # refused number
        (sendmms(**{"from": "shop"}), {}, "E111"),  # not a short or long code
        (sendmms(**{"fallback-sms-text": None}), {}, "E622"),  # fallback enabled, no text
        (sendmms(**{"fallback-sms-text": " "}), {}, "E622"),  # a blank one is none
        (sendmms(**{"message-subject": "s" * 81}), {}, "E314"),  # 80 characters at most
        (sendmms(**{"message-subject": "Sale \N{FIRE}"}), {}, "E314"),  # ASCII only
        (sendmms(slide=[]), {}, "E312"),  # no slides
        (sendmms(slide=[{"message-text": "x"}] * 9), {}, "E225"),  # 8 slides at most
        (sendmms(slide=[{}]), {}, "E313"),  # an empty slide
        (  # two objects in one slide
            sendmms(
                slide=[{"image": {"url": "https://x/a.jpg"}, "video": {"url": "https://x/b.mp4"}}]
            ),
            {},
            "E223",
        ),
        (sendmms(slide=[{"message-text": "x" * 1601}]), {}, "E228"),  # the text limit
        (sendmms(), {"mms_unsupported_carrier_prefixes": ["1555"]}, "E628"),  # by config
        (sendmms(), {"mms_unrecognized_media_suffixes": [".JPG"]}, "E629"),  # case-insensitive
    ],
)
def test_mms_refusals_answer_failure_with_sinch_codes_and_record_nothing(
    client_for, payload, config, code
):
    http = client_for(**config)
    if isinstance(payload, bytes):
        headers = {**MMS_KEY, "Content-Type": "application/json"}
        response = http.post(MMS, content=payload, headers=headers)
    else:
        response = http.post(MMS, json=payload, headers=MMS_KEY)
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["error-code"]) == ("Failure", code)
    assert body["error-info"]
    counters = stats(http)
    assert counters["mms_refused"] == {code: 1}
    assert (counters["messages"], counters["recipients"]) == (0, 0)


@pytest.mark.parametrize(
    ("payload", "kind", "body", "failed"),
    [
        # every MMS falls back: delivered as an SMS with the fallback text
        (sendmms(), "sms", "20% off: https://x.example/s", 0),
        # a fallback with fallback disabled: the MMS fails instead
        (sendmms(**{"disable-fallback-sms": True}), None, None, 1),
    ],
)
def test_mms_fallback_injection(client_for, payload, kind, body, failed):
    http = client_for(mms_fallback_rate=1)
    assert http.post(MMS, json=payload, headers=MMS_KEY).json()["status"] == "Success"
    received = http.get("/_simulator/messages", params={"to": "15551231234"}).json()["messages"]
    assert [(m["type"], m["body"]) for m in received] == ([(kind, body)] if kind else [])
    counters = stats(http)
    assert (counters["fallback_sms"], counters["failed"]) == (0 if failed else 1, failed)
    assert counters["messages"] == 1 - failed


def test_mms_fallback_rate_is_seeded_and_proportional(client_for):
    def kinds(seed: int) -> list[str]:
        http = client_for(mms_fallback_rate=0.3, error_5xx_rate=0.1, seed=seed)
        for _ in range(100):  # the same number each time: one listing shows every outcome
            http.post(MMS, json=sendmms(), headers=MMS_KEY)
        received = http.get("/_simulator/messages", params={"to": "15551231234"}).json()
        return [m["type"] for m in received["messages"]]

    first = kinds(3)
    assert first == kinds(3)  # reproducible
    assert first != kinds(4)
    assert 12 <= first.count("sms") <= 45
    assert 75 <= len(first) <= 98  # about a tenth refused with 503, drawn separately


@pytest.mark.parametrize(
    ("config", "status", "code"),
    [
        ({"error_429_rate": 1, "retry_after_seconds": 2}, 429, "E113"),  # throughput exceeded
        ({"error_5xx_rate": 1}, 503, None),  # a server error
        ({"timeout_rate": 1, "hang_seconds": 0.01}, 504, None),  # a hang, then a gateway timeout
    ],
)
def test_mms_faults_answer_errors_and_record_nothing(client_for, config, status, code):
    http = client_for(**config)
    response = http.post(MMS, json=sendmms(), headers=MMS_KEY)
    assert response.status_code == status
    assert response.json()["status"] == "Failure"
    assert response.json().get("error-code") == code
    if status == 429:
        assert response.headers["Retry-After"] == "2"
    counters = stats(http)
    assert counters["messages"] == 0 and sum(counters["faults"].values()) == 1


def test_mms_has_no_idempotency_and_shares_the_per_recipient_counters(client_for):
    http = client_for()
    one = "15551231234"
    sms = batch(to=[one], client_reference="k")
    assert http.post(BATCHES, json=sms, headers=AUTH).status_code == 201
    for _ in range(2):  # the same MMS twice: Sinch sends it twice
        http.post(MMS, json=sendmms(to=one, **{"client-reference": "m"}), headers=MMS_KEY)
    counters = stats(http)
    assert counters["messages"] == 3 and counters["recipients"] == 1
    assert counters["provider_messages"]["sinch_sms"] == 1
    assert counters["mms_messages"]["sinch_mms"] == 2
    assert counters["max_per_recipient"] == 3
    assert counters["duplicates"] == 1  # "m" reached the number twice
    received = http.get("/_simulator/messages", params={"to": one}).json()["messages"]
    assert [(m["provider"], m["channel"]) for m in received] == [
        ("sinch_sms", "sms"),
        ("sinch_mms", "mms"),
        ("sinch_mms", "mms"),
    ]


# -- Sinch Conversation API -------------------------------------------------------------------

TOKEN_URL = "/oauth2/token"
SEND = "/v1/projects/simulator-project/messages:send"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def basic(key_id: str = "simulator-key-id", secret: str = "simulator-key-secret"):
    encoded = base64.b64encode(f"{key_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


def bearer(http: TestClient) -> dict[str, str]:
    response = http.post(
        TOKEN_URL, content="grant_type=client_credentials", headers={**basic(), **FORM}
    )
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def conversation(**changes: Any) -> dict[str, Any]:
    payload = {
        "app_id": "01E3S8B6YCMRNR0GGM94H80ACX",
        "recipient": {
            "identified_by": {"channel_identities": [{"channel": "MMS", "identity": "15551231234"}]}
        },
        "message": {
            "card_message": {
                "title": "Summer sale",
                "description": "20% off",
                "media_message": {"url": "https://cdn.example.com/a.jpg"},
            }
        },
        "channel_priority_order": ["MMS"],
        "channel_properties": {"MMS_SENDER": "28444"},
        "correlation_id": "conv-ref-1",
        "message_metadata": "conv-ref-1",
    }
    payload.update(changes)
    return {k: v for k, v in payload.items() if v is not None}


@pytest.mark.parametrize(
    ("headers", "content", "status", "error"),
    [
        (basic(), "grant_type=client_credentials", 200, None),  # HTTP Basic, as Sinch documents
        # the credentials as form fields
        (
            {},
            "grant_type=client_credentials&client_id=simulator-key-id"
            "&client_secret=simulator-key-secret",
            200,
            None,
        ),
        (basic(secret="wrong"), "grant_type=client_credentials", 401, "invalid_client"),  # secret
        (basic(key_id="unknown"), "grant_type=client_credentials", 401, "invalid_client"),  # key id
        ({}, "grant_type=client_credentials", 401, "invalid_client"),  # no credentials
        (basic(), "grant_type=password", 400, "unsupported_grant_type"),  # client credentials only
    ],
)
def test_token_endpoint(client_for, headers, content, status, error):
    http = client_for()
    response = http.post(TOKEN_URL, content=content, headers={**headers, **FORM})
    assert response.status_code == status
    body = response.json()
    if error is None:
        assert body["access_token"] and body["token_type"] == "bearer"
        assert body["expires_in"] == 3600 and body["scope"] == ""
    else:
        assert body["error"] == error and body["error_description"]
        assert "access_token" not in body
    assert stats(http)["requests"]["oauth_token"] == 1


def test_conversation_keys_come_from_the_config(client_for):
    http = client_for(conversation_keys={"kid": "ksecret"})
    grant = "grant_type=client_credentials"
    assert http.post(TOKEN_URL, content=grant, headers={**basic(), **FORM}).status_code == 401
    assert (
        http.post(TOKEN_URL, content=grant, headers={**basic("kid", "ksecret"), **FORM}).status_code
        == 200
    )


def test_conversation_send_needs_a_live_token_or_the_key(client_for):
    http = client_for()
    token = bearer(http)
    for headers, status in [
        ({}, 401),  # nothing
        ({"Authorization": "Bearer made-up"}, 401),  # a token never issued
        (token, 200),  # a token from /oauth2/token
        (basic(), 200),  # Basic with the access key is accepted too
        (basic(secret="wrong"), 401),  # ... but not with a wrong secret
    ]:
        response = http.post(SEND, json=conversation(), headers=headers)
        assert response.status_code == status
        if status == 401:
            assert response.json()["error"]["status"] == "UNAUTHENTICATED"
    http.post("/_simulator/reset")  # forgets issued tokens
    assert http.post(SEND, json=conversation(), headers=token).status_code == 401


def test_conversation_success_answer_and_message_entry(client_for):
    http = client_for()
    response = http.post(SEND, json=conversation(), headers=bearer(http))

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"message_id", "accepted_time"}
    assert ULID.match(body["message_id"]) and TIMESTAMP.match(body["accepted_time"])
    (entry,) = http.get("/_simulator/messages", params={"to": "+15551231234"}).json()["messages"]
    assert entry == {
        "provider": "sinch_conversation",
        "channel": "mms",
        "type": "mms",
        "batch_id": None,
        "client_reference": "conv-ref-1",  # the correlation_id
        "message_id": body["message_id"],
        "from": "28444",  # channel_properties.MMS_SENDER
        "subject": "Summer sale",  # the card title
        "body": "20% off",
        "media_url": "https://cdn.example.com/a.jpg",
        "created_at": entry["created_at"],
    }
    assert stats(http)["mms_messages"] == {
        "sinch_mms": 0,
        "sinch_conversation": 1,
        "infobip_mms": 0,
    }


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        # a text message without sender: the app's default sender (None here)
        (
            {"message": {"text_message": {"text": "Hi"}}, "channel_properties": None},
            (None, None, "Hi", None),
        ),
        # a media message
        (
            {"message": {"media_message": {"url": "https://x.example/v.mp4"}}},
            ("28444", None, "", "https://x.example/v.mp4"),
        ),
        # an identity written with '+', a card without media
        (
            {
                "recipient": {
                    "identified_by": {
                        "channel_identities": [{"channel": "MMS", "identity": "+15551231234"}]
                    }
                },
                "message": {"card_message": {"title": "T", "description": "D"}},
            },
            ("28444", "T", "D", None),
        ),
    ],
)
def test_conversation_message_kinds(client_for, changes, expected):
    http = client_for()
    assert http.post(SEND, json=conversation(**changes), headers=basic()).status_code == 200
    (entry,) = http.get("/_simulator/messages", params={"to": "15551231234"}).json()["messages"]
    assert (entry["from"], entry["subject"], entry["body"], entry["media_url"]) == expected


YES = {"text_message": {"text": "Yes"}, "postback_data": "yes"}
SHOP = {"url_message": {"title": "Shop", "url": "https://example.com/s"}}
COORDINATES = {"latitude": 40.7128, "longitude": -74.006}


@pytest.mark.parametrize(
    ("message", "body"),
    [
        (  # the text, then the choices numbered, a URL choice with its URL
            {"choice_message": {"text_message": {"text": "Join?"}, "choices": [YES, SHOP]}},
            "Join?\n1. Yes\n2. Shop: https://example.com/s",
        ),
        ({"choice_message": {"choices": [YES]}}, "1. Yes"),  # no text
        (  # a location: title, label, maps link
            {
                "location_message": {
                    "title": "Main St store",
                    "label": "Open 9 to 5",
                    "coordinates": COORDINATES,
                }
            },
            "Main St store\nOpen 9 to 5\nhttps://maps.google.com/?q=40.7128,-74.006",
        ),
        (  # a carousel card by card, choices numbered on, the outer ones last
            {
                "carousel_message": {
                    "cards": [
                        {
                            "title": "Sneakers",
                            "description": "20% off",
                            "media_message": {"url": "https://cdn.example.com/a.jpg"},
                            "choices": [YES],
                        },
                        {"title": "Boots", "choices": [YES]},
                    ],
                    "choices": [SHOP],
                }
            },
            "Sneakers\n20% off\nhttps://cdn.example.com/a.jpg\n1. Yes\n\n"
            "Boots\n2. Yes\n\n3. Shop: https://example.com/s",
        ),
    ],
)
def test_conversation_choice_location_and_carousel_arrive_as_text(client_for, message, body):
    http = client_for()
    response = http.post(SEND, json=conversation(message=message), headers=basic())
    assert response.status_code == 200
    (entry,) = http.get("/_simulator/messages", params={"to": "15551231234"}).json()["messages"]
    assert (entry["type"], entry["subject"], entry["body"], entry["media_url"]) == (
        "mms",
        None,
        body,
        None,
    )


def choices(*items: dict[str, Any], text: str = "Join?") -> dict[str, Any]:
    return conversation(
        message={"choice_message": {"text_message": {"text": text}, "choices": list(items)}}
    )


def location(**fields: Any) -> dict[str, Any]:
    body = {"title": "Store", "coordinates": COORDINATES, **fields}
    return conversation(
        message={"location_message": {k: v for k, v in body.items() if v is not None}}
    )


@pytest.mark.parametrize(
    ("content", "text"),
    [
        (choices(*[YES] * 11), "at most 10 choices"),  # the Conversation API's limit
        (choices(text=""), "needs a text or choices"),
        (
            choices({"text_message": {"text": "a"}, "url_message": SHOP["url_message"]}),
            "exactly one",
        ),
        (choices({"call_message": {"title": "Call", "phone_number": "+1555"}}), "not call_message"),
        (choices({"url_message": {"title": "Shop", "url": "ftp://x"}}), "url_message.url"),
        (choices({"text_message": {"text": ""}}), "choices[0].text_message.text"),
        (location(title=None), "location_message.title"),  # a title is required
        (location(coordinates={"latitude": 91, "longitude": 0}), "latitude"),  # out of range
        (location(coordinates={"latitude": "40", "longitude": 0}), "latitude"),  # not a number
        (location(coordinates=None), "coordinates"),
        (conversation(message={"carousel_message": {"cards": []}}), "1 to 10 cards"),
        (conversation(message={"carousel_message": {"cards": [{}]}}), "cards[0] needs"),
        (
            conversation(
                message={"carousel_message": {"cards": [{"title": "a"}], "choices": [YES] * 4}}
            ),
            "at most 3 choices",
        ),
    ],
)
def test_conversation_invalid_rich_messages_get_400(client_for, content, text):
    http = client_for()
    response = http.post(SEND, json=content, headers=basic())
    assert response.status_code == 400
    assert text in response.json()["error"]["message"]
    assert stats(http)["messages"] == 0


@pytest.mark.parametrize(
    ("content", "text"),
    [
        (b'{"app_id": ', "Invalid JSON"),  # not JSON
        (conversation(app_id=None), "app_id"),  # required
        # contacts are not simulated: recipients are channel identities
        (conversation(recipient={"contact_id": "01E6K4A8N3NANZ05VM0FS80EHD"}), "identified_by"),
        (  # another channel
            conversation(
                recipient={
                    "identified_by": {
                        "channel_identities": [{"channel": "SMS", "identity": "1555"}]
                    }
                }
            ),
            "MMS channel only",
        ),
        (  # not a phone number
            conversation(
                recipient={
                    "identified_by": {"channel_identities": [{"channel": "MMS", "identity": "12"}]}
                }
            ),
            "invalid MMS channel identity",
        ),
        (conversation(message={}), "exactly one"),  # no message kind
        (conversation(message={"text_message": {"text": ""}}), "text_message.text"),  # empty
        (conversation(message={"media_message": {"url": "ftp://x"}}), "media_message.url"),  # ftp
        (conversation(message={"card_message": {"title": "t" * 81}}), "80"),  # subject limit
        (conversation(message={"card_message": {}}), "needs a title"),  # an empty card
        (  # a kind the simulator does not implement
            conversation(message={"list_message": {"title": "Menu", "sections": []}}),
            "not list_message",
        ),
        (conversation(channel_priority_order=["SMS"]), "channel_priority_order"),  # not MMS
        (conversation(channel_properties={"MMS_SENDER": 28444}), "channel_properties"),  # int
        (conversation(correlation_id="c" * 129), "correlation_id"),  # 128 at most
    ],
)
def test_conversation_invalid_requests_get_400_invalid_argument(client_for, content, text):
    http = client_for()
    if isinstance(content, bytes):
        headers = {**basic(), "Content-Type": "application/json"}
        response = http.post(SEND, content=content, headers=headers)
    else:
        response = http.post(SEND, json=content, headers=basic())
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
    assert text in error["message"]
    assert stats(http)["messages"] == 0


def test_conversation_refused_number_is_accepted_then_failed(client_for):
    http = client_for(reject_prefixes=["1555"])
    response = http.post(SEND, json=conversation(), headers=basic())
    assert response.status_code == 200 and response.json()["message_id"]
    counters = stats(http)
    assert (counters["messages"], counters["failed"]) == (0, 1)


def test_conversation_fallback_injection(client_for):
    http = client_for(mms_fallback_rate=1)
    http.post(SEND, json=conversation(), headers=basic())
    (entry,) = http.get("/_simulator/messages", params={"to": "15551231234"}).json()["messages"]
    assert (entry["type"], entry["body"]) == ("sms", "20% off")
    assert stats(http)["fallback_sms"] == 1


@pytest.mark.parametrize(
    ("config", "status", "code"),
    [
        ({"error_429_rate": 1, "retry_after_seconds": 2}, 429, "RESOURCE_EXHAUSTED"),  # load
        ({"error_5xx_rate": 1}, 503, "UNAVAILABLE"),  # a server error
        ({"timeout_rate": 1, "hang_seconds": 0.01}, 504, "DEADLINE_EXCEEDED"),  # a hang
    ],
)
def test_conversation_faults_answer_errors_and_record_nothing(client_for, config, status, code):
    http = client_for(**config)
    response = http.post(SEND, json=conversation(), headers=basic())
    assert response.status_code == status
    assert response.json()["error"]["status"] == code
    if status == 429:
        assert response.headers["Retry-After"] == "2"
    assert stats(http)["messages"] == 0


# -- end to end: the real MMS clients over loopback ------------------------------------------


def mms_message(to: str, reference: str, **changes: Any) -> MmsMessage:
    fields = {
        "to": to,
        "sender": "28444",
        "subject": "Summer sale",
        "text": "20% off today",
        "media_url": "https://cdn.example.com/sale.jpg",
        "media_type": "image",
        "fallback_text": "20% off today: https://x.example/s",
        "fallback_disabled": False,
        "client_reference": reference,
        **changes,
    }
    return MmsMessage(**fields)


def test_mms_through_the_real_client(sim):
    sim.set_config(SimulatorConfig(reject_prefixes=["1555000000"]))
    to = recipients(12)  # to[0] to to[9] start with the refused prefix
    with SinchMmsClient(sim.sinch_mms_credentials()) as client:
        refused = client.send(mms_message(to[0], "e2e:mms:0"))
        sent = [client.send(mms_message(n, f"e2e:mms:{i}")) for i, n in enumerate(to[10:], 10)]

    assert (refused.accepted, refused.status_code, refused.error) == (False, "E110", "E110")
    assert refused.comment == "Invalid 'to' / receiver number."
    assert all(r.accepted and r.tracking_id for r in sent)
    counters = sim.stats()
    assert counters["requests"]["mms_post"] == 3
    assert counters["mms_messages"]["sinch_mms"] == 2 and counters["mms_refused"] == {"E110": 1}
    (entry,) = sim.messages(to[11])
    assert (entry["provider"], entry["type"], entry["subject"]) == (
        "sinch_mms",
        "mms",
        "Summer sale",
    )
    assert (entry["message_id"], entry["client_reference"]) == (sent[1].tracking_id, "e2e:mms:11")


def test_mms_timeout_after_accept_is_not_resent(sim):
    sim.set_config(SimulatorConfig(hang_after_accept=[1], hang_seconds=3))
    message = mms_message("+15550001234", "e2e:mms:hang")
    with SinchMmsClient(sim.sinch_mms_credentials(), timeout_seconds=0.4) as client:
        receipt = client.send(message)
    assert (receipt.accepted, receipt.error) == (False, "unknown_outcome")
    counters = sim.stats()
    assert counters["requests"]["mms_post"] == 1  # never posted twice
    assert counters["messages"] == 1 and counters["duplicates"] == 0  # yet it was delivered


def test_conversation_through_the_real_client_with_token_refresh(sim):
    to = recipients(3)
    with SinchConversationClient(sim.conversation_credentials()) as client:
        first = [
            client.send(ConversationMessage(n, "28444", "Sale", "20% off", None, f"e2e:cv:{i}"))
            for i, n in enumerate(to[:2])
        ]
        assert sim.stats()["requests"]["oauth_token"] == 1  # the token was reused
        sim.reset()  # the simulator forgets its tokens: the next send gets a 401
        last = client.send(
            ConversationMessage(to[2], None, None, "", "https://x.example/a.jpg", "e2e:cv:2")
        )

    assert all(r.accepted and r.tracking_id for r in [*first, last])
    counters = sim.stats()
    assert counters["requests"]["conversation_post"] == 2  # the refused one and the resend
    assert counters["requests"]["oauth_token"] == 1  # a new token after the reset
    assert counters["mms_messages"]["sinch_conversation"] == 1 and counters["duplicates"] == 0
    (entry,) = sim.messages(to[2])
    assert (entry["message_id"], entry["from"]) == (last.tracking_id, None)
    assert entry["media_url"] == "https://x.example/a.jpg"
