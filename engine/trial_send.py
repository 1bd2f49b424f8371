"""Test sends (`scenarist send-test`): one message node, one customer, the real send path.

The message is composed for a real customer (or sent to another phone with that
customer's data), dispatched through the node's integration exactly as a campaign send
is, and tracked as a campaign event marked `test`. Test sends skip consent, frequency
policy and silent hours, and are never counted by the frequency policy or the evaluation.
Its short links are real (they redirect and track), marked `test` like the send.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from engine.errors import InputError
from engine.phones import normalize_phone, phone_region
from engine.preview import customer_item
from engine.runtime import Runtime, utc_now
from engine.scenario import Scenario
from engine.sending import deliver, send_key
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
    item = replace(
        customer_item(customer, event or {}, f"test:{uuid.uuid4().hex}"), version=scenario.version
    )
    if to is not None:
        phone = normalize_phone(to)
        item = replace(item, phone=phone, region=phone_region(phone))
    deliver(runtime.context(scenario, utc_now()), node, [item], test=True)
    tracked = runtime.store.evaluation.campaign_event_for(send_key(scenario.id, node.id, item))
    assert tracked is not None, "every answered test send is tracked with its answer"
    return tracked
