"""The CEL roots a policy expression can read, declared once, and their values for one call.

Each root says who binds it (the call's context, the engine's current arguments, or
the policy itself) and its CEL type, so adding a root is one entry in :data:`ROOTS`:
the environment (``expressions.py``), the load-time scan and the engine all read this
table. The time is not read here but asked of a :data:`Clock`, so ``mcpfence test``
and ``mcpfence explain --now`` can fix it (see docs/reference/policies.md#what-expressions-can-see).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, TypedDict

from mcpfence.policy.decision import ToolCall

Clock = Callable[[], datetime.datetime]
Binder = Literal["context", "args", "policy"]


class ToolRoot(TypedDict):
    name: str
    annotations: dict[str, object]
    inputSchema: dict[str, object]


class RouteRoot(TypedDict):
    name: str


class SessionRoot(TypedDict):
    id: str
    calls: list[dict[str, object]]


class ClientRoot(TypedDict):
    id: str


RootValue = ToolRoot | RouteRoot | SessionRoot | ClientRoot | datetime.datetime


def system_clock() -> datetime.datetime:
    """The wall clock, in UTC: what the proxy uses."""
    return datetime.datetime.now(datetime.UTC)


def clock_at(moment: datetime.datetime | None) -> Clock:
    """A clock stopped at ``moment`` (policy tests, ``explain --now``); the wall clock for None."""
    return system_clock if moment is None else lambda: moment


def _tool(call: ToolCall, _: Clock) -> ToolRoot:
    schema = call.input_schema
    return {
        "name": call.tool,
        "annotations": dict(call.annotations),
        "inputSchema": dict(schema.schema) if schema is not None else {},
    }


def _route(call: ToolCall, _: Clock) -> RouteRoot:
    return {"name": call.route}


def _session(call: ToolCall, _: Clock) -> SessionRoot:
    return {"id": call.session_id, "calls": [dict(c) for c in call.session_calls]}


def _client(call: ToolCall, _: Clock) -> ClientRoot:
    return {"id": call.client_id}


def _now(_: ToolCall, clock: Clock) -> datetime.datetime:
    return clock()


@dataclass(frozen=True)
class Root:
    """One root variable: its CEL type (``map`` of string to dyn, or ``timestamp``),
    who binds it, and for context roots how its value is made from the call."""

    name: str
    binder: Binder
    cel_type: Literal["map", "timestamp"] = "map"
    value: Callable[[ToolCall, Clock], RootValue] | None = None


ROOTS: dict[str, Root] = {
    root.name: root
    for root in (
        Root("tool", "context", value=_tool),
        Root("args", "args"),
        Root("route", "context", value=_route),
        Root("session", "context", value=_session),
        Root("client", "context", value=_client),
        Root("params", "policy"),
        Root("variables", "policy"),
        Root("now", "context", "timestamp", _now),
    )
}
CONTEXT_ROOTS = frozenset(name for name, root in ROOTS.items() if root.binder == "context")
POLICY_ROOTS = frozenset(name for name, root in ROOTS.items() if root.binder == "policy")


class EvalContext:
    """The context roots of one call, each made on first use (most policies read only
    ``args``, and ``session.calls`` can be long)."""

    __slots__ = ("_call", "_clock", "_values")

    def __init__(self, call: ToolCall, clock: Clock = system_clock) -> None:
        self._call = call
        self._clock = clock
        self._values: dict[str, RootValue] = {}

    def bind(self, roots: frozenset[str], args: Mapping[str, object]) -> dict[str, object]:
        """The variables an expression set reads (binding costs per variable)."""
        data: dict[str, object] = {name: self.value(name) for name in roots & CONTEXT_ROOTS}
        data["args"] = args
        return data

    def value(self, name: str) -> RootValue:
        """The value of context root ``name`` for this call."""
        if name not in self._values:
            make = ROOTS[name].value
            assert make is not None, f"{name} is not bound from the call's context"
            self._values[name] = make(self._call, self._clock)
        return self._values[name]
