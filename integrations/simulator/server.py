"""Run the simulator: in this process (`run_simulator`, blocking) or as a child process
for tests and benchmarks (`SimulatorProcess`, a context manager).

    with SimulatorProcess(SimulatorConfig(latency_ms=5), port=0) as sim:
        client = SinchSmsClient(sim.sms_credentials())
        infobip = InfobipSmsClient(sim.infobip_credentials())
        infobip_mms = InfobipMmsClient(sim.infobip_credentials())
        mms = SinchMmsClient(sim.sinch_mms_credentials())
        conversation = SinchConversationClient(sim.conversation_credentials())
        ...
        assert sim.stats()["duplicates"] == 0

With `SimulatorConfig(report_urls={...})` it also posts delivery reports for what it
accepted (see `reports.py`); `settle_reports()` waits until they are all posted.
`inbound(...)` posts a message from a phone to those URLs (or `inbound_urls`), in one API's
shape (see `inbound.py`).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from integrations.infobip_sms import InfobipCredentials
from integrations.simulator.app import create_app
from integrations.simulator.config import SimulatorConfig
from integrations.sinch_conversation import ConversationCredentials
from integrations.sinch_mms import SinchMmsCredentials
from integrations.sinch_sms import SinchSmsCredentials

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def run_simulator(
    host: str = "127.0.0.1", port: int = 8765, config: SimulatorConfig | None = None
) -> None:
    """Serve the simulator until interrupted (uvicorn, one worker, log level warning)."""
    uvicorn.run(
        create_app(config or SimulatorConfig()),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=1,
    )


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (bind to port 0 and let the OS choose)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class SimulatorProcess:
    """The simulator in a child process (`python -m integrations.simulator`).

    `port=0` picks a free port. Entering starts it and waits until it answers; leaving
    stops it. The helper methods call the `/_simulator/*` endpoints.
    """

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        startup_timeout: float = 30.0,
    ):
        self.config = config or SimulatorConfig()
        self.host = host
        self.port = port or free_port(host)
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._http: httpx.Client | None = None
        self._files: list[str] = []

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> SimulatorProcess:
        if self._process is not None:
            raise RuntimeError("the simulator is already running")
        fd, config_path = tempfile.mkstemp(prefix="simulator-", suffix=".json")
        with os.fdopen(fd, "w") as handle:
            handle.write(self.config.model_dump_json())
        log_fd, log_path = tempfile.mkstemp(prefix="simulator-", suffix=".log")
        self._files = [config_path, log_path]
        env = dict(os.environ)
        paths = [str(PROJECT_ROOT), env.get("PYTHONPATH", "")]
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        with os.fdopen(log_fd, "wb") as log:
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "integrations.simulator",
                    "--host",
                    self.host,
                    "--port",
                    str(self.port),
                    "--config",
                    config_path,
                ],
                cwd=PROJECT_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        self._http = httpx.Client(base_url=self.url, timeout=10.0)
        self._wait_until_ready()
        return self

    def _wait_until_ready(self) -> None:
        assert self._process is not None and self._http is not None
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self._process.poll() is not None:
                output = self._log_tail()
                self.stop()
                raise RuntimeError(f"the simulator exited at start-up:\n{output}")
            try:
                if self._http.get("/_simulator/stats", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                output = self._log_tail()
                self.stop()
                raise RuntimeError(
                    f"the simulator did not answer on {self.url} within "
                    f"{self.startup_timeout:g} s:\n{output}"
                )
            time.sleep(0.05)

    def _log_tail(self) -> str:
        try:
            return Path(self._files[1]).read_text(errors="replace")[-4000:]
        except (IndexError, OSError):
            return ""

    def stop(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._process is not None:
            if self._process.poll() is None:
                self._process.terminate()
                try:
                    self._process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
            self._process = None
        for path in self._files:
            Path(path).unlink(missing_ok=True)
        self._files = []

    def __enter__(self) -> SimulatorProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- the /_simulator endpoints --------------------------------------------------------

    def _client(self) -> httpx.Client:
        if self._http is None:
            raise RuntimeError("the simulator is not running")
        return self._http

    def stats(self) -> dict[str, Any]:
        response = self._client().get("/_simulator/stats")
        response.raise_for_status()
        return response.json()

    def messages(self, to: str) -> list[dict[str, Any]]:
        """What one number received, from any provider: `[{provider, channel, batch_id,
        client_reference, message_id, from, body, created_at}]`, MMS entries with `type`
        ("mms", or "sms" when delivered as fallback SMS), `subject` and `media_url` too."""
        response = self._client().get("/_simulator/messages", params={"to": to})
        response.raise_for_status()
        return response.json()["messages"]

    def settle_reports(self, timeout: float = 10.0) -> dict[str, Any]:
        """Wait until no delivery report is pending (posted, or given up after its
        retries); return `stats()["reports"]`. Raises TimeoutError after `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            reports = self.stats()["reports"]
            if reports["pending"] == 0:
                return reports
            if time.monotonic() > deadline:
                raise TimeoutError(f"delivery reports still pending after {timeout:g} s: {reports}")
            time.sleep(0.02)

    def arrivals(self) -> list[tuple[float, int]]:
        """Every accepted send request since start-up or the last reset, oldest first:
        (seconds since the first one, recipients it carried)."""
        response = self._client().get("/_simulator/arrivals")
        response.raise_for_status()
        return [(float(t), int(n)) for t, n in response.json()["arrivals"]]

    def set_config(self, config: SimulatorConfig) -> None:
        response = self._client().put(
            "/_simulator/config",
            content=config.model_dump_json(),
            headers={"Content-Type": "application/json"},
        )
        response.raise_for_status()
        self.config = config

    def reset(self) -> None:
        self._client().post("/_simulator/reset").raise_for_status()

    def inbound(
        self,
        api: str,
        sender: str,
        to: str,
        texts: Sequence[str] = (),
        media: Sequence[str] = (),
        subject: str | None = None,
        postback: str | None = None,
        copies: int = 1,
    ) -> dict[str, Any]:
        """Post a message from phone `sender` to our number or short code `to` as `api`
        would post it; `{"posted", "statuses", "message_id", "message_ids"}` once every POST
        was answered. Raises ValueError with the simulator's reason for a bad request."""
        payload = {
            "api": api,
            "from": sender,
            "to": to,
            "texts": list(texts),
            "media": list(media),
            "subject": subject,
            "postback": postback,
            "copies": copies,
        }
        response = self._client().post("/_simulator/inbound", json=payload)
        if response.status_code == 400:
            raise ValueError(response.json()["text"])
        response.raise_for_status()
        return response.json()

    def sms_credentials(self, service_plan_id: str | None = None) -> SinchSmsCredentials:
        """Credentials for `SinchSmsClient` pointing at this simulator."""
        plan = service_plan_id or next(iter(self.config.service_plans))
        return SinchSmsCredentials(
            service_plan_id=plan,
            api_token=self.config.service_plans[plan],
            base_url=self.url,
        )

    def infobip_credentials(self, api_key: str | None = None) -> InfobipCredentials:
        """Credentials for `InfobipSmsClient` and `InfobipMmsClient` pointing at this
        simulator."""
        key = api_key or self.config.infobip_api_keys[0]
        return InfobipCredentials(base_url=self.url, api_key=key)

    def sinch_mms_credentials(
        self, api_key: str | None = None, service_id: str = "simulator-service"
    ) -> SinchMmsCredentials:
        """Credentials for `SinchMmsClient` pointing at this simulator."""
        key = api_key or self.config.sinch_mms_api_keys[0]
        return SinchMmsCredentials(service_id=service_id, api_key=key, base_url=self.url)

    def conversation_credentials(
        self,
        key_id: str | None = None,
        *,
        project_id: str = "simulator-project",
        app_id: str = "simulator-app",
    ) -> ConversationCredentials:
        """Credentials for `SinchConversationClient` pointing at this simulator (its API and
        its `/oauth2/token`)."""
        key = key_id or next(iter(self.config.conversation_keys))
        return ConversationCredentials(
            project_id=project_id,
            app_id=app_id,
            key_id=key,
            key_secret=self.config.conversation_keys[key],
            base_url=self.url,
            auth_url=f"{self.url}/oauth2/token",
        )
