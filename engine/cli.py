"""The `scenarist` command line.

Every command reads the project settings (`--settings`, default `scenarist.yaml` in the
current folder, or $SCENARIST_SETTINGS); a missing file is an error, `init` writes one.
Commands that run flows import Prefect only when called, so `validate` stays fast.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from engine import progress
from engine.errors import ConfigError, InputError, ScenarioError, ScenaristError
from engine.reports import Report, scenario_reports
from engine.settings import Settings, load_settings, settings_path

# Operators read flow and task logs in the Prefect UI; the terminal shows warnings only.
os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

app = typer.Typer(
    help="Scenarist: SMS and MMS scenarios compiled into Prefect flows.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
customers_app = typer.Typer(help="Import customers.", no_args_is_help=True)
consents_app = typer.Typer(help="Grant and revoke consents.", no_args_is_help=True)
events_app = typer.Typer(help="Track customer events.", no_args_is_help=True)
app.add_typer(customers_app, name="customers")
app.add_typer(consents_app, name="consents")
app.add_typer(events_app, name="events")

# soft_wrap: an error line stays one line (file:line node field: message) for grep and CI.
console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)

SettingsOption = Annotated[
    Path | None, typer.Option("--settings", "-s", help="Project settings file.")
]


def _settings(path: Path | None) -> Settings:
    try:
        return load_settings(path)
    except ConfigError as exc:
        errors.print(f"[red]settings error[/red]\n{exc}", highlight=False)
        raise typer.Exit(2) from exc


def _store(path: Path | None):
    from engine.store import Store

    return Store(_settings(path).database_url)


def now() -> datetime:
    return datetime.now(UTC)


def print_report(report: Report) -> None:
    table = Table(title=report.title, title_justify="left")
    for index, column in enumerate(report.columns):
        numbers = report.rows and all(isinstance(row[index], int) for row in report.rows)
        table.add_column(column, justify="right" if numbers else "left")
    for row in report.rows:
        table.add_row(*(str(value) for value in row))
    console.print(table)


@contextmanager
def progress_bars():
    """Draw one bar per reported stage while the block runs."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bars:
        tasks: dict[str, Any] = {}

        def watch(stage: str, count: int, total: int | None) -> None:
            if stage not in tasks:
                tasks[stage] = bars.add_task(stage, total=total)
            bars.update(tasks[stage], advance=count, total=total)

        with progress.watching(watch):
            yield


@app.command()
def init(settings: SettingsOption = None) -> None:
    """Write a commented starter settings file (scenarist.yaml here, or --settings FILE);
    an existing file is never overwritten."""
    from engine.settings import write_starter_settings

    path = settings_path(settings)
    try:
        write_starter_settings(path)
    except ConfigError as exc:
        errors.print(f"[red]error[/red] {exc}", highlight=False)
        raise typer.Exit(2) from exc
    console.print(f"wrote {path}: the simulator as the provider, SQLite beside it; edit to taste")


# -- validate ------------------------------------------------------------------------------


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Scenario files to check.")],
    settings: SettingsOption = None,
    check_media: Annotated[
        bool,
        typer.Option(
            "--check-media",
            help="Also ask each MMS media_url's server for its size (one HEAD request each) "
            "and warn over 1 MB. Without it, validate makes no network request.",
        ),
    ] = False,
) -> None:
    """Check scenario files completely before anything runs."""
    from engine.scenario import load_scenario

    project = _settings(settings)
    failed = False
    for file in files:
        try:
            scenario = load_scenario(file, project, now())
        except ScenarioError as exc:
            failed = True
            for problem in exc.problems:
                errors.print(f"[red]error[/red] {problem}", highlight=False)
            continue
        console.print(
            f"[green]ok[/green] {file}: {scenario.id} version {scenario.version}, "
            f"{len(scenario.nodes)} nodes",
            highlight=False,
        )
        for warning in _media_warnings(scenario) if check_media else ():
            errors.print(f"[yellow]warning[/yellow] {file}: {warning}", highlight=False)
    if failed:
        raise typer.Exit(1)


