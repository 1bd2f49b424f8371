"""The project a flow run works on: settings and runtime, opened once per process.

Deployments pass the settings file path as a parameter; every flow run in one process
shares one Runtime, so each integration keeps one queue and one rate limit.
"""

from __future__ import annotations

from pathlib import Path

from engine.runtime import Runtime
from engine.settings import load_settings

_runtimes: dict[str, Runtime] = {}


def project_runtime(settings_file: str | None = None) -> Runtime:
    key = str(Path(settings_file).resolve()) if settings_file else ""
    if key not in _runtimes:
        _runtimes[key] = Runtime(load_settings(settings_file))
    return _runtimes[key]


def close_runtimes() -> None:
    for runtime in _runtimes.values():
        runtime.close()
    _runtimes.clear()
