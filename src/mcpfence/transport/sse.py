"""Server-Sent Events, parsed incrementally and written back field by field.

mcpfence must see each JSON-RPC message inside a stream (to check tool lists and
remember opaque tokens) yet pass everything else through untouched: event ids
(resumability), ``retry:``, comments (keep-alives) and priming events whose data
is empty. So an event is kept as its ordered lines, and only ``data`` changes.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final

from mcpfence import jsonrpc
from mcpfence.transport.http import Send

BOM: Final = "\ufeff".encode()
# The largest single event mcpfence holds to check it (a list page of several megabytes fits).
MAX_EVENT_BYTES: Final = 16 * 1024 * 1024


@dataclass
class Event:
    """One event as its ordered ``(field, value)`` lines; a comment has field ``""``."""

    lines: list[tuple[str, str]] = field(default_factory=list)

    @property
    def data(self) -> str | None:
        """The joined data lines, or None when the event carries none."""
        parts = [value for name, value in self.lines if name == "data"]
        return "\n".join(parts) if parts else None

    @property
    def name(self) -> str:
        """The last ``event`` field, as clients read it; unnamed (or named ``""``), ``message``."""
        names = [value for name, value in self.lines if name == "event"]
        return (names[-1] if names else "") or "message"

    def with_data(self, data: str) -> Event:
        """The same event with its data replaced, at the place the data stood."""
        lines: list[tuple[str, str]] = []
        placed = False
        for name, value in self.lines:
            if name != "data":
                lines.append((name, value))
            elif not placed:
                lines.extend(("data", part) for part in data.split("\n"))
                placed = True
        return Event(lines)

    def encode(self) -> bytes:
        """Wire bytes in the form servers write (``name: value``; ``data:`` alone when empty)."""
        out = []
        for name, value in self.lines:
            out.append(f":{value}" if name == "" else f"{name}: {value}" if value else f"{name}:")
        return ("\n".join(out) + "\n\n").encode("utf-8")


def message_event(data: str, event_id: str | None = None) -> Event:
    """A new ``message`` event, for answers mcpfence adds to a stream itself."""
    lines = [("event", "message")]
    if event_id is not None:
        lines.append(("id", event_id))
    lines.extend(("data", part) for part in data.split("\n"))
    return Event(lines)


class Parser:
    """Feeds on byte chunks as they arrive; yields each event once it is complete.

    Only each new chunk is normalised and searched, so a large event (a list page of
    several megabytes) arriving in many chunks costs linear time, not quadratic.
    """

    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self._buffer = bytearray()
        self._max = max_event_bytes
        self._held_cr = False  # the last chunk ended in CR: maybe half of a CRLF
        self._head: bytearray | None = bytearray()  # the stream's first bytes, until past a BOM

    def feed(self, chunk: bytes) -> Iterator[Event]:
        if self._head is not None:  # clients drop a BOM opening the stream; so must we
            self._head += chunk
            if len(self._head) < len(BOM) and BOM.startswith(self._head):
                return
            chunk, self._head = bytes(self._head).removeprefix(BOM), None
        if self._held_cr:
            chunk, self._held_cr = b"\r" + chunk, False
        if chunk.endswith(b"\r"):
            chunk, self._held_cr = chunk[:-1], True
        if b"\r" in chunk:  # CRLF and CR line ends become LF
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        start = max(0, len(self._buffer) - 1)  # a blank line may straddle the chunks
        self._buffer += chunk
        while (end := self._buffer.find(b"\n\n", start)) >= 0:
            block = bytes(self._buffer[:end])
            del self._buffer[: end + 2]
            start = 0
            event = _parse_block(block.decode("utf-8"))
            if event.lines:
                yield event
        if len(self._buffer) > self._max:
            raise ValueError(f"SSE event larger than {self._max} bytes")

    def finish(self) -> Iterator[Event]:
        """At the end of the stream, a CR held back as half of a CRLF was a line end after all."""
        if self._held_cr:
            self._held_cr = False
            yield from self.feed(b"\n")


def _parse_block(block: str) -> Event:
    event = Event()
    for line in block.split("\n"):
        if line.startswith(":"):
            event.lines.append(("", line[1:]))
            continue
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name:
            event.lines.append((name, value))
    return event


async def read_events(chunks: AsyncIterable[bytes]) -> AsyncIterator[Event]:
    """Events from a byte stream (an upstream response body), each as soon as it is complete."""
    parser = Parser()
    async for chunk in chunks:
        for event in parser.feed(chunk):
            yield event
    for event in parser.finish():
        yield event


async def send_event(send: Send, event: Event) -> None:
    """Write one event to an open ASGI streaming response."""
    await send({"type": "http.response.body", "body": event.encode(), "more_body": True})


async def send_message(send: Send, message: Mapping[str, object]) -> None:
    """Write one JSON-RPC message as a new ``message`` event."""
    await send_event(send, message_event(jsonrpc.dumps(message).decode()))
