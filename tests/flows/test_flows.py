"""End to end through Prefect and the simulator over loopback.

One Prefect test harness serves the whole session. The three exactly-once cases are
checked against the simulator's own count: the same launch twice, a tick retried, and a
launch process killed while the simulator holds a batch it has accepted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from engine.errors import ConfigError
from engine.settings import load_settings
from engine.store import Store
from integrations.simulator.config import SimulatorConfig
from integrations.simulator.server import SimulatorProcess

REPOSITORY = Path(__file__).resolve().parents[2]
SCENARIO = """
id: hello
name: Hello
settings: {consent_category: sms_marketing, silent_hours: none}
nodes:
  - {id: start, type: trigger, kind: launch}
  - {id: greet, type: sms, text: "Hi {{ customer.first_name }}"}
edges:
  - {from: start, to: greet}
"""


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield PREFECT_API_URL.value()


@pytest.fixture(scope="session")
def simulator() -> Iterator[SimulatorProcess]:
    with SimulatorProcess() as process:
        yield process


@pytest.fixture
def project(tmp_path, simulator) -> Path:
    """A project folder: settings pointing at a fresh SQLite file and the simulator."""
    simulator.set_config(SimulatorConfig())
    simulator.reset()
    settings = {
        "database_url": f"sqlite:///{tmp_path / 'scenarist.db'}",
        "integrations": {"simulator": {"type": "simulator", "url": simulator.url}},
        "default_sms_provider": "simulator",
        "senders": [{"name": "main", "number": "+12025550100", "type": "10dlc", "default": True}],
        "consent_categories": ["sms_marketing"],
        "claim_lease": "1s",
    }
    (tmp_path / "scenarist.yaml").write_text(yaml.safe_dump(settings))
    (tmp_path / "hello.yaml").write_text(SCENARIO)
    return tmp_path


def audience(project: Path, count: int) -> Store:
    from datetime import UTC, datetime

    store = Store(load_settings(project / "scenarist.yaml").database_url)
    now = datetime.now(UTC)
    ids = [f"c{n:05d}" for n in range(count)]
    store.customers.upsert(
        [
            {
                "id": cid,
                "phone": f"+1202{2_000_000 + n:07d}",
                "attributes": {"first_name": f"Ann {n}"},
            }
            for n, cid in enumerate(ids)
        ],
        now,
    )
    store.customers.change_consents(
        [
            {
                "customer_id": cid,
                "category": "sms_marketing",
                "granted": True,
                "source": "test",
                "at": now,
                "details": {},
            }
            for cid in ids
        ]
    )
    return store


def launch(project: Path) -> dict:
    from flows.launch import launch_scenario

    return launch_scenario(str(project / "hello.yaml"), str(project / "scenarist.yaml"))


def test_launch_runs_each_node_batch_as_one_named_task_run(prefect_api, project, simulator):
    from prefect import get_client
    from prefect.client.schemas.filters import (
        LogFilter,
        LogFilterTaskRunId,
        TaskRunFilter,
        TaskRunFilterName,
    )

    store = audience(project, 30)
    result = launch(project)
    assert result["scenario_id"] == "hello" and result["moves"] == 30
    assert simulator.stats()["messages"] == 30
    assert simulator.messages("+12022000007")[0]["body"] == "Hi Ann 7"
    assert len(store.evaluation.campaign_events("hello")) == 30

    import asyncio

    async def task_runs_and_logs() -> tuple[list, list[str]]:
        async with get_client() as client:
            runs = await client.read_task_runs(
                task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_="greet"))
            )
            logs = await client.read_logs(
                log_filter=LogFilter(task_run_id=LogFilterTaskRunId(any_=[r.id for r in runs]))
            )
            return runs, [log.message for log in logs]

    runs, logs = asyncio.run(task_runs_and_logs())
    # One task run for the node's one batch, not one per step; it logs its outcomes once.
    assert [run.name for run in runs] == ["greet #1"]
    assert runs[0].state.is_completed()
    assert "greet #1: 30 customers: sent 30" in logs


@pytest.mark.parametrize(
    ("flow", "arguments"), [("tick", {}), ("scenario_tick", {"scenario_id": "hello"})]
)
def test_a_deployment_given_a_settings_file_that_is_not_there_fails_naming_it(
    prefect_api, tmp_path, flow, arguments
):
    from flows import tick

    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=f"no settings file at {missing};"):
        getattr(tick, flow)(settings_file=str(missing), **arguments)
    assert not (tmp_path / ".scenarist").exists()


def test_the_same_launch_twice_sends_once(prefect_api, project, simulator):
    store = audience(project, 40)
    launch(project)
    launch(project)
    stats = simulator.stats()
    assert stats["messages"] == 40 and stats["max_per_recipient"] == 1
    assert len(store.evaluation.campaign_events("hello")) == 40


def test_a_retried_tick_sends_nothing_again(prefect_api, project, simulator):
    from flows.tick import scenario_tick

    store = audience(project, 25)
    launch(project)
    # The tick's journey moves are lost (say the worker died after sending): the same
    # journeys are due at the SMS node again and the tick runs once more.
    with store.engine.begin() as connection:
        connection.exec_driver_sql("UPDATE journeys SET node_id='greet', state='active'")
    scenario_tick("hello", str(project / "scenarist.yaml"))
    stats = simulator.stats()
    assert stats["messages"] == 25 and stats["max_per_recipient"] == 1
    assert len(store.evaluation.campaign_events("hello")) == 25


def test_a_launch_killed_mid_batch_and_restarted_sends_everyone_once(
    prefect_api, project, simulator
):
    store = audience(project, 2500)  # three requests of up to 1,000 recipients
    # The simulator records the second request, then holds its answer: the launch
    # process is killed while its batch is accepted but unacknowledged.
    simulator.set_config(SimulatorConfig(hang_after_accept=[2], hang_seconds=60))
    environment = {**os.environ, "PREFECT_API_URL": prefect_api}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engine.cli",
            "launch",
            str(project / "hello.yaml"),
            "--settings",
            str(project / "scenarist.yaml"),
        ],
        cwd=REPOSITORY,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while simulator.stats()["batches"] < 2:
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "the launch never reached the second request"
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert simulator.stats()["messages"] == 2000
    assert (
        store.evaluation.campaign_events("hello") == []
        or len(store.evaluation.campaign_events("hello")) <= 1000
    )

    simulator.set_config(SimulatorConfig())
    time.sleep(1.2)  # the dead process's claim lease (1 s in this project) runs out
    launch(project)
    stats = simulator.stats()
    assert stats["messages"] == 2500
    assert stats["recipients"] == 2500 and stats["max_per_recipient"] == 1
    events = store.evaluation.campaign_events("hello")
    assert len(events) == 2500 and {e["status"] for e in events} == {"enqueued"}


def test_an_api_token_can_come_from_a_prefect_secret_block(prefect_api):
    from prefect.blocks.system import Secret

    from engine.settings import SinchSmsIntegration

    Secret(value="sinch-s3cret").save("sinch-api-token", overwrite=True)
    integration = SinchSmsIntegration(
        type="sinch_sms", service_plan_id="plan", api_token_block="sinch-api-token"
    )
    token = integration.api_token()
    assert token.get_secret_value() == "sinch-s3cret"
    assert "sinch-s3cret" not in repr(token) and "sinch-s3cret" not in repr(integration)


def test_the_infobip_path_tracks_refused_recipients_alone(prefect_api, project, simulator):
    settings = yaml.safe_load((project / "scenarist.yaml").read_text())
    settings["integrations"]["infobip"] = {
        "type": "simulator",
        "url": simulator.url,
        "api": "infobip_sms",
    }
    settings["default_sms_provider"] = "infobip"
    (project / "scenarist.yaml").write_text(yaml.safe_dump(settings))
    store = audience(project, 20)
    # Infobip answers 200 for the request and refuses this one destination inside it.
    simulator.set_config(SimulatorConfig(reject_prefixes=["12022000003"]))
    launch(project)
    launch(project)  # the same launch again sends nobody anything
    stats = simulator.stats()
    assert stats["messages"] == 19 and stats["max_per_recipient"] == 1
    assert simulator.messages("+12022000007")[0]["provider"] == "infobip_sms"
    events = {e["customer_id"]: e for e in store.evaluation.campaign_events("hello")}
    assert len(events) == 20
    refused = events["c00003"]
    assert refused["status"] == "enqueue_failed"
    assert refused["properties"]["error"] == "REJECTED_DESTINATION"
    assert refused["properties"]["status_code"] == 14
    assert {e["status"] for cid, e in events.items() if cid != "c00003"} == {"enqueued"}


MMS_SCENARIO = """
id: promo
name: Summer promo
settings: {consent_category: sms_marketing, silent_hours: none}
nodes:
  - {id: start, type: trigger, kind: launch}
  - id: promo
    type: mms
    subject: Summer sale
    text: "Hi {{ customer.first_name }}, 20% off everything"
    media_url: https://cdn.example.com/sale.jpg
    fallback: {text: "Hi {{ customer.first_name }}, 20% off: https://example.com/sale"}
