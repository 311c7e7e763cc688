"""Streamable HTTP (MCP 2025-03-26 and later, and stateless 2026-07-28), proxied.

POST bodies are parsed, each request passes the pipeline, and what is left is
re-serialized and forwarded. The answer comes back as one JSON body or as an
SSE stream; either way each message passes the pipeline again, and a stream is
relayed event by event as it arrives. GET (the server's stream) and DELETE (end
of session) are relayed with the same header rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from mcpfence import jsonrpc
from mcpfence.access.guard import OPEN, AccessGuard, caller
from mcpfence.access.ratelimit import normalize_upstream_headers
from mcpfence.jsonrpc import JsonRpcError, Message
from mcpfence.pipeline import Context, Flow, Pipeline
from mcpfence.transport import sse
from mcpfence.transport.headers import downstream_response_headers, upstream_request_headers
from mcpfence.transport.http import (
    JSON_HEADERS,
    RawHeaders,
    Request,
    Send,
    media_type,
    send_jsonrpc_error,
    send_method_not_allowed,
    send_response,
    until_disconnect,
)
from mcpfence.transport.messages import ParamSchemas, meta_version, read_messages
from mcpfence.transport.upstream import Upstream, UpstreamError

log = logging.getLogger("mcpfence")


@dataclass
class Exchange:
    """The flows of one POST: which requests still await an answer from upstream."""

    context: Context
    pending: dict[Any, Flow] = field(default_factory=dict)
    local: list[Flow] = field(default_factory=list)
    forward: list[Message] = field(default_factory=list)
    # Extra upstream headers addons asked for (trace context): the first forwarded flow's.
    upstream_headers: dict[str, str] = field(default_factory=dict)
    # Headers every answer to this POST carries (RateLimit-*).
    response_headers: RawHeaders = ()
    # Flows answered so far: their records are settled before the answers leave.
    answered: list[Flow] = field(default_factory=list)

    def local_answers(self) -> list[Message]:
        """The answers addons gave without the upstream (denials), in request order."""
        return [flow.response for flow in self.local if flow.response is not None]


class StreamableHttpRoute:
    """One configured route: relays MCP Streamable HTTP to its upstream."""

    def __init__(
        self,
        name: str,
        upstream: Upstream,
        pipeline: Pipeline,
        max_body_bytes: int,
        guard: AccessGuard | None = None,
        schemas: ParamSchemas | None = None,
    ) -> None:
        self.name = name
        self.upstream = upstream
        self.pipeline = pipeline
        self.max_body_bytes = max_body_bytes
        self.guard = guard or OPEN
        self.schemas = schemas
        # Set when the route is withdrawn (a token route expired or was revoked): open streams end.
        self.closed = asyncio.Event()

    async def handle(self, request: Request, send: Send) -> None:
        try:
            client_id = self.guard.authenticate(request.headers.get("authorization"))
        except JsonRpcError as error:
            await send_jsonrpc_error(send, error)
            return
        if request.method == "POST":
            await self.post(request, send, client_id)
        elif request.method in ("GET", "DELETE"):
            await self.relay(request, send, context=self._context(request, "", client_id))
        else:
            await send_method_not_allowed(send, b"GET, POST, DELETE")

    # -- POST ---------------------------------------------------------------

    async def post(self, request: Request, send: Send, client_id: str) -> None:
        try:
            messages, batch = await read_messages(request, self.max_body_bytes, "", self.schemas)
            session_id = request.headers.get("mcp-session-id", "")
            limits = await self.guard.admit(caller(request, session_id, client_id), messages)
            context = self._context(request, meta_version(messages), client_id)
            await self.pipeline.prepare(context, messages)
        except JsonRpcError as error:
            await send_jsonrpc_error(send, error)
            return
        exchange = self._start(context, messages)
        exchange.response_headers = limits
        if not exchange.forward:
            await self._reply_locally(send, exchange, batch)
            return
        payload = exchange.forward if batch else exchange.forward[0]
        deadline = asyncio.get_running_loop().time() + self.upstream.timeout_seconds
        try:
            await self._forward(request, send, exchange, jsonrpc.dumps(payload), batch, deadline)
        except UpstreamError as error:
            await self._fail(send, exchange, error, batch)

    def _context(self, request: Request, protocol_version: str, client_id: str) -> Context:
        return Context(
            route=self.name,
            session_id=request.headers.get("mcp-session-id", ""),
            client_id=client_id,
            protocol_version=request.headers.get("mcp-protocol-version", protocol_version),
            headers=request.headers,
        )

    def _start(self, context: Context, messages: list[Message]) -> Exchange:
        """Run each request through the pipeline; collect what to forward."""
        exchange = Exchange(context)
        for message in messages:
            if not jsonrpc.is_request(message):
                exchange.forward.append(message)
                continue
            flow = Flow(exchange.context, message)
            self.pipeline.request(flow)
            if flow.response is not None:
                self.pipeline.response(flow)
                exchange.local.append(flow)
            else:
                exchange.forward.append(flow.request)
                exchange.pending[flow.request["id"]] = flow
                if not exchange.upstream_headers:
                    exchange.upstream_headers = flow.notes.get("upstream_headers", {})
        return exchange

    async def _reply_locally(self, send: Send, exchange: Exchange, batch: bool) -> None:
        answers = exchange.local_answers()
        body = jsonrpc.dumps(answers if batch else answers[0])
        await send_response(send, 200, body, [*JSON_HEADERS, *exchange.response_headers])

    async def _forward(
        self,
        request: Request,
        send: Send,
        exchange: Exchange,
        body: bytes,
        batch: bool,
        deadline: float,
    ) -> None:
        # The context's headers: the client's, as addons left them (Mcp-Param-* follow mutations).
        headers = upstream_request_headers(exchange.context.headers, self.upstream.headers)
        headers.update(exchange.upstream_headers)
        headers["content-type"] = "application/json"
        response = await self.upstream.open("POST", headers, body, deadline)
        issued = response.headers.get("mcp-session-id")
        if issued and issued != request.headers.get("mcp-session-id"):
            await self.guard.session_issued(issued)
        try:
            kind = media_type(response.headers.get("content-type", ""))
            if kind == "text/event-stream":
                await self._relay_post_stream(request, send, exchange, response)
            elif kind == "application/json" and response.status < 400 and exchange.pending:
                raw = await self.upstream.read(response)
                await self._relay_json(send, exchange, response, raw, batch)
            elif exchange.local and response.status == 202:
                await self._reply_locally(send, exchange, batch)
            elif exchange.pending and response.status < 300 and response.status != 202:
                # A body we cannot check is not relayed: lenient clients may read it as an answer.
                url, media = self.upstream.url, kind or "none"
                raise UpstreamError(f"upstream {url} answered with Content-Type {media}, not JSON")
            else:
                raw = await self.upstream.read(response)
                await send_response(send, response.status, raw, self._headers(response, exchange))
        finally:
            response.release()

    async def _relay_json(
        self,
        send: Send,
        exchange: Exchange,
        response: aiohttp.ClientResponse,
        raw: bytes,
        batch: bool,
    ) -> None:
        try:
            parsed = jsonrpc.loads(raw)
        except JsonRpcError:
            raise UpstreamError(f"upstream {self.upstream.url} sent a body that is not JSON") from None
        answers = [self._answer(exchange, message) for message in _as_list(parsed)]
        answers.extend(exchange.local_answers())
        answers.extend(self._unanswered(exchange))
        await self.pipeline.settle(exchange.answered)
        out = jsonrpc.dumps(answers if batch or len(answers) > 1 else answers[0])
        await send_response(send, response.status, out, self._headers(response, exchange))

    def _answer(self, exchange: Exchange, message: Any) -> Message:
        """Pass one upstream message through the pipeline, as an answer or on its own."""
        if not isinstance(message, dict):
            raise UpstreamError(f"upstream {self.upstream.url} sent a non-object JSON-RPC message")
        answered = jsonrpc.usable_id(message.get("id")) if jsonrpc.is_response(message) else None
        flow = exchange.pending.pop(answered, None) if answered is not None else None
        if flow is None:
            return self.pipeline.server_message(exchange.context, message)
        flow.response = message
        self.pipeline.response(flow)
        exchange.answered.append(flow)
        assert flow.response is not None
        return flow.response

    def _unanswered(self, exchange: Exchange, reason: str = "") -> list[Message]:
        """Errors for requests the upstream never answered, so no client waits forever."""
        answers = []
        reason = reason or f"upstream {self.upstream.url} closed the exchange without answering"
        for flow in exchange.pending.values():
            flow.error = reason
            flow.response = jsonrpc.error_response(flow.request["id"], jsonrpc.INTERNAL_ERROR, reason)
            self.pipeline.response(flow)
            exchange.answered.append(flow)
            answers.append(flow.response)
        exchange.pending.clear()
        return answers

    async def _fail(self, send: Send, exchange: Exchange, error: UpstreamError, batch: bool) -> None:
        """Answer every still-pending request with the upstream failure (-32603)."""
        answers = exchange.local_answers() + self._unanswered(exchange, error.message)
        await self.pipeline.settle(exchange.answered)
        body = jsonrpc.dumps(answers if batch else answers[0])
        headers = [*JSON_HEADERS, *exchange.response_headers]
        await send_response(send, 200 if batch else error.status, body, headers)

    # -- streams ------------------------------------------------------------

    async def _relay_post_stream(
        self,
        request: Request,
        send: Send,
        exchange: Exchange,
        response: aiohttp.ClientResponse,
    ) -> None:
        """Relay the SSE answer to a POST, checking each message as it arrives.

        Once the stream has started, failures can no longer change the status: each
        request still unanswered gets its -32603 error as a last event instead.
        """
        headers = self._headers(response, exchange)
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        for answer in exchange.local_answers():
            await sse.send_message(send, answer)
        reason = ""
        try:
            await until_disconnect(request, self._pump(send, exchange, response), self.closed)
        except TimeoutError:
            reason = self.upstream.timeout_error().message
        except (UpstreamError, aiohttp.ClientError, ValueError) as exc:
            reason = f"upstream {self.upstream.url} stream failed: {exc}"
        unanswered = self._unanswered(exchange, reason)
        await self.pipeline.settle(exchange.answered)
        for answer in unanswered:
            await sse.send_message(send, answer)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _pump(self, send: Send, exchange: Exchange, response: aiohttp.ClientResponse) -> None:
        async for event in sse.read_events(response.content.iter_any()):
            checked = self._check_event(exchange, event)
            await self.pipeline.settle(exchange.answered)
            await sse.send_event(send, checked)

    def _check_event(self, exchange: Exchange, event: sse.Event) -> sse.Event:
        data = event.data
        if not data or event.name != "message":
            return event
        try:
            message = jsonrpc.loads(data)
        except JsonRpcError as error:
            # Unchecked is never forwarded (a lenient client could read what we cannot).
            # The event keeps its id for resumability; an answer it carried becomes -32603.
            log.warning("route %s: dropped an upstream event: %s", self.name, error.message)
            return event.with_data("")
        answers = [self._answer(exchange, m) for m in _as_list(message)]
        checked = answers if isinstance(message, list) else answers[0]
        return event.with_data(jsonrpc.dumps(checked).decode())

    async def relay(self, request: Request, send: Send, context: Context) -> None:
        """Relay a GET or DELETE; a GET's server stream passes the pipeline per message."""
        headers = upstream_request_headers(request.headers, self.upstream.headers)
        try:
            response = await self.upstream.open(request.method, headers)
        except UpstreamError as error:
            await send_jsonrpc_error(send, error)
            return
        try:
            exchange = Exchange(context)
            out_headers = self._headers(response, exchange)
            if media_type(response.headers.get("content-type", "")) != "text/event-stream":
                await send_response(send, response.status, await self.upstream.read(response), out_headers)
                return
            await send({"type": "http.response.start", "status": response.status, "headers": out_headers})
            # A server stream that ends badly just ends ours; the client reconnects.
            with contextlib.suppress(UpstreamError, aiohttp.ClientError, ValueError):
                await until_disconnect(request, self._pump(send, exchange, response), self.closed)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            response.release()

    @staticmethod
    def _headers(response: aiohttp.ClientResponse, exchange: Exchange) -> list[tuple[bytes, bytes]]:
        """The client's response headers: the upstream's, rate-limit ones normalized on a 429."""
        upstream: Mapping[str, str] = response.headers
        if response.status == 429:
            upstream = normalize_upstream_headers(response.headers)
        return [*downstream_response_headers(upstream.items()), *exchange.response_headers]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
