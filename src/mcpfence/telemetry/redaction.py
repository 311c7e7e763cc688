"""Replacing values at JSON Pointer paths (RFC 6901) with a marker, without mutation.

Only the containers along each path are copied, so the caller's arguments, which
may still be on their way upstream, are never changed. Pointers are parsed with
:func:`mcpfence.policy.pointer.parse_pointer`, the same parser policies use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

REDACTED = "[REDACTED]"


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
