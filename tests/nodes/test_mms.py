"""The mms node's rules: subject, media, fallback, countries (table-driven, no I/O)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from engine.scenario import parse_scenario
from engine.sending import Composed, Draft, Refused
from nodes.base import JourneyItem
from nodes.mms import MmsNode
from tests.conftest import project_settings

BASE = {
    "id": "promo",
    "type": "mms",
    "text": "Hi {{ customer.first_name }}",
    "fallback": {"text": "Hi {{ customer.first_name }}, see https://example.com/sale"},
}


def node(**fields) -> MmsNode:
    return MmsNode.model_validate({**BASE, **fields})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"subject": "x" * 81}, "subject has 81 characters; the maximum is 80"),
        ({"subject": "Sale 🎉"}, "plain ASCII only"),  # emoji
        ({"subject": "Café"}, "plain ASCII only"),  # other non-ASCII
        ({"media_url": "ftp://cdn.example.com/a.jpg"}, r"not an http\(s\) URL"),
        ({"fallback": None}, "fallback"),  # a fallback text, or `disabled`, is required
        ({"fallback": "maybe"}, "fallback"),
    ],
)
def test_invalid_mms_fields_are_refused(fields, message):
    with pytest.raises(ValidationError, match=message):
        node(**fields)


def test_a_valid_subject_of_80_ascii_characters_passes():
    assert node(subject="x" * 80).subject == "x" * 80


@pytest.mark.parametrize(
    ("media_url", "api", "problem"),
    [
        ("https://cdn.example.com/a.JPG", "sinch_mms", None),  # image, any case
        ("https://cdn.example.com/a.gif", "infobip_mms", None),
        ("https://cdn.example.com/clip.mp4", "sinch_mms", None),  # video
        ("https://cdn.example.com/card.vcf", "sinch_mms", None),  # contact card
        ("https://cdn.example.com/menu.pdf", "sinch_mms", "pdf"),  # PDF: Conversation API only
        ("https://cdn.example.com/menu.pdf", "sinch_conversation", None),
        ("https://cdn.example.com/clip.mov", "sinch_conversation", None),
        ("https://cdn.example.com/song.mp3", "sinch_conversation", "mp3"),  # never
        ("https://cdn.example.com/noextension", "sinch_mms", "not supported"),
    ],
)
def test_media_types_depend_on_the_integration(media_url, api, problem):
    settings = project_settings(
        integrations={"simulator": {"type": "simulator"}, "mms": {"type": "simulator", "api": api}}
    )
    problems = node(media_url=media_url).problems(settings)
    media = [message for field, message in problems if field == "media_url"]
    if problem is None:
        assert media == []
    else:
        assert media and problem in media[0]


def test_an_sms_integration_cannot_carry_an_mms_node():
    problems = node(integration="simulator").problems(project_settings())
    assert ("integration", "integration 'simulator' does not send mms") in problems


SCENARIO = """
id: promo
name: Promo
settings: {consent_category: sms_marketing, silent_hours: none}
nodes:
  - {id: start, type: trigger, kind: launch}
  - id: promo
    type: mms
    subject: Summer sale
    text: "Hi {{ customer.first_name }}"
    media_url: https://cdn.example.com/sale.jpg
    fallback: {text: "Hi {{ customer.first_name }}, sale at https://example.com"}
edges:
  - {from: start, to: promo}
