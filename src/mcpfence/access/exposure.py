"""Which upstream tools a route exposes: method kinds (read/write/custom) and tag globs.

Classification precedence (MCP's annotations leave it open; this is the decision):

1. ``readOnlyHint: true`` -> ``read``. MCP defines ``destructiveHint`` as meaningful
   only when the tool is not read-only, so a tool claiming both is read.
2. ``destructiveHint: true`` -> ``write``.
3. Name prefixes (case-insensitive): ``list_``/``get_``/``search_`` -> ``read``,
   ``create_``/``update_``/``delete_`` -> ``write`` -- except that a tool whose
   annotations say ``readOnlyHint: false`` is never classified ``read`` by its name:
   the server declared that it changes something, and a read-only route must not
   expose it.
4. Everything else -> ``custom``.

The finer method names ``get``, ``list`` (within ``read``) and ``create``, ``update``,
``delete`` (within ``write``) select the tools of that kind whose name starts with
the method and ``_``, so ``["read", "update"]`` exposes reads and updates only. A
finer name never selects a tool of another kind: ``get`` does not expose a
``get_and_reset`` that declares ``readOnlyHint: false``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any, Literal, get_args

ToolKind = Literal["read", "write", "custom"]
TOOL_KINDS: tuple[ToolKind, ...] = get_args(ToolKind)
MethodName = Literal["read", "write", "custom", "get", "list", "create", "update", "delete"]
METHOD_NAMES: tuple[MethodName, ...] = get_args(MethodName)
# Each finer method name: the kind it lies within.
_FINER: dict[str, ToolKind] = {
    "get": "read", "list": "read", "create": "write", "update": "write", "delete": "write",
}

_READ_PREFIXES = ("list_", "get_", "search_")
_WRITE_PREFIXES = ("create_", "update_", "delete_")


def tool_kind(name: str, annotations: Mapping[str, Any] | None) -> ToolKind:
    """Classify a tool from its wire-format annotations (``readOnlyHint``...) and name."""
    hints = annotations or {}
    read_only = hints.get("readOnlyHint")
    if read_only is True:
        return "read"
    if hints.get("destructiveHint") is True:
        return "write"
    lowered = name.lower()
    if lowered.startswith(_READ_PREFIXES) and read_only is not False:
        return "read"
    if lowered.startswith(_WRITE_PREFIXES):
        return "write"
    return "custom"


MAX_CACHED = 4096


class Exposure:
    """A route's tool filter; decisions are cached because every list and call asks."""

    def __init__(
        self,
        methods: frozenset[str],
        tags: tuple[str, ...],
        tag_globs: Mapping[str, Sequence[str]],
    ) -> None:
        unknown_methods = sorted(methods - set(METHOD_NAMES))
        if unknown_methods:
            raise ValueError(f"unknown methods: {', '.join(unknown_methods)}")
        unknown_tags = [tag for tag in tags if tag not in tag_globs]
        if unknown_tags:
            raise ValueError(f"unknown tags: {', '.join(unknown_tags)}")
        self.methods = methods
        self._prefixes = tuple(f"{m}_" for m in methods if m in _FINER)
        self.tags = tags
        self._globs = tuple(glob for tag in tags for glob in tag_globs[tag])
        self._cache: dict[tuple[str, object, object], str | None] = {}

    @classmethod
    def from_filters(
        cls,
        methods: Iterable[str] | None,
        tags: Iterable[str] | None,
        tag_globs: Mapping[str, Sequence[str]],
    ) -> Exposure:
        """Build from a route's ``expose``/``config`` block; ``None`` means no filter."""
        return cls(
            frozenset(TOOL_KINDS if methods is None else methods),
            tuple(tags or ()),
            tag_globs,
        )

    def allows(self, name: str, annotations: Mapping[str, Any] | None) -> bool:
        """Whether the tool passes, for callers (list filtering) that need no reason."""
        return self.refusal(name, annotations) is None

    def refusal(self, name: str, annotations: Mapping[str, Any] | None) -> str | None:
        """Why the tool is filtered out (a message naming the filter), or ``None``."""
        hints = annotations or {}
        # Keyed by the hints that decide the kind, so a call seen before tools/list
        # (without annotations) cannot pin a wrong answer for the tool's name.
        key = (name, hints.get("readOnlyHint"), hints.get("destructiveHint"))
        if key not in self._cache:
            if len(self._cache) >= MAX_CACHED:  # names come from clients: stay bounded
                self._cache.clear()
            self._cache[key] = self._decide(name, annotations)
        return self._cache[key]

    def _decide(self, name: str, annotations: Mapping[str, Any] | None) -> str | None:
        kind = tool_kind(name, annotations)
        if kind not in self.methods and not self._finer_method_selects(name, kind):
            allowed = ", ".join(m for m in METHOD_NAMES if m in self.methods) or "none"
            return f"tool {name!r} is a {kind} tool; this route exposes only: {allowed}"
        if self.tags and not any(fnmatchcase(name, glob) for glob in self._globs):
            return f"tool {name!r} matches none of this route's tags: {', '.join(self.tags)}"
        return None

    def _finer_method_selects(self, name: str, kind: ToolKind) -> bool:
        lowered = name.lower()
        return any(lowered.startswith(p) and _FINER[p[:-1]] == kind for p in self._prefixes)
