"""The policy addon: decides every ``tools/call`` and annotates every ``tools/list``.

Requests: the call's arguments go to the loaded :class:`PolicySet`, with the
tool's input schema for the built-in argument check; a denial is answered
locally as a readable tool error, a mutation replaces the arguments that are
forwarded. Responses: tool lists get each policy's guidance appended to the
tool's description (and teach the catalog the tools' annotations and schemas);
tool results are remembered in the session (``session.calls``, opaque tokens).
``notifications/tools/list_changed`` makes the catalog forget what it was told.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mcp.shared.inbound import mcp_param_headers

from mcpfence import jsonrpc
from mcpfence.addons.exposure import ExposureAddon
from mcpfence.addons.telemetry import TracingAddon, UpstreamTraceAddon
from mcpfence.catalog import ToolCatalog
from mcpfence.cluster import SharedStateUnavailable
from mcpfence.jsonrpc import Message
from mcpfence.listing import SelfListing
from mcpfence.pipeline import BaseAddon, Context, Flow
from mcpfence.policy import Decision, PolicySet, ToolCall, denial_result
from mcpfence.policy.argschema import SchemaMode
from mcpfence.policy.opaque import harvest
from mcpfence.protocol import STATELESS_VERSIONS
from mcpfence.session import SessionMemory, SessionState
from mcpfence.transport.headers import PARAM_HEADER_PREFIX

LIST_CHANGED = "notifications/tools/list_changed"


def _session(context: Context) -> str:
    """Whose listing applies: the session's, else the client's (stateless), else the route's."""
    return context.session_id or context.client_id


class PolicyHolder:
    """The policy set in force; hot reload swaps it with one assignment."""

    def __init__(self, policies: PolicySet) -> None:
        self.current = policies


