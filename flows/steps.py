"""The one Prefect task: a node step on one batch.

Every node step runs as a task run named `<node>.<step> #<batch>`, so the Prefect UI shows
each node's batches with their counts. Arguments are passed `quote`d: Prefect then does not
walk a thousand customers (or the compiled scenario) looking for upstream futures.
"""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.utilities.annotations import quote

from engine.runtime import NodeContext
from nodes.base import JourneyItem, NodeConfig, Step, StepResult


@task(name="node-step", cache_policy=NO_CACHE, persist_result=False)
def node_step(
    ctx: NodeContext, node: NodeConfig, step: Step, items: list[JourneyItem]
) -> StepResult:
    result = step.run(ctx, items)
    get_run_logger().info(
        "%s.%s: %d in, %d decided, %d go on",
        node.id,
        step.name,
        len(items),
        len(result.moves),
        len(result.live),
    )
    return result


def run_step_as_task(
    ctx: NodeContext, node: NodeConfig, step: Step, items: list[JourneyItem], batch: int
) -> StepResult:
    """The runtime's StepRunner inside a flow: one task run per node step and batch."""
    named = node_step.with_options(task_run_name=f"{node.id}.{step.name} #{batch}")
    return named(quote(ctx), quote(node), quote(step), quote(items))
