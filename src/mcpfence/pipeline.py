"""The message pipeline: every JSON-RPC message crosses the same ordered addons.

Modelled on mitmproxy's addon layering. The transport turns each client request
into a :class:`Flow` and calls :meth:`Pipeline.request`; an addon may rewrite the
request or answer it locally by setting ``flow.response``, which stops the
request from being forwarded. When the answer is known (from upstream, from an
addon, or an error), :meth:`Pipeline.response` runs the addons in reverse order,
like nested middleware, so the first addon (telemetry) sees the final answer.
Messages the upstream sends on its own (notifications, server-to-client
requests) pass :meth:`Pipeline.server_message`.

The transport never knows what the addons do; the addons never know which
transport carried the message. Data flows one way: transport → pipeline → addons.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from mcpfence.jsonrpc import Message


@dataclass
class Context:
    """What is known about the HTTP exchange a message arrived in."""

    route: str
    session_id: str = ""
    client_id: str = ""
    protocol_version: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Flow:
    """One client request on its way through mcpfence, and its answer."""

    context: Context
    request: Message
    response: Message | None = None
    # Set when the upstream could not answer (unreachable, timeout, bad reply).
    error: str | None = None
    started: float = field(default_factory=time.perf_counter)
    # Per-flow notes addons leave for each other (decision, span, ...).
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def method(self) -> str:
        return str(self.request.get("method", ""))

    @property
    def params(self) -> dict[str, Any]:
        params = self.request.get("params")
        return params if isinstance(params, dict) else {}

    @property
    def answered_locally(self) -> bool:
        return self.notes.get("local", False) is True

    def reply(self, response: Message) -> None:
        """Answer the request without forwarding it."""
        self.response = response
        self.notes["local"] = True


class Addon(Protocol):
    """A pipeline stage. Hooks are synchronous: they run on every call."""

    def request(self, flow: Flow) -> None: ...

    def response(self, flow: Flow) -> None: ...

    def server_message(self, context: Context, message: Message) -> Message: ...


class BaseAddon:
    """Hooks that do nothing, so an addon defines only what it needs."""

    def request(self, flow: Flow) -> None:
        return None

    def response(self, flow: Flow) -> None:
        return None

    def server_message(self, context: Context, message: Message) -> Message:
        return message


class Pipeline:
    """The ordered addons of one route."""

    def __init__(self, addons: Sequence[Addon] = ()) -> None:
        self.addons = list(addons)
        self._reversed = list(reversed(self.addons))

    def request(self, flow: Flow) -> None:
        for addon in self.addons:
            addon.request(flow)
            if flow.response is not None:
                return

    def response(self, flow: Flow) -> None:
        for addon in self._reversed:
            addon.response(flow)

    def server_message(self, context: Context, message: Message) -> Message:
        for addon in self._reversed:
            message = addon.server_message(context, message)
        return message
