"""Delivery reports end to end: the simulator posts them, the webhook server stores and
applies them; and the rules (duplicates, ordering, early reports, 4 days, security)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from engine.delivery import WAITING, ReportWriter, judge
from engine.errors import ConcurrentUpdate
from engine.runtime import Runtime, launch, tick_scenario, utc_now
from engine.scenario import parse_scenario
from engine.settings import Settings
from engine.webhooks import create_webhook_app, serving_in_background
from integrations.simulator.config import SimulatorConfig
from integrations.simulator.server import SimulatorProcess, free_port
from integrations.webhooks.reports import DeliveryReport
from tests.conftest import NOW, project_settings

HELLO = """
id: hello
name: Hello
settings: {consent_category: sms_marketing, silent_hours: none, tracking: {team: growth}}
nodes:
  - {id: start, type: trigger, kind: launch}
  - {id: greet, type: sms, text: "Hi {{ customer.first_name }}"}
edges:
  - {from: start, to: greet}
"""
PROMO = """
id: promo
name: Promo
settings: {consent_category: sms_marketing, silent_hours: none}
nodes:
  - {id: start, type: trigger, kind: launch}
  - id: promo
    type: mms
    subject: Sale
    text: "Hi {{ customer.first_name }}"
    media_url: https://cdn.example.com/a.jpg
    fallback: {text: "Hi {{ customer.first_name }}, sale at https://example.com"}
edges:
  - {from: start, to: promo}
