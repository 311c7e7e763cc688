"""The policy engine: YAML + CEL policies that allow, rewrite or deny tool calls."""

from mcpfence.policy.decision import Decision, Mutation, ToolCall, Violation, denial_result
from mcpfence.policy.engine import PolicySet
from mcpfence.policy.loader import load_policy_set
from mcpfence.policy.opaque import TokenMemory, harvest

__all__ = [
    "Decision",
    "Mutation",
    "PolicySet",
    "TokenMemory",
    "ToolCall",
    "Violation",
    "denial_result",
    "harvest",
    "load_policy_set",
]
