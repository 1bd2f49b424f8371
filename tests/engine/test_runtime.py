"""The runtime without Prefect: scenarios run end to end on SQLite against a Sinch stand-in.

The stand-in is an `httpx.MockTransport` handler that answers like Sinch (201 echo, list by
client_reference, error bodies), so the real Sinch client and gateway are exercised.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from engine.inbound import receive_inbound
from engine.runtime import Runtime, launch, tick_scenario
from engine.scenario import parse_scenario
from integrations.gateways import GatewayPool, SinchSmsGateway
from integrations.sinch_sms import SinchSmsClient, SinchSmsCredentials
from tests.conftest import NOW, project_settings
from tests.engine.seams import before_first_request
from tests.engine.test_inbound import STOP


class FakeSinch:
    """Answers POST/GET /batches like Sinch and remembers every accepted batch."""

    def __init__(self):
        self.batches: list[dict] = []
        self.posts = 0
        self.reject_with: tuple[int, dict] | None = None
        self.crash_after_accept = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            reference = request.url.params.get("client_reference")
            found = [b for b in self.batches if b["client_reference"] == reference]
            return httpx.Response(
                200,
                json={"count": len(found), "page": 0, "page_size": len(found), "batches": found},
            )
        self.posts += 1
        if self.reject_with:
            status, body = self.reject_with
            return httpx.Response(status, json=body)
        batch = json.loads(request.content)
        batch["id"] = f"01BATCH{len(self.batches):019d}"
        self.batches.append(batch)
        if self.crash_after_accept:
            # The process dies after Sinch accepted the batch, before the answer is stored.
            raise KeyboardInterrupt("killed mid-request")
        return httpx.Response(
            201,
            json={
                **batch,
                "created_at": "2026-11-23T15:00:00Z",
                "modified_at": "2026-11-23T15:00:00Z",
                "canceled": False,
            },
        )

    def texts(self) -> dict[str, list[str]]:
        """Each recipient's rendered messages, substituting parameters as Sinch does."""
        received: dict[str, list[str]] = {}
        for batch in self.batches:
            for number in batch["to"]:
                params = batch.get("parameters") or {}
                text = re.sub(
                    r"\$\{([A-Za-z0-9._-]+)\}",
                    lambda m, n=number, p=params: p[m.group(1)][n],
                    batch["body"],
                )
                received.setdefault("+" + number, []).append(text)
        return received


@pytest.fixture
def sinch() -> FakeSinch:
    return FakeSinch()


def make_runtime(store, sinch: FakeSinch, **settings_overrides) -> Runtime:
    settings = project_settings(**settings_overrides)
    client = SinchSmsClient(
        SinchSmsCredentials(
            service_plan_id="plan", api_token="token", base_url="https://sinch.test"
        ),
        transport=httpx.MockTransport(sinch),
        max_attempts=1,
        sleep=lambda _seconds: None,
    )
    gateways = GatewayPool(settings, {"simulator": SinchSmsGateway("simulator", client)})
    return Runtime(settings, store, gateways)


def customers(store, rows: list[dict], consent: bool = True) -> None:
    store.customers.upsert(rows, NOW)
    if consent:
        store.customers.change_consents(
            [
                {
                    "customer_id": row["id"],
                    "category": "sms_marketing",
                    "granted": True,
                    "source": "test",
                    "at": NOW,
                    "details": {},
                }
                for row in rows
            ]
        )


def person(number: int, **attributes) -> dict:
    return {
        "id": f"c{number}",
        "phone": f"+1202555{number:04d}",
        "timezone": "America/New_York",
        "attributes": {"first_name": f"Ann{number}", **attributes},
    }


def scenario_text(nodes: str, edges: str, settings: str = "", audience: str = "") -> str:
    return f"""
id: test
name: Test campaign
settings:
  consent_category: sms_marketing
  silent_hours: none
  tracking: {{utm_campaign: spring}}
{settings}
{audience}
nodes:
{nodes}
edges:
{edges}
"""


