"""Client requests on their way through mcpfence, from the request hooks to their one answer.

Every downstream path (the relay, hosted sessions, legacy SSE) handles a client
request the same way, here: the request hooks run (an addon may answer it, a
denial); what is left is the caller's to forward and :meth:`FlowTracker.track`;
the upstream's answer, or -32603 when none will come, passes the response hooks
and is given back exactly once, under the client's id. Before an answer leaves,
:meth:`FlowTracker.settle` waits until what the hooks recorded is stored (cluster
mode). Where requests go and how answers travel is the caller's business; see
docs/explanation/architecture.md for the walk of one ``tools/call``.
"""

from __future__ import annotations

from mcpfence import jsonrpc
from mcpfence.jsonrpc import Message, RequestId
from mcpfence.pipeline import Context, Flow, Pipeline


class FlowTracker:
    """The requests of one exchange (a relayed POST) or one hosted session."""

    __slots__ = ("answered", "pending", "pipeline")

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        # Requests forwarded and not answered yet, by the id the upstream knows them by.
        self.pending: dict[RequestId, Flow] = {}
        # Flows answered since the last settle: their records are stored before answers leave.
        self.answered: list[Flow] = []

    def start(self, context: Context, request: Message) -> Flow:
        """Run the request hooks. A request an addon answered has had its response hooks
        too (``flow.response`` is set); any other is the caller's to forward and track."""
        flow = Flow(context, request)
        self.pipeline.request(flow)
        if flow.response is not None:
            self.pipeline.response(flow)
        return flow

    def track(self, key: RequestId, flow: Flow) -> None:
        """Wait for the answer to ``flow``, forwarded under the id ``key``."""
        self.pending[key] = flow

    def answer(self, key: RequestId, message: Message) -> Message | None:
        """``message`` checked as the answer to the request tracked under ``key``, under the
        client's id; None when none is (it was answered already, or never ours)."""
        flow = self.pending.pop(key, None)
        if flow is None:
            return None
        own = flow.request["id"]
        flow.response = message if message.get("id") is own else {**message, "id": own}
        return self._finish(flow)

    def fail(self, key: RequestId, reason: str) -> Message | None:
        """-32603 with ``reason`` for the request tracked under ``key``; None when none is."""
        flow = self.pending.pop(key, None)
        return None if flow is None else self._failed(flow, reason)

    def fail_all(self, reason: str) -> list[Message]:
        """-32603 for every request still waiting, so that no client waits forever."""
        flows = list(self.pending.values())
        self.pending.clear()
        return [self._failed(flow, reason) for flow in flows]

    async def settle(self) -> None:
        """Wait until what the response hooks recorded is stored; before answers leave."""
        if self.answered:
            answered, self.answered = self.answered, []
            await self.pipeline.settle(answered)

    def _failed(self, flow: Flow, reason: str) -> Message:
        flow.error = reason
        flow.response = jsonrpc.error_response(flow.request["id"], jsonrpc.INTERNAL_ERROR, reason)
        return self._finish(flow)

    def _finish(self, flow: Flow) -> Message:
        self.pipeline.response(flow)
        self.answered.append(flow)
        response = flow.response
        assert response is not None  # the response hooks replace an answer, never remove it
        return response
