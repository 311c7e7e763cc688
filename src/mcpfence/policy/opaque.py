"""Opaque tokens: strings the model must pass back verbatim.

A token has no format mcpfence could check: it is whatever the tool accepts. What
mcpfence can check is that a value at an opaque path is not an *edited copy* of a
token this session saw in an earlier tool result. Models "helpfully" edit tokens:
they change case, trim or pad them, URL-decode or encode them, drop or add base64
padding, cut them short, slip one character, or pass the whole tracked link instead
of its ``blob`` value. A value never seen and not close to a seen token is allowed.

Each known token is indexed once under a canonical form that undoes case, trimming,
URL encoding and padding; checking a call costs one normalization, one dict lookup,
one bisection for truncation, and for a one-character slip a look at the few known
tokens that share its first or last characters (one edit leaves one end intact).
The proxy keeps one :class:`TokenMemory` per session and passes it as
``ToolCall.known_tokens``, so the index is never rebuilt per call.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

# A cut-short copy is recognized from this many characters on: shorter prefixes of a
# known token are too often a different, legitimate value.
MIN_PREFIX_LENGTH = 8
# A one-character slip is recognized only between tokens this long: two distinct short
# values (sequential ids) often differ by one character; two long tokens almost never.
MIN_SLIP_LENGTH = 16
# Without a pattern, every result string of this shape is remembered as a possible token.
_TOKEN_LIKE = re.compile(r"\S{6,1024}")
# Result values are searched this deep (JSON text inside a string counts as a level);
# deeper values are not searched, so a hostile result cannot exhaust the stack.
MAX_NESTING = 32


def canonical(token: str) -> str:
    """``token`` with the likely model edits undone, so edited copies compare equal."""
    value = token.strip()
    for _ in range(2):  # tokens URL-encoded twice are common in tracked links
        decoded = unquote(value)
        if decoded == value:
            break
        value = decoded
    return value.strip().rstrip("=").lower()


def one_slip_apart(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` differ by one inserted, deleted or replaced character,
    or by two neighbours swapped."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    if len(a) < len(b):
        return a[i:] == b[i + 1:]
    if a[i + 1:] == b[i + 1:]:
        return True  # one character replaced
    return a[i:i + 2] == b[i + 1:i + 2] + b[i:i + 1] and a[i + 2:] == b[i + 2:]


class TokenMemory:
    """Verbatim tokens plus the indexes that find the one a value was edited from."""

    def __init__(self, tokens: Iterable[str] = ()) -> None:
        self._tokens: dict[str, None] = {}
        self._by_canonical: dict[str, str] = {}
        self._sorted: list[str] = []  # canonical forms, for truncation by bisection
        # Canonical forms long enough for slips, by their first and by their last characters.
        self._by_end: dict[str, set[str]] = {}
        for token in tokens:
            self.add(token)

    def add(self, token: str) -> None:
        """Remember ``token``; a later token with the same canonical form takes over the index."""
        self._tokens[token] = None
        key = canonical(token)
        if key not in self._by_canonical:
            bisect.insort(self._sorted, key)
            for end in _ends(key):
                self._by_end.setdefault(end, set()).add(key)
        self._by_canonical[key] = token

    def discard(self, token: str) -> None:
        """Forget ``token`` (the caller's memory bound evicts the oldest)."""
        if token not in self._tokens:
            return
        del self._tokens[token]
        key = canonical(token)
        if self._by_canonical.get(key) != token:
            return
        # Another known token may share the canonical form: it keeps the index entry.
        survivor = next((t for t in reversed(self._tokens) if canonical(t) == key), None)
        if survivor is not None:
            self._by_canonical[key] = survivor
            return
        del self._by_canonical[key]
        del self._sorted[bisect.bisect_left(self._sorted, key)]
        for end in _ends(key):
            sharing = self._by_end[end]
            sharing.discard(key)
            if not sharing:
                del self._by_end[end]

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
        key = canonical(value)
        found = self._by_canonical.get(key) or self._cut_short(key) or self._slipped(key)
        return found or self._inside_link(value)

    def _cut_short(self, key: str) -> str | None:
        if len(key) < MIN_PREFIX_LENGTH:
            return None
        at = bisect.bisect_left(self._sorted, key)
        if at < len(self._sorted) and self._sorted[at].startswith(key):
            return self._by_canonical[self._sorted[at]]
        return None

    def _slipped(self, key: str) -> str | None:
        if len(key) < MIN_SLIP_LENGTH - 1:
            return None
        head, tail = key[:_END], key[-_END:]
        candidates = self._by_end.get("^" + head, set()) | self._by_end.get("$" + tail, set())
        found = next((known for known in candidates if one_slip_apart(key, known)), None)
        return None if found is None else self._by_canonical[found]

    def _inside_link(self, value: str) -> str | None:
        """A known token that ``value`` carries as a query value (the whole link was sent)."""
        if "?" not in value or "=" not in value:
            return None
        return next((v for _, v in _query_values(value) if v in self._tokens), None)


_END = MIN_SLIP_LENGTH // 2 - 1  # one edit in a token this long leaves one end this long intact


def _ends(key: str) -> tuple[str, ...]:
    """The index keys of a canonical form long enough for slips: its head and its tail."""
    return ("^" + key[:_END], "$" + key[-_END:]) if len(key) >= MIN_SLIP_LENGTH else ()


def as_memory(tokens: Iterable[str]) -> TokenMemory:
    """Reuse a caller's :class:`TokenMemory`; index any other collection once."""
    return tokens if isinstance(tokens, TokenMemory) else TokenMemory(tokens)


def _query_values(text: str) -> list[tuple[str, str]]:
    try:
        return parse_qsl(urlsplit(text.strip()).query)
    except ValueError:  # an unparsable netloc (``http://[::1``): no query to read
        return []


def _embedded_json(text: str) -> Any:
    """JSON text inside a string (as most MCP servers return results), else ``None``."""
    if text[:1] not in ("{", "["):
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _candidates(text: str) -> list[str]:
    candidates = [text]
    if "?" in text and "=" in text:
        candidates += [v for _, v in _query_values(text)]
    return candidates


def harvest(value: Any, patterns: Sequence[re.Pattern[str]] | None) -> Iterator[str]:
    """Strings in a tool result that may be tokens, whole or as a URL query value.

    With ``patterns``, a string is a token when one matches it; with ``None``, every
    string without whitespace of 6 to 1,024 characters is. Tokens often travel inside
    links (``...?blob=TOKEN``), so query values of URL-looking strings are tried as
    well; text that is itself JSON is searched inside. The walk is iterative and
    stops at :data:`MAX_NESTING` levels, so no result can make it raise.
    """
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            embedded = _embedded_json(item) if depth < MAX_NESTING else None
            if embedded is not None:
                pending.append((embedded, depth + 1))
                continue
            for candidate in _candidates(item):
                if patterns is None:
                    if _TOKEN_LIKE.fullmatch(candidate):
                        yield candidate
                elif any(pattern.search(candidate) for pattern in patterns):
                    yield candidate
            continue
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        if children and depth < MAX_NESTING:
            pending.extend((child, depth + 1) for child in reversed(list(children)))
