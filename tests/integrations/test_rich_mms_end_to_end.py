"""Choice and location MMS end to end: the runtime (without Prefect) on SQLite, the real
gateways and clients, the simulator over loopback. Through the Conversation API they go as
a choice_message or a location_message, which the simulator transcodes to text as Sinch
does on MMS; through Infobip MMS and the Sinch MMS JSON API the gateway sends that same
text. Either way the handset reads the same."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine.runtime import Runtime, launch, tick_scenario
from engine.scenario import parse_scenario
from engine.store import Store
from integrations.simulator.config import SimulatorConfig
from integrations.simulator.server import SimulatorProcess
from tests.conftest import NOW, project_settings

CHOICE = """
  - id: ask
    type: mms
    text: "Hi {{ customer.first_name }}, want our newsletter?"
    choices:
      - {text: "Yes please", postback_data: newsletter-yes}
      - {text: "Read one first", url: "https://example.com/n"}
    fallback: {text: "Reply YES for our newsletter"}
"""
LOCATION = """
  - id: ask
    type: mms
    location: {title: Main Street store, label: Open 9 to 5, latitude: 40.7128, longitude: -74.006}
    fallback: disabled
"""
HANDSET = {
    CHOICE: "Hi Ann, want our newsletter?\n1. Yes please\n2. Read one first: https://example.com/n",
    LOCATION: "Main Street store\nOpen 9 to 5\nhttps://maps.google.com/?q=40.7128,-74.006",
}
PHONE = "+12025550001"


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorProcess]:
    with SimulatorProcess(port=0) as process:
        yield process


@pytest.fixture
def sim(simulator: SimulatorProcess) -> SimulatorProcess:
    simulator.set_config(SimulatorConfig())
    simulator.reset()
    return simulator


def send_once(store: Store, sim: SimulatorProcess, api: str, node: str, **settings) -> dict:
    """Launch a one-node scenario to one customer through `api`; its campaign event."""
    values = {
        "integrations": {"mms": {"type": "simulator", "url": sim.url, "api": api}},
        "default_sms_provider": None,
        "default_mms_provider": "mms",
        **settings,
    }
    runtime = Runtime(project_settings(**values), store)
    store.customers.upsert([{"id": "c1", "phone": PHONE, "attributes": {"first_name": "Ann"}}], NOW)
    store.customers.change_consents(
        [
            {
                "customer_id": "c1",
                "category": "sms_marketing",
                "granted": True,
                "source": "test",
                "at": NOW,
                "details": {},
            }
        ]
    )
    text = f"""
id: rich
name: Rich MMS
settings: {{consent_category: sms_marketing, silent_hours: none}}
nodes:
  - {{id: start, type: trigger, kind: launch}}
{node}
edges:
  - {{from: start, to: ask}}
"""
    scenario = parse_scenario(text, "rich.yaml", runtime.settings)
    try:
        launch(runtime, scenario, NOW)
        tick_scenario(runtime, scenario.id, now=lambda: NOW)
    finally:
        runtime.close()
    [event] = store.evaluation.campaign_events("rich")
    return event


@pytest.mark.parametrize("node", [CHOICE, LOCATION], ids=["choice", "location"])
@pytest.mark.parametrize("api", ["sinch_conversation", "infobip_mms", "sinch_mms"])
def test_choice_and_location_read_the_same_through_every_mms_api(sqlite_store, sim, api, node):
    event = send_once(sqlite_store, sim, api, node)
    assert event["status"] == "enqueued", event["properties"]
    [received] = sim.messages(PHONE)
    assert (received["provider"], received["type"]) == (api, "mms")
    assert (received["subject"], received["media_url"]) == (None, None)
    assert received["body"] == HANDSET[node]
    assert received["from"].lstrip("+") == "12025550100"  # Infobip keeps the "+"


def test_a_conversation_mms_without_any_sender_uses_the_apps_default(sqlite_store, sim):
    event = send_once(sqlite_store, sim, "sinch_conversation", CHOICE, senders=[])
    assert event["status"] == "enqueued", event["properties"]
    [received] = sim.messages(PHONE)
    assert received["from"] is None  # no channel_properties.MMS_SENDER: the app's default
