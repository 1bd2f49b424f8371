"""Test sends (`scenarist send-test`): one message node, one customer, the real send path.

The message is composed for a real customer (or sent to another phone with that
customer's data), dispatched through the node's integration exactly as a campaign send
is, and tracked as a campaign event marked `test`. Test sends skip consent, frequency
policy and silent hours, and are never counted by the frequency policy or the evaluation.
Its short links are real (they redirect and track), marked `test` like the send.
"""

from __future__ import annotations

import uuid
from typing import Any

from engine.errors import InputError
from engine.phones import normalize_phone, phone_region
from engine.preview import customer_item
from engine.runtime import Runtime, utc_now
from engine.scenario import Scenario
from engine.store import CustomerRow
from nodes.messaging import MessageNode


def send_test(
    runtime: Runtime,
    scenario: Scenario,
    node_id: str,
    customer: CustomerRow,
    to: str | None = None,
    event: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Send node `node_id` to `customer` (or to `to`); returns its campaign event."""
    node = scenario.nodes.get(node_id)
    if not isinstance(node, MessageNode):
        nodes = ", ".join(n for n, v in scenario.nodes.items() if isinstance(v, MessageNode))
        raise InputError(f"'{node_id}' is not a message node of {scenario.id} ({nodes})")
    item = customer_item(customer, event or {}, f"test:{uuid.uuid4().hex}")
    item.version = scenario.version
    item.notes["test"] = True
    if to is not None:
        item.phone = normalize_phone(to)
        item.region = phone_region(item.phone)
    ctx = runtime.context(scenario, utc_now())
    for step in (node.render, node.send, node.track):
        step(ctx, [item])
    tracked = runtime.store.evaluation.campaign_event_for(node.send_key(ctx, item))
    assert tracked is not None, "the track step records every test send"
    return tracked
