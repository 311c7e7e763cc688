"""The pipeline addon that applies a route's :class:`Exposure` (docs/reference/access.md#exposure-filters).

Filtered tools vanish from ``tools/list`` answers (and from tool lists replayed without
their request, on a resumed stream), and a ``tools/call`` to one is
answered locally as a policy denial from ``route-filter``, so the model reads why
and the decision log and spans record it like any other denial. A call to a tool
mcpfence has not seen listed is refused too: its kind cannot be known. It runs
before the policy addon (``PolicyAddon.after`` says so): requests reach it first,
and answers reach it after the policy addon has taught the catalog the tools'
annotations.
"""

from __future__ import annotations

from typing import Any

from mcpfence import jsonrpc
from mcpfence.access.exposure import Exposure
from mcpfence.addons.telemetry import TracingAddon, UpstreamTraceAddon
from mcpfence.catalog import ToolCatalog
from mcpfence.jsonrpc import Message
from mcpfence.pipeline import BaseAddon, Context, Flow
from mcpfence.policy.decision import Decision, Violation, denial_result

FILTER_POLICY = "route-filter"


class ExposureAddon(BaseAddon):
    # Tracing's span and decision log cover a call refused here; an upstream span
    # starts only for a call let through.
    after = (TracingAddon,)
    before = (UpstreamTraceAddon,)

    def __init__(self, exposure: Exposure, catalog: ToolCatalog) -> None:
        self.exposure = exposure
        self.catalog = catalog

    def request(self, flow: Flow) -> None:
        call = flow.tool_call
        if call is None:
            return
        name = call.name
        route = flow.context.route
        if self.catalog.knows(route, name):
            reason = self.exposure.refusal(name, self.catalog.annotations(route, name))
        else:
            # Without the listing, the tool's annotations (readOnlyHint, destructiveHint)
            # are unknown and its kind would be guessed from its name alone: fail closed.
            reason = f"tool {name!r} is not in this route's tool list; call tools/list first"
        if reason is None:
            return
        decision = Decision("deny", call.arguments or {}, (Violation(FILTER_POLICY, reason),))
        flow.decision = decision
        result = denial_result(decision, flow.context.protocol_version)
        flow.reply(jsonrpc.result_response(flow.request["id"], result))

    def response(self, flow: Flow) -> None:
        if flow.method == "tools/list" and flow.response is not None:
            flow.response = self._filtered(flow.response)

    def server_message(self, context: Context, message: Message) -> Message:
        """An answer with no request to match (replayed on a resumed stream) may be a tool list too."""
        return self._filtered(message) if jsonrpc.is_response(message) else message

    def _filtered(self, answer: Message) -> Message:
        """``answer`` without the tools this route hides, if it carries a tool list."""
        result = answer.get("result")
        if not isinstance(result, dict) or not isinstance(result.get("tools"), list):
            return answer
        exposed = [tool for tool in result["tools"] if self._exposed(tool)]
        return {**answer, "result": {**result, "tools": exposed}}

    def _exposed(self, tool: Any) -> bool:
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            return False
        annotations = tool.get("annotations")
        return self.exposure.allows(tool["name"], annotations if isinstance(annotations, dict) else None)