HELLO = scenario_text(
    nodes="""
  - {id: start, type: trigger, kind: launch}
  - {id: hello, type: sms, text: "Hi {{ customer.first_name }}!"}
""",
    edges="  - {from: start, to: hello}",
)


def run(runtime: Runtime, text: str, at: datetime = NOW):
    scenario = parse_scenario(text, "test.yaml", runtime.settings)
    launch(runtime, scenario, at)
    return scenario, tick_scenario(runtime, scenario.id, now=lambda: at)


def test_launch_sends_one_parameterized_request_and_tracks_each_send(sqlite_store, sinch):
    runtime = make_runtime(sqlite_store, sinch)
    customers(sqlite_store, [person(n) for n in range(3)])
    run(runtime, HELLO)

    assert sinch.posts == 1
    batch = sinch.batches[0]
    assert batch["body"] == "Hi ${p1}!"
    assert batch["parameters"] == {
        "p1": {"12025550000": "Ann0", "12025550001": "Ann1", "12025550002": "Ann2"}
    }
    assert batch["from"] == "12025550100" or batch["from"] == "+12025550100"
    assert sinch.texts()["+12025550001"] == ["Hi Ann1!"]

    events = sqlite_store.evaluation.campaign_events("test")
    assert len(events) == 3
    properties = events[0]["properties"]
    assert events[0]["name"] == "campaign" and events[0]["status"] == "enqueued"
    assert properties == {
        "utm_campaign": "spring",
        "action_type": "sms",
        "status": "enqueued",
        "action_id": 1,
        "action_name": "hello",
        "campaign_id": "test",
        "campaign_name": "Test campaign",
        "campaign_policy": None,
        "consent_category": "sms_marketing",
        "status_code": None,
        "error": None,
        "comment": None,
        "number_of_message_parts": 1,
        "recipient": properties["recipient"],
    }
    assert sorted(sqlite_store.journeys.counts("test")) == [("hello", "done", 3)]


def test_running_again_sends_nothing_twice(sqlite_store, sinch):
    runtime = make_runtime(sqlite_store, sinch)
    customers(sqlite_store, [person(n) for n in range(5)])
    run(runtime, HELLO)
    run(runtime, HELLO)  # the same launch twice
    # A tick whose journey moves were lost: the journeys are back at the SMS node.
    with sqlite_store.engine.begin() as connection:
        connection.exec_driver_sql("UPDATE journeys SET node_id='hello', state='active'")
    tick_scenario(runtime, "test", now=lambda: NOW)
    assert sinch.posts == 1
    assert all(len(texts) == 1 for texts in sinch.texts().values())
    assert len(sqlite_store.evaluation.campaign_events("test")) == 5


def test_a_crash_after_the_provider_accepted_is_reconciled_not_resent(sqlite_store, sinch):
    runtime = make_runtime(sqlite_store, sinch)
    customers(sqlite_store, [person(n) for n in range(4)])
    sinch.crash_after_accept = True
    with pytest.raises(KeyboardInterrupt):
        run(runtime, HELLO)
    assert sqlite_store.evaluation.campaign_events("test") == []  # nothing recorded yet
    sinch.crash_after_accept = False
    later = NOW + timedelta(minutes=6)  # the dead worker's lease has run out
    tick_scenario(runtime, "test", now=lambda: later)
    assert sinch.posts == 1  # found by client_reference, never posted again
    assert len(sinch.texts()) == 4
    assert {e["status"] for e in sqlite_store.evaluation.campaign_events("test")} == {"enqueued"}


def test_an_intent_the_provider_never_got_is_sent_on_restart(sqlite_store, sinch):
    runtime = make_runtime(sqlite_store, sinch)
    customers(sqlite_store, [person(n) for n in range(2)])
    sinch.reject_with = (503, {"code": "service_unavailable", "text": "down"})
    sinch_posts_before = sinch.posts
    scenario, _ = run(runtime, HELLO)
    # The provider was down: tracked as enqueue_failed with its answer, nothing lost.
    events = sqlite_store.evaluation.campaign_events("test")
    assert sinch.posts > sinch_posts_before
    assert {e["status"] for e in events} == {"enqueue_failed"}
    assert events[0]["properties"]["status_code"] == 503
    assert events[0]["properties"]["error"] == "service_unavailable"


