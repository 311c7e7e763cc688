"""What must hold after any exchange through mcpfence, whatever either side sent."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.clients import sse_events


def assert_no_crash(response: httpx.Response, upstream_status: int | None = None) -> None:
    """mcpfence answered by itself: never its own 500 (an upstream's may be relayed)."""
    if response.status_code == 500:
        assert upstream_status == 500, f"mcpfence answered 500: {response.text[:300]!r}"
    assert response.text != "Internal Server Error", "an exception escaped to the server"


def received_messages(response: httpx.Response) -> list[Any]:
    """Every JSON-RPC message in a response body, JSON or event stream."""
    body = response.text
    if not body:
        return []
    try:
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            return [json.loads(event["data"]) for event in sse_events(body) if event.get("data")]
        value = json.loads(body)
    except ValueError:
        raise AssertionError(
            f"HTTP {response.status_code}: a body that is not JSON-RPC: {body[:200]!r}"
        ) from None
    return value if isinstance(value, list) else [value]


def answers_to(messages: list[Any], request_id: Any) -> list[Any]:
    """The responses (result or error) among ``messages`` that carry ``request_id``."""
    return [
        m
        for m in messages
        if isinstance(m, dict)
        and "method" not in m
        and ("result" in m or "error" in m)
        and m.get("id") == request_id
        and type(m.get("id")) is type(request_id)
    ]
