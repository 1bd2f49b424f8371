"""Who the webhook server lets in, over HTTP: every endpoint against every configuration of
credentials (the table of `tests/integrations/test_webhook_security.py`), nothing stored
for a refused request; and where the server may listen with no credentials at all."""

from __future__ import annotations

import copy
import logging
import sys
import time
from typing import Any

import orjson
import pytest
import yaml
from fastapi import FastAPI
from starlette.testclient import TestClient

from engine.errors import ConfigError
from engine.webhooks import check_exposure, create_webhook_app, serving_in_background
from integrations.simulator.server import free_port
from integrations.webhooks.security import Credentials
from tests.conftest import project_settings
from tests.engine.test_webhooks import customers
from tests.integrations.test_webhook_reports import (
    CONVERSATION_SEED,
    INFOBIP_V3,
    SINCH_MMS_POSTBACK,
    SINCH_RECIPIENT,
)
from tests.integrations.test_webhook_security import (
    ACCEPTED,
    PASSWORD,
    PRESENTATIONS,
    SECRET,
    TOKEN,
    USER,
    presented,
)

ENVIRONMENT = {"HOOK_TOKEN": TOKEN, "SINCH_SECRET": SECRET, "HOOK_PASSWORD": PASSWORD}
TOKEN_ONLY = {"token_env": "HOOK_TOKEN"}
HMAC_ONLY = {"sinch_signing_secret_env": "SINCH_SECRET"}
BASIC_ONLY = {"basic_auth_username": USER, "basic_auth_password_env": "HOOK_PASSWORD"}
SETTINGS = {  # the `webhooks:` settings of each configuration of the table
    "none": {},
    "token": TOKEN_ONLY,
    "hmac": HMAC_ONLY,
    "basic": BASIC_ONLY,
    "all": {**TOKEN_ONLY, **HMAC_ONLY, **BASIC_ONLY},
    "events open": {"events_open": True},
    "token, events open": {**TOKEN_ONLY, "events_open": True},
}


def _body(endpoint: str, n: int) -> dict[str, Any]:
    """A valid body for `endpoint`, the `n`th of distinct ones (none is a duplicate)."""
    if endpoint == "events":
        return {"customer_id": "c0", "type": "ping", "properties": {"n": n}}
    if endpoint == "sinch_sms":
        return {**SINCH_RECIPIENT, "batch_id": f"BATCH{n}"}
    if endpoint in ("infobip_sms", "infobip_mms"):
        body = copy.deepcopy(INFOBIP_V3)
        body["results"][0]["messageId"] = f"msg-{n}"
        return body
    if endpoint == "sinch_mms":
        return {**SINCH_MMS_POSTBACK, "tracking-id": f"trk-{n}", "client-reference": f"s{n}"}
    body = copy.deepcopy(CONVERSATION_SEED)
    body["message_delivery_report"]["message_id"] = f"MSG{n}"
    return body


def _stored(store, endpoint: str) -> int:
    if endpoint == "events":
        return len(store.customers.events_after("ping", 0, 100))
    return len(store.reports.pending(100))


@pytest.mark.parametrize(("config", "endpoint"), list(ACCEPTED))
def test_every_endpoint_under_every_configuration(sqlite_store, monkeypatch, config, endpoint):
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    customers(sqlite_store, 1)
    settings = project_settings(webhooks=SETTINGS[config])
    client = TestClient(create_webhook_app(settings, sqlite_store))
    path = "/events" if endpoint == "events" else f"/webhooks/{endpoint}"
    answers = {}
    for n, how in enumerate(PRESENTATIONS):
        body = orjson.dumps(_body(endpoint, n))
        headers, query = presented(how, body, nonce=f"nonce{n}", stamp=str(int(time.time())))
        answer = client.post(path, content=body, headers=headers, params=query)
        answers[how] = answer.status_code
    accepted = ACCEPTED[config, endpoint]
    assert answers == {how: 200 if how in accepted else 401 for how in PRESENTATIONS}
    assert _stored(sqlite_store, endpoint) == len(accepted)  # a refused one left nothing


