"""The command line, without Prefect: validate, import, consents, events, status."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from engine.cli import app
from engine.settings import load_settings
from engine.store import Store
from tests.conftest import NOW

REPOSITORY = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture
def settings_file(tmp_path) -> Path:
    settings = yaml.safe_load((REPOSITORY / "scenarist.yaml").read_text())
    settings["database_url"] = f"sqlite:///{tmp_path / 'cli.db'}"
    path = tmp_path / "scenarist.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_validate_accepts_the_shipped_scenarios(settings_file):
    files = sorted((REPOSITORY / "scenarios").glob("*.yaml"))
    result = invoke("validate", *files, "--settings", settings_file)
    assert result.exit_code == 0, result.output
    assert result.output.count("ok ") == len(files)


def test_validate_names_file_line_node_and_field_and_fails(settings_file, tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "id: broken\nname: Broken\nsettings: {consent_category: sms_marketing}\nnodes:\n"
        "  - {id: start, type: trigger, kind: launch}\n"
        "  - {id: hi, type: sms, text: 'Hi {{ customer.name '}\n"
        "edges:\n  - {from: start, to: hi}\n"
    )
    result = invoke("validate", broken, "--settings", settings_file)
    assert result.exit_code == 1
    assert f"{broken}:6 node 'hi' field 'text': template syntax error" in result.output


@pytest.mark.parametrize(
    ("body", "error"),
    [
        # YAML nested 500 deep overflows PyYAML's recursion: one line, no traceback
        ("tracking: " + "[" * 500 + "]" * 500 + "\n", "the YAML nests too deeply to be read"),
        # a condition with 70 nested parentheses overflows Jinja's parser
        (
            "  - {id: hi, type: condition, expression: '"
            + "(" * 70
            + "customer.vip"
            + ")" * 70
            + "'}\n",
            ":6 node 'hi' field 'expression': not a valid expression: the expression nests",
        ),
    ],
)
def test_validate_reports_nesting_too_deep_as_an_error(settings_file, tmp_path, body, error):
    deep = tmp_path / "deep.yaml"
    head = "id: deep\nname: Deep\nsettings: {consent_category: sms_marketing}\nnodes:\n"
    head += "  - {id: start, type: trigger, kind: launch}\n"
    deep.write_text(head + body)
    result = invoke("validate", deep, "--settings", settings_file)
    assert result.exit_code == 1
    assert f"error {deep}" in result.output and error in result.output, result.output
    assert "Traceback" not in result.output


def _head_requests(monkeypatch, length: int) -> list[httpx.Request]:
    """Every request any httpx client sends, answered with a Content-Length."""
    sent = []

    def handle(transport, request):
        sent.append(request)
        return httpx.Response(200, headers={"content-length": str(length)})

    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", handle)
    return sent


def test_validate_makes_no_network_request_without_check_media(settings_file, monkeypatch):
    sent = _head_requests(monkeypatch, 5_000_000)
    mms = REPOSITORY / "scenarios" / "mms_promo.yaml"
    result = invoke("validate", mms, "--settings", settings_file)
    assert result.exit_code == 0, result.output
    assert sent == []
    assert "warning" not in result.output


def test_validate_with_check_media_asks_each_media_server(settings_file, monkeypatch):
    sent = _head_requests(monkeypatch, 5_000_000)
    mms = REPOSITORY / "scenarios" / "mms_promo.yaml"
    result = invoke("validate", mms, "--settings", settings_file, "--check-media")
    assert result.exit_code == 0, result.output
    assert [(r.method, str(r.url)) for r in sent] == [
        ("HEAD", "https://cdn.example.com/summer-sale.jpg")
    ]
    assert "media https://cdn.example.com/summer-sale.jpg is 5.0 MB" in result.output


def test_import_reports_bad_rows_by_line_and_imports_the_rest(settings_file, tmp_path):
    people = tmp_path / "people.csv"
    people.write_text(
        "id,phone,first_name,consent:sms_marketing\n"
        "c1,+1 212 555 0123,Ann,true\n"
        "c2,0601 234 567,Bob,true\n"
        "c3,0044 20 7946 0958,Cid,false\n"
    )
    result = invoke("customers", "import", people, "--settings", settings_file)
    assert result.exit_code == 0, result.output
    assert "2 customers imported, 1 rows rejected" in result.output
    assert "line 3: phone '0601 234 567' is not in international format" in result.output
    store = Store(load_settings(settings_file).database_url)
    assert store.customers.get("c3").phone == "+442079460958"
    assert store.customers.consented(["c1", "c3"], "sms_marketing") == {"c1"}
    assert store.customers.consent_history("c1")[0]["source"] == "import:people.csv"


def test_consents_and_events_name_what_is_wrong(settings_file, tmp_path):
    people = tmp_path / "people.jsonl"
    people.write_text('{"id": "c1", "phone": "+12125550123"}\n')
    assert invoke("customers", "import", people, "--settings", settings_file).exit_code == 0

    assert (
        invoke("consents", "grant", "c1", "sms_marketing", "--settings", settings_file).exit_code
        == 0
    )
    unknown = invoke("consents", "grant", "c1", "newsletter", "--settings", settings_file)
    assert unknown.exit_code == 2 and "not one of" in unknown.output
    revoke = invoke("consents", "revoke", "c1", "sms_marketing", "--settings", settings_file)
    assert revoke.exit_code == 0

    tracked = invoke(
        "events",
        "track",
        "c1",
        "cart_abandoned",
        "--properties",
        '{"total": 30}',
        "--settings",
        settings_file,
    )
    assert tracked.exit_code == 0 and "1 events tracked" in tracked.output
    nobody = invoke("events", "track", "c9", "cart_abandoned", "--settings", settings_file)
    assert nobody.exit_code == 1 and "no customer 'c9'" in nobody.output
    bad = invoke("events", "track", "c1", "x", "--properties", "[1]", "--settings", settings_file)
    assert bad.exit_code == 2 and "must be a JSON object" in bad.output

    store = Store(load_settings(settings_file).database_url)
    assert [c["granted"] for c in store.customers.consent_history("c1")] == [True, False]
    assert store.customers.events_after("cart_abandoned", 0, 10)[0]["properties"] == {"total": 30}


def test_status_of_an_unknown_scenario_fails(settings_file):
    result = invoke("status", "nope", "--settings", settings_file)
    assert result.exit_code == 2 and "no scenario 'nope'" in result.output


def test_a_broken_settings_file_names_the_key(tmp_path):
    path = tmp_path / "scenarist.yaml"
    path.write_text("senders:\n  - {name: a, number: '+1', type: pigeon}\n")
    result = invoke("status", "--settings", path)
    assert result.exit_code == 2
    assert f"{path}: senders.0.type" in result.output


def test_preview_shows_encoding_parts_and_the_characters_forcing_ucs2(settings_file, tmp_path):
    people = tmp_path / "people.jsonl"
    people.write_text(
        '{"id": "c1", "phone": "+12125550123", "first_name": "Zoë", "country": "US"}\n'
        '{"id": "c2", "phone": "+12125550124", "first_name": "Ann", "country": "US"}\n'
    )
    assert invoke("customers", "import", people, "--settings", settings_file).exit_code == 0
    scenario = REPOSITORY / "scenarios" / "welcome.yaml"
    result = invoke("preview", scenario, "--customer", "c1", "--settings", settings_file)
    assert result.exit_code == 0, result.output
    # welcome: "Hi Zoë, ..." needs UCS-2 because of ë; vip_welcome fails on no `vip`... no:
    # the preview renders every message node regardless of branches.
    assert "UCS-2" in result.output and "ë" in result.output
    assert "nudge" in result.output and "🎉" in result.output
    plain = invoke("preview", scenario, "--customer", "c2", "--settings", settings_file)
    assert "GSM-7" in plain.output
    missing = invoke("preview", scenario, "--customer", "c9", "--settings", settings_file)
    assert missing.exit_code == 2 and "no customer 'c9'" in missing.output


def test_preview_of_an_mms_shows_its_fallback_sms_pieces(settings_file, tmp_path):
    people = tmp_path / "people.jsonl"
    people.write_text(
        '{"id": "c1", "phone": "+12125550123", "first_name": "Ann", "country": "US"}\n'
    )
    assert invoke("customers", "import", people, "--settings", settings_file).exit_code == 0
    scenario = REPOSITORY / "scenarios" / "mms_promo.yaml"
    result = invoke("preview", scenario, "--customer", "c1", "--settings", settings_file)
    assert result.exit_code == 0, result.output
    assert "mms" in result.output
    assert "summer_sale fallback SMS 1: Hi Ann, 20% off this week" in result.output


def texted(settings_file: Path, tmp_path: Path, *texts: str) -> None:
    """Customer c1 imported, then texting `texts` (the first as the STOP example's id)."""
    from dataclasses import replace

    from engine.inbound import receive_inbound
    from tests.engine.test_inbound import NOW, STOP

    people = tmp_path / "people.jsonl"
    people.write_text('{"id": "c1", "phone": "+12125550199"}\n')
    assert invoke("customers", "import", people, "--settings", settings_file).exit_code == 0
    project = load_settings(settings_file)
    messages = [
        replace(STOP, message_id=STOP.message_id if n == 0 else f"m{n}", texts=(text,))
        for n, text in enumerate(texts)
    ]
    receive_inbound(Store(project.database_url), project, messages, NOW)


def test_inbound_messages_and_the_consent_ledger_are_shown(settings_file, tmp_path):
    texted(settings_file, tmp_path, "STOP", "hi")

    listed = invoke("inbound", "--settings", settings_file)
    assert listed.exit_code == 0, listed.output
    assert "STOP" in listed.output and "pending" in listed.output and "c1" in listed.output
    history = invoke("consents", "history", "c1", "--settings", settings_file)
    assert history.exit_code == 0, history.output
    assert "revoked" in history.output and "keyword" in history.output
    assert "keyword=STOP" in history.output


def test_granting_consent_to_a_phone_that_texted_stop_says_it_still_holds(settings_file, tmp_path):
    texted(settings_file, tmp_path, "STOP")
    granted = invoke("consents", "grant", "c1", "sms_marketing", "--settings", settings_file)
    assert granted.exit_code == 0
    assert "texted STOP" in granted.output and "until it texts START" in granted.output


def test_serve_runs_one_tick_of_each_deployment_at_a_time(settings_file, monkeypatch):
    import prefect

    from engine.runtime import Runtime, launch
    from engine.scenario import load_scenario

    settings = load_settings(settings_file)
    runtime = Runtime(settings)
    launch(runtime, load_scenario(REPOSITORY / "scenarios/weekly_digest.yaml", settings), NOW)
    runtime.close()
    served = []
    monkeypatch.setattr(prefect, "serve", lambda *deployments: served.extend(deployments))

    result = invoke("serve", "--settings", settings_file, "--webhooks-port", "0")

    assert result.exit_code == 0, result.output
    assert [d.name for d in served] == ["tick", "scenario-weekly_digest"]
    assert [d.concurrency_limit for d in served] == [1, 1]


@pytest.mark.parametrize(
    ("data", "options", "code", "output"),
    [
        # a file that cannot be imported: one error per problem, exit 2, nothing imported
        (
            b"id;phone\nc1;+12125550123\n",
            ["--delimiter", ","],
            2,
            ":1: no 'id' column",
        ),
        # a byte the encoding cannot read: its line and offset
        (b"id,phone\nc\xe91,+12125550123\n", [], 2, ":2: byte 10 (e9) is not valid utf-8"),
        # ... read in the right one
        (b"id,phone\nc\xe91,+12125550123\n", ["--encoding", "cp1252"], 0, "1 customers imported"),
        # a tab file, the delimiter named
        (b"id\tphone\nc1\t+12125550123\n", ["--delimiter", "tab"], 0, "1 customers imported"),
        # a delimiter must be one character
        (b"id,phone\n", ["--delimiter", ";;"], 2, "--delimiter must be one character"),
    ],
)
def test_import_options_and_errors(settings_file, tmp_path, data, options, code, output):
    people = tmp_path / "people.csv"
    people.write_bytes(data)
    result = invoke("customers", "import", people, *options, "--settings", settings_file)
    assert result.exit_code == code, result.output
    assert output in result.output


def test_import_lists_every_rejected_row_in_a_file_when_there_are_many(settings_file, tmp_path):
    people = tmp_path / "people.csv"
    people.write_text("id,phone\n" + "".join(f"c{n},0601234567\n" for n in range(60)))
    result = invoke("customers", "import", people, "--settings", settings_file)
    assert result.exit_code == 1
    assert "... and 10 more rejected rows" in result.output
    assert f"every rejected row is listed in {people}.rejects.txt" in result.output
    assert len((tmp_path / "people.csv.rejects.txt").read_text().splitlines()) == 60


@pytest.mark.parametrize(
    "command",
    [
        ["customers", "import", "people.csv"],  # would import into another database
        ["status"],
        ["validate", "scenario.yaml"],
    ],
)
def test_a_missing_settings_file_fails_naming_the_path(tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SCENARIST_SETTINGS", raising=False)
    (tmp_path / "people.csv").write_text("id,phone\nc1,+12125550123\n")
    (tmp_path / "scenario.yaml").write_text("id: x\n")
    result = invoke(*command, "--settings", "nope.yaml")
    assert result.exit_code == 2
    assert f"nope.yaml: no settings file at {tmp_path / 'nope.yaml'}" in result.output
    assert "scenarist init --settings nope.yaml" in result.output
    assert not (tmp_path / ".scenarist").exists()  # no database made anywhere


def test_init_writes_the_starter_settings_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SCENARIST_SETTINGS", raising=False)
    assert "no settings file at" in invoke("status").output
    first = invoke("init")
    assert first.exit_code == 0, first.output
    assert (tmp_path / "scenarist.yaml").read_text() == (REPOSITORY / "scenarist.yaml").read_text()
    assert invoke("status").exit_code == 0
    again = invoke("init")
    assert again.exit_code == 2
    assert "scenarist.yaml: a file is already there; nothing written" in again.output


def test_the_webhook_server_says_it_reads_the_settings_once(settings_file, capsys):
    from fastapi.testclient import TestClient

    from engine.cli import _webhook_app

    with TestClient(_webhook_app(settings_file)):  # started and stopped: its writer closes
        pass
    printed = capsys.readouterr().out.replace("\n", " ")
    assert f"settings read from {settings_file}; restart the webhook server after" in printed
