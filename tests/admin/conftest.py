"""A real upstream MCP server and a running admin API for the access tests."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

from mcpfence.access.store import SQLiteStore
from mcpfence.admin.app import PolicySetSummary, create_admin_app
from tests.servers import serve_asgi

ADMIN_TOKEN = "test-admin-token-0123456789"
TAGS = {"contacts": ["*contact*"], "journeys": ["*journey*"]}


def upstream_server() -> MCPServer:
    """A small CRM-like server with one tool of each kind."""
    server: MCPServer = MCPServer("crm")

    @server.tool()
    def list_contacts() -> str:
        return "[]"

    @server.tool()
    def create_contact(email: str) -> str:
        return email

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    def lookup_journey(journey_id: str) -> str:
        return journey_id

    @server.tool()
    def send_journey(journey_id: str) -> str:
        return journey_id

    return server


async def list_upstream_tools(url: str) -> list[tuple[str, Mapping[str, Any] | None]]:
    """What the proxy will give the admin API: tools with wire-format annotations."""
    async with (
        streamable_http_client(url) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        result = await session.list_tools()
    return [
        (t.name, t.annotations.model_dump(by_alias=True, exclude_none=True) if t.annotations else None)
        for t in result.tools
    ]


@pytest.fixture(scope="module")
def upstream_url() -> Iterator[str]:
    with serve_asgi(upstream_server().streamable_http_app()) as base:
        yield base + "/mcp"


@dataclass
class Admin:
    url: str
    store: SQLiteStore
    db_path: Path
    removed: list[str]

    def client(self, token: str | None = ADMIN_TOKEN) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


@pytest.fixture
def admin(tmp_path: Path, upstream_url: str) -> Iterator[Admin]:
    db_path = tmp_path / "mcpfence.db"
    store = SQLiteStore(db_path)
    removed: list[str] = []

    async def list_tools(upstream: str) -> list[tuple[str, Mapping[str, Any] | None]]:
        assert upstream == "crm"
        return await list_upstream_tools(upstream_url)

    async def on_route_removed(route_id: str) -> None:
        removed.append(route_id)

    app = create_admin_app(
        store,
        public_url="http://proxy.example:8080",
        upstreams=["crm"],
        tag_globs=TAGS,
        list_tools=list_tools,
        policies=lambda: PolicySetSummary("sha256:abc", ["crm-lowercase-emails"]),
        on_route_removed=on_route_removed,
        admin_token=ADMIN_TOKEN,
    )
    with serve_asgi(app) as url:
        yield Admin(url, store, db_path, removed)
    store.close()