def test_provider_rejection_is_tracked_with_code_and_text(sqlite_store, sinch):
    runtime = make_runtime(sqlite_store, sinch)
    customers(sqlite_store, [person(1)])
    sinch.reject_with = (
        400,
        {
            "code": "syntax_invalid_parameter_format",
            "text": "The format of parameter 'to[0]' is invalid",
        },
    )
    run(runtime, HELLO)
    [event] = sqlite_store.evaluation.campaign_events("test")
    assert event["status"] == "enqueue_failed"
    assert event["properties"]["status_code"] == 400
    assert event["properties"]["error"] == "syntax_invalid_parameter_format"
    assert "to[0]" in event["properties"]["comment"]


def test_consent_and_frequency_policy_stop_messages_with_a_reason(sqlite_store, sinch):
    runtime = make_runtime(
        sqlite_store, sinch, frequency_policies={"daily": {"max_messages": 1, "window": "1d"}}
    )
    customers(sqlite_store, [person(1), person(2)])
    customers(sqlite_store, [person(3)], consent=False)
    # c2 already got a message today from another scenario.
    sqlite_store.sends.record(
        [
            {
                "key": "other",
                "scenario_id": "other",
                "node_id": "x",
                "customer_id": "c2",
                "journey_id": 0,
                "state": "enqueued",
                "created_at": NOW - timedelta(hours=2),
                "tracked": True,
            }
        ]
    )
    text = HELLO.replace("  silent_hours: none", "  silent_hours: none\n  frequency_policy: daily")
    run(runtime, text)
    assert set(sinch.texts()) == {"+12025550001"}
    assert sorted(sqlite_store.evaluation.suppression_counts("test")) == [
        ("frequency policy: daily", 1),
        ("no consent: sms_marketing", 1),
    ]
    # Suppressed customers still finish the journey.
    assert sorted(sqlite_store.journeys.counts("test")) == [("hello", "done", 3)]


def test_silent_hours_hold_customers_until_they_end(sqlite_store, sinch):
    runtime = make_runtime(sqlite_store, sinch)
    customers(sqlite_store, [person(1)])
    text = HELLO.replace(
        "  silent_hours: none",
        '  silent_hours: {start: "21:00", end: "08:00", timezone: customer}',
    )
    night = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)  # 22:00 in New York
    run(runtime, text, at=night)
    assert sinch.posts == 0
    morning = datetime(2026, 11, 24, 13, 0, tzinfo=UTC)  # 08:00 in New York
    assert sqlite_store.journeys.next_due("test") == morning
    tick_scenario(runtime, "test", now=lambda: morning)
    assert sinch.posts == 1


def test_condition_wait_and_render_failure(sqlite_store, sinch):
    runtime = make_runtime(sqlite_store, sinch)
    customers(sqlite_store, [person(1, vip=True), person(2, vip=False), person(3)])
    text = scenario_text(
        nodes="""
  - {id: start, type: trigger, kind: launch}
  - {id: is_vip, type: condition, expression: "customer.vip"}
  - {id: vip_sms, type: sms, text: "VIP {{ customer.first_name }}"}
  - {id: later, type: wait, duration: 2h}
  - id: other_sms
    type: sms
    text: "{% if customer.vip is defined %}Hello{% endif %} {{ customer.nickname }}"
""",
        edges="""
  - {from: start, to: is_vip}
  - {from: is_vip, to: vip_sms, when: true}
  - {from: is_vip, to: later, when: false}
  - {from: later, to: other_sms}
""",
    )
    run(runtime, text)
    # c3 has no `vip`: StrictUndefined fails that customer alone, with the reason.
    journeys = {j["customer_id"]: j for j in sqlite_store.journeys.of_customer("c3")}
    assert journeys["c3"]["state"] == "failed" and "vip" in journeys["c3"]["error"]
    assert set(sinch.texts()) == {"+12025550001"}
    assert sqlite_store.journeys.next_due("test") == NOW + timedelta(hours=2)

    later = NOW + timedelta(hours=2)
    tick_scenario(runtime, "test", now=lambda: later)
    # c2's template needs `customer.nickname`: a render error fails c2, tracked as such.
    [event] = [
        e for e in sqlite_store.evaluation.campaign_events("test") if e["customer_id"] == "c2"
    ]
    assert event["status"] == "enqueue_failed"
    assert event["properties"]["error"] == "template_error"
    assert "nickname" in event["properties"]["comment"]
    assert sqlite_store.journeys.of_customer("c2")[0]["state"] == "failed"


