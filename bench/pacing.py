"""Benchmark: does each integration pace at its configured rate, with no 429 answered?

    .venv/bin/python bench/pacing.py          # writes bench/PACING.md

For each provider API the simulator plays, the real gateway (client, token bucket,
retries) sends a stream of requests to a simulator that enforces the same rate limit on
its side and refuses what exceeds it with that provider's 429. The simulator logs when
each accepted request arrived; the measured rate is the recipients that arrived after the
initial burst divided by the time they took. A pass is within 5% of the configured rate
with no request refused.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

# (API, messages per second, messages sent, recipients per request)
RUNS = [
    ("sinch_sms", 2000.0, 20_000, 1000),
    ("infobip_sms", 2000.0, 20_000, 1000),
    ("infobip_mms", 500.0, 5_000, 100),
    ("sinch_mms", 100.0, 1_000, 1),
    ("sinch_conversation", 100.0, 1_000, 1),
]


def measured_rate(arrivals: list[tuple[float, int]], burst: float) -> float:
    """Recipients per second once the bucket's initial burst is spent."""
    sent, first = 0, len(arrivals)
    for position, (_, recipients) in enumerate(arrivals):
        sent += recipients
        if sent >= burst:
            first = position
            break
    later = arrivals[first:]
    if len(later) < 2:
        return float("nan")
    seconds = later[-1][0] - later[0][0]
    return sum(recipients for _, recipients in later[1:]) / seconds


def run(api: str, rate: float, count: int, per_request: int, simulator) -> dict:
    from engine.settings import Settings
    from integrations.gateways import open_gateway
    from integrations.simulator.config import SimulatorConfig

    simulator.set_config(SimulatorConfig(rate_limit_per_second=rate))
    simulator.reset()
    settings = Settings.model_validate(
        {
            "integrations": {
                "simulator": {"type": "simulator", "url": simulator.url},
                "paced": {
                    "type": "simulator",
                    "url": simulator.url,
                    "api": api,
                    "rate_limit": rate,
                },
            },
        }
    )
    gateway = open_gateway(settings, "paced")
    mms = api in ("infobip_mms", "sinch_mms", "sinch_conversation")
    for start in range(0, count, per_request):
        numbers = [f"+1202{2_000_000 + n:07d}" for n in range(start, start + per_request)]
        payload = {
            "sender": "+12025550100",
            "body": "Pacing test",
            "recipients": numbers,
            "send_keys": [f"pacing/{api}/{n}" for n in range(start, start + per_request)],
            "parameters": None,
        }
        if mms:
            payload.update(
                subject="Pacing",
                media_url="https://cdn.example.com/a.jpg",
                media_type="image/jpeg",
                fallback_text="Pacing test",
                fallback_disabled=False,
            )
        gateway.send(f"pacing-{api}-{start}", payload)
    gateway.close()
    stats = simulator.stats()
    rate_measured = measured_rate(simulator.arrivals(), burst=rate)
    return {
        "api": api,
        "rate": rate,
        "measured": rate_measured,
        "deviation": (rate_measured - rate) / rate * 100,
        "refused": stats["faults"].get("rate_limited", 0),
        "messages": stats["messages"],
    }


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    from integrations.simulator.server import SimulatorProcess

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", type=Path, default=REPOSITORY / "bench" / "PACING.md")
    args = parser.parse_args()
    console = Console()
    results = []
    with SimulatorProcess() as simulator:
        for api, rate, count, per_request in RUNS:
            console.print(f"{api}: {count:,} messages at {rate:,.0f}/s ...")
            results.append(run(api, rate, count, per_request, simulator))

    table = Table(title="Pacing against a simulator enforcing the same limit")
    for column in ("API", "configured/s", "measured/s", "deviation", "429 answered", "verdict"):
        table.add_column(column, justify="left" if column == "API" else "right")
    lines = [
        "# Pacing results",
        "",
        f"`python bench/pacing.py` on {datetime.now(UTC):%Y-%m-%d} — {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}; the real gateways "
        "against the simulator over loopback, which refuses with a 429 whatever exceeds "
        "the same rate (every recipient counting).",
        "",
        "| API | configured msg/s | measured msg/s | deviation | 429 answered | verdict |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in results:
        verdict = "pass" if abs(r["deviation"]) <= 5 and r["refused"] == 0 else "FAIL"
        row = (
            r["api"],
            f"{r['rate']:,.0f}",
            f"{r['measured']:,.0f}",
            f"{r['deviation']:+.1f}%",
            str(r["refused"]),
            verdict,
        )
        table.add_row(*row)
        lines.append("| " + " | ".join(row) + " |")
    console.print(table)
    lines.append("")
    args.results.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
