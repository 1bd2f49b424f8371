"""The node types a scenario can use, by the `type` name scenario files give.

Adding a node type is one new file in this folder plus one line here; a test fails when a
module in `nodes/` is not registered.
"""

from nodes.base import NodeConfig
from nodes.condition import ConditionNode
from nodes.mms import MmsNode
from nodes.silent_hours import SilentHoursNode
from nodes.sms import SmsNode
from nodes.trigger import TriggerNode
from nodes.wait import WaitNode

NODE_TYPES: dict[str, type[NodeConfig]] = {
    "trigger": TriggerNode,
    "wait": WaitNode,
    "silent_hours": SilentHoursNode,
    "condition": ConditionNode,
    "sms": SmsNode,
    "mms": MmsNode,
}
