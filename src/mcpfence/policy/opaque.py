"""Opaque tokens (docs/reference/policies.md#opaque-tokens): strings the model must pass back verbatim.

Models "helpfully" edit tokens: lowercase them, trim them, URL-decode or encode
them, add or drop base64 padding. Each known token is indexed once under a
canonical form that undoes all of those edits; checking a call then costs one
normalization of the argument and one dict lookup, however many tokens the
session has seen. The proxy keeps one :class:`TokenMemory` per session and
passes it as ``ToolCall.known_tokens``, so the index is never rebuilt per call.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit


def canonical(token: str) -> str:
    """``token`` with the likely model edits undone, so edited copies compare equal."""
    value = token.strip()
    for _ in range(2):  # tokens URL-encoded twice are common in tracked links
        decoded = unquote(value)
        if decoded == value:
            break
        value = decoded
    return value.strip().rstrip("=").lower()


class TokenMemory:
    """Verbatim tokens plus an index from canonical form to the verbatim token."""

    def __init__(self, tokens: Iterable[str] = ()) -> None:
        self._tokens: dict[str, None] = {}
        self._by_canonical: dict[str, str] = {}
        for token in tokens:
            self.add(token)

    def add(self, token: str) -> None:
        """Remember ``token``; a later token with the same canonical form takes over the index."""
        self._tokens[token] = None
        self._by_canonical[canonical(token)] = token

    def discard(self, token: str) -> None:
        """Forget ``token`` (the caller's memory bound evicts the oldest)."""
        if token not in self._tokens:
            return
        del self._tokens[token]
        key = canonical(token)
        if self._by_canonical.get(key) == token:
            # Another known token may share the canonical form: it keeps the index entry.
            survivor = next((t for t in reversed(self._tokens) if canonical(t) == key), None)
            if survivor is None:
                del self._by_canonical[key]
            else:
                self._by_canonical[key] = survivor

    def __contains__(self, token: object) -> bool:
        return token in self._tokens

    def __iter__(self) -> Iterator[str]:
        return iter(self._tokens)

    def __len__(self) -> int:
        return len(self._tokens)

    def original_of(self, value: str) -> str | None:
        """The known token ``value`` is an edited copy of; ``None`` if known or unrelated."""
        if value in self._tokens:
            return None
        return self._by_canonical.get(canonical(value))


def as_memory(tokens: Iterable[str]) -> TokenMemory:
    """Reuse a caller's :class:`TokenMemory`; index any other collection once."""
    return tokens if isinstance(tokens, TokenMemory) else TokenMemory(tokens)


def harvest(value: Any, patterns: Sequence[re.Pattern[str]]) -> Iterator[str]:
    """Strings in a tool result that match an opaque pattern, whole or as a URL query value.

    Tokens often travel inside links (``...?blob=TOKEN``), so query values of
    URL-looking strings are tried as well as each string itself; text content
    that is itself JSON (as most MCP servers return) is searched inside.
    """
    if isinstance(value, dict):
        for item in value.values():
            yield from harvest(item, patterns)
    elif isinstance(value, list):
        for item in value:
            yield from harvest(item, patterns)
    elif isinstance(value, str):
        if value[:1] in ("{", "["):
            try:
                yield from harvest(json.loads(value), patterns)
                return
            except ValueError:
                pass
        candidates = [value]
        if "?" in value and "=" in value:
            candidates += [v for _, v in parse_qsl(urlsplit(value.strip()).query)]
        for candidate in candidates:
            if any(pattern.search(candidate) for pattern in patterns):
                yield candidate