"""


def item(phone: str | None, region: str | None, **attributes) -> Draft:
    return Draft(JourneyItem(1, "c1", "launch", "v", attributes, {}, phone, None, region), "k")


@pytest.mark.parametrize(
    ("phone", "region", "attributes", "failure"),
    [
        ("+12125550123", "US", {"first_name": "Ann"}, None),
        ("+14165550123", "CA", {"first_name": "Ann"}, None),
        ("+61412345678", "AU", {"first_name": "Ann"}, "mms_not_available"),  # MMS: US, CA only
        (None, None, {"first_name": "Ann"}, "invalid_phone"),
        ("+12125550123", "US", {}, "template_error"),  # no first_name
    ],
)
def test_composition_per_customer(phone, region, attributes, failure):
    settings = project_settings()
    scenario = parse_scenario(SCENARIO, "promo.yaml", settings)
    [composed] = scenario.nodes["promo"].compose(
        settings, scenario, [item(phone, region, **attributes)]
    )
    assert getattr(composed, "error", None) == failure
    if failure is None:
        assert composed.text == "Hi Ann"
        assert composed.fallback_text == "Hi Ann, sale at https://example.com"
        assert composed.parts == 1 and composed.encoding == "GSM-7"


# -- choices and location ------------------------------------------------------------------

CHOICES = [{"text": "Yes", "postback_data": "yes"}, {"text": "Shop", "url": "https://x.io/s"}]
LOCATION = {"title": "Main St store", "label": "Open 9 to 5", "latitude": 40.7, "longitude": -74}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"choices": []}, "at least 1"),
        ({"choices": [{"text": f"{n}"} for n in range(11)]}, "at most 10"),  # the API's limit
        ({"choices": [{"text": ""}]}, "at least 1 character"),
        ({"choices": [{"text": "Shop", "url": "ftp://x.io"}]}, r"not an http\(s\) URL"),
        ({"choices": [{"text": "Yes", "value": 1}]}, "Extra inputs"),
        ({"location": {**LOCATION, "latitude": 91}}, "less than or equal to 90"),
        ({"location": {**LOCATION, "longitude": -181}}, "greater than or equal to -180"),
        ({"location": {"latitude": 1, "longitude": 1}}, "title"),
    ],
)
def test_invalid_choices_and_locations_are_refused(fields, message):
    with pytest.raises(ValidationError, match=message):
        node(**fields)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"choices": CHOICES}, None),
        ({"text": "", "location": LOCATION}, None),  # a location MMS has no text
        ({"text": ""}, ("text", "text is required")),
        ({"location": LOCATION}, ("location", "which has no text")),
        (
            {"text": "", "location": LOCATION, "subject": "Sale", "choices": CHOICES},
            ("location", "which has no subject, choices"),
        ),
        ({"choices": CHOICES, "subject": "Sale"}, ("choices", "no subject or media_url")),
        (
            {"choices": CHOICES, "media_url": "https://cdn.example.com/a.jpg"},
            ("choices", "no subject or media_url"),
        ),
        (
            {"choices": [{"text": "Hi {{ customer.first_name }}"}]},
            ("choices.0.text", "Jinja is not supported"),
        ),
        (
            {"text": "", "location": {**LOCATION, "label": "{% if x %}y{% endif %}"}},
            ("location.label", "Jinja is not supported"),
        ),
        (  # the choices count towards the 1,600 characters of the text
            {"text": "x" * 1570 + " {{ customer.first_name }}", "choices": CHOICES},
            ("choices", "at least 1602 characters"),
        ),
    ],
)
def test_choice_and_location_problems_name_the_field(fields, problem):
    problems = node(**fields).problems(project_settings())
    if problem is None:
        assert problems == []
    else:
        field, message = problem
        assert any(f == field and message in m for f, m in problems), problems


def test_the_handset_text_has_the_choices_or_the_location_as_lines():
    assert node(choices=CHOICES).handset_text("Hi Ann") == (
        "Hi Ann\n1. Yes\n2. Shop: https://x.io/s"
    )
    assert node(text="", location=LOCATION).handset_text("") == (
        "Main St store\nOpen 9 to 5\nhttps://maps.google.com/?q=40.7,-74.0"
    )


# -- the sender: the Conversation API app's default -------------------------------------------

NO_SENDERS = {"senders": []}


@pytest.mark.parametrize(
    ("api", "integration", "problem"),
    [
        ("sinch_conversation", None, None),  # the default MMS provider is a Conversation app
        ("sinch_conversation", "mms", None),  # so is the node's integration
        ("sinch_mms", None, "the project has no predefined senders"),  # every other API needs one
        ("infobip_mms", "mms", "the project has no predefined senders"),
    ],
)
def test_only_the_conversation_api_sends_without_a_sender(api, integration, problem):
    settings = project_settings(
        integrations={"simulator": {"type": "simulator"}, "mms": {"type": "simulator", "api": api}},
        **NO_SENDERS,
    )
    problems = node(integration=integration).problems(settings)
    senders = [message for field, message in problems if field == "sender"]
    assert [problem in message for message in senders] == ([] if problem is None else [True])


def test_without_a_sender_the_country_check_is_the_providers():
    settings = project_settings(
        integrations={"mms": {"type": "simulator", "api": "sinch_conversation"}},
        default_sms_provider=None,
        **NO_SENDERS,
    )
    scenario = parse_scenario(SCENARIO, "promo.yaml", settings)
    promo = scenario.nodes["promo"]
    assert promo.sender_for(settings, scenario) is None
    [canadian, australian] = promo.compose(
        settings,
        scenario,
        [item("+14165550123", "CA", first_name="Ann"), item("+61412345678", "AU", first_name="Al")],
    )
    assert isinstance(canadian, Composed)  # a 10DLC sender would reach CA; no sender: unchecked
    assert australian == Refused("mms_not_available", australian.comment)
    assert australian.error == "mms_not_available"  # MMS itself stays US and CA only
