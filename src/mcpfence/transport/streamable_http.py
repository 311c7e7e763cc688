"""Streamable HTTP (MCP 2025-03-26 and later, and stateless 2026-07-28), proxied.

POST bodies are parsed, each request passes the pipeline, and what is left is
re-serialized and forwarded. The answer comes back as one JSON body or as an
SSE stream; either way each message passes the pipeline again, and a stream is
relayed event by event as it arrives. GET (the server's stream) and DELETE (end
of session) are relayed with the same header rules.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp

from mcpfence import jsonrpc
from mcpfence.jsonrpc import JsonRpcError, Message
from mcpfence.pipeline import Context, Flow, Pipeline
from mcpfence.transport import sse
from mcpfence.transport.headers import downstream_response_headers, upstream_request_headers
from mcpfence.transport.http import (
    JSON_HEADERS,
    BodyTooLarge,
    Request,
    Send,
    send_jsonrpc_error,
    send_response,
)
from mcpfence.transport.upstream import Upstream, UpstreamError

# Protocol revisions whose JSON-RPC still has batches (removed in 2025-06-18).
BATCH_VERSIONS: Final = frozenset({"", "2024-11-05", "2025-03-26"})
PROTOCOL_VERSION_META: Final = "io.modelcontextprotocol/protocolVersion"
# Method → the params key the `Mcp-Name` header mirrors (2026-07-28).
NAME_BEARING: Final = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
MAX_UPSTREAM_JSON: Final = 64 * 1024 * 1024


@dataclass
class Exchange:
    """The flows of one POST: which requests still await an answer from upstream."""

    context: Context
    pending: dict[Any, Flow] = field(default_factory=dict)
    local: list[Flow] = field(default_factory=list)
    forward: list[Message] = field(default_factory=list)


class StreamableHttpRoute:
    """One configured route: relays MCP Streamable HTTP to its upstream."""

    def __init__(
        self, name: str, upstream: Upstream, pipeline: Pipeline, max_body_bytes: int
    ) -> None:
        self.name = name
        self.upstream = upstream
        self.pipeline = pipeline
        self.max_body_bytes = max_body_bytes

    async def handle(self, request: Request, send: Send) -> None:
        if request.method == "POST":
            await self.post(request, send)
        elif request.method in ("GET", "DELETE"):
            await self.relay(request, send, context=self._context(request, ""))
        else:
            allow = [(b"allow", b"GET, POST, DELETE")]
            await send_response(send, 405, b"Method Not Allowed", allow)

    # -- POST ---------------------------------------------------------------

    async def post(self, request: Request, send: Send) -> None:
        content_type = request.headers.get("content-type", "")
        if content_type.split(";")[0].strip().lower() != "application/json":
            error = JsonRpcError(jsonrpc.INVALID_REQUEST, "Content-Type must be application/json")
            error.status = 415
            await send_jsonrpc_error(send, error)
            return
        try:
            body = await request.body(self.max_body_bytes)
        except BodyTooLarge:
            message = f"request body exceeds {self.max_body_bytes} bytes"
            await send_jsonrpc_error(send, JsonRpcError(jsonrpc.INVALID_REQUEST, message, status=413))
            return
        try:
            messages, batch = parse_body(body, request.headers.get("mcp-protocol-version", ""))
            check_routing_headers(request, messages)
        except JsonRpcError as error:
            await send_jsonrpc_error(send, error)
            return
        exchange = self._start(request, messages)
        if not exchange.forward:
            await self._reply_locally(send, exchange, batch)
            return
        payload = exchange.forward if batch else exchange.forward[0]
        deadline = asyncio.get_running_loop().time() + self.upstream.timeout_seconds
        try:
            await self._forward(request, send, exchange, jsonrpc.dumps(payload), batch, deadline)
        except UpstreamError as error:
            await self._fail(send, exchange, error, batch)

    def _context(self, request: Request, protocol_version: str) -> Context:
        return Context(
            route=self.name,
            session_id=request.headers.get("mcp-session-id", ""),
            protocol_version=request.headers.get("mcp-protocol-version", protocol_version),
            headers=request.headers,
        )

    def _start(self, request: Request, messages: list[Message]) -> Exchange:
        """Run each request through the pipeline; collect what to forward."""
        exchange = Exchange(self._context(request, _meta_version(messages)))
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
        return exchange

    async def _reply_locally(self, send: Send, exchange: Exchange, batch: bool) -> None:
        answers = [flow.response for flow in exchange.local]
        body = jsonrpc.dumps(answers if batch else answers[0])
        await send_response(send, 200, body, JSON_HEADERS)

    async def _forward(
        self,
        request: Request,
        send: Send,
        exchange: Exchange,
        body: bytes,
        batch: bool,
        deadline: float,
    ) -> None:
        headers = upstream_request_headers(request.headers, self.upstream.headers)
        headers["content-type"] = "application/json"
        response = await self.upstream.open("POST", headers, body, deadline)
        try:
            kind = _content_kind(response)
            if kind == "text/event-stream":
                await self._relay_post_stream(request, send, exchange, response, deadline)
            elif kind == "application/json" and response.status < 400 and exchange.pending:
                raw = await self._read(response, deadline)
                await self._relay_json(send, exchange, response, raw, batch)
            elif exchange.local and response.status == 202:
                await self._reply_locally(send, exchange, batch)
            else:
                await self._relay_verbatim(send, response, await self._read(response, deadline))
        finally:
            response.release()

    async def _read(self, response: aiohttp.ClientResponse, deadline: float | None) -> bytes:
        try:
            async with asyncio.timeout_at(deadline):
                return await response.content.read(MAX_UPSTREAM_JSON)
        except TimeoutError:
            raise self.upstream.timeout_error() from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"upstream {self.upstream.url} failed: {exc}") from None

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
        answers.extend(flow.response for flow in exchange.local if flow.response is not None)
        answers.extend(self._unanswered(exchange))
        out = jsonrpc.dumps(answers if batch or len(answers) > 1 else answers[0])
        headers = downstream_response_headers(response.headers.items())
        await send_response(send, response.status, out, headers)

    def _answer(self, exchange: Exchange, message: Any) -> Message:
        """Pass one upstream message through the pipeline, as an answer or on its own."""
        if not isinstance(message, dict):
            raise UpstreamError(f"upstream {self.upstream.url} sent a non-object JSON-RPC message")
        flow = exchange.pending.pop(message.get("id"), None) if jsonrpc.is_response(message) else None
        if flow is None:
            return self.pipeline.server_message(exchange.context, message)
        flow.response = message
        self.pipeline.response(flow)
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
            answers.append(flow.response)
        exchange.pending.clear()
        return answers

    async def _fail(self, send: Send, exchange: Exchange, error: UpstreamError, batch: bool) -> None:
        """Answer every still-pending request with the upstream failure (-32603)."""
        answers = [f.response for f in exchange.local if f.response is not None]
        answers += self._unanswered(exchange, error.message)
        body = jsonrpc.dumps(answers if batch else answers[0])
        await send_response(send, 200 if batch else error.status, body, JSON_HEADERS)

    # -- streams ------------------------------------------------------------

    async def _relay_post_stream(
        self,
        request: Request,
        send: Send,
        exchange: Exchange,
        response: aiohttp.ClientResponse,
        deadline: float,
    ) -> None:
        """Relay the SSE answer to a POST, checking each message as it arrives.

        Once the stream has started, failures can no longer change the status: each
        request still unanswered gets its -32603 error as a last event instead.
        """
        headers = downstream_response_headers(response.headers.items())
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        for flow in exchange.local:
            assert flow.response is not None
            await _send_message(send, flow.response)
        reason = ""
        try:
            async with asyncio.timeout_at(deadline):
                await _until_disconnect(request, self._pump(send, exchange, response))
        except TimeoutError:
            reason = self.upstream.timeout_error().message
        except (UpstreamError, aiohttp.ClientError, ValueError) as exc:
            reason = f"upstream {self.upstream.url} stream failed: {exc}"
        for answer in self._unanswered(exchange, reason):
            await _send_message(send, answer)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _pump(self, send: Send, exchange: Exchange, response: aiohttp.ClientResponse) -> None:
        async for event in _events(response):
            await _send_event(send, self._check_event(exchange, event))

    def _check_event(self, exchange: Exchange, event: sse.Event) -> sse.Event:
        data = event.data
        if not data or event.name != "message":
            return event
        try:
            message = jsonrpc.loads(data)
        except JsonRpcError:
            return event
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
            if _content_kind(response) != "text/event-stream":
                await self._relay_verbatim(send, response, await self._read(response, None))
                return
            out_headers = downstream_response_headers(response.headers.items())
            await send({"type": "http.response.start", "status": response.status, "headers": out_headers})
            # A server stream that ends badly just ends ours; the client reconnects.
            with contextlib.suppress(UpstreamError, aiohttp.ClientError, ValueError):
                await _until_disconnect(request, self._pump(send, Exchange(context), response))
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            response.release()

    async def _relay_verbatim(
        self, send: Send, response: aiohttp.ClientResponse, body: bytes
    ) -> None:
        headers = downstream_response_headers(response.headers.items())
        await send_response(send, response.status, body, headers)


def parse_body(body: bytes, protocol_version: str) -> tuple[list[Message], bool]:
    """Parse a POST body into validated messages; batches only where the revision has them."""
    payload = jsonrpc.loads(body)
    if isinstance(payload, list):
        if protocol_version not in BATCH_VERSIONS:
            raise JsonRpcError(
                jsonrpc.INVALID_REQUEST, f"batches are not part of MCP {protocol_version}"
            )
        if not payload:
            raise JsonRpcError(jsonrpc.INVALID_REQUEST, "Invalid Request: empty batch")
        return [jsonrpc.validate_message(item) for item in payload], True
    return [jsonrpc.validate_message(payload)], False


def check_routing_headers(request: Request, messages: list[Message]) -> None:
    """``Mcp-Method``/``Mcp-Name`` must agree with the body they route (HTTP 400, -32020)."""
    headers = request.headers
    method_header = headers.get("mcp-method")
    name_header = headers.get("mcp-name")
    if method_header is None and name_header is None:
        return
    names = [name.lower() for name, _ in request.raw_headers]
    for routing in ("mcp-method", "mcp-name", "mcp-protocol-version"):
        if names.count(routing) > 1:
            raise _mismatch(f"{routing} header appears more than once")
    message = messages[0]
    if len(messages) != 1 or "method" not in message:
        raise _mismatch("Mcp-Method header on a body that is not a single request")
    if method_header is not None and method_header != message["method"]:
        raise _mismatch("Mcp-Method header does not match the request body's method")
    key = NAME_BEARING.get(message["method"])
    params = message.get("params")
    named = params.get(key) if key is not None and isinstance(params, dict) else None
    if named is not None and (name_header is None or _decode_header_value(name_header) != named):
        raise _mismatch(f"Mcp-Name header does not match the request body's {key!r}")


def _mismatch(message: str) -> JsonRpcError:
    return JsonRpcError(jsonrpc.HEADER_MISMATCH, message, status=400)


def _decode_header_value(value: str) -> str:
    """Header values that are not plain ASCII travel as ``=?base64?...?=``."""
    if value.startswith("=?base64?") and value.endswith("?="):
        try:
            return base64.b64decode(value[9:-2], validate=True).decode("utf-8")
        except ValueError:
            return value
    return value


def _meta_version(messages: list[Message]) -> str:
    params = messages[0].get("params")
    meta = params.get("_meta") if isinstance(params, dict) else None
    version = meta.get(PROTOCOL_VERSION_META) if isinstance(meta, dict) else None
    return version if isinstance(version, str) else ""


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


async def _events(response: aiohttp.ClientResponse) -> AsyncIterator[sse.Event]:
    parser = sse.Parser()
    async for chunk in response.content.iter_any():
        for event in parser.feed(chunk):
            yield event


def _content_kind(response: aiohttp.ClientResponse) -> str:
    return response.headers.get("content-type", "").split(";")[0].strip().lower()


async def _send_message(send: Send, message: Message) -> None:
    await _send_event(send, sse.message_event(jsonrpc.dumps(message).decode()))


async def _send_event(send: Send, event: sse.Event) -> None:
    await send({"type": "http.response.body", "body": event.encode(), "more_body": True})


async def _until_disconnect(request: Request, work: Awaitable[None]) -> None:
    """Run ``work``; cancel it (and so the upstream request) if the client goes away."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(request.wait_disconnect())
    try:
        done, _ = await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()
        else:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        watcher.cancel()