def test_event_trigger_enrols_on_new_events_with_reentry_rules(sqlite_store, sinch):
    runtime = make_runtime(sqlite_store, sinch)
    customers(sqlite_store, [person(1), person(2)])
    sqlite_store.customers.track_events(
        [{"customer_id": "c1", "type": "cart_abandoned", "properties": {"total": 99}, "at": NOW}]
    )  # before launch
    text = scenario_text(
        nodes="""
  - {id: cart, type: trigger, kind: event, event: cart_abandoned, condition: "event.total > 20"}
  - {id: remind, type: sms, text: "Your cart of ${{ event.total }} is waiting"}
""",
        edges="  - {from: cart, to: remind}",
    )
    run(runtime, text)
    assert sinch.posts == 0  # events before the launch do not enrol
    sqlite_store.customers.track_events(
        [
            {"customer_id": "c1", "type": "cart_abandoned", "properties": {"total": 50}, "at": NOW},
            {"customer_id": "c1", "type": "cart_abandoned", "properties": {"total": 60}, "at": NOW},
            {"customer_id": "c2", "type": "cart_abandoned", "properties": {"total": 5}, "at": NOW},
        ]
    )
    summary = tick_scenario(runtime, "test", now=lambda: NOW)
    # c1 entered once (after_finish: the second event came while the first was active);
    # c2's event fails the condition.
    assert summary.enrolled == 1
    assert sinch.texts() == {"+12025550001": ["Your cart of $50 is waiting"]}
    sqlite_store.customers.track_events(
        [{"customer_id": "c1", "type": "cart_abandoned", "properties": {"total": 70}, "at": NOW}]
    )
    tick_scenario(runtime, "test", now=lambda: NOW)
    assert len(sinch.texts()["+12025550001"]) == 2  # the first journey had finished


def test_schedule_trigger_enrols_at_each_fire(sqlite_store, sinch):
    runtime = make_runtime(sqlite_store, sinch)
    customers(sqlite_store, [person(1)])
    text = scenario_text(
        nodes="""
  - {id: weekly, type: trigger, kind: schedule, cron: "0 10 * * MON", timezone: America/New_York}
  - {id: digest, type: sms, text: "Weekly news"}
""",
        edges="  - {from: weekly, to: digest}",
    )
    run(runtime, text)  # Monday 10:00 New York time has passed on NOW (15:00 UTC)
    assert sinch.posts == 0
    next_monday = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)  # 10:00 EST
    assert sqlite_store.scenarios.record("test").next_fire_at == next_monday
    tick_scenario(runtime, "test", now=lambda: next_monday)
    tick_scenario(runtime, "test", now=lambda: next_monday + timedelta(minutes=5))
    assert sinch.texts() == {"+12025550001": ["Weekly news"]}
    assert sqlite_store.scenarios.record("test").next_fire_at == next_monday + timedelta(days=7)


def test_paused_scenarios_do_not_tick(sqlite_store, sinch):
    runtime = make_runtime(sqlite_store, sinch)
    customers(sqlite_store, [person(1)])
    scenario = parse_scenario(HELLO, "test.yaml", runtime.settings)
    launch(runtime, scenario, NOW)
    sqlite_store.scenarios.update("test", status="paused")
    assert tick_scenario(runtime, "test", now=lambda: NOW).processed == 0
    assert sinch.posts == 0


