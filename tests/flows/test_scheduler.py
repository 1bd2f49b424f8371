"""The Prefect scheduler itself runs the tick: a real `prefect server start`, the tick
deployment served by `scenarist serve` on a short interval, and a run that the server's
scheduler service created (not one we started) seen completed.

This is what broke when an install resolved SQLAlchemy 2.1: the server started, the
deployment was served, and the scheduler never created a run. The temporary test harness
does not start the scheduler service, so only a real server shows it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from integrations.simulator.server import free_port

STARTUP_SECONDS = 120  # Prefect's server takes 6-14 s here, much longer on a loaded machine
RUN_SECONDS = 150


def _stop(process: subprocess.Popen) -> None:
    """Stop a process started in a session of its own, with all its children."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


@pytest.fixture
def prefect_server(tmp_path) -> Iterator[tuple[str, dict[str, str]]]:
    """A real Prefect server with its services (the scheduler among them) on a free port;
    yields its API URL and the environment that points a process at it."""
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # The scheduler looks for deployments to schedule every second instead of every 60.
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "1",
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
    }
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1"]
        + ["--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if server.poll() is not None:
                pytest.fail(f"prefect server exited: {(tmp_path / 'server.log').read_text()}")
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"prefect server did not answer within {STARTUP_SECONDS} s")
            time.sleep(0.5)
        yield api, env
    finally:
        _stop(server)
        log.close()


def _scheduled_tick_runs(api: str) -> list[dict]:
    """Flow runs of the `tick` deployment that the scheduler created."""
    deployments = httpx.post(
        f"{api}/deployments/filter", json={"deployments": {"name": {"any_": ["tick"]}}}
    ).json()
    if not deployments:
        return []
    runs = httpx.post(
        f"{api}/flow_runs/filter",
        json={"flow_runs": {"deployment_id": {"any_": [d["id"] for d in deployments]}}},
    ).json()
    return [run for run in runs if run["auto_scheduled"]]


def test_the_scheduler_creates_and_completes_tick_runs(prefect_server, tmp_path):
    api, env = prefect_server
    settings = tmp_path / "scenarist.yaml"
    settings.write_text(yaml.safe_dump({"database_url": f"sqlite:///{tmp_path / 'app.db'}"}))
    log = (tmp_path / "serve.log").open("wb")
    serve = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "serve", "--settings", str(settings)]
        + ["--interval", "2", "--webhooks-port", "0"],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + RUN_SECONDS
        completed: list[dict] = []
        while not completed:
            if serve.poll() is not None:
                pytest.fail(f"scenarist serve exited: {(tmp_path / 'serve.log').read_text()}")
            if time.monotonic() > deadline:
                states = [run["state_type"] for run in _scheduled_tick_runs(api)]
                pytest.fail(
                    f"no scheduled tick run completed within {RUN_SECONDS} s; "
                    f"scheduled runs' states: {states}; "
                    f"server log: {(tmp_path / 'server.log').read_text()[-3000:]}"
                )
            runs = _scheduled_tick_runs(api)
            completed = [run for run in runs if run["state_type"] == "COMPLETED"]
            time.sleep(1)
        assert completed[0]["auto_scheduled"] is True
        assert completed[0]["parameters"] == {"settings_file": str(settings.resolve())}
    finally:
        _stop(serve)
        log.close()