class PolicyAddon(BaseAddon):
    """Applies the policy set in force to one route's traffic (see the module docstring)."""

    # The request span holds the policy span and logs the decision; exposure refuses
    # hidden tools first and filters listings after this addon taught the catalog;
    # an upstream span starts only for a call forwarded, as rewritten here.
    after = (TracingAddon, ExposureAddon)
    before = (UpstreamTraceAddon,)

    def __init__(
        self,
        holder: PolicyHolder,
        catalog: ToolCatalog,
        memory: SessionMemory,
        input_schema: SchemaMode = "off",
        listing: SelfListing | None = None,
    ) -> None:
        self.holder = holder
        self.catalog = catalog
        self.memory = memory
        self.input_schema = input_schema
        # Lists the upstream's tools when a call comes before any relayed tools/list
        # (only needed when arguments are checked).
        self.listing = listing if input_schema != "off" else None

    async def prepare(self, context: Context, messages: Sequence[Message]) -> None:
        """Before calls are decided: the tools' schemas (listed once if none was relayed)
        and the session's memory, when a call needs them. In cluster mode the memory costs
        one round trip, or none when the rate limit's script read it already."""
        calls = any(m.get("method") == "tools/call" and jsonrpc.is_request(m) for m in messages)
        if not calls:
            return
        if self.listing is not None and self.listing.missing(session := _session(context)):
            stateless = context.protocol_version in STATELESS_VERSIONS and not context.session_id
            await self.listing.ensure(session, context.protocol_version if stateless else None)
        if not self.holder.current.uses_session(context.route):
            return
        try:
            await self.memory.load(self.memory.key(context.route, context.session_id, context.client_id))
        except SharedStateUnavailable as exc:
            message = f"session memory could not be read, so no call is decided: {exc}"
            raise jsonrpc.JsonRpcError(jsonrpc.INTERNAL_ERROR, message, status=503) from None

    def request(self, flow: Flow) -> None:
        tool_call = flow.tool_call  # set for every tools/call that names a tool
        if tool_call is None and flow.method != "tools/call":
            return
        if tool_call is None or tool_call.arguments is None:
            message = "tools/call needs params.name (string) and params.arguments (object)"
            flow.reply(jsonrpc.error_response(flow.request["id"], jsonrpc.INVALID_PARAMS, message))
            return
        name, args = tool_call.name, tool_call.arguments
        context = flow.context
        policies = self.holder.current
        state = None
        if policies.uses_session(context.route):  # else there is nothing to read or remember
            key = self.memory.key(context.route, context.session_id, context.client_id)
            state = self.memory.get(key)
            flow.session = (key, state)  # the answer is remembered in the same session
        span = flow.span
        if span is None:
            decision = self._decide(context, name, args, policies, state)
        else:
            with span.policy_span():
                decision = self._decide(context, name, args, policies, state)
        flow.decision = decision
        if decision.decision == "deny":
            result = denial_result(decision, flow.context.protocol_version)
            flow.reply(jsonrpc.result_response(flow.request["id"], result))
        elif decision.decision != "allow" and decision.args != args:
            flow.request = {**flow.request, "params": {**flow.params, "arguments": decision.args}}
            self._mirror_param_headers(flow, name, decision.args)

    def _decide(
        self,
        context: Context,
        name: str,
        args: dict[str, Any],
        policies: PolicySet,
        state: SessionState | None,
    ) -> Decision:
        """The call's decision: the argument schema's alone when no policy matches. A method
        of its own so that an untraced call enters no no-op context manager (two calls)."""
        session = _session(context)
        checked = self.input_schema != "off"
        schema = self.catalog.input_schema(context.route, name, session) if checked else None
        if not policies.covers(context.route, name):
            return policies.unmatched(args, schema, self.input_schema)
        return policies.decide(ToolCall(
            route=context.route,
            tool=name,
            args=args,
            annotations=self.catalog.annotations(context.route, name, session),
            session_id=context.session_id or context.client_id,
            session_calls=state.calls if state is not None else (),
            client_id=context.client_id,
            known_tokens=state.tokens if state is not None else (),
            input_schema=schema,
            schema_mode=self.input_schema,
        ))

    def _mirror_param_headers(self, flow: Flow, tool: str, args: dict[str, Any]) -> None:
        """Keep 2026-07-28 ``Mcp-Param-*`` headers equal to the rewritten arguments.

        The upstream checks those headers against the body; stale ones would get a
        correct call refused. For a tool never listed the mapping is unknown and the
        headers stay: the upstream's check then fails closed.
        """
        headers = flow.context.headers
        if not any(name.startswith(PARAM_HEADER_PREFIX) for name in headers):
            return
        mirrored = self.catalog.param_headers(flow.context.route, tool)
        if mirrored is None:
            return
        kept = {k: v for k, v in headers.items() if not k.startswith(PARAM_HEADER_PREFIX)}
        fresh = {k.lower(): v for k, v in mcp_param_headers(mirrored, args).items()}
        flow.context.headers = {**kept, **fresh}

    def server_message(self, context: Context, message: Message) -> Message:
        if message.get("method") == LIST_CHANGED:
            self.catalog.forget(context.route, _session(context))
        return message

    def response(self, flow: Flow) -> None:
        result = (flow.response or {}).get("result")
        if not isinstance(result, dict):
            result = None
        if flow.method == "tools/list":
            if result is not None:
                self._annotate_tools(flow, result)
        elif flow.session is not None and not flow.answered_locally:  # a tools/call decided here
            self._remember(flow, result)

    def _annotate_tools(self, flow: Flow, result: dict[str, Any]) -> None:
        tools = result.get("tools")
        if not isinstance(tools, list):
            return
        route = flow.context.route
        self.catalog.learn(route, tools, _session(flow.context), page=bool(flow.params.get("cursor")))
        policies = self.holder.current
        annotated = []
        for tool in tools:
            name = tool.get("name") if isinstance(tool, dict) else None
            guidance = policies.guidance(route, name) if isinstance(name, str) else []
            if guidance:
                description = tool.get("description") or ""
                tool = {**tool, "description": "\n\n".join([description, *guidance]).strip()}
            annotated.append(tool)
        assert flow.response is not None
        flow.response = {**flow.response, "result": {**result, "tools": annotated}}

    def _remember(self, flow: Flow, result: dict[str, Any] | None) -> None:
        """Keep the forwarded call and its result in the session the request was decided in
        (none when the route's policies read no session)."""
        if flow.session is None or flow.decision is None or flow.tool_call is None:
            return
        key, state = flow.session
        ok = result is not None and result.get("isError") is not True
        structured = result.get("structuredContent") if result is not None else None
        # What was forwarded: the decision's arguments (the client's unless a mutation changed them).
        call = state.record_call(flow.tool_call.name, flow.decision.args, ok, structured)
        policies = self.holder.current
        tokens: list[str] = []
        if result is not None and policies.harvests_tokens:
            tokens = state.remember_tokens(harvest(result, policies.token_patterns), self.memory.max_tokens)
        # Kept in the shared store: only what the route's policies read, and only if new.
        use = policies.session_use(flow.context.route)
        stored = self.memory.store(key, call if use.calls else None, tokens if use.tokens else [])
        if stored is not None:
            flow.settle = stored
