"""The launch flow: validate a scenario file again, register it, enrol, run the first tick."""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from engine.runtime import launch, utc_now
from engine.scenario import load_scenario
from flows.project import project_runtime
from flows.tick import scenario_tick


@task(name="enrol", cache_policy=NO_CACHE, persist_result=False)
def enrol(scenario_file: str, settings_file: str | None) -> str:
    runtime = project_runtime(settings_file)
    # Validation happens again here: nothing runs from an invalid file.
    at = utc_now()
    scenario = load_scenario(scenario_file, runtime.settings, at)
    started = launch(runtime, scenario, at)
    get_run_logger().info(
        "%s version %s: %d customers enrolled", scenario.id, scenario.version, started
    )
    return scenario.id


@flow(name="scenarist-launch", flow_run_name="launch-{scenario_file}")
def launch_scenario(scenario_file: str, settings_file: str | None = None) -> dict:
    """Launch a scenario file and move its customers until nothing is due now."""
    scenario_id = enrol(scenario_file, settings_file)
    return {"scenario_id": scenario_id, **scenario_tick(scenario_id, settings_file)}
