"""Printed upstream URLs keep the server's identity and lose userinfo and query."""

from __future__ import annotations

import pytest

from mcpfence.urls import redact_url, redact_urls


@pytest.mark.parametrize(
    ("url", "printed"),
    [
        ("http://127.0.0.1:9001/mcp", "http://127.0.0.1:9001/mcp"),
        ("https://user:pw@api.example.com/mcp", "https://***@api.example.com/mcp"),
        ("https://token@api.example.com/mcp", "https://***@api.example.com/mcp"),
        ("https://api.example.com/mcp?api_key=k&x=1", "https://api.example.com/mcp?***"),
        ("https://api.example.com/mcp#k", "https://api.example.com/mcp?***"),
        ("http://u:p@[::1]:8080/mcp?k=v", "http://***@[::1]:8080/mcp?***"),
        ("http://[::1/mcp?k=v", "http://***"),
        ("http://h:notaport/x?k", "http://***"),
    ],
)
def test_redact_url(url: str, printed: str) -> None:
    assert redact_url(url) == printed


def test_redact_urls_in_free_text() -> None:
    text = "upstream https://u:pw@h/mcp?key=s failed: (see http://other/x?y=z)"
    assert redact_urls(text) == "upstream https://***@h/mcp?*** failed: (see http://other/x?***)"


def test_text_without_urls_is_unchanged() -> None:
    assert redact_urls("no url: a@b?c") == "no url: a@b?c"
