"""Links in SMS and MMS nodes: rewritten at compose time before segmentation, carried as
Sinch parameters so a batch stays one request, stored with their sends exactly once."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.links import LINK_SECRET, short_code
from engine.preview import preview_messages
from engine.runtime import tick_scenario
from engine.scenario import parse_scenario
from engine.sending import Draft
from engine.store import CustomerRow
from engine.trial_send import send_test
from nodes.base import JourneyItem
from tests.conftest import NOW, project_settings
from tests.engine.test_runtime import FakeSinch, customers, make_runtime, person, run, scenario_text

BASE = "https://s.example.com/l"
LONG_URL = "https://shop.example.com/collections/spring/" + "x" * 100
LINKS = {"short_url_base": BASE, "shorten": True, "utm": "auto"}


def sms_scenario(text: str, links: str = "") -> str:
    return scenario_text(
        nodes=f"""
  - {{id: start, type: trigger, kind: launch}}
  - {{id: hello, type: sms, text: "{text}"}}
""",
        edges="  - {from: start, to: hello}",
        settings=f"  links: {links}" if links else "",
    )


MMS = """
id: promo
name: Promo
settings: {consent_category: sms_marketing, silent_hours: none, links: {shorten: true}}
nodes:
  - {id: start, type: trigger, kind: launch}
  - id: promo
    type: mms
    text: "Hi {{ customer.first_name }}, see https://x.com/mms"
    media_url: https://cdn.example.com/sale.jpg
    fallback: {text: "Hi {{ customer.first_name }}, sale at https://x.com/sale."}
edges:
  - {from: start, to: promo}
