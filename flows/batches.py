"""The one Prefect task: a node batch.

Every batch of customers at a node runs as one task run named `<node> #<batch>`
(`welcome #1`), so the Prefect UI shows each node's batches. The task logs the batch's
outcome counts by reason once and returns only those counts: nothing per customer goes
to Prefect. Arguments are passed `quote`d, so Prefect does not walk thousands of
customers (or the compiled scenario) looking for upstream futures.
"""

from __future__ import annotations

from collections import Counter

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.utilities.annotations import quote

from engine.runtime import NodeBatch


@task(name="node-batch", cache_policy=NO_CACHE, persist_result=False)
def node_batch(batch: NodeBatch) -> dict[str, int]:
    reasons = batch.run()
    counts = ", ".join(f"{reason} {count}" for reason, count in sorted(reasons.items()))
    get_run_logger().info("%s: %d customers: %s", batch.name, len(batch.items), counts)
    return dict(reasons)


def run_batch_as_task(batch: NodeBatch) -> Counter[str]:
    """The runtime's BatchRunner inside a flow: one task run per node batch."""
    return Counter(node_batch.with_options(task_run_name=batch.name)(quote(batch)))
