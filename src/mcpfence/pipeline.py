"""The message pipeline: every JSON-RPC message crosses the same ordered addons.

Modelled on mitmproxy's addon layering. The transport turns each client request
into a :class:`Flow` and calls :meth:`Pipeline.request`; an addon may rewrite the
request or answer it locally by setting ``flow.response``, which stops the
request from being forwarded. When the answer is known (from upstream, from an
addon, or an error), :meth:`Pipeline.response` runs the addons in reverse order,
like nested middleware, so the first addon (telemetry) sees the final answer.
Messages the upstream sends on its own (notifications, server-to-client
requests) pass :meth:`Pipeline.server_message`; one that an addon fails on is
dropped, never relayed unchecked.

Hooks are synchronous. Shared state (cluster mode) needs I/O, so two awaits
frame them: :meth:`Pipeline.prepare` once per POST before the request hooks
(addons with a ``prepare`` coroutine fetch what they will read), and
:meth:`Pipeline.settle` before answers leave (awaiting what response hooks
left in ``flow.settle``, so a client's next request, on any replica,
sees what this one recorded).

The transport never knows what the addons do; the addons never know which
transport carried the message. Data flows one way: transport → pipeline → addons.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from mcpfence import jsonrpc
from mcpfence.jsonrpc import Message
from mcpfence.toolcall import ToolCallRequest, parse_tool_call

if TYPE_CHECKING:  # what addons leave on a flow; the pipeline needs only the names
    from mcpfence.policy.decision import Decision
    from mcpfence.session import SessionState
    from mcpfence.telemetry.spans import RequestSpan, UpstreamSpan

log = logging.getLogger("mcpfence")


@dataclass
class Context:
    """What is known about the HTTP exchange a message arrived in."""

    route: str
    session_id: str = ""
    client_id: str = ""
    protocol_version: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Flow:
    """One client request on its way through mcpfence, and its answer.

    Besides the request and its answer, a flow carries what addons leave for the
    addons after them and for the transport, each in a field of its own (None until
    set); docs/explanation/architecture.md lists who sets and who reads each.
    """

    context: Context
    request: Message
    response: Message | None = None
    # Set when the upstream could not answer (unreachable, timeout, bad reply).
    error: str | None = None
    started: float = field(default_factory=time.perf_counter)
    # The tools/call as the client sent it, parsed once here at the edge: addons may
    # rewrite ``request`` (a mutation), never this.
    tool_call: ToolCallRequest | None = field(init=False)
    # True when an addon answered (:meth:`reply`): nothing was forwarded.
    answered_locally: bool = False
    # The SERVER span of the request (tracing addon); others nest their spans in it.
    span: RequestSpan | None = None
    # The CLIENT span of the forwarded request (upstream trace addon).
    upstream_span: UpstreamSpan | None = None
    # Trace context for the upstream HTTP request (upstream trace addon; the transport sends it).
    upstream_headers: Mapping[str, str] | None = None
    # The decision on the tools/call (exposure or policy addon; telemetry records it).
    decision: Decision | None = None
    # The session memory the call's answer is remembered in: its key and state (policy addon).
    session: tuple[str, SessionState] | None = None
    # The write of what a response hook remembered, awaited by :meth:`Pipeline.settle`.
    settle: Awaitable[None] | None = None

    def __post_init__(self) -> None:
        self.tool_call = parse_tool_call(self.request)

    @property
    def method(self) -> str:
        return str(self.request.get("method", ""))

    @property
    def params(self) -> dict[str, Any]:
        params = self.request.get("params")
        return params if isinstance(params, dict) else {}

    def reply(self, response: Message) -> None:
        """Answer the request without forwarding it."""
        self.response = response
        self.answered_locally = True


class Addon(Protocol):
    """A pipeline stage. Hooks are synchronous: they run on every call. ``prepare``
    is the one exception: it may await what the others will need (a tool list).

    ``after`` and ``before`` name the addon classes this one must follow or precede
    when both are in a pipeline; :class:`Pipeline` refuses an order that breaks them.
    """

    @property
    def after(self) -> tuple[type[BaseAddon], ...]: ...

    @property
    def before(self) -> tuple[type[BaseAddon], ...]: ...

    async def prepare(self, context: Context, messages: Sequence[Message]) -> None: ...

    def request(self, flow: Flow) -> None: ...

    def response(self, flow: Flow) -> None: ...

    def server_message(self, context: Context, message: Message) -> Message: ...


class BaseAddon:
    """Hooks that do nothing, so an addon defines only what it needs."""

    after: ClassVar[tuple[type[BaseAddon], ...]] = ()
    before: ClassVar[tuple[type[BaseAddon], ...]] = ()

    async def prepare(self, context: Context, messages: Sequence[Message]) -> None:
        return None

    def request(self, flow: Flow) -> None:
        return None

    def response(self, flow: Flow) -> None:
        return None

    def server_message(self, context: Context, message: Message) -> Message:
        return message


def _internal_error(flow: Flow, message: str) -> Message:
    return jsonrpc.error_response(flow.request.get("id"), jsonrpc.INTERNAL_ERROR, message)


def refusal(request: Message) -> Message:
    """The answer to a request an addon failed on: it was not forwarded."""
    reason = "mcpfence could not check this request; it was not forwarded"
    return jsonrpc.error_response(request.get("id"), jsonrpc.INTERNAL_ERROR, reason)


class PipelineOrderError(ValueError):
    """Addons given in an order their ``after`` or ``before`` forbids."""


def _check_order(addons: Sequence[Addon]) -> None:
    """Raise :class:`PipelineOrderError` if an addon comes before one it must follow."""
    for i, earlier in enumerate(addons):
        for later in addons[i + 1 :]:
            if isinstance(later, earlier.after) or isinstance(earlier, later.before):
                first, then = type(later).__name__, type(earlier).__name__
                raise PipelineOrderError(f"pipeline order: {first} must come before {then}, not after it")


class Pipeline:
    """The ordered addons of one route."""

    def __init__(self, addons: Sequence[Addon] = ()) -> None:
        _check_order(addons)
        self.addons = list(addons)
        self._reversed = list(reversed(self.addons))
        self._preparing = [a for a in self.addons if type(a).prepare is not BaseAddon.prepare]

    async def prepare(self, context: Context, messages: Sequence[Message]) -> None:
        """Before a POST's requests pass :meth:`request`: let addons fetch what they need.

        An addon's own refusal (:class:`JsonRpcError`: shared state unreachable) is
        raised, and the transport answers it. Any other failure is logged and forwards
        nothing: the request hooks then decide with what is known, and refuse what
        they cannot check.
        """
        for addon in self._preparing:
            try:
                await addon.prepare(context, messages)
            except jsonrpc.JsonRpcError:
                raise
            except Exception:
                log.exception("route %s: preparing to check a request failed", context.route)

    @staticmethod
    async def settle(flows: Sequence[Flow]) -> None:
        """Wait until what the response hooks recorded for ``flows`` is stored."""
        for flow in flows:
            pending, flow.settle = flow.settle, None
            if pending is not None:
                await pending

    def request(self, flow: Flow) -> None:
        """Run the request hooks; an addon that fails refuses the request (fail closed)."""
        try:
            for addon in self.addons:
                addon.request(flow)
                if flow.response is not None:
                    return
        except Exception:
            route, method = flow.context.route, flow.method
            log.exception("route %s: checking %s failed; the request is refused", route, method)
            flow.reply(refusal(flow.request))

    def response(self, flow: Flow) -> None:
        """Run the response hooks in reverse; an addon that fails turns the answer into an error."""
        for addon in self._reversed:
            try:
                addon.response(flow)
            except Exception:
                log.exception("route %s: checking the answer to %s failed", flow.context.route, flow.method)
                flow.response = _internal_error(flow, "mcpfence could not check the answer to this request")

    def server_message(self, context: Context, message: Message) -> Message | None:
        """Run the server-message hooks in reverse; None when an addon fails (fail closed:
        the message is dropped; the transport refuses a server request upstream)."""
        checked = message
        try:
            for addon in self._reversed:
                checked = addon.server_message(context, checked)
        except Exception:
            what = message.get("method") or "an answer"
            log.exception("route %s: checking %s from the server failed; it was dropped", context.route, what)
            return None
        return checked
