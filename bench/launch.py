"""Benchmark: launch a scenario to N generated customers, end to end, beside its floor.

    .venv/bin/python bench/launch.py                          # 1,000,000 customers
    .venv/bin/python bench/launch.py --customers 100000 --results bench/RESULTS.md
    .venv/bin/python bench/launch.py --sizes 100000,1000000 --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test

For each audience size, side by side in one run, each design in a child process of its
own (so peak RSS is that design's, at that size), into one simulator over loopback:

- floor: the minimum work per message, timed alone: render the text in Jinja's sandbox
  (the engine's template code), count its GSM-7 parts, build and POST one 1,000-recipient
  Sinch `/batches` body, and one transaction per request inserting the send rows and
  campaign events and updating the journeys (DESIGN.md, "Performance budget");
- end to end: `launch_scenario` through the real flows, a real Prefect server (`prefect
  server start` on a free port; its start-up is not timed) and the Sinch client;
- the runtime without Prefect: the same launch and tick, called directly;
- naive, once, on a sample: one Prefect task run and one HTTP request per message, its
  rate scaled from the sample.

Every design must have sent each customer exactly once by the simulator's count, or the
run stops saying which did not. With `--postgres URL` the floor, end to end and runtime
run again on PostgreSQL (a schema of their own, dropped afterwards). A table is printed
and, as the LAST line, one JSON object (`customers`, `msgs_per_s`, `floor_msgs_per_s`,
`runtime_msgs_per_s`, `naive_msgs_per_s`, `peak_rss_mb` of the largest size, `sizes` with
each, `postgres` when run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

TEXT = "Hi {{ customer.first_name }}, 20% off today with code SAVE20."
SCENARIO = f"""
id: bench
name: Benchmark
settings: {{consent_category: sms_marketing, silent_hours: none}}
nodes:
  - {{id: start, type: trigger, kind: launch}}
  - {{id: offer, type: sms, text: "{TEXT}"}}
edges:
  - {{from: start, to: offer}}
"""
SENDER = "+12025550100"
RECIPIENTS_PER_REQUEST = 1000  # Sinch's maximum per batch, as the engine sends
GENERATE_CHUNK = 10_000
DESIGNS = ("floor", "end to end", "runtime, no Prefect")


def phone(number: int) -> str:
    """Customer `number`'s phone: unique per customer (a valid US number, 202-2xx-xxxx),
    so the simulator's per-recipient count shows anyone sent twice."""
    return f"+1202{2_000_000 + number:07d}"


def customer_chunks(count: int) -> Iterator[list[dict[str, Any]]]:
    """The generated customers' attributes, `GENERATE_CHUNK` at a time (memory stays flat)."""
    from bench.generate_customers import customers

    chunk = []
    for number, row in enumerate(customers(count, seed=1), start=1):
        attributes = {k: v for k, v in row.items() if not k.startswith("consent:")}
        chunk.append({**attributes, "phone": phone(number)})
        if len(chunk) == GENERATE_CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# -- projects ------------------------------------------------------------------------


@dataclass(frozen=True)
class Project:
    folder: Path
    database_url: str

    @property
    def settings(self) -> Path:
        return self.folder / "scenarist.yaml"

    @property
    def scenario(self) -> Path:
        return self.folder / "bench.yaml"


@contextmanager
def project(work: Path, name: str, postgres: str | None, simulator_url: str) -> Iterator[Project]:
    """A folder with settings and the scenario, and an empty database: a SQLite file, or a
    schema of its own in `postgres`; all removed afterwards."""
    import sqlalchemy
    import yaml

    folder = work / name
    folder.mkdir()
    schema = f"scenarist_bench_{uuid.uuid4().hex[:10]}"
    if postgres:
        admin = sqlalchemy.create_engine(postgres)
        with admin.begin() as connection:
            connection.execute(sqlalchemy.schema.CreateSchema(schema))
        separator = "&" if "?" in postgres else "?"
        url = f"{postgres}{separator}options=-csearch_path%3D{schema}"
    else:
        url = f"sqlite:///{folder / 'bench.db'}"
    settings = {
        "database_url": url,
        "integrations": {"simulator": {"type": "simulator", "url": simulator_url}},
        "default_sms_provider": "simulator",
        "senders": [{"name": "main", "number": SENDER, "type": "10dlc", "default": True}],
        "consent_categories": ["sms_marketing"],
    }
    (folder / "scenarist.yaml").write_text(yaml.safe_dump(settings))
    (folder / "bench.yaml").write_text(SCENARIO)
    try:
        yield Project(folder, url)
    finally:
        shutil.rmtree(folder)
        if postgres:
            with admin.begin() as connection:
                connection.execute(sqlalchemy.schema.DropSchema(schema, cascade=True))
            admin.dispose()


