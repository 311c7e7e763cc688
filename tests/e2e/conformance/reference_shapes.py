"""Answers in the shapes the suite's TypeScript reference server uses and the SDK does not.

The reference server answers some 2026-07-28 requests with a chunked ``application/json``
body that carries one JSON-RPC message per line: ``subscriptions/listen`` streams (the
acknowledgement, then each change as it happens) and tool calls that stream. It also reads
header values without the whitespace around them, as HTTP defines field values; the SDK
compares them untrimmed. This ASGI middleware gives an SDK server the same shapes: it trims
header values, and re-frames the SDK's SSE answers to those requests as JSON lines, one line
per event, sent as the event is. Everything else passes through untouched.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATELESS_VERSION: Final = b"2026-07-28"
OWS: Final = b" \t"
REFRAMED_HEADERS: Final = (b"content-type", b"content-length")


class ReferenceShapes:
    """Wraps an SDK app; ``tools`` are the tools whose stateless calls answer as JSON lines."""

    def __init__(self, app: ASGIApp, tools: Iterable[str] = ()) -> None:
        self.app = app
        self.tools = frozenset(tools)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = [(name, value.strip(OWS)) for name, value in scope["headers"]]
        scope = {**scope, "headers": headers}
        if scope["method"] != "POST" or (b"mcp-protocol-version", STATELESS_VERSION) not in headers:
            await self.app(scope, receive, send)
            return
        body, receive = await _buffered(receive)
        await self.app(scope, receive, _as_json_lines(send) if self._as_lines(body) else send)

    def _as_lines(self, body: bytes) -> bool:
        try:
            message = json.loads(body)
        except ValueError:
            return False
        if not isinstance(message, dict):
            return False
        params = message.get("params")
        name = params.get("name") if isinstance(params, dict) else None
        method = message.get("method")
        return method == "subscriptions/listen" or (method == "tools/call" and name in self.tools)


async def _buffered(receive: Receive) -> tuple[bytes, Receive]:
    """The request body, and a ``receive`` that hands it to the app again before going on."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


def _as_json_lines(send: Send) -> Send:
    """A ``send`` that turns an SSE response into JSON lines; other responses pass unchanged."""
    framing = False
    pending = b""

    async def sending(message: Message) -> None:
        nonlocal framing, pending
        if message["type"] == "http.response.start":
            headers = dict(message.get("headers", []))
            framing = headers.get(b"content-type", b"").startswith(b"text/event-stream")
            if framing:
                kept = [(k, v) for k, v in message["headers"] if k not in REFRAMED_HEADERS]
                message = {**message, "headers": [*kept, (b"content-type", b"application/json")]}
            await send(message)
            return
        if not framing or message["type"] != "http.response.body":
            await send(message)
            return
        pending += message.get("body", b"").replace(b"\r\n", b"\n")
        *events, pending = pending.split(b"\n\n")
        lines = b"".join(_line(event) for event in events)
        more = message.get("more_body", False)
        if lines or not more:
            await send({"type": "http.response.body", "body": lines, "more_body": more})

    return sending


def _line(event: bytes) -> bytes:
    """An SSE event's data as one line; events without data (priming, comments) give none."""
    data = [line[5:].lstrip(b" ") for line in event.split(b"\n") if line.startswith(b"data:")]
    joined = b" ".join(data)
    return joined + b"\n" if joined.strip() else b""
