"""Replacing values at JSON Pointer paths (RFC 6901) with a marker, without mutation.

Only the containers along each path are copied, so the caller's arguments, which
may still be on their way upstream, are never changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

REDACTED = "[REDACTED]"


def parse_pointer(pointer: str) -> tuple[str, ...]:
    """The reference tokens of ``pointer``; ``""`` is the whole document."""
    if pointer == "":
        return ()
    if not pointer.startswith("/"):
        raise ValueError(f"JSON Pointer must be empty or start with '/': {pointer!r}")
    return tuple(t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/"))


def redact(value: Any, paths: Sequence[tuple[str, ...]]) -> Any:
    """``value`` with every existing path replaced by ``[REDACTED]``; missing paths are skipped."""
    for tokens in paths:
        value = _redact_one(value, tokens)
    return value


def _redact_one(value: Any, tokens: tuple[str, ...]) -> Any:
    if not tokens:
        return REDACTED
    head, rest = tokens[0], tokens[1:]
    if isinstance(value, dict) and head in value:
        return {**value, head: _redact_one(value[head], rest)}
    if isinstance(value, list) and head.isdigit() and int(head) < len(value):
        index = int(head)
        return [*value[:index], _redact_one(value[index], rest), *value[index + 1 :]]
    return value