def test_unicode_text_is_counted_in_ucs2_parts(sqlite_store, sinch):
    runtime = make_runtime(sqlite_store, sinch)
    customers(sqlite_store, [person(1)])
    text = HELLO.replace('"Hi {{ customer.first_name }}!"', '"' + "Ahoj světe 🎉 " * 6 + '"')
    run(runtime, text)
    [event] = sqlite_store.evaluation.campaign_events("test")
    assert event["properties"]["number_of_message_parts"] == 2
    assert sqlite_store.sends.by_key([event["send_key"]])[event["send_key"]].encoding == "UCS-2"


def test_a_sender_that_cannot_reach_the_country_is_tracked_not_sent(sqlite_store, sinch):
    runtime = make_runtime(sqlite_store, sinch)
    british = {"id": "uk", "phone": "+447400123456", "attributes": {"first_name": "Ada"}}
    customers(sqlite_store, [person(1), british])
    run(runtime, HELLO)
    assert set(sinch.texts()) == {"+12025550001"}
    [event] = [
        e for e in sqlite_store.evaluation.campaign_events("test") if e["customer_id"] == "uk"
    ]
    assert event["status"] == "enqueue_failed"
    assert event["properties"]["error"] == "sender_not_allowed"
    assert "10DLC" in event["properties"]["comment"] and "GB" in event["properties"]["comment"]
    assert sqlite_store.journeys.of_customer("uk")[0]["state"] == "done"  # the journey goes on


def test_a_text_over_the_projects_part_limit_fails_that_customer(sqlite_store, sinch):
    runtime = make_runtime(sqlite_store, sinch, max_message_parts=1)
    customers(sqlite_store, [person(1, bio="x" * 200), person(2, bio="short")])
    run(runtime, HELLO.replace("Hi {{ customer.first_name }}!", "Hi {{ customer.bio }}!"))
    assert set(sinch.texts()) == {"+12025550002"}
    [event] = [
        e for e in sqlite_store.evaluation.campaign_events("test") if e["customer_id"] == "c1"
    ]
    assert event["properties"]["error"] == "too_many_parts"
    assert sqlite_store.journeys.of_customer("c1")[0]["state"] == "failed"


def test_a_text_too_big_to_build_fails_that_customers_journey(sqlite_store, sinch):
    # The issue's `customer.first_name * 10**9`, bounded by a customer's own number.
    runtime = make_runtime(sqlite_store, sinch)
    customers(sqlite_store, [person(1, times=10**9), person(2, times=2)])
    text = "Hi {{ customer.first_name * customer.times }}!"
    run(runtime, HELLO.replace("Hi {{ customer.first_name }}!", text))
    assert sinch.texts() == {"+12025550002": ["Hi Ann2Ann2!"]}
    [journey] = sqlite_store.journeys.of_customer("c1")
    assert journey["state"] == "failed"
    assert "'*' would build a str of 4,000,000,000 characters" in journey["error"]


def test_a_test_send_goes_through_the_send_path_but_counts_nowhere(sqlite_store, sinch):
    from engine.trial_send import send_test

    runtime = make_runtime(sqlite_store, sinch)
    customers(sqlite_store, [person(1)], consent=False)  # tests need no consent
    scenario = parse_scenario(HELLO, "test.yaml", runtime.settings)
    tracked = send_test(
        runtime, scenario, "hello", sqlite_store.customers.get("c1"), to="+1 212 555 0199"
    )
    assert tracked["status"] == "enqueued" and tracked["test"] is True
    assert tracked["properties"]["test"] is True
    assert sinch.texts() == {"+12125550199": ["Hi Ann1!"]}
    assert sqlite_store.evaluation.event_counts("test") == []  # not in the evaluation
    assert sqlite_store.sends.sent_since(["c1"], NOW - timedelta(days=1)) == {}
    with pytest.raises(Exception, match="not a message node"):
        send_test(runtime, scenario, "start", sqlite_store.customers.get("c1"))


