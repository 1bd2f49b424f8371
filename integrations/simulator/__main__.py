"""`python -m integrations.simulator [--host H] [--port P] [--config config.json]`."""

from __future__ import annotations

import argparse
from pathlib import Path

from pydantic import ValidationError

from integrations.simulator.config import SimulatorConfig
from integrations.simulator.server import run_simulator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m integrations.simulator",
        description="Local Sinch (SMS, MMS, Conversation) and Infobip (SMS, MMS) API simulator",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--config",
        type=Path,
        help="JSON file with SimulatorConfig fields (faults, plans, Infobip keys)",
    )
    args = parser.parse_args(argv)
    config = SimulatorConfig()
    if args.config:
        try:
            config = SimulatorConfig.model_validate_json(args.config.read_text())
        except (OSError, ValidationError) as exc:
            parser.error(f"{args.config}: {exc}")
    run_simulator(args.host, args.port, config)


if __name__ == "__main__":
    main()
