"""mcpfence as a Streamable HTTP *client*: how a legacy SSE client reaches a modern server.

A legacy client's messages arrive one by one on ``/messages``; each becomes a
POST to the upstream carrying the session id the upstream issued on
``initialize``. Answers come back as JSON or as an SSE stream and are passed
on as they arrive; after the handshake a GET stream carries what the server
sends on its own. A request's POST runs in the background, so a long tool call
never holds up the client's next message (such as its answer to a sampling
request the call is waiting for).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable

from mcpfence import jsonrpc
from mcpfence.jsonrpc import JsonRpcError, Message
from mcpfence.protocol import ROUTING_HEADER_VERSIONS as MODERN_VERSIONS
from mcpfence.transport.http import media_type
from mcpfence.transport.sse import read_events
from mcpfence.transport.upstream.client import HttpError, HttpUpstream, UpstreamError
from mcpfence.transport.upstream.link import OnClosed, OnMessage
from mcpfence.transport.upstream.sse import deliver_events


async def _ignore(_: object) -> None:
    return None


class StreamableHttpLink:
    """One upstream session, driven message by message."""

    def __init__(
        self, upstream: HttpUpstream, protocol_version: str | None = None, listen: bool = True
    ) -> None:
        self.upstream = upstream
        # Whether to hold the server's own stream (GET) open after the handshake.
        self.listen = listen
        self.session_id: str | None = None
        # Known up front only for a stateless (2026-07-28) link, which has no handshake.
        self.protocol_version = protocol_version
        self._on_message: OnMessage = _ignore
        self._on_closed: OnClosed = _ignore
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def label(self) -> str:
        return f"upstream {self.upstream.shown_url}"

    async def start(self, on_message: OnMessage, on_closed: OnClosed) -> None:
        self._on_message, self._on_closed = on_message, on_closed

    async def send(self, message: Message) -> None:
        method = message.get("method")
        if jsonrpc.is_request(message) and method != "initialize":
            self._spawn(self._post(message))
            return
        await self._post(message)  # the handshake and one-way messages keep their order
        if method == "notifications/initialized" and self.listen:
            self._spawn(self._listen())

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self.session_id is not None:
            deadline = asyncio.get_running_loop().time() + min(5.0, self.upstream.timeout_seconds)
            with contextlib.suppress(UpstreamError):
                (await self.upstream.open("DELETE", self._headers(), deadline=deadline)).release()
            self.session_id = None

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _headers(self) -> dict[str, str]:
        headers = {"accept": "application/json, text/event-stream", **self.upstream.headers}
        if self.session_id is not None:
            headers["mcp-session-id"] = self.session_id
        if self.protocol_version is not None:
            headers["mcp-protocol-version"] = self.protocol_version
        return headers

    async def _post(self, message: Message) -> None:
        headers = {**self._headers(), "content-type": "application/json"}
        if self.protocol_version in MODERN_VERSIONS and isinstance(message.get("method"), str):
            headers["mcp-method"] = message["method"]  # 2026-07-28 servers route by this header
        deadline = asyncio.get_running_loop().time() + self.upstream.timeout_seconds
        try:
            response = await self.upstream.open("POST", headers, jsonrpc.dumps(message), deadline)
        except UpstreamError as error:
            if not jsonrpc.is_request(message):
                raise
            await self._on_message(jsonrpc.error_response(message["id"], error.code, error.message))
            return
        try:
            if message.get("method") == "initialize":
                self.session_id = response.headers.get("mcp-session-id")
            kind = media_type(response.headers.get("content-type", ""))
            if response.status == 404 and self.session_id is not None:
                await self._lost("ended the session")
            elif kind == "text/event-stream":
                await deliver_events(read_events(response.content.iter_any()), self._received, self.label)
            elif kind == "application/json":
                body = await self.upstream.read(response)
                await self._deliver_json(message, body, response.status)
                return
            if response.status >= 400 and jsonrpc.is_request(message):
                await self._fail(message, f"{self.label} answered HTTP {response.status}")
        except UpstreamError as error:
            if jsonrpc.is_request(message):
                await self._fail(message, error.message)
        except (HttpError, ValueError) as exc:
            if jsonrpc.is_request(message):
                await self._fail(message, f"{self.label} broke its answer: {exc or type(exc).__name__}")
        finally:
            response.release()

    async def _fail(self, message: Message, reason: str) -> None:
        await self._on_message(jsonrpc.error_response(message["id"], jsonrpc.INTERNAL_ERROR, reason))

    async def _deliver_json(self, message: Message, body: bytes, status: int) -> None:
        try:
            parsed = jsonrpc.loads(body)
        except JsonRpcError:
            parsed = None
        values = parsed if isinstance(parsed, list) else [parsed]
        answers = [value for value in values if isinstance(value, dict)]
        if len(answers) != len(values):  # not JSON-RPC answers, not even in part
            answers = []
        for answer in answers:
            await self._received(answer)
        answered = any(answer.get("id") == message.get("id") for answer in answers)
        if jsonrpc.is_request(message) and not answered:
            await self._fail(message, f"{self.label} answered HTTP {status} without a JSON-RPC answer")

    async def _received(self, message: Message) -> None:
        result = message.get("result")
        if isinstance(result, dict) and isinstance(result.get("protocolVersion"), str):
            self.protocol_version = result["protocolVersion"]
        await self._on_message(message)

    async def _listen(self) -> None:
        """The server's own stream; a server without one answers 405, and that is fine."""
        headers = {**self._headers(), "accept": "text/event-stream"}
        with contextlib.suppress(UpstreamError, HttpError, ValueError):
            response = await self.upstream.open("GET", headers)
            try:
                if response.status == 200:
                    await deliver_events(read_events(response.content.iter_any()), self._received, self.label)
            finally:
                response.release()

    async def _lost(self, reason: str) -> None:
        self.session_id = None
        await self._on_closed(reason)
