"""Tick flows: wake the due journeys of every running scenario.

`tick` is the deployment that runs on an interval (prefect.yaml); it runs `scenario_tick`
once per running scenario, one flow run each. A scheduled scenario's own deployment runs
`scenario_tick` for that scenario at its cron times.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from engine.inbound import send_abandoned_replies
from engine.reports import scenario_reports
from engine.runtime import tick_scenario, utc_now
from flows.batches import run_batch_as_task
from flows.project import project_runtime


@flow(name="scenario-tick", flow_run_name="tick-{scenario_id}")
def scenario_tick(scenario_id: str, settings_file: str | None = None) -> dict:
    """One tick of one scenario: enrol fired triggers, move every due journey."""
    runtime = project_runtime(settings_file)
    summary = tick_scenario(runtime, scenario_id, run_batch_as_task)
    logger = get_run_logger()
    logger.info("%s: %d enrolled, %d moves", scenario_id, summary.enrolled, summary.processed)
    for (node_id, reason), count in sorted(summary.reasons.items()):
        logger.info("  %s %s: %d", node_id, reason, count)
    if summary.processed or summary.enrolled:
        create_markdown_artifact(
            key=_artifact_key(scenario_id),
            markdown="\n\n".join(
                r.markdown() for r in scenario_reports(runtime.store, scenario_id)
            ),
            description=f"Evaluation of scenario {scenario_id}",
        )
    return {"enrolled": summary.enrolled, "moves": summary.processed}


@flow(name="scenarist-tick")
def tick(settings_file: str | None = None) -> dict[str, dict]:
    """Tick every running scenario once, then send keyword replies a stopped webhook
    process left unsent."""
    runtime = project_runtime(settings_file)
    results = {
        record.id: scenario_tick(record.id, settings_file)
        for record in runtime.store.scenarios.records(status="running")
    }
    abandoned = send_abandoned_replies(runtime.store, runtime.gateways, runtime.settings, utc_now())
    if abandoned:
        get_run_logger().info("sent %d keyword replies a stopped process left", abandoned)
    return results


def _artifact_key(scenario_id: str) -> str:
    # Artifact keys allow lowercase letters, digits and dashes only.
    cleaned = "".join(c if c.isalnum() else "-" for c in scenario_id.lower())
    return f"evaluation-{cleaned}"