def _media_warnings(scenario) -> list[str]:
    """Warnings for MMS media over the recommended size, where the size can be learned."""
    import httpx

    from engine.media import media_size_warning
    from nodes.mms import MmsNode

    urls = [
        node.media_url
        for node in scenario.nodes.values()
        if isinstance(node, MmsNode) and node.media_url is not None
    ]
    if not urls:
        return []
    with httpx.Client(timeout=5.0) as client:
        found = [(url, media_size_warning(url, client)) for url in urls]
    return [f"node media {warning}" for _url, warning in found if warning]


# -- customers, consents, events -------------------------------------------------------


@customers_app.command("import")
def import_customers(
    file: Annotated[
        Path,
        typer.Argument(help="CSV or JSON-lines file of customers.", exists=True, dir_okay=False),
    ],
    settings: SettingsOption = None,
    batch: Annotated[int, typer.Option(help="Rows written per transaction.")] = 1000,
    encoding: Annotated[
        str | None,
        typer.Option(
            help="The file's encoding when it has no byte-order mark (UTF-8 if not given), "
            "e.g. cp1252, latin-1, utf-16-le."
        ),
    ] = None,
    delimiter: Annotated[
        str | None,
        typer.Option(help="The CSV delimiter, one character or 'tab'; sniffed if not given."),
    ] = None,
    rejects: Annotated[
        Path | None,
        typer.Option(
            help="Write every rejected row to this file (by default FILE.rejects.txt, only "
            "when more are rejected than are shown)."
        ),
    ] = None,
) -> None:
    """Upsert customers; rows that fail are reported with their line and reason."""
    from engine.customer_import import import_customers as import_file
    from engine.store import Store

    project = _settings(settings)
    if delimiter is not None:
        delimiter = "\t" if delimiter in ("tab", "\\t") else delimiter
        if len(delimiter) != 1:
            errors.print(f"[red]error[/red] --delimiter must be one character, not {delimiter!r}")
            raise typer.Exit(2)
    try:
        with progress_bars():
            result = import_file(
                file,
                Store(project.database_url),
                project.consent_categories,
                now,
                encoding=encoding,
                delimiter=delimiter,
                batch=batch,
                rejects_file=rejects,
            )
    except InputError as exc:
        errors.print(f"[red]error[/red] {exc}", highlight=False)
        raise typer.Exit(2) from exc
    for failure in result.shown:
        errors.print(f"[red]rejected[/red] {file}:{failure}", highlight=False)
    if result.rejected > len(result.shown):
        errors.print(f"... and {result.rejected - len(result.shown)} more rejected rows")
    if result.rejects_file is not None:
        errors.print(f"every rejected row is listed in {result.rejects_file}", highlight=False)
    console.print(f"{result.imported} customers imported, {result.rejected} rows rejected")
    if result.rejected and not result.imported:
        raise typer.Exit(1)


def _change_consent(customer: str, category: str, granted: bool, settings: Path | None) -> None:
    project = _settings(settings)
    if category not in project.consent_categories:
        errors.print(
            f"[red]error[/red] consent category '{category}' is not one of "
            f"{', '.join(project.consent_categories)}"
        )
        raise typer.Exit(2)
    from engine.store import Store

    store = Store(project.database_url)
    record = store.customers.get(customer)
    if record is None:
        errors.print(f"[red]error[/red] no customer '{customer}'")
        raise typer.Exit(2)
    phone = record.phone
    if granted and phone and store.customers.opted_out_phones([phone], category):
        console.print(
            f"note: {phone} texted STOP; nobody with it is sent {category} until it texts START"
        )
    store.customers.change_consents(
        [
            {
                "customer_id": customer,
                "category": category,
                "granted": granted,
                "source": "cli",
                "at": now(),
                "details": {},
            }
        ]
    )
    console.print(f"{'granted' if granted else 'revoked'} {category} for {customer}")


@consents_app.command("grant")
def grant(customer: str, category: str, settings: SettingsOption = None) -> None:
    """Grant a consent category to one customer."""
    _change_consent(customer, category, True, settings)


@consents_app.command("revoke")
def revoke(customer: str, category: str, settings: SettingsOption = None) -> None:
    """Revoke a consent category from one customer."""
    _change_consent(customer, category, False, settings)


