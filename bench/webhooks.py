"""Benchmark: delivery reports into the webhook server, from another process, none lost.

    .venv/bin/python bench/webhooks.py --reports 50000     # writes bench/WEBHOOKS.md

A fresh SQLite project holds N enqueued sends (with their enqueue campaign events). The
webhook server runs in its own process (uvicorn); this process posts one delivered
report per send in Infobip's webhook format (100 results a request, as Infobip does) from
several concurrent connections over loopback, waits until every report is applied, and
checks that each became exactly one delivered campaign event.

Side by side in the same run, a naive server (`NAIVE_SERVER`: per report, one
transaction that looks the send up and appends its event, as a first version would) on a
fresh copy of the same project, for the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

SERVER = """
import sys
import uvicorn
from engine.settings import load_settings
from engine.store import Store
from engine.webhooks import check_exposure, create_webhook_app
settings = load_settings(sys.argv[1])
app = create_webhook_app(settings, Store(settings.database_url))
check_exposure(app, "127.0.0.1")
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
"""
NAIVE_SERVER = """
import sys
from datetime import UTC, datetime
import uvicorn
from fastapi import FastAPI, Request
from sqlalchemy import select, update
from engine.settings import load_settings
from engine.store import Store
from engine.store.tables import CAMPAIGN_EVENTS, SENDS
settings = load_settings(sys.argv[1])
store = Store(settings.database_url)
app = FastAPI()

@app.post("/webhooks/infobip_sms")
def receive(body: dict) -> dict:
    for result in body["results"]:
        with store.engine.begin() as connection:
            send = connection.execute(
                select(SENDS).where(SENDS.c.key == result["messageId"])
            ).mappings().first()
            if send is None or send["delivery_status"] is not None:
                continue
            enqueued = connection.execute(
                select(CAMPAIGN_EVENTS).where(CAMPAIGN_EVENTS.c.send_key == send["key"])
            ).mappings().first()
            status = result["status"]["groupName"].lower()
            connection.execute(
                update(SENDS).where(SENDS.c.key == send["key"]).values(delivery_status=status)
            )
            connection.execute(
                CAMPAIGN_EVENTS.insert().values(
                    name="campaign", customer_id=send["customer_id"], scenario_id="bench",
                    status=status, timestamp=datetime.now(UTC),
                    properties={**enqueued["properties"], "status": status},
                )
            )
    return {"received": len(body["results"])}

