"""Which listing judges a call: the session's own, else the route's, until the list changes."""

from __future__ import annotations

from typing import Any

from mcpfence.catalog import ToolCatalog


def tool(name: str, kind: str) -> dict[str, Any]:
    return {"name": name, "inputSchema": {"type": "object", "properties": {"v": {"type": kind}}}}


def kind_of(catalog: ToolCatalog, name: str, session: str = "") -> Any:
    schema = catalog.input_schema("r", name, session)
    return None if schema is None else schema.schema["properties"]["v"]["type"]


def test_a_session_is_judged_by_the_list_it_was_given() -> None:
    catalog = ToolCatalog()
    catalog.learn("r", [tool("t", "string")], "a")
    catalog.learn("r", [tool("t", "integer")], "b")
    assert (kind_of(catalog, "t", "a"), kind_of(catalog, "t", "b")) == ("string", "integer")


def test_a_session_that_never_listed_uses_the_routes_latest_list() -> None:
    catalog = ToolCatalog()
    catalog.learn("r", [tool("t", "string")], "a")
    assert kind_of(catalog, "t", "c") == "string"


def test_a_later_page_adds_to_the_sessions_list() -> None:
    catalog = ToolCatalog()
    catalog.learn("r", [tool("t", "string")], "a")
    catalog.learn("r", [tool("u", "integer")], "a", page=True)
    assert (kind_of(catalog, "t", "a"), kind_of(catalog, "u", "a")) == ("string", "integer")


def test_list_changed_forgets_the_session_and_the_route() -> None:
    catalog = ToolCatalog()
    catalog.learn("r", [tool("t", "string")], "a")
    catalog.forget("r", "a")
    assert not catalog.listed("r", "a")
    assert kind_of(catalog, "t", "a") is None


def test_a_tool_listed_without_a_schema_has_none() -> None:
    catalog = ToolCatalog()
    catalog.learn("r", [{"name": "t"}])
    assert catalog.knows("r", "t")
    assert catalog.input_schema("r", "t") is None


def test_sessions_told_the_same_tool_share_one_record() -> None:
    catalog = ToolCatalog()
    catalog.learn("r", [tool("t", "string")], "a")
    catalog.learn("r", [tool("t", "string")], "b")
    assert catalog._tool("r", "t", "a") is catalog._tool("r", "t", "b")
