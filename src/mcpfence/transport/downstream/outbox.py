"""Where hosted sessions put messages for the client: SSE streams fed by queues."""

from __future__ import annotations

import asyncio
from typing import Final

from mcpfence.jsonrpc import Message, RequestId
from mcpfence.transport.http import SSE_HEADERS, Request, Send, start_stream, until_disconnect
from mcpfence.transport.sse import Event, send_event, send_message

# Messages kept for a client that has no stream open; beyond this the oldest go.
MAX_QUEUED: Final = 1000


class StreamQueue:
    """Messages waiting for one long-lived SSE stream; ``close()`` ends the stream."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Message | None] = asyncio.Queue()
        self.listeners = 0

    def put(self, message: Message | None) -> None:
        """Queue ``message`` (None ends the stream); when full, the oldest goes, so memory stays bounded."""
        if self._queue.qsize() >= MAX_QUEUED:
            self._queue.get_nowait()
        self._queue.put_nowait(message)

    async def serve(self, request: Request, send: Send, *first: Event) -> None:
        """Open an SSE response and carry this queue on it: ``first``, then each message
        as it is queued, until the queue closes or the client leaves. The caller ends it."""
        await start_stream(send, 200, SSE_HEADERS)
        for event in first:
            await send_event(send, event)
        await until_disconnect(request, self.drain(send))

    async def drain(self, send: Send) -> None:
        """Send queued messages as they come, until the queue is closed."""
        self.listeners += 1
        try:
            while (message := await self._queue.get()) is not None:
                await send_message(send, message)
            self._queue.put_nowait(None)  # every other listener ends too
        finally:
            self.listeners -= 1


class LegacyOutbox:
    """A legacy SSE session: everything goes down its one stream."""

    def __init__(self) -> None:
        self.stream = StreamQueue()

    async def put(self, message: Message, request_id: RequestId | None) -> None:
        self.stream.put(message)

    def busy(self) -> bool:
        return True

    def close(self) -> None:
        self.stream.put(None)


class PostStream:
    """The answer to one POST: the requests it carried, and what arrived for them."""

    def __init__(self, request_ids: list[RequestId]) -> None:
        self.ids = set(request_ids)
        self.waiting = set(request_ids)
        self.queue: asyncio.Queue[Message] = asyncio.Queue()


class HostedOutbox:
    """A Streamable HTTP session: answers on their POST, the rest where the client listens.

    A message the server sends on its own goes to the newest open POST stream (a
    stdio server's sampling request belongs to the call in flight), else to the
    GET stream, where it waits if the client has none open yet.
    """

    def __init__(self) -> None:
        self.posts: list[PostStream] = []
        self.general = StreamQueue()

    async def put(self, message: Message, request_id: RequestId | None) -> None:
        if request_id is not None:
            target = next((post for post in self.posts if request_id in post.ids), None)
        else:
            target = self.posts[-1] if self.posts else None
        if target is not None:
            target.queue.put_nowait(message)
        else:
            self.general.put(message)

    def busy(self) -> bool:
        return bool(self.posts) or self.general.listeners > 0

    def close(self) -> None:
        self.general.put(None)