@consents_app.command("history")
def consent_history(customer: str, settings: SettingsOption = None) -> None:
    """Every consent change of one customer (the ledger), with its source."""
    store = _store(settings)
    if store.customers.get(customer) is None:
        errors.print(f"[red]error[/red] no customer '{customer}'")
        raise typer.Exit(2)
    table = Table(title=f"Consent ledger of {customer}", title_justify="left")
    for column in ("at", "category", "change", "source", "details"):
        table.add_column(column)
    for change in store.customers.consent_history(customer):
        details = ", ".join(f"{k}={v}" for k, v in change["details"].items() if v is not None)
        table.add_row(
            f"{change['at']:%Y-%m-%d %H:%M:%S}",
            change["category"],
            "granted" if change["granted"] else "revoked",
            change["source"],
            details,
        )
    console.print(table)


@app.command()
def inbound(
    limit: Annotated[int, typer.Option(help="How many of the latest to show.")] = 20,
    settings: SettingsOption = None,
) -> None:
    """The latest inbound messages: keyword, customers and the reply each got."""
    table = Table(title="Inbound messages, newest first", title_justify="left")
    for column in ("at", "from", "to", "text", "keyword", "customers", "reply"):
        # In a narrow terminal the text and lists fold; times, phones and states stay whole.
        table.add_column(column, no_wrap=column in ("at", "from", "to", "reply"), overflow="fold")
    for message in _store(settings).inbound.messages(limit):
        text = " | ".join(message["texts"]) or ", ".join(message["media"]) or ""
        table.add_row(
            f"{message['received_at']:%H:%M:%S}",
            message["sender"] or "?",
            message["recipient"] or "?",
            text if len(text) <= 40 else text[:39] + "…",
            message["keyword"] or "",
            ", ".join(message["customer_ids"]) or "unknown",
            f"repeats {message['repeat_of']}"
            if message["repeat_of"]
            else message["reply_state"] or "",
        )
    console.print(table)


@events_app.command("track")
def track_event(
    customer: Annotated[str | None, typer.Argument(help="Customer id.")] = None,
    event_type: Annotated[str | None, typer.Argument(help="Event type, e.g. purchase.")] = None,
    properties: Annotated[str, typer.Option(help="Event properties as a JSON object.")] = "{}",
    file: Annotated[
        Path | None, typer.Option(help="JSON lines: customer_id, type, properties.")
    ] = None,
    settings: SettingsOption = None,
) -> None:
    """Record customer events; event-triggered scenarios enrol them on their next tick."""
    from engine.customers import RowError, read_records

    store = _store(settings)
    rows, failures = [], []
    if file is not None:
        with file.open() as stream:
            for line, record in read_records(file, stream):
                try:
                    if isinstance(record, RowError):
                        raise InputError(record.reason)
                    rows.append(
                        _event_row(
                            record.get("customer_id"),
                            record.get("type"),
                            record.get("properties", {}),
                        )
                    )
                except InputError as exc:
                    failures.append(f"{file}:{line}: {exc}")
    else:
        try:
            rows.append(_event_row(customer, event_type, json.loads(properties)))
        except (InputError, json.JSONDecodeError) as exc:
            errors.print(f"[red]error[/red] {exc}")
            raise typer.Exit(2) from exc
    known = store.customers.by_id({row["customer_id"] for row in rows})
    for row in rows:
        if row["customer_id"] not in known:
            failures.append(f"no customer '{row['customer_id']}' for event '{row['type']}'")
    rows = [row for row in rows if row["customer_id"] in known]
    store.customers.track_events(rows)
    for failure in failures:
        errors.print(f"[red]rejected[/red] {failure}", highlight=False)
    console.print(f"{len(rows)} events tracked, {len(failures)} rejected")
    if failures and not rows:
        raise typer.Exit(1)


def _event_row(customer: Any, event_type: Any, properties: Any) -> dict[str, Any]:
    if not customer or not isinstance(customer, str):
        raise InputError("missing 'customer_id'")
    if not event_type or not isinstance(event_type, str):
        raise InputError("missing event 'type'")
    if not isinstance(properties, dict):
        raise InputError("'properties' must be a JSON object")
    return {"customer_id": customer, "type": event_type, "properties": properties, "at": now()}


