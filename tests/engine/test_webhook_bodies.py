"""Bad bodies on every endpoint: each refused with a 4xx naming the field and leaving no
trace, on SQLite and PostgreSQL alike; a bad report never fails the reports of other
requests; an inbound STOP is never refused for its time or its inline text."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import SQLModel
from starlette.testclient import TestClient

from engine import delivery
from engine.delivery import ReportWriter
from engine.store import Store
from engine.webhooks import create_webhook_app
from integrations.gateways import GatewayPool
from tests.conftest import NOW
from tests.engine.test_inbound import PHONE, RecordingGateway, customers, settings
from tests.engine.test_webhooks import _report
from tests.integrations.test_inbound_parsers import INFOBIP_MO, SINCH_MMS_MO
from tests.integrations.test_webhook_reports import INFOBIP_V3, SINCH_RECIPIENT


def stored_rows(store: Store) -> dict[str, int]:
    """How many rows each table holds, in one query."""
    counts = [
        select(func.count()).select_from(table).scalar_subquery().label(table.name)
        for table in SQLModel.metadata.sorted_tables
    ]
    with store.engine.connect() as connection:
        return dict(connection.execute(select(*counts)).one()._mapping)


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    """The webhook app as a project without credentials runs it (local, loopback), with
    `POST /events` explicitly open."""
    customers(store, "c1")
    project = settings()
    project = project.model_copy(
        update={"webhooks": project.webhooks.model_copy(update={"events_open": True})}
    )
    gateway = RecordingGateway()
    app = create_webhook_app(
        project,
        store,
        now=lambda: NOW,
        gateways=GatewayPool(project, opened={"simulator": gateway}),
    )
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def _set(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of `body` with the dotted `path` (list indexes as digits) set."""
    body = copy.deepcopy(body)
    keys: list[Any] = [int(key) if key.isdigit() else key for key in path.split(".")]
    target: Any = body
    for key in keys[:-1]:
        target = target[key]
    target[keys[-1]] = value
    return body


# Each found by fuzzing as a 500 (the route, the body, the 4xx and what its error names).
REFUSED = [
    (
        "/webhooks/infobip_sms",
        _set(INFOBIP_V3, "results.0.messageCount", 2**63),
        400,
        "results[0].messageCount is out of range",
    ),
    (
        "/webhooks/infobip_sms",
        _set(INFOBIP_V3, "results.0.messageCount", 2**31),
        400,
        "results[0].messageCount is out of range",
    ),
    (
        "/webhooks/sinch_sms",
        {**SINCH_RECIPIENT, "number_of_message_parts": 2**63},
        400,
        "number_of_message_parts is out of range",
    ),
    (
        "/webhooks/infobip_sms",
        _set(INFOBIP_V3, "results.0.doneAt", "0001-01-01T00:00:00+01:00"),
        400,
        "results[0].doneAt is not a timestamp",
    ),
    (
        "/webhooks/infobip_sms",
        _set(INFOBIP_V3, "results.0.doneAt", "9999-12-31T23:59:59-01:00"),
        400,
        "results[0].doneAt is not a timestamp",
    ),
    ("/webhooks/sinch_sms", {"type": []}, 400, "type has the wrong type (list)"),
    ("/webhooks/sinch_sms", {"type": {}}, 400, "type has the wrong type (dict)"),
    ("/events", {"events": 5}, 400, "events has the wrong type (int)"),
    ("/events", {"events": True}, 400, "events has the wrong type (bool)"),
    ("/events", {"events": 1.5}, 400, "events has the wrong type (float)"),
    ("/events", {"events": "c1"}, 400, "events has the wrong type (str)"),
    ("/events", {"customer_id": "c1", "type": "a\x00b"}, 400, "events[0].type contains a NUL"),
    (
        "/events",
        {"customer_id": "c1", "type": "t", "properties": []},
        400,
        "events[0].properties has the wrong type",
    ),
    (
        "/webhooks/sinch_mms",
        _set(SINCH_MMS_MO, "content.0.file", "http://[::1"),
        400,
        "content[0].file is not a URL",
    ),
    (
        "/webhooks/infobip_sms",
        _set(INFOBIP_V3, "results.0.messageId", "m\x00"),
        400,
        "results[0].messageId contains a NUL",
    ),
    (
        "/webhooks/infobip_sms",
        _set(INFOBIP_MO, "results.0.messageId", "m\x00"),
        400,
        "results[0].messageId contains a NUL",
    ),
    ("/l/abc%00defgh", None, 404, None),
]


@pytest.mark.parametrize(("route", "body", "status", "error"), REFUSED)
def test_a_bad_body_is_refused_naming_the_field_and_stores_nothing(
    client: TestClient, store: Store, route: str, body: Any, status: int, error: str | None
) -> None:
    before = stored_rows(store)
    for _ in range(2):  # the provider retries it: refused again, never a 500
        answer = client.post(route, json=body) if body is not None else client.get(route)
        assert answer.status_code == status, answer.text
        if error is not None:
            assert error in answer.json()["error"]
    assert stored_rows(store) == before


@pytest.mark.parametrize("at", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_an_inbound_stop_with_an_unusable_time_is_recorded_once(
    client: TestClient, store: Store, at: str
) -> None:
    """Such a STOP was refused, and so lost however often the provider retried."""
    body = _set(INFOBIP_MO, "results.0.receivedAt", at)
    body = _set(_set(body, "results.0.text", "STOP"), "results.0.from", PHONE[1:])
    for _ in range(2):  # the provider retries: recorded once
        answer = client.post("/webhooks/infobip_sms", json=body)
        assert answer.status_code == 200, answer.text
    [message] = store.inbound.messages()
    assert message["keyword"] == "STOP"
    assert message["at"] is None and message["received_at"] == NOW  # its arrival stands in
    assert store.customers.consented(["c1"], "sms_marketing") == set()
    [change] = [c for c in store.customers.consent_history("c1") if c["source"] == "keyword"]
    assert change["at"] == NOW


def test_a_sinch_mms_stop_given_inline_is_recorded(client: TestClient, store: Store) -> None:
    body = {**SINCH_MMS_MO, "from": PHONE[1:], "content": [{"text": "STOP"}]}
    assert client.post("/webhooks/sinch_mms", json=body).status_code == 200
    [message] = store.inbound.messages()
    assert message["texts"] == ["STOP"] and message["keyword"] == "STOP"
    assert store.customers.consented(["c1"], "sms_marketing") == set()


def test_one_bad_report_among_concurrent_ones_fails_its_request_alone(store: Store) -> None:
    """Reports the parsers would refuse, handed over directly: the writer's own guard."""
    writer = ReportWriter(store, "campaign", lambda: NOW)
    bad = [replace(_report(1000), parts=2**63)]  # too big for any INTEGER column
    requests = [[_report(n)] for n in range(200)]
    requests[100] = bad
    # Held while they queue, so the writer takes them together, as concurrent requests.
    with delivery._applying:
        futures = [writer.store(reports, NOW) for reports in requests]
    answers = []
    for future in futures:
        try:
            answers.append(future.result(30))
        except Exception as exc:  # noqa: BLE001 - which one failed is what is tested
            answers.append(type(exc).__name__)
    assert answers[100] != 1 and isinstance(answers[100], str)
    assert answers[:100] + answers[101:] == [1] * 199
    assert writer.settle(30)
    assert stored_rows(store)["delivery_reports"] == 199
    writer.close()
