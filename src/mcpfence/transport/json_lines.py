"""Line-delimited JSON-RPC streams on ``application/json`` answers (stateless 2026-07-28).

Some stateless servers (the conformance suite's reference server among them) answer a
request with a chunked ``application/json`` body that carries one JSON-RPC message per
line: notifications as they happen, then the response. A ``subscriptions/listen`` answer
is such a stream that stays open. mcpfence reads these bodies line by line, so each
message passes the pipeline and reaches the client as it arrives, one line per chunk.
See docs/reference/transports.md for which answers are read this way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

from mcpfence import jsonrpc
from mcpfence.jsonrpc import Json, JsonRpcError
from mcpfence.transport.http import Send
from mcpfence.transport.sse import MAX_EVENT_BYTES


class LineReader:
    """Lines from a byte stream as they complete, each at most ``max_line_bytes`` long.

    A line is read without its LF; the stream's unterminated tail counts as a last line.
    """

    def __init__(self, chunks: AsyncIterator[bytes], max_line_bytes: int = MAX_EVENT_BYTES) -> None:
        self._chunks = chunks
        self._max = max_line_bytes
        self._buffer = bytearray()
        self._start = 0  # where the unread part of the buffer begins
        self._scanned = 0  # how far past _start no LF was found
        self._ended = False

    async def line(self) -> bytes | None:
        """The next line, or None at the end of the stream."""
        while True:
            end = self._buffer.find(b"\n", self._start + self._scanned)
            self._scanned = (len(self._buffer) if end < 0 else end) - self._start
            if self._scanned > self._max:
                raise ValueError(f"JSON line longer than {self._max} bytes")
            if end >= 0:
                line = bytes(self._buffer[self._start : end])
                self._start, self._scanned = end + 1, 0
                return line
            if self._ended:
                return self._take(len(self._buffer)) or None
            await self._fill()

    async def rest(self, limit: int) -> bytes:
        """Everything not read yet, to the end of the stream; ValueError beyond ``limit`` bytes."""
        while not self._ended:
            if len(self._buffer) - self._start > limit:
                raise ValueError(f"answer exceeds {limit} bytes")
            await self._fill()
        if len(self._buffer) - self._start > limit:
            raise ValueError(f"answer exceeds {limit} bytes")
        return self._take(len(self._buffer))

    def _take(self, end: int) -> bytes:
        taken = bytes(self._buffer[self._start : end])
        self._start, self._scanned = end, 0
        return taken

    async def _fill(self) -> None:
        """Read one more chunk, first dropping what has been read (linear, not quadratic)."""
        if self._start:
            del self._buffer[: self._start]
            self._start = 0
        try:
            self._buffer += await anext(self._chunks)
        except StopAsyncIteration:
            self._ended = True


def whole_value(line: bytes) -> Json:
    """``line`` parsed, or None when it is not one whole, strict JSON value."""
    try:
        return jsonrpc.loads(line)
    except JsonRpcError:
        return None


async def send_line(send: Send, message: Mapping[str, object]) -> None:
    """Write one JSON-RPC message (or batch) as a line of an open ASGI streaming response."""
    await send({"type": "http.response.body", "body": jsonrpc.dumps(message) + b"\n", "more_body": True})