@app.get("/health")
def health() -> dict:
    return {"status": "ok"}

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
"""
DESIGNS = {
    "engine (one writer: stored and applied in batches)": SERVER,
    "naive (one transaction per report)": NAIVE_SERVER,
}


def prepare(folder: Path, count: int) -> Path:
    """Settings and a database with `count` enqueued, tracked sends."""
    import yaml

    from engine.store import Store

    settings = {"database_url": f"sqlite:///{folder / 'webhooks.db'}"}
    path = folder / "scenarist.yaml"
    path.write_text(yaml.safe_dump(settings))
    store = Store(settings["database_url"])
    now = datetime.now(UTC)
    for start in range(0, count, 5000):
        numbers = range(start, min(count, start + 5000))
        store.sends.record(
            [
                {
                    "key": f"send-{n}",
                    "scenario_id": "bench",
                    "node_id": "offer",
                    "customer_id": f"c{n}",
                    "journey_id": n,
                    "phone": f"+1202{2_000_000 + n:07d}",
                    "state": "enqueued",
                    "parts": 1,
                    "tracked": False,
                    "created_at": now,
                }
                for n in numbers
            ]
        )
        store.sends.track(
            [
                {
                    "name": "campaign",
                    "customer_id": f"c{n}",
                    "scenario_id": "bench",
                    "status": "enqueued",
                    "send_key": f"send-{n}",
                    "timestamp": now,
                    "properties": {"action_type": "sms", "status": "enqueued"},
                }
                for n in numbers
            ]
        )
    store.close()
    return path


def infobip_results(numbers: range) -> dict:
    done = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    return {
        "results": [
            {
                "bulkId": "bench",
                "messageId": f"send-{n}",
                "to": f"1202{2_000_000 + n:07d}",
                "sender": "InfoSMS",
                "sentAt": done,
                "doneAt": done,
                "messageCount": 1,
                "status": {
                    "groupId": 3,
                    "groupName": "DELIVERED",
                    "id": 5,
                    "name": "DELIVERED_TO_HANDSET",
                    "description": "Delivered",
                },
                "error": {
                    "groupId": 0,
                    "groupName": "OK",
                    "id": 0,
                    "name": "NO_ERROR",
                    "description": "No Error",
                    "permanent": False,
                },
            }
            for n in numbers
        ]
    }


async def post_all(url: str, count: int, connections: int) -> tuple[float, int]:
    bodies = [infobip_results(range(s, min(count, s + 100))) for s in range(0, count, 100)]
    queue: asyncio.Queue = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    failures = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal failures
        while not queue.empty():
            body = queue.get_nowait()
            response = await client.post(url, json=body)
            if response.status_code != 200:
                failures += 1

    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(connections)))
    return time.perf_counter() - started, failures


def delivered_events(settings_path: Path) -> int:
    from engine.settings import load_settings
    from engine.store import Store

    store = Store(load_settings(settings_path).database_url)
    try:
        counts = {status: n for _t, status, n in store.evaluation.event_counts("bench")}
        return counts.get("delivered", 0)
    finally:
        store.close()


def measure(server_code: str, count: int, connections: int) -> dict:
    """Post `count` reports at one server; time until accepted and until all applied."""
    from integrations.simulator.server import free_port

    folder = Path(tempfile.mkdtemp(prefix="scenarist-webhooks-"))
    settings_path = prepare(folder, count)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", server_code, str(settings_path), str(port)],
        cwd=REPOSITORY,
        env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        url = f"http://127.0.0.1:{port}/webhooks/infobip_sms"
        started = time.perf_counter()
        accepted, failures = asyncio.run(post_all(url, count, connections))
        # Accepted is not applied: wait (a minute at most) until every report is an event.
        delivered, patience = 0, time.monotonic() + 60
        while (delivered := delivered_events(settings_path)) < count:
            if time.monotonic() > patience:
                break
            time.sleep(0.1)
        applied = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait()
    return {
        "accepted": accepted,
        "applied": applied,
        "failures": failures,
        "delivered": delivered,
        "lost": count - delivered,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reports", type=int, default=50_000)
    parser.add_argument("--naive", type=int, default=5_000, help="reports for the naive server")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--results", type=Path, default=REPOSITORY / "bench" / "WEBHOOKS.md")
    args = parser.parse_args()

    rows = []
    for (design, code), count in zip(DESIGNS.items(), (args.reports, args.naive), strict=True):
        result = measure(code, count, args.connections)
        print(design, result)
        rows.append(
            f"| {design} | {count:,} | {result['accepted']:.1f} | "
            f"{count / result['accepted']:,.0f} | {count / result['applied']:,.0f} | "
            f"{result['failures']} | {result['delivered']:,} | {result['lost']} |"
        )
    args.results.write_text(
        "\n".join(
            [
                "# Webhook ingestion results",
                "",
                f"`python bench/webhooks.py {' '.join(sys.argv[1:])}` on "
                f"{datetime.now(UTC):%Y-%m-%d} — {platform.machine()}, {os.cpu_count()} cores, "
                f"Python {platform.python_version()}, SQLite; each server in its own "
                f"process, {args.connections} connections posting Infobip delivery reports "
                "(100 per request) over loopback from this one.",
                "",
                "*accepted*: reports/s answered 200 (stored); *applied*: reports/s until the "
                "last became its campaign event.",
                "",
                "| design | reports | seconds to accept | accepted/s | applied/s "
                "| refused requests | delivered events | lost |",
                "|---|---:|---:|---:|---:|---:|---:|---:|",
                *rows,
                "",
            ]
        )
    )


if __name__ == "__main__":
    main()