def insert_customers(database_url: str, count: int, advance: Any) -> None:
    """`count` customers with sms_marketing consent, inserted in bulk (the driver's
    executemany, as the engine's hot paths write); `advance(n)` after each chunk."""
    from engine.phones import phone_region
    from engine.store import Store
    from engine.store.tables import CONSENT_CHANGES, CONSENTS, CUSTOMERS

    store = Store(database_url)
    now = datetime.now(UTC)
    region = phone_region(phone(1))  # every generated phone is +1 202: one region
    try:
        for chunk in customer_chunks(count):
            consents = [
                {"customer_id": c["id"], "category": "sms_marketing", "granted": True}
                for c in chunk
            ]
            with store.engine.begin() as connection:
                store.db.bulk_insert(
                    connection,
                    CUSTOMERS,
                    [
                        {
                            "id": c["id"],
                            "phone": c["phone"],
                            "region": region,
                            "timezone": c["timezone"],
                            "attributes": c,
                            "updated_at": now,
                        }
                        for c in chunk
                    ],
                )
                store.db.bulk_insert(
                    connection, CONSENTS, [{**c, "updated_at": now} for c in consents]
                )
                store.db.bulk_insert(
                    connection,
                    CONSENT_CHANGES,
                    [{**c, "source": "bench", "at": now, "details": {}} for c in consents],
                )
            advance(len(chunk))
    finally:
        store.close()


# -- the designs, each run in a child process ----------------------------------------


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_floor(database_url: str, credentials: dict[str, str], count: int) -> dict[str, float]:
    """The floor: only the work every message needs, timed without what sets it up (the
    journeys to update, the customers' data in memory)."""
    from engine.segments import segment
    from engine.store import Store
    from engine.store.tables import CAMPAIGN_EVENTS, JOURNEYS, SENDS
    from engine.templates import TemplateError, split_template
    from integrations.sinch_sms import SinchSmsClient, SinchSmsCredentials, SmsBatch

    store = Store(database_url)
    client = SinchSmsClient(SinchSmsCredentials(**credentials))
    split = split_template(TEXT)
    names = tuple(f"p{i}" for i in range(1, len(split.expressions) + 1))
    body = split.placeholder_body(names)
    now = datetime.now(UTC)
    with store.engine.begin() as connection:
        for chunk in customer_chunks(count):
            store.db.bulk_insert(
                connection,
                JOURNEYS,
                [
                    {
                        "scenario_id": "bench",
                        "version": "1",
                        "customer_id": c["id"],
                        "entry": "launch",
                        "node_id": "offer",
                        "state": "active",
                        "due_at": now,
                        "event": {},
                        "updated_at": now,
                    }
                    for c in chunk
                ],
            )
    journey_id, seconds = 0, 0.0
    for chunk in customer_chunks(count):
        for start in range(0, len(chunk), RECIPIENTS_PER_REQUEST):
            batch = chunk[start : start + RECIPIENTS_PER_REQUEST]
            started = time.perf_counter()
            contexts = [{"customer": c, "event": {}} for c in batch]
            values = split.values_many(contexts)
            if any(isinstance(v, TemplateError) for v in values):
                raise SystemExit(f"the floor's text failed to render: {values}")
            parts = [segment(split.join(v)).parts for v in values]
            reference = f"floor-{journey_id}"
            receipt = client.send_batch(
                SmsBatch(
                    sender=SENDER,
                    recipients=[c["phone"] for c in batch],
                    body=body,
                    client_reference=reference,
                    parameters={
                        name: {c["phone"]: v[i] for c, v in zip(batch, values, strict=True)}
                        for i, name in enumerate(names)
                    },
                )
            )
            ids = range(journey_id + 1, journey_id + len(batch) + 1)
            at = datetime.now(UTC)
            sends = [
                {
                    "key": f"bench:offer:{c['id']}",
                    "scenario_id": "bench",
                    "node_id": "offer",
                    "customer_id": c["id"],
                    "journey_id": j,
                    "phone": c["phone"],
                    "dispatch_key": reference,
                    "state": "enqueued",
                    "parts": p,
                    "encoding": "GSM-7",
                    "status_code": receipt.batch_id,
                    "tracked": True,
                    "created_at": at,
                }
                for c, j, p in zip(batch, ids, parts, strict=True)
            ]
            events = [
                {
                    "name": "campaign",
                    "customer_id": s["customer_id"],
                    "scenario_id": "bench",
                    "status": "enqueued",
                    "send_key": s["key"],
                    "timestamp": at,
                    "properties": {"action_type": "sms", "node_id": "offer", "parts": s["parts"]},
                }
                for s in sends
            ]
            moves = [{"id": j, "node_id": "offer", "state": "done", "updated_at": at} for j in ids]
            with store.engine.begin() as connection:
                store.db.bulk_insert(connection, SENDS, sends)
                store.db.bulk_insert(connection, CAMPAIGN_EVENTS, events)
                store.db.update_many(connection, JOURNEYS, "id", moves)
            seconds += time.perf_counter() - started
            journey_id += len(batch)
    client.close()
    store.close()
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb()}


