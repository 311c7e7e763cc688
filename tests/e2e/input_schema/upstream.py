"""A small CRM-like SDK server whose tool schemas the argument-check tests rely on.

Like the real APIs the packs guard, it coerces what a model sends: the SDK turns
``"false"`` into ``False`` and ``"412"`` into ``412``, so the tests can show what
the upstream would have done. Run as a script, it serves the same tools on stdio.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel

Asgi = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]

TAG_SCHEMA = {
    "type": "object",
    "properties": {"id": {"type": "string"}, "tag": {"type": "string"}},
    "required": ["id", "tag"],
    "additionalProperties": False,
}
LIMIT_SCHEMA = {"type": "object", "properties": {"limit": {"type": "integer"}}, "required": ["limit"]}
TIGHT_LIMIT_SCHEMA = {
    "type": "object",
    "properties": {"limit": {"type": "integer", "maximum": 10}},
    "required": ["limit"],
}


class Recipient(BaseModel):
    Contact_ID: int


class Crm:
    """The upstream's state, which the tests read after each call."""

    def __init__(self) -> None:
        self.opted_in: dict[str, bool | None] = {}
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.tool_lists = 0  # tools/list requests that reached this server

    def reset(self) -> None:
        self.opted_in = {"100001": True}
        self.received.clear()

    def server(self) -> MCPServer:
        server = MCPServer("crm")

        @server.tool()
        def update_contact(id: str, GlobalEmailStatus: bool) -> str:
            """Opt a contact in (true) or out (false) of email."""
            self.received.append(("update_contact", {"id": id, "GlobalEmailStatus": GlobalEmailStatus}))
            self.opted_in[id] = GlobalEmailStatus
            return "updated"

        @server.tool()
        def set_status(id: str, status: bool | None) -> str:
            self.received.append(("set_status", {"id": id, "status": status}))
            self.opted_in[id] = status
            return "updated"

        @server.tool()
        def start_journey(journey_id: int, Recipients: list[Recipient]) -> str:
            ids = [r.Contact_ID for r in Recipients]
            self.received.append(("start_journey", {"journey_id": journey_id, "Recipients": ids}))
            return "started"

        @server.tool()
        def tag_contact(id: str, tag: str) -> str:
            self.received.append(("tag_contact", {"id": id, "tag": tag}))
            return "tagged"

        @server.tool()
        def set_limit(limit: int) -> str:
            self.received.append(("set_limit", {"limit": limit}))
            return "set"

        @server.tool()
        async def tighten_limits(ctx: Context) -> str:
            """Lower set_limit's ceiling to 10 and tell clients the tool list changed."""
            advertise(server, "set_limit", TIGHT_LIMIT_SCHEMA)
            await ctx.session.send_tool_list_changed()
            return "tightened"

        advertise(server, "tag_contact", TAG_SCHEMA)
        advertise(server, "set_limit", LIMIT_SCHEMA)
        return server

    def app(self) -> Asgi:
        """The Streamable HTTP app, counting the tools/list requests it receives."""
        inner: Asgi = self.server().streamable_http_app()

        async def app(
            scope: MutableMapping[str, Any],
            receive: Callable[[], Awaitable[Any]],
            send: Callable[[Any], Awaitable[None]],
        ) -> None:
            if scope["type"] != "http" or scope["method"] != "POST":
                await inner(scope, receive, send)
                return
            chunks = []
            while True:
                chunk = await receive()
                chunks.append(chunk)
                if not chunk.get("more_body"):
                    break
            if b'"tools/list"' in b"".join(c.get("body", b"") for c in chunks):
                self.tool_lists += 1

            async def replay() -> Any:
                return chunks.pop(0) if chunks else await receive()

            await inner(scope, replay, send)

        return app


def advertise(server: MCPServer, tool_name: str, schema: dict[str, Any]) -> None:
    """Publish ``schema`` verbatim for a tool (the SDK derives a plainer one from the signature)."""
    tool = server._tool_manager.get_tool(tool_name)
    assert tool is not None
    tool.parameters = schema


if __name__ == "__main__":
    Crm().server().run("stdio")
