"""`scenarist demo`: the whole loop on one machine, on the embedded defaults.

It writes a fresh demo project (SQLite in the demo folder, the simulator as the SMS
provider), starts the simulator and the webhook server, imports the shipped sample
audience, launches the shipped welcome scenario (SMS) and MMS promotion through the
Prefect flows, lets the simulator post delivery reports back, has three customers text
STOP, HELP and JOIN, and shows the evaluation, the keyword replies and the consent ledger.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from rich.console import Console

from engine.reports import Report

REPOSITORY = Path(__file__).resolve().parents[1]
DEMO_SCENARIO = REPOSITORY / "scenarios" / "welcome.yaml"
DEMO_MMS_SCENARIO = REPOSITORY / "scenarios" / "mms_promo.yaml"
DEMO_AUDIENCE = REPOSITORY / "scenarios" / "demo" / "customers.csv"
DEMO_KEYWORDS = ("STOP", "HELP", "JOIN")


def demo_settings(database: Path, simulator_url: str, webhooks_url: str) -> dict:
    """The repository's settings, pointed at a fresh database, a running simulator and the
    demo's webhook server (which serves the short links)."""
    settings = yaml.safe_load((REPOSITORY / "scenarist.yaml").read_text())
    settings["database_url"] = f"sqlite:///{database}"
    settings["webhooks"] = {**settings.get("webhooks", {}), "public_url": webhooks_url}
    for integration in settings["integrations"].values():
        if integration["type"] == "simulator":
            integration["url"] = simulator_url
    return settings


def run_demo(folder: Path, console: Console) -> int:
    from engine.cli import consent_history, import_customers, inbound, launch, print_report
    from engine.cli import status as show_status
    from engine.settings import load_settings
    from engine.store import Store
    from engine.webhooks import create_webhook_app, serving_in_background
    from integrations.simulator.config import REPORT_PROVIDERS, SimulatorConfig
    from integrations.simulator.server import SimulatorProcess, free_port

    folder = folder.resolve()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    settings_file = folder / "scenarist.yaml"
    port = free_port()
    # The simulator posts delivery reports and inbound messages to the webhook server.
    simulator = SimulatorProcess(
        SimulatorConfig(
            report_urls={p: f"http://127.0.0.1:{port}/webhooks/{p}" for p in REPORT_PROVIDERS}
        )
    )
    database, webhooks = folder / "scenarist.db", f"http://127.0.0.1:{port}"
    settings_file.write_text(
        yaml.safe_dump(demo_settings(database, simulator.url, webhooks), sort_keys=False)
    )
    settings = load_settings(settings_file)
    store = Store(settings.database_url)
    app = create_webhook_app(settings, store)
    with simulator, serving_in_background(app, "127.0.0.1", port):
        console.rule("1. import the sample audience")
        import_customers(DEMO_AUDIENCE, settings=settings_file, batch=1000)
        console.rule("2. launch scenarios/welcome.yaml (SMS) through Prefect")
        launch(DEMO_SCENARIO, settings=settings_file)
        console.rule("3. launch scenarios/mms_promo.yaml (MMS with SMS fallback)")
        launch(DEMO_MMS_SCENARIO, settings=settings_file)

        console.rule("4. what the provider simulator received")
        stats = simulator.stats()
        print_report(
            Report(
                "Provider simulator",
                ("measure", "value"),
                [
                    ("Sinch SMS POST /batches requests", stats["batches"]),
                    ("messages received, SMS and MMS", stats["messages"]),
                    ("of which MMS (Sinch MMS API)", sum(stats["mms_messages"].values())),
                    ("distinct recipients", stats["recipients"]),
                    ("recipients messaged twice by one send", stats["duplicates"]),
                ],
            )
        )
        phones = _recipients(store, len(DEMO_KEYWORDS))
        if phones:
            sample = simulator.messages(phones[0])[0]["body"]
            console.print(f"for example, one customer received: [italic]{sample}[/]")

        console.rule("5. delivery reports, posted back to the webhook server")
        simulator.settle_reports()
        app.state.report_writer.settle()
        show_status("welcome", settings=settings_file)

        console.rule("6. two-way: three customers text STOP, HELP and JOIN to our number")
        sender = settings.sender(None)
        assert sender is not None, "the shipped settings have a default sender"
        answered = 0
        for phone, word in zip(phones, DEMO_KEYWORDS, strict=False):
            before = len(simulator.messages(phone))
            simulator.inbound("sinch_sms", sender=phone, to=sender.number, texts=[word])
            answered += _reply_arrived(simulator, phone, before)
        inbound(limit=len(DEMO_KEYWORDS), settings=settings_file)
        if phones:
            stopped = store.customers.by_phone(phones[:1])[phones[0]][0]
            consent_history(stopped, settings=settings_file)

        console.rule("7. a customer clicks the short link in their welcome text")
        clicked = _click_first_link(simulator, phones[1:2], console)
        show_status("welcome", settings=settings_file)
    store.close()
    console.print(
        f"\nDemo project: {folder}  (run `scenarist status --settings {settings_file}` "
        "again, or `prefect server start` and open http://127.0.0.1:4200 to see the flows)"
    )
    ok = (
        stats["messages"] and not stats["duplicates"] and answered == len(DEMO_KEYWORDS) and clicked
    )
    return 0 if ok else 1


def _click_first_link(simulator: Any, phones: list[str], console: Console) -> bool:
    """Follow the first short link a customer received, as their phone would; True if it
    redirected."""
    for phone in phones:
        for message in simulator.messages(phone):
            link = next((w for w in message["body"].split() if "/l/" in w), None)
            if link is None:
                continue
            answer = httpx.get(link.rstrip("."), follow_redirects=False)
            console.print(f"{link} -> {answer.status_code} {answer.headers.get('location')}")
            return answer.status_code == 302
    return False


def _reply_arrived(simulator: Any, phone: str, before: int, timeout: float = 10.0) -> bool:
    """Whether a keyword reply reached the simulator (it goes out after the webhook has
    answered, so it may take a moment)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(simulator.messages(phone)) > before:
            return True
        time.sleep(0.05)
    return False


def _recipients(store: Any, count: int) -> list[str]:
    """Up to `count` phones the welcome scenario messaged."""
    events = store.evaluation.campaign_events("welcome")
    phones = [e["properties"]["recipient"] for e in events if e["status"] == "enqueued"]
    return list(dict.fromkeys(phones))[:count]