def test_an_unsigned_start_grants_no_consent_when_only_the_token_is_set(sqlite_store, monkeypatch):
    """The reproduction: an unauthenticated `mo_text` START to Sinch SMS changed consent."""
    monkeypatch.setenv("HOOK_TOKEN", TOKEN)
    customers(sqlite_store, 1)  # c0, +12022000000, granted sms_marketing by the test
    client = TestClient(create_webhook_app(project_settings(webhooks=TOKEN_ONLY), sqlite_store))
    before = sqlite_store.customers.consent_history("c0")
    start = {
        "type": "mo_text",
        "id": "01FSTART",
        "from": "+12022000000",
        "to": "12025550100",
        "body": "START",
        "received_at": "2026-11-22T00:00:00Z",
    }
    answer = client.post("/webhooks/sinch_sms", json=start)
    assert answer.status_code == 401
    assert sqlite_store.inbound.messages() == []
    assert sqlite_store.customers.consent_history("c0") == before
    assert client.post(f"/webhooks/sinch_sms?token={TOKEN}", json=start).status_code == 200
    assert len(sqlite_store.inbound.messages()) == 1


def test_an_unset_secret_variable_names_its_settings_key(sqlite_store, monkeypatch):
    monkeypatch.delenv("HOOK_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="webhooks.token_env: environment variable HOOK_TOKEN"):
        create_webhook_app(project_settings(webhooks=TOKEN_ONLY), sqlite_store)


# -- where the server may listen ------------------------------------------------------------


def _app(credentials: Credentials) -> FastAPI:
    app = FastAPI()
    app.state.credentials = credentials
    return app


@pytest.mark.parametrize(
    ("host", "credentials", "refused"),
    [
        # nothing configured: loopback only
        ("127.0.0.1", Credentials(), False),
        ("127.0.0.2", Credentials(), False),
        ("::1", Credentials(), False),
        ("[::1]", Credentials(), False),
        ("localhost", Credentials(), False),
        ("0.0.0.0", Credentials(), True),
        ("::", Credentials(), True),
        ("192.168.1.5", Credentials(), True),
        ("hooks.example.com", Credentials(), True),  # a name may resolve to anything
        # /events left open is no authentication
        ("0.0.0.0", Credentials(events_open=True), True),
        # any credential: anywhere
        ("0.0.0.0", Credentials(token="t"), False),
        ("0.0.0.0", Credentials(sinch_secret="s"), False),
        ("0.0.0.0", Credentials(basic_auth=("u", "p")), False),
    ],
)
def test_where_the_server_may_listen(host, credentials, refused, caplog):
    caplog.set_level(logging.WARNING, "scenarist.webhooks")
    if refused:
        with pytest.raises(ConfigError, match=f"refusing to serve webhooks on {host} with no"):
            check_exposure(_app(credentials), host)
        return
    check_exposure(_app(credentials), host)
    warned = [r.getMessage() for r in caplog.records if "without authentication" in r.message]
    assert len(warned) == (not credentials.configured)


def test_the_server_in_background_warns_on_loopback_with_no_credentials(sqlite_store, caplog):
    caplog.set_level(logging.WARNING, "scenarist.webhooks")
    app = create_webhook_app(project_settings(), sqlite_store)
    with serving_in_background(app, "127.0.0.1", free_port()):
        pass
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "scenarist.webhooks"]
    assert warning.startswith("webhooks on 127.0.0.1 accept callbacks without authentication")
    assert "webhooks.token_env" in warning


def test_the_server_in_background_refuses_to_expose_an_unauthenticated_app(sqlite_store):
    app = create_webhook_app(project_settings(), sqlite_store)
    with pytest.raises(ConfigError, match="refusing"), serving_in_background(app, "0.0.0.0", 0):
        pytest.fail("the server started")


def test_scenarist_webhooks_refuses_a_public_host_in_one_line(tmp_path, monkeypatch, capsys):
    from engine.cli import main

    settings = tmp_path / "scenarist.yaml"
    settings.write_text(yaml.safe_dump({"database_url": f"sqlite:///{tmp_path / 'db.sqlite'}"}))
    command = ["scenarist", "webhooks", "--host", "0.0.0.0", "--settings", str(settings)]
    monkeypatch.setattr(sys, "argv", command)
    with pytest.raises(SystemExit) as exit:
        main()
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("error refusing to serve webhooks on 0.0.0.0 with no authentication")
    assert "webhooks.token_env" in err and "webhooks.sinch_signing_secret_env" in err