def test_changing_the_default_provider_reroutes_existing_scenarios(sqlite_store):
    first, second = FakeSinch(), FakeSinch()
    integrations = {"first": {"type": "simulator"}, "second": {"type": "simulator"}}

    def runtime_with_default(name: str) -> Runtime:
        settings = project_settings(
            integrations=integrations, default_sms_provider=name, default_mms_provider=None
        )
        gateways = {
            gateway_name: SinchSmsGateway(
                gateway_name,
                SinchSmsClient(
                    SinchSmsCredentials(
                        service_plan_id="plan", api_token="token", base_url="https://sinch.test"
                    ),
                    transport=httpx.MockTransport(fake),
                    max_attempts=1,
                ),
            )
            for gateway_name, fake in (("first", first), ("second", second))
        }
        return Runtime(settings, sqlite_store, GatewayPool(settings, gateways))

    customers(sqlite_store, [person(1)])
    text = scenario_text(
        nodes="""
  - {id: start, type: trigger, kind: launch}
  - {id: hello, type: sms, text: "Hello"}
  - {id: later, type: wait, duration: 1d}
  - {id: again, type: sms, text: "Hello again"}
""",
        edges="""
  - {from: start, to: hello}
  - {from: hello, to: later}
  - {from: later, to: again}
""",
    )
    run(runtime_with_default("first"), text)
    # The project's default SMS provider changes; the scenario file does not.
    tick_scenario(runtime_with_default("second"), "test", now=lambda: NOW + timedelta(days=1))
    assert first.texts() == {"+12025550001": ["Hello"]}
    assert second.texts() == {"+12025550001": ["Hello again"]}


def test_a_tick_holds_the_claim_of_every_journey_it_runs(sqlite_store, sinch):
    """A claim that brings back journeys this tick has already moved gives back only
    those: the others in it are run claimed, so no other worker can take them meanwhile."""
    runtime = make_runtime(sqlite_store, sinch, claim_size=3)
    customers(sqlite_store, [person(n) for n in range(4)])
    text = scenario_text(
        nodes="""
  - {id: start, type: trigger, kind: launch}
  - {id: later, type: wait, duration: 1m}
  - {id: hello, type: sms, text: "Hello"}
""",
        edges="""
  - {from: start, to: later}
  - {from: later, to: hello}
""",
    )
    launch(runtime, parse_scenario(text, "test.yaml", runtime.settings), NOW)
    # Two minutes pass between claims: the first claim's three are due again (their
    # one-minute wait is over) when the second claim takes the fourth with two of them.
    times = (NOW + timedelta(minutes=2 * n) for n in itertools.count(1))
    unclaimed: list[str] = []

    def run_checking_claims(batch):
        for item in batch.items:
            journey = sqlite_store.journeys.of_customer(item.customer_id)[0]
            if journey["claimed_until"] is None or journey["claimed_until"] <= batch.ctx.now:
                unclaimed.append(item.customer_id)
        return batch.run()

    summary = tick_scenario(runtime, "test", run_checking_claims, now=lambda: next(times))

    assert unclaimed == []
    assert summary.moves == {("later", "next->hello"): 4}
    # The journeys given back wait, unclaimed, for the next tick.
    assert all(
        sqlite_store.journeys.of_customer(f"c{n}")[0]["claimed_until"] is None for n in range(4)
    )


def withdraw(runtime: Runtime, how: str, numbers: list[int]) -> None:
    """Customers' consent ends: their phone texts STOP (acknowledged as the webhook does:
    the ledger revoked, the phone opted out), the category is revoked in the consent
    ledger (an import, the CLI), or the phone texts STOP and an import grants the
    category again (the phone's STOP still holds)."""
    if how in ("stop", "stop then granted"):
        messages = [
            replace(STOP, sender=person(n)["phone"], message_id=f"stop-{n}") for n in numbers
        ]
        receive_inbound(runtime.store, runtime.settings, messages, NOW)
    if how in ("revoked", "stop then granted"):
        runtime.store.customers.change_consents(
            [
                {
                    "customer_id": f"c{n}",
                    "category": "sms_marketing",
                    "granted": how != "revoked",
                    "source": "import",
                    "at": NOW,
                    "details": {},
                }
                for n in numbers
            ]
        )