"""


def item(send_key: str | None = "t/v/hello/c1/launch") -> Draft:
    journey = JourneyItem(
        1, "c1", "launch", "v", {"first_name": "Ann"}, {}, "+12025550001", region="US"
    )
    return Draft(journey, send_key)


def test_sms_parts_are_counted_on_the_shortened_text():
    settings = project_settings(links=LINKS)
    text = f"Hi {{{{ customer.first_name }}}}, shop {LONG_URL} now"
    scenario = parse_scenario(sms_scenario(text), "t.yaml", settings)
    [composed] = scenario.nodes["hello"].compose(settings, scenario, [item()])
    code = short_code("t/v/hello/c1/launch", 1)
    assert composed.text == f"Hi Ann, shop {BASE}/{code} now"
    assert composed.parts == 1  # the text as written would cost 2
    [link] = composed.links
    assert link.target == (
        f"{LONG_URL}?utm_source=scenarist&utm_medium=sms&utm_campaign=Test+campaign"
    )
    assert link.identity == "first_click"
    again = scenario.nodes["hello"].compose(settings, scenario, [item()])
    assert again == [composed]  # a retried render makes the same links


def test_mms_text_and_fallback_links_are_numbered_in_order():
    settings = project_settings(links={"short_url_base": BASE})
    scenario = parse_scenario(MMS, "promo.yaml", settings)
    [composed] = scenario.nodes["promo"].compose(settings, scenario, [item("k")])
    assert composed.text == f"Hi Ann, see {BASE}/{short_code('k', 1)}"
    assert composed.fallback_text == f"Hi Ann, sale at {BASE}/{short_code('k', 2)}."
    assert [(link.position, link.target) for link in composed.links] == [
        (1, "https://x.com/mms"),
        (2, "https://x.com/sale"),
    ]
    assert composed.parts == 1


def test_a_preview_shows_obviously_fake_codes_of_the_real_length():
    settings = project_settings(links={"short_url_base": BASE})
    scenario = parse_scenario(MMS, "promo.yaml", settings)
    customer = CustomerRow("c1", "+12025550001", "US", None, {"first_name": "Ann"}, NOW)
    [preview] = preview_messages(settings, scenario, customer, {})
    assert preview.text == f"Hi Ann, see {BASE}/preview001"
    assert preview.fallback_pieces == [f"Hi Ann, sale at {BASE}/preview002."]


def test_links_stay_as_written_unless_asked_for():
    settings = project_settings()
    scenario = parse_scenario(sms_scenario("See https://x.com/a"), "t.yaml", settings)
    [composed] = scenario.nodes["hello"].compose(settings, scenario, [item()])
    assert composed.text == "See https://x.com/a" and composed.links == ()


def test_a_batch_with_a_link_is_still_one_request(sqlite_store):
    sinch = FakeSinch()
    runtime = make_runtime(sqlite_store, sinch, links=LINKS)
    customers(sqlite_store, [person(n) for n in range(1000)])
    text = "Hi {{ customer.first_name }}, shop https://x.com/sale?ref=sms#top now"
    run(runtime, sms_scenario(text))

    assert sinch.posts == 1
    [batch] = sinch.batches
    assert batch["body"] == "Hi ${p1}, shop ${p2} now"
    assert len(batch["to"]) == 1000 and len(set(batch["parameters"]["p2"].values())) == 1000
    received = sinch.texts()["+12025550007"]
    key = f"test/{sqlite_store.scenarios.record('test').version}/hello/c7/launch"
    code = short_code(key, 1, secret=sqlite_store.secret(LINK_SECRET))
    assert received == [f"Hi Ann7, shop {BASE}/{code} now"]
    link = sqlite_store.links.get(code)
    assert link["customer_id"] == "c7" and link["send_key"] == key and link["test"] is False
    assert link["url"] == (
        "https://x.com/sale?ref=sms&utm_source=scenarist&utm_medium=sms"
        "&utm_campaign=Test+campaign#top"
    )
    assert sqlite_store.evaluation.click_counts("test") == (1000, 0, 0)


def test_a_crash_after_the_provider_accepted_leaves_one_link_per_message(sqlite_store):
    sinch = FakeSinch()
    runtime = make_runtime(sqlite_store, sinch, links=LINKS)
    customers(sqlite_store, [person(n) for n in range(3)])
    sinch.crash_after_accept = True
    with pytest.raises(KeyboardInterrupt):
        run(runtime, sms_scenario("Go https://x.com/{{ customer.id }} now"))
    sinch.crash_after_accept = False
    tick_scenario(runtime, "test", now=lambda: NOW + timedelta(minutes=6))
    assert sinch.posts == 1
    assert sqlite_store.evaluation.click_counts("test") == (3, 0, 0)
    for phone, [text] in sinch.texts().items():
        code = text.split("/")[-1].removesuffix(" now")
        link = sqlite_store.links.get(code)  # the link a customer got is the stored one
        assert link["url"].startswith(f"https://x.com/c{int(phone[-4:])}?utm_source=")


def test_a_code_another_link_holds_is_moved(sqlite_store):
    sinch = FakeSinch()
    runtime = make_runtime(sqlite_store, sinch, links=LINKS)
    customers(sqlite_store, [person(1)])
    text = sms_scenario("Go https://x.com/a")
    version = parse_scenario(text, "t.yaml", runtime.settings).version
    key = f"test/{version}/hello/c1/launch"
    secret = sqlite_store.secret(LINK_SECRET)
    taken = short_code(key, 1, secret=secret)
    sqlite_store.sends.record_intents([], [], [link_row(taken, send_key="someone/else")])
    run(runtime, text)
    moved = short_code(key, 1, salt=1, secret=secret)
    assert sinch.texts()["+12025550001"] == [f"Go {BASE}/{moved}"]
    assert sqlite_store.links.get(taken)["send_key"] == "someone/else"
    assert sqlite_store.links.get(moved)["send_key"] == key


def link_row(code: str, send_key: str = "s/v/n/c1/launch", position: int = 1, **values) -> dict:
    return {
        "code": code,
        "send_key": send_key,
        "position": position,
        "customer_id": "c1",
        "scenario_id": "test",
        "node_id": "hello",
        "url": "https://x.com/a",
        "identity": "first_click",
        "test": False,
        "created_at": NOW,
        **values,
    }


def test_a_test_send_gets_real_links_marked_test(sqlite_store):
    sinch = FakeSinch()
    runtime = make_runtime(sqlite_store, sinch, links=LINKS)
    customers(sqlite_store, [person(1)], consent=False)
    scenario = parse_scenario(sms_scenario("Go https://x.com/a"), "t.yaml", runtime.settings)
    tracked = send_test(runtime, scenario, "hello", sqlite_store.customers.get("c1"))
    [text] = sinch.texts()["+12025550001"]
    link = sqlite_store.links.get(text.removeprefix(f"Go {BASE}/"))
    assert link["test"] is True and link["send_key"] == tracked["send_key"]
    assert sqlite_store.evaluation.click_counts("test") == (0, 0, 0)  # not in the evaluation
