"""Building policy documents and calls for the policy tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mcpfence.policy import ToolCall

DATA = Path(__file__).parent / "data"


def policy(name: str, tools: tuple[str, ...] = ("send",), **spec: Any) -> dict[str, Any]:
    """A ToolPolicy document matching ``tools``, with the rest of ``spec`` as given."""
    match = {"tools": list(tools), **spec.pop("match", {})}
    return {
        "apiVersion": "mcpfence/v1",
        "kind": "ToolPolicy",
        "metadata": {"name": name},
        "spec": {"match": match, **spec},
    }


def call(args: dict[str, Any], tool: str = "send", route: str = "mail", **context: Any) -> ToolCall:
    return ToolCall(route=route, tool=tool, args=args, **context)
