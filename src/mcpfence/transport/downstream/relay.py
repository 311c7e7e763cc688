"""Streamable HTTP (MCP 2025-03-26 and later, and stateless 2026-07-28), proxied.

POST bodies are parsed, each request passes the pipeline, and what is left is
re-serialized and forwarded. The answer comes back as one JSON body, as an SSE
stream, or (stateless requests) as JSON lines; either way each message passes the
pipeline again, and a stream is relayed event by event, or line by line, as it
arrives. GET (the server's stream) and DELETE (end of session) are relayed with
the same header rules. Requests open through ``opening.py`` and are tracked by
``flows.py``, like every other path's; docs/explanation/architecture.md walks one
``tools/call`` through this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final, TypeGuard

from mcpfence import jsonrpc
from mcpfence.access.ratelimit import normalize_upstream_headers
from mcpfence.jsonrpc import Json, JsonRpcError, Message, RequestId
from mcpfence.pipeline import Context, Flow, Pipeline
from mcpfence.protocol import JSON_LINES_VERSIONS as MODERN_VERSIONS
from mcpfence.transport import json_lines, sse
from mcpfence.transport.downstream.flows import FlowTracker
from mcpfence.transport.downstream.messages import meta_version
from mcpfence.transport.downstream.opening import Opening
from mcpfence.transport.downstream.request_ids import (
    InFlight,
    MemoryInFlight,
    cancellation,
    own_id,
    restore_subscription,
    upstream_id,
)
from mcpfence.transport.headers import downstream_response_headers, upstream_request_headers
from mcpfence.transport.http import (
    JSON_HEADERS,
    RawHeaders,
    Request,
    Send,
    end_stream,
    media_type,
    send_jsonrpc_error,
    send_method_not_allowed,
    send_response,
    start_stream,
    until_disconnect,
)
from mcpfence.transport.upstream.client import (
    MAX_ANSWER_BYTES,
    HttpError,
    HttpUpstream,
    UpstreamError,
    UpstreamResponse,
)

log = logging.getLogger("mcpfence")

# Requests whose answer is a stream that stays open until a side closes it, like a GET stream.
LONG_LIVED: Final = frozenset({"subscriptions/listen"})


class Exchange(FlowTracker):
    """The flows of one POST (or GET stream), and what it forwards.

    Requests are tracked by the id each was given upstream, never the client's.
    """

    __slots__ = ("context", "forward", "given", "local", "response_headers", "upstream_headers")

    def __init__(self, pipeline: Pipeline, context: Context) -> None:
        super().__init__(pipeline)
        self.context = context
        # Every upstream id given out for this POST, with the client's id: released at its end.
        self.given: list[tuple[RequestId, str]] = []
        self.local: list[Flow] = []
        self.forward: list[Message] = []
        # Extra upstream headers addons asked for (trace context): the first forwarded flow's.
        self.upstream_headers: Mapping[str, str] = {}
        # Headers every answer to this POST carries (RateLimit-*).
        self.response_headers: RawHeaders = ()

    def local_answers(self) -> list[Message]:
        """The answers addons gave without the upstream (denials), in request order."""
        return [flow.response for flow in self.local if flow.response is not None]


@dataclass(eq=False)
class StreamableHttpRoute:
    """One configured route: relays MCP Streamable HTTP to its upstream."""

    name: str
    upstream: HttpUpstream
    pipeline: Pipeline
    opening: Opening
    in_flight: InFlight = field(default_factory=MemoryInFlight)
    # Set when the route is withdrawn (a token route expired or was revoked): open streams end.
    closed: asyncio.Event = field(default_factory=asyncio.Event, init=False)

    async def handle(self, request: Request, send: Send) -> None:
        try:
            client_id = self.opening.client(request)
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
            incoming = await self.opening.admit(request, client_id, request.headers.get("mcp-session-id", ""))
            messages, batch = incoming.messages, incoming.batch
            context = self._context(request, meta_version(messages), client_id)
            await self.pipeline.prepare(context, messages)
        except JsonRpcError as error:
            await send_jsonrpc_error(send, error)
            return
        exchange = self._start(context, messages)
        exchange.response_headers = incoming.headers
        if not exchange.forward:
            await self._reply_locally(send, exchange, batch)
            return
        payload = exchange.forward if batch else exchange.forward[0]
        deadline = None
        if batch or exchange.forward[0].get("method") not in LONG_LIVED:
            deadline = asyncio.get_running_loop().time() + self.upstream.timeout_seconds
        try:
            await self._forward(request, send, exchange, jsonrpc.dumps(payload), batch, deadline)
        except UpstreamError as error:
            await self._fail(send, exchange, error, batch)
        finally:
            for own, given in exchange.given:
                self.in_flight.discard(exchange.context.session_id, own, given)

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
        exchange = Exchange(self.pipeline, context)
        session_id = context.session_id
        for message in messages:
            if not jsonrpc.is_request(message):
                exchange.forward.append(cancellation(message, self.in_flight, session_id))
                continue
            flow = exchange.start(context, message)
            if flow.response is not None:
                exchange.local.append(flow)
            else:
                own, given = flow.request["id"], upstream_id(flow.request["id"])
                exchange.forward.append({**flow.request, "id": given})
                exchange.track(given, flow)
                exchange.given.append((own, given))
                if session_id:
                    self.in_flight.add(session_id, own, given)
                if not exchange.upstream_headers:
                    exchange.upstream_headers = flow.upstream_headers or {}
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
        deadline: float | None,
    ) -> None:
        # The context's headers: the client's, as addons left them (Mcp-Param-* follow mutations).
        headers = upstream_request_headers(exchange.context.headers, self.upstream.headers)
        headers.update(exchange.upstream_headers)
        headers["content-type"] = "application/json"
        response = await self.upstream.open("POST", headers, body, deadline)
        issued = response.headers.get("mcp-session-id")
        if issued and issued != request.headers.get("mcp-session-id"):
            await self.opening.guard.session_issued(issued)
        try:
            kind = media_type(response.headers.get("content-type", ""))
            if kind == "text/event-stream":
                pump = self._pump(send, exchange, response)
                await self._relay_stream(request, send, exchange, response, pump, sse.send_message)
            elif kind == "application/json" and self._may_stream_lines(exchange, response, batch):
                await self._relay_json_lines(request, send, exchange, response)
            else:
                await self._relay_body(send, exchange, response, batch)
        finally:
            response.release()

    @staticmethod
    def _may_stream_lines(exchange: Exchange, response: UpstreamResponse, batch: bool) -> bool:
        """Only a single stateless request's successful answer may come as JSON lines."""
        modern = exchange.context.protocol_version in MODERN_VERSIONS
        return modern and not batch and bool(exchange.pending) and response.status < 400

    def _parse_body(self, raw: bytes) -> Json:
        try:
            return jsonrpc.loads(raw)
        except JsonRpcError:
            raise UpstreamError(f"upstream {self.upstream.shown_url} sent a body that is not JSON") from None

    async def _relay_body(
        self, send: Send, exchange: Exchange, response: UpstreamResponse, batch: bool
    ) -> None:
        """Answer with a whole upstream body, checked; whatever cannot be checked is not relayed."""
        kind = media_type(response.headers.get("content-type", ""))
        if kind == "application/json" and (exchange.pending or response.status >= 400):
            raw = await self.upstream.read(response)
            try:
                parsed = jsonrpc.loads(raw)
            except JsonRpcError as error:
                await self._refuse_answer(send, exchange, response, batch, f"not JSON ({error.message})")
                return
            await self._relay_json(send, exchange, response, parsed, batch)
        elif exchange.pending:
            # A body we cannot check is not relayed: lenient clients may read it as an answer.
            await self._refuse_answer(send, exchange, response, batch, "not JSON")
        elif exchange.local:
            await self._reply_locally(send, exchange, batch)
        else:  # nothing to answer (notifications went up, or a GET or DELETE): the status alone
            await self._send_status(send, exchange, response)

    async def _send_status(self, send: Send, exchange: Exchange, response: UpstreamResponse) -> None:
        await send_response(send, response.status, b"", self._headers(response, exchange, body=False))

    async def _relay_json(
        self,
        send: Send,
        exchange: Exchange,
        response: UpstreamResponse,
        parsed: Json,
        batch: bool,
    ) -> None:
        """Check a JSON answer, whatever its status; an error naming no request fails them all."""
        answers, reason = [], ""
        for message in _as_list(parsed):
            if response.status >= 400 and self._unattributed_error(message, exchange):
                reason = f"{self._status_words(response)}: {_error_text(message)}"
                continue
            answers.extend(self._answers(exchange, [message]))
        answers.extend(exchange.local_answers())
        if response.status >= 400 and not reason:
            reason = self._status_words(response)
        answers.extend(self._unanswered(exchange, reason))
        await exchange.settle()
        if not answers:
            await self._send_status(send, exchange, response)
            return
        out = jsonrpc.dumps(answers if batch or len(answers) > 1 else answers[0])
        await send_response(send, response.status, out, self._headers(response, exchange))

    async def _refuse_answer(
        self, send: Send, exchange: Exchange, response: UpstreamResponse, batch: bool, why: str
    ) -> None:
        """Answer every pending request with -32603 for a body mcpfence cannot check.

        An error status stays the client's status (a 404 ends its session, a 429 keeps
        its ``Retry-After``); a success status with an unreadable body is a bad gateway.
        """
        if not exchange.pending:
            await self._send_status(send, exchange, response)
            return
        if response.status < 400:
            media = media_type(response.headers.get("content-type", "")) or "none"
            reason = f"upstream {self.upstream.shown_url} answered with Content-Type {media}, {why}"
            raise UpstreamError(reason)
        error = UpstreamError(self._status_words(response), status=response.status)
        headers = [*JSON_HEADERS, *self._headers(response, exchange, body=False)]
        await self._fail(send, exchange, error, batch, headers)

    def _status_words(self, response: UpstreamResponse) -> str:
        return f"upstream {self.upstream.shown_url} answered HTTP {response.status}"

    @staticmethod
    def _unattributed_error(message: Json, exchange: Exchange) -> TypeGuard[Message]:
        """An error answer whose id names none of this POST's requests (``null``, say)."""
        if not isinstance(message, dict) or not jsonrpc.is_response(message) or "error" not in message:
            return False
        return bool(exchange.pending) and jsonrpc.usable_id(message.get("id")) not in exchange.pending

    def _answer(self, exchange: Exchange, message: Json) -> Message | None:
        """Pass one upstream message through the pipeline, as an answer or on its own.

        An answer is matched by the id its request was given upstream, then takes the
        client's id back; one to a request of another exchange (a resumed stream's) is
        checked as a server message, under the client's id too. A second answer to a
        request of this exchange is dropped (None): each request is answered once; so is
        a server message an addon failed to check.
        """
        if not isinstance(message, dict):
            raise UpstreamError(f"upstream {self.upstream.shown_url} sent a non-object JSON-RPC message")
        answered = jsonrpc.usable_id(message.get("id")) if jsonrpc.is_response(message) else None
        if answered is not None:
            answer = exchange.answer(answered, message)
            if answer is not None:
                return answer
            if any(given == answered for _, given in exchange.given):
                log.warning("route %s: dropped a repeated upstream answer", self.name)
                return None
        own = own_id(answered)
        message = {**message, "id": own} if own is not None else restore_subscription(message)
        return self.pipeline.server_message(exchange.context, message)

    def _unanswered(self, exchange: Exchange, reason: str = "") -> list[Message]:
        """Errors for requests the upstream never answered, so no client waits forever."""
        if not exchange.pending:
            return []
        reason = reason or f"upstream {self.upstream.shown_url} closed the exchange without answering"
        return exchange.fail_all(reason)

    async def _fail(
        self,
        send: Send,
        exchange: Exchange,
        error: UpstreamError,
        batch: bool,
        headers: RawHeaders | None = None,
    ) -> None:
        """Answer every still-pending request with the upstream failure (-32603)."""
        answers = exchange.local_answers() + self._unanswered(exchange, error.message)
        await exchange.settle()
        body = jsonrpc.dumps(answers if batch else answers[0])
        headers = headers if headers is not None else [*JSON_HEADERS, *exchange.response_headers]
        await send_response(send, 200 if batch else error.status, body, headers)

    # -- streams ------------------------------------------------------------

    async def _relay_stream(
        self,
        request: Request,
        send: Send,
        exchange: Exchange,
        response: UpstreamResponse,
        pump: Awaitable[None],
        write: Callable[[Send, Message], Awaitable[None]],
    ) -> None:
        """Relay a streamed answer to a POST (SSE or JSON lines), checked as ``pump`` reads it.

        Once the stream has started, failures can no longer change the status: each
        request still unanswered gets its -32603 error as a last message instead.
        """
        await start_stream(send, response.status, self._headers(response, exchange))
        for answer in exchange.local_answers():
            await write(send, answer)
        reason = ""
        try:
            await until_disconnect(request, pump, self.closed)
        except TimeoutError:
            reason = self.upstream.timeout_error().message
        except (UpstreamError, HttpError, ValueError) as exc:
            reason = f"upstream {self.upstream.shown_url} stream failed: {exc}"
        unanswered = self._unanswered(exchange, reason)
        await exchange.settle()
        for answer in unanswered:
            await write(send, answer)
        await end_stream(send)

    async def _pump(
        self, send: Send, exchange: Exchange, response: UpstreamResponse, idle: float | None = None
    ) -> None:
        """Relay each event, checked, once what it answered is recorded; TimeoutError once
        ``idle`` seconds pass without a message."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout_at(None if idle is None else loop.time() + idle) as quiet:
            async for event in sse.read_events(response.content.iter_any()):
                checked = self._check_event(exchange, event)
                await exchange.settle()
                await sse.send_event(send, checked)
                if idle is not None and event.data:
                    quiet.reschedule(loop.time() + idle)

    def _check_event(self, exchange: Exchange, event: sse.Event) -> sse.Event:
        data = event.data
        if not data:
            return event
        # The event keeps its id for resumability, even when its data is dropped.
        if event.name != "message":
            # MCP messages travel only as ``message`` events; a lenient client may read others'.
            log.warning("route %s: dropped an upstream event named %r with data", self.name, event.name)
            return event.with_data("")
        checked = self._check_data(exchange, data, "event")
        return event.with_data(checked.decode() if checked is not None else "")

    def _check_data(self, exchange: Exchange, data: str | bytes, unit: str) -> bytes | None:
        """One streamed message (or batch) through the pipeline, serialized; None if unparsable.

        Unchecked is never forwarded (a lenient client could read what we cannot): an
        answer the dropped data carried becomes -32603 when the stream ends.
        """
        try:
            message = jsonrpc.loads(data)
        except JsonRpcError as error:
            log.warning("route %s: dropped an upstream %s: %s", self.name, unit, error.message)
            return None
        answers = self._answers(exchange, _as_list(message))
        if not answers:
            return None
        return jsonrpc.dumps(answers if isinstance(message, list) else answers[0])

    def _answers(self, exchange: Exchange, messages: list[Json]) -> list[Message]:
        """Each upstream message through :meth:`_answer`, repeated answers left out."""
        return [answer for m in messages if (answer := self._answer(exchange, m)) is not None]

    async def _relay_json_lines(
        self,
        request: Request,
        send: Send,
        exchange: Exchange,
        response: UpstreamResponse,
    ) -> None:
        """A stateless request's JSON answer: one document, or a stream of JSON lines.

        A first line that is not a whole JSON value means one (pretty-printed) document;
        a first line that answers the request, followed by nothing, is a plain answer.
        Anything else (a notification first, or more lines after the answer) is a stream,
        relayed line by line as it arrives.
        """
        reader = json_lines.LineReader(response.content.iter_any())
        with self._reading():
            document, head = await self._json_head(exchange, reader)
        if head is None:
            await self._relay_json(send, exchange, response, document, batch=False)
            return
        pump = self._pump_lines(send, exchange, _chain(head, reader))
        await self._relay_stream(request, send, exchange, response, pump, json_lines.send_line)

    async def _json_head(
        self, exchange: Exchange, reader: json_lines.LineReader
    ) -> tuple[Json, list[bytes] | None]:
        """Read enough to tell: ``(document, None)`` for one answer, ``(None, lines)`` for a
        stream whose first ``lines`` have been read already."""
        first = await reader.line() or b""
        message = json_lines.whole_value(first)
        if not isinstance(message, dict):  # a document spread over lines (or not JSON)
            rest = await reader.rest(MAX_ANSWER_BYTES - len(first))
            return self._parse_body(first + b"\n" + rest), None
        if jsonrpc.usable_id(message.get("id")) not in exchange.pending or not jsonrpc.is_response(message):
            return None, [first]
        following = await _next_content(reader)
        return (message, None) if following is None else (None, [first, following])

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """Failures while reading an answer not yet started: -32603 (504 on the deadline)."""
        try:
            yield
        except TimeoutError:
            raise self.upstream.timeout_error() from None
        except (HttpError, ValueError) as exc:
            raise UpstreamError(f"upstream {self.upstream.shown_url} failed: {exc}") from None

    async def _pump_lines(self, send: Send, exchange: Exchange, lines: AsyncIterator[bytes]) -> None:
        async for line in lines:
            if not line.strip():  # a keep-alive: nothing to check, and it keeps the line open
                await send({"type": "http.response.body", "body": b"\n", "more_body": True})
                continue
            checked = self._check_data(exchange, line, "line")
            await exchange.settle()
            if checked is not None:
                await send({"type": "http.response.body", "body": checked + b"\n", "more_body": True})

    async def relay(self, request: Request, send: Send, context: Context) -> None:
        """Relay a GET or DELETE; a GET holds one of the upstream's stream slots while open."""
        if request.method != "GET":
            await self._relay(request, send, context)
            return
        # A resumption (Last-Event-ID) replays one stream's events: it is no second stream of the session.
        session = "" if "last-event-id" in request.headers else context.session_id
        try:
            slot = self.upstream.streams.take(context.client_id or request.peer, session)
        except JsonRpcError as error:
            await send_jsonrpc_error(send, error)
            return
        with slot:
            await self._relay(request, send, context)

    async def _relay(self, request: Request, send: Send, context: Context) -> None:
        """One GET or DELETE; a GET's server stream passes the pipeline per message."""
        headers = upstream_request_headers(request.headers, self.upstream.headers)
        try:
            response = await self.upstream.open(request.method, headers)
        except UpstreamError as error:
            await send_jsonrpc_error(send, error)
            return
        try:
            exchange = Exchange(self.pipeline, context)
            if media_type(response.headers.get("content-type", "")) != "text/event-stream":
                try:
                    await self._relay_body(send, exchange, response, batch=False)
                except UpstreamError as error:
                    await send_jsonrpc_error(send, error)
                return
            await start_stream(send, response.status, self._headers(response, exchange))
            # A server stream that ends badly, or idles, just ends ours; the client reconnects.
            idle = self.upstream.streams.caps.idle_seconds
            with contextlib.suppress(UpstreamError, HttpError, ValueError, TimeoutError):
                await until_disconnect(request, self._pump(send, exchange, response, idle), self.closed)
            await end_stream(send)
        finally:
            response.release()

    @staticmethod
    def _headers(
        response: UpstreamResponse, exchange: Exchange, body: bool = True
    ) -> list[tuple[bytes, bytes]]:
        """The client's response headers: the upstream's, rate-limit ones normalized on a 429.

        ``body=False``: without the upstream's ``Content-Type``, for a body mcpfence wrote.
        """
        upstream: Mapping[str, str] = response.headers
        if response.status == 429:
            upstream = normalize_upstream_headers(response.headers)
        headers = downstream_response_headers(upstream.items())
        if not body:
            headers = [header for header in headers if header[0] != b"content-type"]
        return [*headers, *exchange.response_headers]


def _as_list(value: Json) -> list[Json]:
    return value if isinstance(value, list) else [value]


async def _next_content(reader: json_lines.LineReader) -> bytes | None:
    """The next line that is not blank, or None at the end of the stream."""
    while (line := await reader.line()) is not None:
        if line.strip():
            return line
    return None


async def _chain(head: list[bytes], reader: json_lines.LineReader) -> AsyncIterator[bytes]:
    """The lines already read, then the rest as they arrive."""
    for line in head:
        yield line
    while (more := await reader.line()) is not None:
        yield more


def _error_text(message: Message) -> str:
    error = message["error"]
    text = error.get("message") if isinstance(error, dict) else None
    return text if isinstance(text, str) else "an error"
