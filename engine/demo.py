"""`scenarist demo`: the whole loop on one machine, on the embedded defaults.

It writes a fresh demo project (SQLite in the demo folder, the simulator as the SMS
provider), starts the simulator, imports the shipped sample audience, launches the shipped
welcome scenario (SMS) and MMS promotion through the Prefect flows, and shows the
evaluation and what the simulator received.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml
from rich.console import Console

from engine.reports import Report

REPOSITORY = Path(__file__).resolve().parents[1]
DEMO_SCENARIO = REPOSITORY / "scenarios" / "welcome.yaml"
DEMO_MMS_SCENARIO = REPOSITORY / "scenarios" / "mms_promo.yaml"
DEMO_AUDIENCE = REPOSITORY / "scenarios" / "demo" / "customers.csv"


def demo_settings(database: Path, simulator_url: str) -> dict:
    """The repository's settings, pointed at a fresh database and a running simulator."""
    settings = yaml.safe_load((REPOSITORY / "scenarist.yaml").read_text())
    settings["database_url"] = f"sqlite:///{database}"
    for integration in settings["integrations"].values():
        if integration["type"] == "simulator":
            integration["url"] = simulator_url
    return settings


def run_demo(folder: Path, console: Console) -> int:
    from engine.cli import import_customers, launch, print_report
    from integrations.simulator.server import SimulatorProcess

    folder = folder.resolve()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    settings_file = folder / "scenarist.yaml"
    with SimulatorProcess() as simulator:
        settings_file.write_text(
            yaml.safe_dump(demo_settings(folder / "scenarist.db", simulator.url), sort_keys=False)
        )
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
        sample = stats["recipients"] and simulator.messages(_first_recipient(settings_file))
        if sample:
            console.print(f"for example, one customer received: [italic]{sample[0]['body']}[/]")
    console.print(
        f"\nDemo project: {folder}  (run `scenarist status --settings {settings_file}` "
        "again, or `prefect server start` and open http://127.0.0.1:4200 to see the flows)"
    )
    return 0 if stats["messages"] and not stats["duplicates"] else 1


def _first_recipient(settings_file: Path) -> str:
    from engine.settings import load_settings
    from engine.store import Store

    store = Store(load_settings(settings_file).database_url)
    try:
        events = store.campaign_events("welcome")
        enqueued = [e for e in events if e["status"] == "enqueued"]
        return enqueued[0]["properties"]["recipient"] if enqueued else ""
    finally:
        store.close()
