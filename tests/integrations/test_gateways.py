"""The MMS gateways' own rules, over `httpx.MockTransport`: a payload without the sender its
API needs, or one its client will not build, is refused without any request; the APIs
without choices or locations get them as text."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from engine.errors import ProviderError
from integrations.gateways import InfobipMmsGateway, OneByOneMmsGateway
from integrations.infobip_mms import InfobipMmsClient
from integrations.infobip_sms import InfobipCredentials
from integrations.sinch_mms import SinchMmsClient, SinchMmsCredentials

PAYLOAD: dict[str, Any] = {
    "sender": "+12025550100",
    "body": "Newsletter?",
    "recipients": ["+12025550001", "+12025550002"],
    "send_keys": ["s/v/ask/c1/launch", "s/v/ask/c2/launch"],
    "parameters": None,
    "subject": None,
    "media_url": None,
    "media_type": None,
    "fallback_text": None,
    "fallback_disabled": True,
    "choices": [{"text": "Yes", "postback_data": "yes"}, {"text": "Shop", "url": "https://x.io"}],
}


def recording(requests: list[dict[str, Any]], answer: dict[str, Any]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        requests.append(json.loads(request.content))
        return httpx.Response(200, json=answer)

    return httpx.MockTransport(handle)


def sinch_mms(requests: list[dict[str, Any]]) -> OneByOneMmsGateway:
    answer = {"status": "Success", "to": "12025550001", "tracking-id": "t-1"}
    client = SinchMmsClient(
        SinchMmsCredentials(service_id="svc", api_key="key"),
        transport=recording(requests, answer),
        max_attempts=1,
    )
    return OneByOneMmsGateway("mms", client)


def test_the_mms_json_api_gets_choices_as_lines_of_text():
    requests: list[dict[str, Any]] = []
    outcome = sinch_mms(requests).send("dispatch-1", PAYLOAD)
    assert outcome.refused == {}
    assert [r["slide"] for r in requests] == [
        [{"message-text": "Newsletter?\n1. Yes\n2. Shop: https://x.io"}]
    ] * 2


@pytest.mark.parametrize(
    ("changes", "error", "comment"),
    [
        # validated against a Conversation app, then the default MMS provider changed
        ({"sender": None}, "sender_missing", "no sender"),
        # a text the client will not send once its choices are added
        ({"body": "x" * 1590}, "invalid_message", "MMS allows 1600"),
    ],
)
def test_a_message_that_cannot_be_sent_is_refused_per_recipient(changes, error, comment):
    requests: list[dict[str, Any]] = []
    outcome = sinch_mms(requests).send("dispatch-1", {**PAYLOAD, **changes})
    assert requests == []
    assert set(outcome.refused) == set(PAYLOAD["recipients"])
    refusal = outcome.refused["+12025550001"]
    assert refusal["error"] == error and comment in refusal["comment"]


def test_infobip_refuses_a_request_it_will_not_build_as_a_whole():
    requests: list[dict[str, Any]] = []
    client = InfobipMmsClient(
        InfobipCredentials(base_url="https://x.api.infobip.com", api_key="key"),
        transport=recording(requests, {}),
        max_attempts=1,
    )
    with pytest.raises(ProviderError) as caught:
        InfobipMmsGateway("mms", client).send("dispatch-1", {**PAYLOAD, "sender": None})
    assert (caught.value.code, caught.value.retryable) == ("sender_missing", False)
    assert requests == []


@pytest.mark.parametrize("api", ["infobip_sms", "infobip_mms", "sinch_sms"])
def test_delivery_reports_are_asked_for_at_the_public_webhook_url(api):
    from engine.settings import Settings
    from integrations.gateways import open_gateway

    settings = Settings.model_validate(
        {
            "integrations": {"provider": {"type": "simulator", "api": api}},
            "default_sms_provider": None,
            "webhooks": {"public_url": "https://hooks.example.com/"},
        }
    )
    gateway = open_gateway(settings, "provider")
    assert gateway.callback_url == f"https://hooks.example.com/webhooks/{api}"
    without = open_gateway(Settings(default_sms_provider=None), "simulator")
    assert without.callback_url is None
    gateway.close()
    without.close()


def test_infobip_messages_carry_the_report_url():
    from integrations.infobip_sms import InfobipMessage, build_messages_payload

    message = InfobipMessage("InfoSMS", [("+41793026727", "MSG-1")], "Hi")
    [with_url] = build_messages_payload([message], "b1", "https://h.example/webhooks/infobip_sms")[
        "messages"
    ]
    assert with_url["webhooks"] == {"delivery": {"url": "https://h.example/webhooks/infobip_sms"}}
    [without] = build_messages_payload([message], "b1")["messages"]
    assert "webhooks" not in without
