"""Short-link clicks through the webhook app: redirect, identity transfer, tracking, and
the scenario's custom tracking attributes on every campaign event it makes."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from starlette.testclient import TestClient

from engine.delivery import apply_pending_reports, report_rows
from engine.reports import funnel_report
from engine.webhooks import create_webhook_app
from integrations.webhooks.reports import DeliveryReport
from tests.conftest import NOW
from tests.engine.test_runtime import FakeSinch, customers, make_runtime, person, run, scenario_text

TARGET = "https://x.com/sale?utm_source=scenarist&utm_medium=sms&utm_campaign=Test+campaign"


def launch(store, identity: str = "first_click"):
    """Send `hello` (with a link) to c1 and c2 (US) and c3 (Australia: the 10DLC sender
    cannot reach it, so enqueue_failed); returns the FakeSinch and the runtime."""
    sinch = FakeSinch()
    runtime = make_runtime(store, sinch, links={"short_url_base": "https://s.example.com/l"})
    customers(store, [person(1), person(2), {**person(3), "phone": "+61412345678"}])
    text = scenario_text(
        nodes="""
  - {id: start, type: trigger, kind: launch}
  - {id: hello, type: sms, text: "Hi {{ customer.first_name }}: https://x.com/sale"}
""",
        edges="  - {from: start, to: hello}",
        settings=f"  links: {{shorten: true, utm: auto, identity: {identity}}}",
    )
    run(runtime, text)
    return sinch, runtime


def code_of(sinch: FakeSinch, phone: str) -> str:
    [text] = sinch.texts()[phone]
    return re.search(r"/l/(\w+)$", text).group(1)


def client_for(runtime, at=NOW) -> TestClient:
    app = create_webhook_app(runtime.settings, runtime.store, now=lambda: at)
    return TestClient(app, follow_redirects=False)


def test_a_click_redirects_and_is_tracked_with_the_sends_properties(sqlite_store):
    sinch, runtime = launch(sqlite_store)
    code = code_of(sinch, "+12025550001")
    response = client_for(runtime).get(f"/l/{code}")

    assert response.status_code == 302
    assert response.headers["location"] == TARGET + "&scenarist_customer=c1"
    assert response.headers["cache-control"] == "no-store"  # every click reaches us
    [enqueued] = [
        e for e in sqlite_store.evaluation.campaign_events("test")
        if e["customer_id"] == "c1" and e["status"] == "enqueued"
    ]  # fmt: skip
    [clicked] = [
        e for e in sqlite_store.evaluation.campaign_events("test") if e["status"] == "clicked"
    ]
    assert clicked["customer_id"] == "c1" and clicked["name"] == "campaign"
    assert clicked["timestamp"] == NOW and clicked["test"] is False
    assert clicked["properties"] == {
        **enqueued["properties"],  # action, campaign, custom tracking attributes
        "status": "clicked",
        "url": TARGET,  # without the identity parameter
        "link_position": 1,
    }
    link = sqlite_store.links.get(code)
    assert link["clicks"] == 1 and link["first_clicked_at"] == NOW


@pytest.mark.parametrize(
    ("identity", "first", "second"),
    [
        ("disabled", TARGET, TARGET),
        ("first_click", TARGET + "&scenarist_customer=c2", TARGET),  # the seed's recommendation
        ("all_clicks", TARGET + "&scenarist_customer=c2", TARGET + "&scenarist_customer=c2"),
    ],
)
def test_identity_transfer_options(sqlite_store, identity, first, second):
    sinch, runtime = launch(sqlite_store, identity)
    client = client_for(runtime)
    code = code_of(sinch, "+12025550002")
    assert [client.get(f"/l/{code}").headers["location"] for _ in range(2)] == [first, second]
    clicks = [
        e for e in sqlite_store.evaluation.campaign_events("test") if e["status"] == "clicked"
    ]
    assert len(clicks) == 2  # every click is an event
    assert sqlite_store.links.get(code)["clicks"] == 2


def test_an_unknown_code_is_a_404_and_leaves_no_trace(sqlite_store):
    _sinch, runtime = launch(sqlite_store)
    before = sqlite_store.evaluation.campaign_events("test")
    response = client_for(runtime).get("/l/nosuchcode")
    assert response.status_code == 404 and "does not exist" in response.text
    assert sqlite_store.evaluation.campaign_events("test") == before
    assert sqlite_store.links.get("nosuchcode") is None


def test_a_head_request_redirects_but_tracks_nothing(sqlite_store):
    sinch, runtime = launch(sqlite_store)
    client = client_for(runtime)
    code = code_of(sinch, "+12025550001")
    head = client.head(f"/l/{code}")
    assert head.status_code == 302 and head.headers["location"] == TARGET  # no identity
    assert sqlite_store.links.get(code)["clicks"] == 0
    assert not [
        e for e in sqlite_store.evaluation.campaign_events("test") if e["status"] == "clicked"
    ]
    # the customer's own click afterwards is still the first one
    assert client.get(f"/l/{code}").headers["location"].endswith("scenarist_customer=c1")


def test_every_status_carries_the_custom_tracking_attributes(sqlite_store):
    sinch, runtime = launch(sqlite_store)
    version = sqlite_store.scenarios.record("test").version
    reports = [
        DeliveryReport(
            provider="sinch_sms",
            dedupe_key=f"r{number}",
            send_key=f"test/{version}/hello/c{number}/launch",
            dispatch_key=None,
            recipient=None,
            status=status,
            type=None,
            parts=None,
            status_code=None,
            error=None,
            comment=None,
            at=NOW,
        )
        for number, status in ((1, "delivered"), (2, "failed"))
    ]
    sqlite_store.reports.store([report_rows(reports, NOW)])
    apply_pending_reports(sqlite_store, "campaign", NOW)
    client_for(runtime, NOW + timedelta(hours=1)).get(f"/l/{code_of(sinch, '+12025550001')}")

    events = sqlite_store.evaluation.campaign_events("test")
    statuses = sorted(e["status"] for e in events)
    assert statuses == ["clicked", "delivered", "enqueue_failed", "enqueued", "enqueued", "failed"]
    assert all(e["properties"]["utm_campaign"] == "spring" for e in events), events


def test_the_funnel_counts_customers_who_clicked_and_every_click(sqlite_store):
    sinch, runtime = launch(sqlite_store)
    client = client_for(runtime)
    for phone in ("+12025550001", "+12025550001", "+12025550002"):
        client.get(f"/l/{code_of(sinch, phone)}")
    rows = dict(funnel_report(sqlite_store, "test").rows)
    assert rows["clicked a link"] == 2 and rows["link clicks (every click)"] == 3
    assert "sms clicked" not in rows  # clicks are not customers