# -- composing and testing ---------------------------------------------------------------


def _load_scenario(file: Path, project: Settings, at: datetime | None = None):
    """The validated scenario, or every problem printed and exit code 1. With `at`, a
    schedule trigger's `at` before it is a problem too."""
    from engine.scenario import load_scenario

    try:
        return load_scenario(file, project, at)
    except ScenarioError as exc:
        for problem in exc.problems:
            errors.print(f"[red]error[/red] {problem}", highlight=False)
        raise typer.Exit(1) from exc


def _scenario_and_customer(file: Path, customer: str, settings: Path | None):
    from engine.runtime import Runtime

    project = _settings(settings)
    scenario = _load_scenario(file, project)
    runtime = Runtime(project)
    record = runtime.store.customers.get(customer)
    if record is None:
        errors.print(f"[red]error[/red] no customer '{customer}'")
        raise typer.Exit(2)
    return runtime, scenario, record


def _event_option(event: str) -> dict[str, Any]:
    try:
        properties = json.loads(event)
    except json.JSONDecodeError as exc:
        errors.print(f"[red]error[/red] --event is not JSON: {exc}")
        raise typer.Exit(2) from exc
    if not isinstance(properties, dict):
        errors.print("[red]error[/red] --event must be a JSON object")
        raise typer.Exit(2)
    return properties


EventOption = Annotated[
    str, typer.Option("--event", help="The triggering event's properties, as JSON.")
]


@app.command()
def preview(
    file: Annotated[Path, typer.Argument(help="Scenario file.")],
    customer: Annotated[str, typer.Option("--customer", help="Customer id.")],
    event: EventOption = "{}",
    settings: SettingsOption = None,
) -> None:
    """Render every message node for a real customer: text, encoding, parts, characters
    remaining, and the characters that force UCS-2 highlighted."""
    from rich.text import Text

    from engine.preview import preview_messages

    runtime, scenario, record = _scenario_and_customer(file, customer, settings)
    properties = _event_option(event)
    table = Table(title=f"{scenario.id} for {customer} ({record.phone})", title_justify="left")
    columns = (
        "node",
        "channel",
        "sender",
        "encoding",
        "parts",
        "length",
        "remaining",
        "forces UCS-2",
    )
    for column in columns:
        table.add_column(column)
    texts = []
    previews = preview_messages(runtime.settings, scenario, record, properties)
    for message in previews:
        head = (message.node_id, message.channel, message.sender)
        if message.failure is not None:
            table.add_row(*head, "[red]not sent[/red]", "", "", "", "")
            failure = f"{message.failure[0]}: {message.failure[1]}"
            texts.append((message.node_id, Text(failure, style="red")))
            continue
        assert message.text is not None
        seg = message.segmentation
        if seg is None:  # an MMS without a fallback SMS: nothing to count in parts
            table.add_row(*head, "", "", "", "", "")
            texts.append((message.node_id, Text(message.text)))
            continue
        counts = (seg.encoding, str(seg.parts), str(seg.length), str(seg.remaining))
        table.add_row(*head, *counts, " ".join(seg.ucs2_characters))
        # For an MMS the counts are its fallback SMS's; the text shown is the MMS's.
        text = Text(message.text)
        for index, char in enumerate(message.text):
            if char in seg.ucs2_characters:
                text.stylize("bold white on red", index, index + 1)
        texts.append((message.node_id, text))
    console.print(table)
    for node_id, text in texts:
        console.print(Text(f"{node_id}: ", style="bold") + text)
    for message in previews:
        for number, piece in enumerate(message.fallback_pieces or [], start=1):
            console.print(Text(f"{message.node_id} fallback SMS {number}: ", style="bold") + piece)
    runtime.close()