@pytest.mark.parametrize(
    ("how", "withdrawn", "reason"),
    [
        ("stop", [1], "no consent: sms_marketing"),
        ("revoked", [1], "no consent: sms_marketing"),
        ("stop then granted", [1], "the phone texted STOP: sms_marketing"),
        ("stop", [0, 1, 2], "no consent: sms_marketing"),  # the whole request
    ],
)
def test_consent_withdrawn_after_the_consent_step_is_honoured_at_the_request(
    sqlite_store, sinch, how, withdrawn, reason, monkeypatch
):
    runtime = make_runtime(sqlite_store, sinch)
    customers(sqlite_store, [person(n) for n in range(3)])
    # The consent policy has passed everyone; then consent is withdrawn.
    before_first_request(monkeypatch, lambda: withdraw(runtime, how, withdrawn))
    scenario = parse_scenario(HELLO, "test.yaml", runtime.settings)
    launch(runtime, scenario, NOW)
    tick_scenario(runtime, "test", now=lambda: NOW)

    sent = [n for n in range(3) if n not in withdrawn]
    assert set(sinch.texts()) == {person(n)["phone"] for n in sent}
    assert sinch.posts == (1 if sent else 0)
    assert sqlite_store.evaluation.suppression_counts("test") == [(reason, len(withdrawn))]
    events = sqlite_store.evaluation.campaign_events("test")
    assert sorted(e["customer_id"] for e in events) == [f"c{n}" for n in sent]
    assert sorted(sqlite_store.journeys.counts("test")) == [("hello", "done", 3)]
    # Nothing is left pending to be sent later.
    later = NOW + timedelta(days=1)
    assert sqlite_store.dispatches.stale_pending("test", later, later) == []


def test_a_request_the_provider_may_have_is_not_withheld_by_a_later_stop(sqlite_store, sinch):
    runtime = make_runtime(sqlite_store, sinch)
    customers(sqlite_store, [person(n) for n in range(2)])
    sinch.crash_after_accept = True
    with pytest.raises(KeyboardInterrupt):
        run(runtime, HELLO)
    withdraw(runtime, "stop", [1])
    sinch.crash_after_accept = False
    tick_scenario(runtime, "test", now=lambda: NOW + timedelta(minutes=6))
    # Sinch had it before the STOP: the record says it was sent, as it was.
    assert sinch.posts == 1
    assert {
        e["customer_id"]: e["status"] for e in sqlite_store.evaluation.campaign_events("test")
    } == {
        "c0": "enqueued",
        "c1": "enqueued",
    }


def test_a_node_batch_counts_every_outcome_once_by_reason(sqlite_store, sinch):
    runtime = make_runtime(
        sqlite_store,
        sinch,
        frequency_policies={"daily": {"max_messages": 1, "window": "1d"}},
    )
    customers(sqlite_store, [person(n) for n in range(4)])
    customers(sqlite_store, [person(4)], consent=False)
    customers(sqlite_store, [{**person(5), "phone": None}])
    customers(sqlite_store, [{**person(6), "attributes": {}}])  # no first_name
    text = scenario_text(
        nodes="""
  - {id: start, type: trigger, kind: launch}
  - {id: hello, type: sms, text: "Hi {{ customer.first_name }}!"}
""",
        edges="  - {from: start, to: hello}",
        settings="  frequency_policy: daily",
    )
    scenario = parse_scenario(text, "test.yaml", runtime.settings)
    launch(runtime, scenario, NOW)
    earlier = {"key": "x", "scenario_id": "other", "node_id": "n", "customer_id": "c0"}
    sqlite_store.sends.record(
        [{**earlier, "journey_id": 0, "state": "enqueued", "created_at": NOW}]
    )
    counted = []

    def run_batch(batch):
        counts = batch.run()
        counted.append((batch.name, dict(counts)))
        return counts

    summary = tick_scenario(runtime, "test", run_batch, now=lambda: NOW)
    assert counted == [
        (
            "hello #1",
            {
                "sent": 3,
                "suppressed: frequency policy: daily": 1,
                "suppressed: no consent: sms_marketing": 1,
                "enqueue_failed: invalid_phone": 1,
                "failed: template_error": 1,
            },
        )
    ]
    assert summary.reasons[("hello", "sent")] == 3
