"""The node registry's contract: every node type is registered, documented, round-trips
its YAML config, and decides only branches it declares."""

from __future__ import annotations

import pkgutil
from datetime import UTC, datetime, timedelta

import pytest

import nodes
from engine.runtime import NodeContext
from nodes import NODE_TYPES
from nodes.base import JourneyItem, NodeConfig
from tests.conftest import project_settings

EXAMPLES = {
    "trigger": {"id": "start", "type": "trigger", "kind": "launch"},
    "wait": {"id": "later", "type": "wait", "duration": "2h"},
    "silent_hours": {"id": "quiet", "type": "silent_hours", "start": "21:00", "end": "08:00"},
    "condition": {"id": "vip", "type": "condition", "expression": "customer.vip"},
    "sms": {"id": "hello", "type": "sms", "text": "Hi {{ customer.first_name }}"},
    "mms": {
        "id": "promo",
        "type": "mms",
        "subject": "Summer sale",
        "text": "Hi {{ customer.first_name }}",
        "media_url": "https://cdn.example.com/sale.jpg",
        "fallback": {"text": "Summer sale: https://example.com/sale"},
    },
}
NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)  # 22:00 in New York


def test_every_module_in_nodes_is_registered():
    # base and messaging hold what node types share; every other module is a node type.
    modules = {m.name for m in pkgutil.iter_modules(nodes.__path__)} - {"base", "messaging"}
    registered = {cls.__module__.removeprefix("nodes.") for cls in NODE_TYPES.values()}
    assert modules == registered
    assert set(EXAMPLES) == set(NODE_TYPES), "add an example for the new node type"


@pytest.mark.parametrize("type_name", sorted(NODE_TYPES))
def test_node_types_are_documented_and_round_trip(type_name):
    model = NODE_TYPES[type_name]
    assert issubclass(model, NodeConfig)
    assert model.__doc__ and model.__doc__.strip()
    node = model.model_validate(EXAMPLES[type_name])
    assert model.model_validate(node.model_dump()) == node
    assert type(node).run is not NodeConfig.run, "a node type decides its batch in `run`"
    assert node.outputs and node.problems(project_settings()) == []


def item(**attributes) -> JourneyItem:
    return JourneyItem(1, "c1", "launch", "v1", attributes, {}, "+12025550001", "America/New_York")


# Nodes that need no store or provider, run on one customer each.
@pytest.mark.parametrize(
    ("type_name", "attributes", "output", "due"),
    [
        ("wait", {}, "next", NOW + timedelta(hours=2)),  # waits two hours
        ("silent_hours", {}, "next", datetime(2026, 11, 24, 13, 0, tzinfo=UTC)),  # 08:00 EST
        ("condition", {"vip": True}, "true", None),
        ("condition", {"vip": False}, "false", None),
    ],
)
def test_nodes_decide_declared_branches(type_name, attributes, output, due):
    node = NODE_TYPES[type_name].model_validate(EXAMPLES[type_name])
    ctx = NodeContext(project_settings(), None, None, NOW, None)  # type: ignore[arg-type]
    customer = item(**attributes)
    [move] = node.run(ctx, [customer])
    assert move.item is customer
    assert move.output in node.outputs
    assert (move.output, move.due_at) == (output, due)