def run_end_to_end(settings: str, scenario: str) -> dict[str, float]:
    """One launch through the flows, against the Prefect server in PREFECT_API_URL."""
    from flows.launch import launch_scenario

    started = time.perf_counter()
    launch_scenario(scenario, settings)
    return {"seconds": time.perf_counter() - started, "peak_rss_mb": peak_rss_mb()}


def run_runtime(settings: str, scenario: str) -> dict[str, float]:
    """The same launch and tick through the runtime alone: what the engine itself costs."""
    from engine.runtime import Runtime, launch, tick_scenario, utc_now
    from engine.scenario import load_scenario
    from engine.settings import load_settings

    runtime = Runtime(load_settings(settings))
    started = time.perf_counter()
    loaded = load_scenario(scenario, runtime.settings)
    launch(runtime, loaded, utc_now())
    tick_scenario(runtime, loaded.id)
    seconds = time.perf_counter() - started
    runtime.close()
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb()}


def run_naive(credentials: dict[str, str], count: int) -> dict[str, float]:
    """A Prefect task run and one request per message."""
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE

    from integrations.sinch_sms import SinchSmsClient, SinchSmsCredentials, SmsBatch

    client = SinchSmsClient(SinchSmsCredentials(**credentials))

    @task(cache_policy=NO_CACHE, persist_result=False)
    def send_one(number: int) -> str:
        batch = SmsBatch(
            sender=SENDER,
            recipients=[phone(number)],
            body=f"Hi Ann {number}, 20% off today with code SAVE20.",
            client_reference=f"naive-{number}",
        )
        return client.send_batch(batch).batch_id

    @flow(name="naive-one-task-per-message")
    def naive(count: int) -> None:
        for number in range(1, count + 1):
            send_one(number)

    started = time.perf_counter()
    naive(count)
    return {"seconds": time.perf_counter() - started, "peak_rss_mb": peak_rss_mb()}


CHILDREN = {
    "floor": run_floor,
    "end to end": run_end_to_end,
    "runtime, no Prefect": run_runtime,
    "naive": run_naive,
}


# -- the run -------------------------------------------------------------------------


