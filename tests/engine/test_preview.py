"""The preview of a rich MMS: the text the handset reads, and the sender it comes from."""

from __future__ import annotations

from engine.preview import APP_DEFAULT_SENDER, preview_messages
from engine.scenario import parse_scenario
from engine.store import CustomerRow
from tests.conftest import NOW, project_settings

SCENARIO = """
id: ask
name: Ask
settings: {consent_category: sms_marketing, silent_hours: none}
nodes:
  - {id: start, type: trigger, kind: launch}
  - id: ask
    type: mms
    text: "Hi {{ customer.first_name }}, want our newsletter?"
    choices: [{text: "Yes"}, {text: "Read one first", url: "https://example.com/n"}]
    fallback: disabled
edges:
  - {from: start, to: ask}
"""
CUSTOMER = CustomerRow(
    id="c1",
    phone="+12025550001",
    region="US",
    timezone=None,
    attributes={"first_name": "Ann"},
    updated_at=NOW,
)


def test_a_choice_mms_previews_as_the_handset_reads_it():
    settings = project_settings()
    scenario = parse_scenario(SCENARIO, "ask.yaml", settings)
    [preview] = preview_messages(settings, scenario, CUSTOMER, {})
    assert preview.text == (
        "Hi Ann, want our newsletter?\n1. Yes\n2. Read one first: https://example.com/n"
    )
    assert preview.sender == "main"


def test_without_senders_a_conversation_mms_shows_the_apps_default_sender():
    settings = project_settings(
        integrations={"mms": {"type": "simulator", "api": "sinch_conversation"}},
        default_sms_provider=None,
        senders=[],
    )
    scenario = parse_scenario(SCENARIO, "ask.yaml", settings)
    [preview] = preview_messages(settings, scenario, CUSTOMER, {})
    assert preview.sender == APP_DEFAULT_SENDER and preview.failure is None
