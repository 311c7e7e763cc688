"""The ``tools/call`` request, parsed once: the tool it names and the arguments it sends.

Every check that reads a call (rate limits, ``Mcp-Param-*`` headers, exposure,
policy, telemetry) reads this, so a malformed call is judged the same way
everywhere: no string ``params.name`` is no tool call at all; a ``params.arguments``
that is not an object leaves :attr:`ToolCallRequest.arguments` None (omitted is
``{}``), which the policy addon answers with -32602.
"""

from __future__ import annotations

from typing import NamedTuple

from mcpfence.jsonrpc import Message


class ToolCallRequest(NamedTuple):
    """A ``tools/call`` as the client sent it (a named tuple: one is built per call, and
    a frozen dataclass's ``__init__`` costs half as much again)."""

    name: str
    # None when the client sent arguments that are not a JSON object.
    arguments: dict[str, object] | None


def parse_tool_call(message: Message) -> ToolCallRequest | None:
    """The call ``message`` makes; None unless it is a ``tools/call`` naming a tool."""
    if message.get("method") != "tools/call":
        return None
    params = message.get("params")
    if not isinstance(params, dict):
        return None
    name, arguments = params.get("name"), params.get("arguments", {})
    if not isinstance(name, str):
        return None
    return ToolCallRequest(name, arguments if isinstance(arguments, dict) else None)