def start_prefect_server(home: Path) -> tuple[subprocess.Popen, str]:
    """`prefect server start` on a free port, as in production; returns once it answers,
    so its start-up is never part of a timing."""
    import httpx

    from integrations.simulator.server import free_port

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1"]
        + ["--port", str(port)],
        env={**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return server, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.kill()
    raise SystemExit("the Prefect server did not start within 120 s")


@dataclass(frozen=True)
class Measured:
    design: str
    database: str
    customers: int
    seconds: float
    msgs_per_s: float
    peak_rss_mb: float
    requests: int
    messages: int
    """What the simulator received, and at most how many one recipient did."""
    most_per_recipient: int


def child(
    design: str,
    label: str,
    arguments: list[Any],
    environment: dict[str, str],
    simulator: Any,
    expected: int,
    progress: Any,
) -> tuple[dict[str, float], dict[str, Any]]:
    """Run `design` in a child process, its progress read off the simulator's count; its
    result and the simulator's stats, checked: `expected` messages, nobody twice."""
    simulator.reset()
    task = progress.add_task(label, total=expected)
    command = [sys.executable, __file__, "--child", design, json.dumps(arguments)]
    with tempfile.TemporaryFile("w+") as output, tempfile.TemporaryFile("w+") as errors:
        process = subprocess.Popen(
            command, env=environment, cwd=REPOSITORY, stdout=output, stderr=errors, text=True
        )
        while process.poll() is None:
            progress.update(task, completed=simulator.stats()["messages"])
            time.sleep(0.5)
        output.seek(0)
        errors.seek(0)
        if process.returncode != 0:
            raise SystemExit(f"{label} failed:\n{errors.read()[-4000:]}")
        result = json.loads(output.read().strip().splitlines()[-1])
    stats = simulator.stats()
    progress.update(task, completed=stats["messages"])
    if stats["messages"] != expected or stats["max_per_recipient"] != 1:
        raise SystemExit(
            f"{label}: the simulator received {stats['messages']:,} messages for "
            f"{expected:,} customers, at most {stats['max_per_recipient']} per recipient"
        )
    return result, stats


def measure(
    design: str,
    database: str,
    count: int,
    result: dict[str, float],
    stats: dict[str, Any],
) -> Measured:
    return Measured(
        design=design,
        database=database,
        customers=count,
        seconds=result["seconds"],
        msgs_per_s=count / result["seconds"],
        peak_rss_mb=result["peak_rss_mb"],
        requests=sum(stats["requests"].values()),
        messages=stats["messages"],
        most_per_recipient=stats["max_per_recipient"],
    )


def run_benchmark(
    sizes: list[int], naive: int, postgres: str | None = None, console: Any = None
) -> list[Measured]:
    """Every design at every size (naive once), on SQLite and, given its URL, PostgreSQL."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from integrations.simulator.server import SimulatorProcess

    console = console or Console(stderr=True)
    work = Path(tempfile.mkdtemp(prefix="scenarist-bench-"))
    server, api_url = start_prefect_server(work / "prefect")
    environment = {
        **os.environ,
        "PREFECT_API_URL": api_url,
        "PREFECT_HOME": str(work / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "WARNING",
    }
    databases = [("SQLite", None)] + ([("PostgreSQL", postgres)] if postgres else [])
    rows: list[Measured] = []
    columns = (BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with (
            SimulatorProcess() as simulator,
            Progress(*Progress.get_default_columns()[:1], *columns, console=console) as progress,
        ):
            credentials = simulator.sms_credentials()
            sinch = {
                "service_plan_id": credentials.service_plan_id,
                "api_token": credentials.api_token.get_secret_value(),
                "base_url": simulator.url,
            }
            for size in sizes:
                for database, url in databases:
                    for design in DESIGNS:
                        name = f"{design}, {database}, {size:,}"
                        with project(work, uuid.uuid4().hex, url, simulator.url) as folder:
                            if design == "floor":
                                arguments: list[Any] = [folder.database_url, sinch, size]
                            else:
                                task = progress.add_task(f"customers for {name}", total=size)
                                insert_customers(
                                    folder.database_url,
                                    size,
                                    lambda n, task=task: progress.advance(task, n),
                                )
                                arguments = [str(folder.settings), str(folder.scenario)]
                            result, stats = child(
                                design, name, arguments, environment, simulator, size, progress
                            )
                        rows.append(measure(design, database, size, result, stats))
            label = f"naive, {naive:,}"
            result, stats = child(
                "naive", label, [sinch, naive], environment, simulator, naive, progress
            )
            rows.append(measure("naive", "none", naive, result, stats))
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)
    return rows


def summary(rows: list[Measured]) -> dict[str, Any]:
    """The JSON line: the largest size's figures at the top, every size under `sizes`."""

    def rate(design: str, database: str, size: int) -> Measured:
        return next(
            r for r in rows if (r.design, r.database, r.customers) == (design, database, size)
        )

    naive = next(r for r in rows if r.design == "naive")
    sizes = sorted({r.customers for r in rows if r.design != "naive"})
    postgres = any(r.database == "PostgreSQL" for r in rows)

    def figures(database: str, size: int) -> dict[str, Any]:
        end = rate("end to end", database, size)
        floor = rate("floor", database, size)
        return {
            "customers": size,
            "msgs_per_s": round(end.msgs_per_s),
            "floor_msgs_per_s": round(floor.msgs_per_s),
            "runtime_msgs_per_s": round(rate("runtime, no Prefect", database, size).msgs_per_s),
            "peak_rss_mb": round(end.peak_rss_mb, 1),
            "of_floor": round(end.msgs_per_s / floor.msgs_per_s, 3),
        }

    by_size = []
    for size in sizes:
        entry = figures("SQLite", size)
        if postgres:
            entry["postgres"] = figures("PostgreSQL", size)
        by_size.append(entry)
    result = {
        **by_size[-1],
        "naive_msgs_per_s": round(naive.msgs_per_s, 1),
        "naive_sample": naive.customers,
        "of_naive": round(by_size[-1]["msgs_per_s"] / naive.msgs_per_s, 1),
        "sizes": by_size,
    }
    if len(sizes) > 1:
        # The memory target: the largest audience's peak RSS against the smallest's.
        growth = by_size[-1]["peak_rss_mb"] / by_size[0]["peak_rss_mb"] - 1
        result["peak_rss_growth"] = round(growth, 3)
    return result


def table(rows: list[Measured]) -> Any:
    from rich.table import Table

    floors = {(r.database, r.customers): r.msgs_per_s for r in rows if r.design == "floor"}
    naive = next(r.msgs_per_s for r in rows if r.design == "naive")
    result = Table(title="Launch throughput into the simulator, side by side in one run")
    headers = ("design", "database", "messages", "seconds", "messages/s", "of floor")
    for column in (*headers, "÷ naive", "peak RSS MB", "requests"):
        result.add_column(column, justify="left" if column in headers[:2] else "right")
    for r in rows:
        floor = floors.get((r.database, r.customers))
        result.add_row(
            r.design,
            r.database,
            f"{r.customers:,}",
            f"{r.seconds:.1f}",
            f"{r.msgs_per_s:,.0f}",
            "" if floor is None else f"{r.msgs_per_s / floor:.0%}",
            f"{r.msgs_per_s / naive:,.0f}x",
            f"{r.peak_rss_mb:.0f}",
            f"{r.requests:,}",
        )
    return result


def markdown(rows: list[Measured], command: str) -> str:
    """The results as a Markdown section: the command, the machine, its load, the table."""
    with open("/proc/loadavg") as handle:
        load = " ".join(handle.read().split()[:3])
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
        f"Python {platform.python_version()}, {platform.system()}"
    )
    floors = {(r.database, r.customers): r.msgs_per_s for r in rows if r.design == "floor"}
    naive = next(r.msgs_per_s for r in rows if r.design == "naive")
    lines = [
        f"`{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — {machine}; load average "
        f"(1, 5, 15 min) at the end: {load}.",
        "",
        "| design | database | messages | seconds | messages/s | of floor | ÷ naive "
        "| peak RSS MB | provider requests |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        floor = floors.get((r.database, r.customers))
        lines.append(
            f"| {r.design} | {r.database} | {r.customers:,} | {r.seconds:.1f} | "
            f"{r.msgs_per_s:,.0f} | {'' if floor is None else f'{r.msgs_per_s / floor:.0%}'} | "
            f"{r.msgs_per_s / naive:,.0f}x | {r.peak_rss_mb:.0f} | {r.requests:,} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> list[Measured]:
    from rich.console import Console

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1_000_000, help="audience size")
    parser.add_argument(
        "--sizes", help="several audience sizes, comma-separated (e.g. 100000,1000000)"
    )
    parser.add_argument("--naive", type=int, default=2000, help="the naive design's sample")
    parser.add_argument("--postgres", help="a PostgreSQL URL: run the same there beside SQLite")
    parser.add_argument("--results", type=Path, help="also write the table here, as Markdown")
    args = parser.parse_args(argv)
    try:
        sizes = sorted(int(s) for s in args.sizes.split(",")) if args.sizes else [args.customers]
    except ValueError:
        parser.error(f"--sizes {args.sizes!r}: whole numbers separated by commas")
    if min(sizes) < 1 or args.naive < 1:
        parser.error("--customers, --sizes and --naive must be at least 1")

    console = Console()
    if not console.is_terminal:
        console = Console(width=120)  # a file or pipe: the table's full width, not 80
    rows = run_benchmark(sizes, args.naive, args.postgres, Console(stderr=True))
    console.print(table(rows))
    if args.results:
        command = " ".join(["python bench/launch.py", *(sys.argv[1:] if argv is None else argv)])
        args.results.write_text(markdown(rows, command))
    print(json.dumps(summary(rows)))
    return rows


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        print(json.dumps(CHILDREN[sys.argv[2]](*json.loads(sys.argv[3]))))
    else:
        main()