@app.command("send-test")
def send_test_command(
    file: Annotated[Path, typer.Argument(help="Scenario file.")],
    node: Annotated[str, typer.Option("--node", help="The message node to send.")],
    customer: Annotated[str, typer.Option("--customer", help="Whose data personalises it.")],
    to: Annotated[
        str | None, typer.Option("--to", help="Send here instead of the customer's phone.")
    ] = None,
    event: EventOption = "{}",
    settings: SettingsOption = None,
) -> None:
    """Send one message node through the real send path, tracked as a test."""
    from engine.trial_send import send_test

    runtime, scenario, record = _scenario_and_customer(file, customer, settings)
    try:
        tracked = send_test(runtime, scenario, node, record, to, _event_option(event))
    except InputError as exc:
        errors.print(f"[red]error[/red] {exc}")
        raise typer.Exit(2) from exc
    finally:
        runtime.close()
    properties = tracked["properties"]
    if tracked["status"] == "enqueued":
        console.print(
            f"test message enqueued to {properties['recipient']} "
            f"({properties['number_of_message_parts']} parts)"
        )
        return
    errors.print(f"[red]{tracked['status']}[/red] {properties['error']}: {properties['comment']}")
    raise typer.Exit(1)


@app.command("contact-card")
def contact_card_command(
    name: Annotated[str, typer.Option(help="The business name.")],
    phone: Annotated[str, typer.Option(help="Its number, international format.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The .vcf file to write.")],
    logo_url: Annotated[str | None, typer.Option(help="URL of the logo image.")] = None,
    url: Annotated[str | None, typer.Option(help="The business's web site.")] = None,
) -> None:
    """Write a contact card (text/vcard) for an MMS node's media_url to point at."""
    from engine.contact_card import contact_card

    try:
        card = contact_card(name, phone, logo_url=logo_url, url=url)
    except (ValueError, InputError) as exc:
        errors.print(f"[red]error[/red] {exc}")
        raise typer.Exit(2) from exc
    output.write_text(card, newline="")
    console.print(f"wrote {output}; host it and use its URL as an MMS node's media_url")


# -- running ---------------------------------------------------------------------------


@app.command()
def launch(
    file: Annotated[Path, typer.Argument(help="Scenario file.")],
    settings: SettingsOption = None,
) -> None:
    """Validate, register and launch a scenario, then run ticks until nothing is due now."""
    scenario = _load_scenario(file, _settings(settings), now())
    from flows.launch import launch_scenario

    with progress_bars():
        launch_scenario(str(file), _settings_arg(settings))
    status(scenario.id, settings)


@app.command()
def tick(settings: SettingsOption = None) -> None:
    """Run one tick of every running scenario."""
    from flows.tick import tick as tick_flow

    _settings(settings)
    with progress_bars():
        results = tick_flow(_settings_arg(settings))
    for scenario_id, result in results.items():
        console.print(f"{scenario_id}: {result['enrolled']} enrolled, {result['moves']} moves")


@app.command()
def status(
    scenario: Annotated[str | None, typer.Argument(help="Scenario id; all when left out.")] = None,
    settings: SettingsOption = None,
) -> None:
    """Journeys per node and campaign events per status."""
    store = _store(settings)
    records = store.scenarios.records()
    if scenario is not None:
        records = [r for r in records if r.id == scenario]
        if not records:
            errors.print(f"[red]error[/red] no scenario '{scenario}'")
            raise typer.Exit(2)
    for record in records:
        console.print(
            f"[bold]{record.id}[/bold] ({record.name}) version {record.version}, {record.status}",
            highlight=False,
        )
        for report in scenario_reports(store, record.id):
            print_report(report)


def _set_status(scenario: str, value: str, settings: Path | None) -> None:
    store = _store(settings)
    if store.scenarios.record(scenario) is None:
        errors.print(f"[red]error[/red] no scenario '{scenario}'")
        raise typer.Exit(2)
    store.scenarios.update(scenario, status=value)
    console.print(f"{scenario}: {value}")


@app.command()
def pause(scenario: str, settings: SettingsOption = None) -> None:
    """Stop ticking a scenario; its customers wait where they are."""
    _set_status(scenario, "paused", settings)


@app.command()
def resume(scenario: str, settings: SettingsOption = None) -> None:
    """Tick a paused scenario again."""
    _set_status(scenario, "running", settings)


