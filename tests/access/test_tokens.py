"""Route tokens in URLs and API tokens in Authorization headers."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from mcpfence.access.store import ApiToken, SQLiteStore, TokenRoute
from mcpfence.access.tokens import (
    ApiTokens,
    bearer_token,
    find_route,
    hash_token,
    new_api_token,
    new_route_token,
    route_token_from_path,
)

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def test_route_tokens_are_64_lowercase_hex_characters() -> None:
    token = new_route_token()
    assert len(token) == 64
    assert set(token) <= set("0123456789abcdef")
    assert token != new_route_token()


def test_token_is_read_from_a_route_path_and_its_sub_paths() -> None:
    token = "ab" * 32
    assert route_token_from_path(f"/mcp/{token}") == token
    assert route_token_from_path(f"/mcp/{token}/sse") == token


@pytest.mark.parametrize(
    "path", ["/mcp/", "/mcp/" + "ab" * 31, "/mcp/" + "AB" * 32, "/mcp/" + "ab" * 33, "/ipost/mcp"]
)
def test_paths_without_a_well_formed_token_carry_none(path: str) -> None:
    assert route_token_from_path(path) is None


@pytest.mark.parametrize(
    ("header", "token"),
    [("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("Basic abc", None), ("Bearer", None), (None, None)],
)
def test_bearer_token_is_parsed_from_the_header(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


@pytest.mark.anyio
async def test_api_token_verifies_to_its_name(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db")
    secret = new_api_token()
    await store.add_api_token(ApiToken("agent", hash_token(secret), NOW))
    await store.add_api_token(ApiToken("other", hash_token(new_api_token()), NOW))
    tokens = ApiTokens(store)
    assert tokens.verify(f"Bearer {secret}") == "agent"
    assert tokens.verify("Bearer wrong") is None
    assert tokens.verify(None) is None


@pytest.mark.anyio
async def test_find_route_resolves_a_request_path(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db")
    token = new_route_token()
    route = TokenRoute("r1", "acme", hash_token(token), "crm", ("read",), (), None, False, NOW)
    await store.add_route(route)
    assert find_route(store, f"/mcp/{token}") == route
    assert find_route(store, f"/mcp/{new_route_token()}") is None
    assert find_route(store, "/crm/mcp") is None