edges:
  - {from: start, to: promo}
"""


@pytest.mark.parametrize("api", ["sinch_mms", "sinch_conversation", "infobip_mms"])
def test_mms_through_each_provider_api(prefect_api, project, simulator, api):
    from flows.launch import launch_scenario

    settings = yaml.safe_load((project / "scenarist.yaml").read_text())
    settings["integrations"]["mms"] = {"type": "simulator", "url": simulator.url, "api": api}
    settings["default_mms_provider"] = "mms"
    (project / "scenarist.yaml").write_text(yaml.safe_dump(settings))
    (project / "promo.yaml").write_text(MMS_SCENARIO)
    store = audience(project, 6)
    # The provider refuses one recipient; the others go through, one request each.
    simulator.set_config(SimulatorConfig(reject_prefixes=["12022000002"]))
    launch_scenario(str(project / "promo.yaml"), str(project / "scenarist.yaml"))
    received = simulator.messages("+12022000004")
    assert received[0]["channel"] == "mms" and received[0]["provider"] == api
    events = {e["customer_id"]: e for e in store.evaluation.campaign_events("promo")}
    assert {e["properties"]["action_type"] for e in events.values()} == {"mms"}
    enqueued = [cid for cid, e in events.items() if e["status"] == "enqueued"]
    if api == "sinch_mms":  # the MMS JSON API refuses the number at once (E110)
        assert len(enqueued) == 5
        refused = events["c00002"]["properties"]
        assert (refused["status_code"], events["c00002"]["status"]) == ("E110", "enqueue_failed")
    elif api == "infobip_mms":  # Infobip refuses that destination inside the request
        assert len(enqueued) == 5
        assert events["c00002"]["properties"]["error"] == "REJECTED_DESTINATION"
    else:  # the Conversation API accepts it and fails it later, in a delivery report
        assert len(enqueued) == 6
    assert events["c00004"]["properties"]["number_of_message_parts"] == 1  # the fallback's
