"""The pipeline addon that applies a route's :class:`Exposure` (SPEC §6).

Filtered tools vanish from ``tools/list`` answers and a ``tools/call`` to one is
answered locally as a policy denial from ``route-filter``, so the model reads why
and the decision log and spans record it like any other denial. A call to a tool
mcpfence has not seen listed is refused too: its kind cannot be known. Place it before
the policy addon: requests reach it first, and answers reach it after the policy
addon has taught the catalog the tools' annotations.
"""

from __future__ import annotations

from typing import Any

from mcpfence import jsonrpc
from mcpfence.access.exposure import Exposure
from mcpfence.catalog import ToolCatalog
from mcpfence.pipeline import BaseAddon, Flow
from mcpfence.policy.decision import Decision, Violation, denial_result

FILTER_POLICY = "route-filter"


class ExposureAddon(BaseAddon):
    def __init__(self, exposure: Exposure, catalog: ToolCatalog) -> None:
        self.exposure = exposure
        self.catalog = catalog

    def request(self, flow: Flow) -> None:
        name = flow.params.get("name")
        if flow.method != "tools/call" or not isinstance(name, str):
            return
        route = flow.context.route
        if self.catalog.knows(route, name):
            reason = self.exposure.refusal(name, self.catalog.annotations(route, name))
        else:
            # Without the listing, the tool's annotations (readOnlyHint, destructiveHint)
            # are unknown and its kind would be guessed from its name alone: fail closed.
            reason = f"tool {name!r} is not in this route's tool list; call tools/list first"
        if reason is None:
            return
        arguments = flow.params.get("arguments")
        decision = Decision(
            "deny",
            arguments if isinstance(arguments, dict) else {},
            (Violation(FILTER_POLICY, reason),),
        )
        flow.notes["decision"] = decision
        flow.notes["tool"] = name
        flow.reply(jsonrpc.result_response(flow.request["id"], denial_result(decision)))

    def response(self, flow: Flow) -> None:
        result = (flow.response or {}).get("result")
        if flow.method != "tools/list" or not isinstance(result, dict):
            return
        tools = result.get("tools")
        if not isinstance(tools, list):
            return
        exposed = [tool for tool in tools if self._exposed(tool)]
        assert flow.response is not None
        flow.response = {**flow.response, "result": {**result, "tools": exposed}}

    def _exposed(self, tool: Any) -> bool:
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            return False
        annotations = tool.get("annotations")
        return self.exposure.allows(tool["name"], annotations if isinstance(annotations, dict) else None)