"""


@pytest.mark.parametrize(
    ("report", "current", "days_after", "applies"),
    [
        ("delivered", None, 0, True),  # the first final status
        ("intermediate", None, 0, True),  # a first intermediate status is recorded
        ("delivered", "intermediate", 1, True),  # final after intermediate
        ("intermediate", "delivered", 0, False),  # a late intermediate never overwrites
        ("failed", "delivered", 0, False),  # nor does a second final one
        ("intermediate", "intermediate", 0, False),  # intermediate after intermediate
        ("delivered", None, 4.5, False),  # more than 4 days after dispatch
        ("delivered", None, 3.9, True),
    ],
)
def test_which_reports_apply(report, current, days_after, applies):
    verdict = judge(report, current, NOW, NOW + timedelta(days=days_after))
    assert verdict.apply == applies
    assert (verdict.note is None) == applies


@pytest.fixture
def webhook_server(sqlite_store) -> Iterator[tuple[str, Settings, FastAPI]]:
    settings = project_settings()
    app = create_webhook_app(settings, sqlite_store)
    with serving_in_background(app, "127.0.0.1", free_port()) as url:
        yield url, settings, app


def customers(store, count: int, first: int = 0) -> None:
    ids = [f"c{n}" for n in range(first, first + count)]
    store.customers.upsert(
        [
            {"id": cid, "phone": f"+1202{2_000_000 + n:07d}", "attributes": {"first_name": "Ann"}}
            for n, cid in zip(range(first, first + count), ids, strict=True)
        ],
        utc_now(),
    )
    store.customers.change_consents(
        [
            {
                "customer_id": cid,
                "category": "sms_marketing",
                "granted": True,
                "source": "test",
                "at": utc_now(),
                "details": {},
            }
            for cid in ids
        ]
    )


def run(sqlite_store, settings, simulator, scenario_text: str, app: FastAPI) -> None:
    integrations = {
        "simulator": {"type": "simulator", "url": simulator.url},
        "mms": {"type": "simulator", "url": simulator.url, "api": "sinch_mms"},
    }
    project = settings.model_copy(
        update={"integrations": project_settings(integrations=integrations).integrations}
    )
    runtime = Runtime(project, sqlite_store)
    scenario = parse_scenario(scenario_text, "s.yaml", project)
    launch(runtime, scenario, utc_now())
    tick_scenario(runtime, scenario.id)
    simulator.settle_reports(10)
    assert app.state.report_writer.settle(10)
    runtime.gateways.close()


def statuses(store, scenario_id: str) -> dict[str, int]:
    return {status: count for _t, status, count in store.evaluation.event_counts(scenario_id)}


def test_reports_from_the_simulator_become_campaign_events_once(sqlite_store, webhook_server):
    url, settings, app = webhook_server
    customers(sqlite_store, 10)
    config = SimulatorConfig(
        report_urls={"sinch_sms": f"{url}/webhooks/sinch_sms"},
        report_failure_rate=0.3,
        report_duplicate_rate=1.0,  # every report posted twice
        report_intermediate=True,
        report_out_of_order=True,  # the intermediate status after the final one
        seed=3,
    )
    with SimulatorProcess(config) as simulator:
        run(sqlite_store, settings, simulator, HELLO, app)
    counts = statuses(sqlite_store, "hello")
    assert counts["enqueued"] == 10
    assert counts.get("delivered", 0) + counts.get("failed", 0) == 10  # once each, finals kept
    assert counts.get("failed", 0) >= 1
    delivered = [
        e for e in sqlite_store.evaluation.campaign_events("hello") if e["status"] == "delivered"
    ]
    assert delivered[0]["properties"]["team"] == "growth"  # custom tracking on every status
    assert delivered[0]["properties"]["action_name"] == "greet"


def test_an_mms_delivered_as_fallback_sms_says_so(sqlite_store, webhook_server):
    url, settings, app = webhook_server
    customers(sqlite_store, 3)
    config = SimulatorConfig(
        report_urls={"sinch_mms": f"{url}/webhooks/sinch_mms"}, mms_fallback_rate=1.0
    )
    with SimulatorProcess(config) as simulator:
        run(sqlite_store, settings, simulator, PROMO, app)
    delivered = [
        e for e in sqlite_store.evaluation.campaign_events("promo") if e["status"] == "delivered"
    ]
    assert len(delivered) == 3
    assert {e["properties"]["type"] for e in delivered} == {"sms"}
    assert delivered[0]["properties"]["action_type"] == "mms"


def test_recipients_in_countries_without_reports_are_not_awaited(sqlite_store):
    sqlite_store.customers.upsert(
        [
            {"id": "de", "phone": "+4915112345678", "attributes": {}},  # Germany: no reports
            {"id": "us", "phone": "+12022000001", "attributes": {}},
            {"id": "ok", "phone": "+12022000002", "attributes": {}},
        ],
        NOW,
    )
    sqlite_store.sends.record(
        [
            {
                "key": f"k-{cid}",
                "scenario_id": "hello",
                "node_id": "greet",
                "customer_id": cid,
                "journey_id": 1,
                "state": "enqueued",
                "created_at": NOW,
                "tracked": True,
                "delivery_status": status,
            }
            for cid, status in (("de", None), ("us", None), ("ok", "delivered"))
        ]
    )
    assert sqlite_store.evaluation.delivery_counts("hello", frozenset({"DE"})) == {
        "no delivery reports in the recipient's country": 1,
        "awaiting a delivery report": 1,
        "delivered": 1,
    }


def test_unauthenticated_or_malformed_callbacks_store_nothing(sqlite_store, monkeypatch):
    monkeypatch.setenv("SINCH_SECRET", "SMSWebhooksSecret")
    monkeypatch.setenv("HOOK_TOKEN", "s3cret")
    settings = project_settings(
        webhooks={
            "sinch_signing_secret_env": "SINCH_SECRET",
            "token_env": "HOOK_TOKEN",
            "max_body_bytes": 2000,
        }
    )
    client = TestClient(create_webhook_app(settings, sqlite_store))
    body = (
        b'{"type":"recipient_delivery_report_sms","batch_id":"01B","recipient":"12022000000",'
        b'"code":0,"status":"Delivered","at":"2026-11-22T00:00:00Z","client_reference":"d1"}'
    )

    def signed(nonce: str) -> dict[str, str]:
        stamp = str(int(time.time()))
        good = base64.b64encode(
            hmac.new(
                b"SMSWebhooksSecret", body + f".{nonce}.{stamp}".encode(), hashlib.sha256
            ).digest()
        ).decode()
        return {
            "x-sinch-webhook-signature": good,
            "x-sinch-webhook-signature-algorithm": "HmacSHA256",
            "x-sinch-webhook-signature-nonce": nonce,
            "x-sinch-webhook-signature-timestamp": stamp,
        }

    headers = signed("nonce1")
    bad = client.post(
        "/webhooks/sinch_sms",
        content=body,
        headers={**headers, "x-sinch-webhook-signature": "AAAA"},
    )
    assert bad.status_code == 401
    assert (
        client.post("/webhooks/sinch_sms", content=b"{not json", headers=headers).status_code == 401
    )
    too_big = client.post("/webhooks/infobip_sms?token=s3cret", content=b"x" * 3000)
    assert too_big.status_code == 413
    unsigned = client.post("/webhooks/infobip_sms", content=b'{"results": [{}]}')
    assert unsigned.status_code == 401
    malformed = client.post("/webhooks/infobip_sms?token=s3cret", content=b'{"results": [{}]}')
    assert malformed.status_code == 400 and "results[0]" in malformed.json()["error"]
    assert sqlite_store.reports.pending(10) == []  # nothing stored
    ok = client.post("/webhooks/sinch_sms", content=body, headers=headers)
    assert ok.status_code == 200 and ok.json()["new"] == 1
    replayed = client.post("/webhooks/sinch_sms", content=body, headers=headers)
    assert replayed.status_code == 401 and "replayed" in replayed.json()["error"]
    # A provider's re-post is signed afresh: accepted, and the duplicate stored once.
    again = client.post("/webhooks/sinch_sms", content=body, headers=signed("nonce2"))
    assert again.status_code == 200 and again.json()["new"] == 0
    # Its send is not recorded yet: the report is kept, pending, to be matched later.
    assert len(sqlite_store.reports.pending(10)) == 1


def test_customer_events_over_http_are_stored_whole_and_start_a_tick(sqlite_store, monkeypatch):
    from engine.runtime import Runtime, launch
    from engine.scenario import parse_scenario

    monkeypatch.setenv("HOOK_TOKEN", "s3cret")
    settings = project_settings(webhooks={"token_env": "HOOK_TOKEN"})
    customers(sqlite_store, 2)
    cart = HELLO.replace("id: hello", "id: cart").replace(
        "{id: start, type: trigger, kind: launch}",
        "{id: start, type: trigger, kind: event, event: cart_abandoned}",
    )
    launch(Runtime(settings, sqlite_store), parse_scenario(cart, "cart.yaml", settings), NOW)
    ticks: list[list[str]] = []
    client = TestClient(
        create_webhook_app(settings, sqlite_store, on_events=ticks.append),
        headers={"x-scenarist-token": "s3cret"},
    )

    one = client.post(
        "/events", json={"customer_id": "c0", "type": "cart_abandoned", "properties": {"total": 30}}
    )
    assert one.status_code == 200 and one.json() == {"tracked": 1, "scenarios": ["cart"]}
    assert ticks == [["cart"]]  # the event-triggered scenario ticks now, not at the interval
    # A batch with one unknown customer stores nothing (nothing half applied).
    mixed = client.post(
        "/events",
        json={
            "events": [
                {"customer_id": "c1", "type": "cart_abandoned"},
                {"customer_id": "nobody", "type": "cart_abandoned"},
            ]
        },
    )
    assert mixed.status_code == 400 and "nobody" in mixed.json()["error"]
    bad = client.post("/events", json={"events": [{"customer_id": "c1"}]})
    assert bad.status_code == 400 and bad.json()["error"] == "events[0].type is missing"
    other = client.post("/events", json={"customer_id": "c1", "type": "page_view"})
    assert other.json()["scenarios"] == [] and len(ticks) == 1
    stored = sqlite_store.customers.events_after("cart_abandoned", 0, 10)
    assert [(e["customer_id"], e["properties"]) for e in stored] == [("c0", {"total": 30})]


def _report(n: int, status: str = "delivered") -> DeliveryReport:
    return DeliveryReport(
        provider="infobip_sms",
        dedupe_key=f"infobip_sms/m{n}/{status}",
        send_key=f"k{n}",
        dispatch_key=None,
        recipient="+12022000000",
        status=status,
        type=None,
        parts=1,
        status_code="5",
        error="DELIVERED_TO_HANDSET",
        comment=None,
        at=NOW,
    )


def test_the_report_writer_stores_concurrent_requests_together_and_once(sqlite_store):
    writer = ReportWriter(sqlite_store, "campaign", lambda: NOW)
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(writer.store, [_report(n), _report(n + 1)], NOW) for n in range(40)]
        counts = [future.result().result(10) for future in futures]
    # Requests n and n+1 overlap by one report: each report is stored once, whoever came first.
    assert sum(counts) == 41
    assert writer.store([_report(0)], NOW).result(10) == 0  # a re-posted duplicate
    assert writer.settle(10)
    # No send matches these reports: they stay pending, kept for later.
    assert len(sqlite_store.reports.pending(100)) == 41
    writer.close()


def test_a_failed_store_answers_the_request_with_the_error_and_stores_nothing(
    sqlite_store, monkeypatch
):
    writer = ReportWriter(sqlite_store, "campaign", lambda: NOW)
    failing = {name: getattr(sqlite_store.reports, name) for name in ("record", "store")}
    for name in failing:
        monkeypatch.setattr(sqlite_store.reports, name, lambda *args: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        writer.store([_report(1)], NOW).result(10)
    assert sqlite_store.reports.pending(10) == []
    for name, real in failing.items():
        monkeypatch.setattr(sqlite_store.reports, name, real)
    assert writer.store([_report(1)], NOW).result(10) == 1  # the writer goes on
    writer.close()


def test_reports_that_cannot_be_applied_on_arrival_are_still_stored_and_answered(
    sqlite_store, monkeypatch
):
    writer = ReportWriter(sqlite_store, "campaign", lambda: NOW)
    monkeypatch.setattr(sqlite_store.reports, "record", lambda *args: 1 / 0)
    assert writer.store([_report(1), _report(2)], NOW).result(10) == 2
    assert writer.settle(10)
    assert len(sqlite_store.reports.pending(10)) == 2  # kept, applied later
    writer.close()


@pytest.mark.parametrize(
    ("query", "headers", "status"),
    [
        ("?token=s3cret", {}, 200),  # the token in the callback URL
        ("", {"x-scenarist-token": "s3cret"}, 200),  # or in a header
        ("?token=wrong", {}, 401),
        ("", {}, 401),  # none at all
        ("", {"authorization": "Basic aW5mb2JpcDpwYXNz"}, 200),  # infobip:pass still works
        ("?token=wrong", {"authorization": "Basic aW5mb2JpcDpwYXNz"}, 401),  # a wrong token
    ],
)
def test_callbacks_may_authenticate_with_a_secret_token(
    sqlite_store, monkeypatch, query, headers, status
):
    monkeypatch.setenv("HOOK_TOKEN", "s3cret")
    monkeypatch.setenv("HOOK_PASSWORD", "pass")
    settings = project_settings(
        webhooks={
            "token_env": "HOOK_TOKEN",
            "basic_auth_username": "infobip",
            "basic_auth_password_env": "HOOK_PASSWORD",
        }
    )
    client = TestClient(create_webhook_app(settings, sqlite_store))
    body = {"results": [{"messageId": "m1", "to": "12022000000", "status": _DELIVERED}]}
    answer = client.post(f"/webhooks/infobip_sms{query}", json=body, headers=headers)
    assert answer.status_code == status, answer.text
    assert len(sqlite_store.reports.pending(10)) == (status == 200)


_DELIVERED = {"groupId": 3, "groupName": "DELIVERED", "id": 5, "name": "DELIVERED_TO_HANDSET"}


def test_callback_urls_we_send_carry_the_token(monkeypatch):
    from integrations.gateways import open_gateway

    monkeypatch.setenv("HOOK_TOKEN", "s3 cret")
    settings = project_settings(
        integrations={"infobip": {"type": "simulator", "api": "infobip_sms"}},
        default_sms_provider="infobip",
        default_mms_provider=None,
        webhooks={"public_url": "https://hooks.example.com", "token_env": "HOOK_TOKEN"},
    )
    gateway = open_gateway(settings, "infobip")
    assert gateway.callback_url == "https://hooks.example.com/webhooks/infobip_sms?token=s3+cret"
    gateway.close()


def test_a_report_more_than_4_days_late_is_kept_but_not_tracked_and_logged(sqlite_store, caplog):
    from engine.delivery import apply_pending_reports, report_rows

    dispatched = NOW - timedelta(days=5)
    sqlite_store.sends.record(
        [
            {
                "key": "k1",
                "scenario_id": "hello",
                "node_id": "greet",
                "customer_id": "c1",
                "journey_id": 1,
                "phone": "+12022000000",
                "state": "enqueued",
                "created_at": dispatched,
                "tracked": False,
            }
        ]
    )
    sqlite_store.sends.track(
        [
            {
                "name": "campaign",
                "customer_id": "c1",
                "scenario_id": "hello",
                "status": "enqueued",
                "send_key": "k1",
                "timestamp": dispatched,
                "properties": {"action_type": "sms", "status": "enqueued"},
            }
        ]
    )
    sqlite_store.reports.store([report_rows([replace(_report(1), send_key="k1")], NOW)])
    with caplog.at_level("INFO", logger="scenarist.delivery"):
        outcomes = apply_pending_reports(sqlite_store, "campaign", NOW)
    assert outcomes == {"ignored": 1}
    assert "not tracked" in caplog.text
    assert statuses(sqlite_store, "hello") == {"enqueued": 1}  # no delivered event
    assert sqlite_store.reports.pending(10) == []  # kept, with the reason


def _sent(store, *keys: str) -> None:
    """Enqueued, tracked sends `keys`, as the send path leaves them."""
    store.sends.record(
        [
            {
                "key": key,
                "scenario_id": "hello",
                "node_id": "greet",
                "customer_id": f"c-{key}",
                "journey_id": 1,
                "phone": "+12022000000",
                "state": "enqueued",
                "created_at": NOW,
                "tracked": False,
            }
            for key in keys
        ]
    )
    store.sends.track(
        [
            {
                "name": "campaign",
                "customer_id": f"c-{key}",
                "scenario_id": "hello",
                "status": "enqueued",
                "send_key": key,
                "timestamp": NOW,
                "properties": {"action_type": "sms", "status": "enqueued", "team": "growth"},
            }
            for key in keys
        ]
    )


def test_reports_are_applied_on_arrival_once_each(sqlite_store):
    from engine.delivery import report_rows, store_and_apply

    _sent(sqlite_store, "k1", "k2")
    pending = replace(_report(1, "intermediate"), send_key="k1")
    delivered = replace(_report(1), send_key="k1")
    failed = replace(_report(2, "failed"), send_key="k2")
    early = replace(_report(3), send_key="k3")  # its send is not recorded yet
    first = report_rows([pending, delivered, delivered], NOW)  # a copy in the same request
    second = report_rows([delivered, failed, early], NOW)  # a copy across requests
    counts, outcomes = store_and_apply(sqlite_store, [first, second], "campaign", NOW)
    assert counts == [2, 2]
    assert outcomes == {"intermediate": 1, "delivered": 1, "failed": 1, WAITING: 1}
    events = [
        e for e in sqlite_store.evaluation.campaign_events("hello") if e["status"] != "enqueued"
    ]
    assert sorted(e["status"] for e in events) == ["delivered", "failed"]
    assert all(e["properties"]["team"] == "growth" for e in events)
    [waiting] = sqlite_store.reports.pending(10)
    assert waiting["send_key"] == "k3"
    # Posted again later: nothing new, nothing doubled.
    again, _ = store_and_apply(sqlite_store, [report_rows([delivered], NOW)], "campaign", NOW)
    assert again == [0] and len(sqlite_store.evaluation.campaign_events("hello")) == 4


def test_a_pending_report_applied_meanwhile_by_another_process_is_not_applied_twice(store):
    from engine.delivery import report_rows

    _sent(store, "k1")
    store.reports.store([report_rows([replace(_report(1), send_key="k1")], NOW)])
    [report] = store.reports.pending(10)
    event = {
        "name": "campaign",
        "customer_id": "c-k1",
        "scenario_id": "hello",
        "status": "delivered",
        "timestamp": NOW,
        "properties": {"status": "delivered"},
    }
    store.reports.apply([(report["id"], "applied", None)], {"k1": "delivered"}, [event])
    with pytest.raises(ConcurrentUpdate, match="applied concurrently"):  # a second applier's turn
        store.reports.apply([(report["id"], "applied", None)], {"k1": "delivered"}, [event])
    assert statuses(store, "hello") == {"enqueued": 1, "delivered": 1}


def test_reports_decided_on_a_status_another_applier_changed_are_not_applied(store):
    from engine.delivery import report_rows

    _sent(store, "k1")
    rows = report_rows([replace(_report(1, "failed"), send_key="k1")], NOW)
    store.reports.apply([], {"k1": "delivered"}, [])  # another applier, meanwhile
    with pytest.raises(ConcurrentUpdate, match="updated concurrently"):
        store.reports.record([{**rows[0], "state": "applied"}], {"k1": "failed"}, [], {"k1": None})
    assert store.reports.pending(10) == []  # nothing written: the writer falls back
    assert store.sends.by_key(["k1"])["k1"].delivery_status == "delivered"
