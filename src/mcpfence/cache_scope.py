"""``cacheScope`` on lists mcpfence changed (MCP 2026-07-28).

A 2026-07-28 server marks a cacheable result (``tools/list`` and the other
lists) ``cacheScope: public`` when any client may be served the same copy. Once
mcpfence has filtered or annotated the list for this route or client, that is no
longer true: a shared cache must not hand one client's view to another. So a
changed result becomes ``private``; its ``ttlMs`` is kept as the server set it.
"""

from __future__ import annotations

import copy
from typing import Final

from mcpfence.pipeline import Flow, Pipeline
from mcpfence.protocol import CACHE_SCOPE_VERSIONS

CACHEABLE_METHODS: Final = frozenset(
    {"tools/list", "prompts/list", "resources/list", "resources/templates/list", "resources/read"}
)


class CacheScopedPipeline(Pipeline):
    """A pipeline that marks the cacheable results its addons changed as private."""

    def response(self, flow: Flow) -> None:
        if flow.method not in CACHEABLE_METHODS:
            super().response(flow)
            return
        before = copy.deepcopy((flow.response or {}).get("result"))
        super().response(flow)
        after = (flow.response or {}).get("result")
        if not isinstance(before, dict) or not isinstance(after, dict) or after == before:
            return
        if "cacheScope" in after or "ttlMs" in after or flow.context.protocol_version in CACHE_SCOPE_VERSIONS:
            assert flow.response is not None
            flow.response = {**flow.response, "result": {**after, "cacheScope": "private"}}