@app.command()
def simulator(
    host: str = "127.0.0.1",
    port: int = 8765,
) -> None:
    """Run the local provider simulator (Sinch SMS API) in the foreground."""
    from integrations.simulator.server import run_simulator

    console.print(f"simulator on http://{host}:{port}")
    run_simulator(host, port)


@app.command()
def webhooks(
    settings: SettingsOption = None,
    host: str = "127.0.0.1",
    port: int = 8080,
) -> None:
    """Run the webhook server: delivery reports and inbound messages from the providers,
    short-link clicks, customer events."""
    import uvicorn

    from engine.webhooks import check_exposure

    webhook_app = _webhook_app(settings)
    check_exposure(webhook_app, host)
    console.print(
        f"webhooks on http://{host}:{port}/webhooks/<provider>, short links on /l/<code>, "
        "events on /events"
    )
    uvicorn.run(webhook_app, host=host, port=port, log_level="warning")


def _webhook_app(settings: Path | None) -> Any:
    from engine.store import Store
    from engine.webhooks import create_webhook_app, request_tick_run

    project = _settings(settings)
    # Read once: rebuilding the app's gateways, report writer and keyword table on a change
    # is not worth what it would risk; the operator restarts instead.
    console.print(
        f"settings read from {settings_path(settings).resolve()}; "
        "restart the webhook server after changing them",
        highlight=False,
    )
    return create_webhook_app(
        project,
        Store(project.database_url),
        on_events=request_tick_run(_settings_arg(settings)),
    )


@app.command()
def serve(
    settings: SettingsOption = None,
    interval: Annotated[int, typer.Option(help="Seconds between ticks.")] = 60,
    webhooks_port: Annotated[
        int, typer.Option(help="Port of the webhook server; 0: do not start it.")
    ] = 8080,
) -> None:
    """Serve the tick deployment, and one cron deployment per running scheduled scenario,
    from this process without a worker (what prefect.yaml deploys to a work pool), and the
    webhook server beside them."""
    from prefect import serve as prefect_serve
    from prefect.schedules import Cron

    from engine.runtime import Runtime
    from flows.tick import scenario_tick
    from flows.tick import tick as tick_flow

    settings_file = _settings_arg(settings)
    parameters = {"settings_file": settings_file}
    # One run of each deployment at a time, as prefect.yaml deploys them: a tick that
    # outlasts its interval (or a cron run its next fire) waits rather than overlaps.
    deployments = [
        tick_flow.to_deployment(
            name="tick", interval=interval, parameters=parameters, concurrency_limit=1
        )
    ]
    runtime = Runtime(_settings(settings))
    for record in runtime.store.scenarios.records(status="running"):
        trigger = runtime.scenario(record.id, record.version).trigger
        if trigger.cron is not None:
            deployments.append(
                scenario_tick.to_deployment(
                    name=f"scenario-{record.id}",
                    schedules=[Cron(trigger.cron, timezone=trigger.timezone)],
                    parameters={"scenario_id": record.id, **parameters},
                    concurrency_limit=1,
                )
            )
    runtime.close()
    console.print(f"serving {len(deployments)} deployments; Ctrl+C stops")
    if not webhooks_port:
        prefect_serve(*deployments)
        return
    from engine.webhooks import serving_in_background

    with serving_in_background(_webhook_app(settings), "127.0.0.1", webhooks_port) as url:
        console.print(f"webhooks on {url}/webhooks/<provider>, short links on {url}/l/<code>")
        prefect_serve(*deployments)


@app.command()
def demo(
    folder: Annotated[Path, typer.Option(help="Where the demo project is written.")] = Path(
        ".scenarist/demo"
    ),
) -> None:
    """Launch the shipped demo scenario to the sample audience, end to end, on SQLite and the
    simulator, and show what happened."""
    from engine.demo import run_demo

    sys.exit(run_demo(folder, console))


def _settings_arg(path: Path | None) -> str | None:
    if path is not None:
        return str(path.resolve())
    env = os.environ.get("SCENARIST_SETTINGS")
    return str(Path(env).resolve()) if env else None


def main() -> None:
    """The console script: Scenarist's own errors print as one clear line, no traceback."""
    try:
        app()
    except ScenaristError as exc:
        errors.print(f"[red]error[/red] {exc}", highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
