"""JSON Pointers (RFC 6901): where mutations write and opaque tokens live.

Pointers are parsed once at load into their reference tokens, so evaluation only
walks lists of strings.
"""

from __future__ import annotations

from typing import Any

_MISSING = object()


class PointerError(ValueError):
    """A pointer that is malformed, or that cannot be followed in a document."""


def parse_pointer(pointer: str) -> tuple[str, ...]:
    """Split ``pointer`` into unescaped reference tokens; ``""`` is the whole document."""
    if pointer == "":
        return ()
    if not pointer.startswith("/"):
        raise PointerError(f"JSON Pointer {pointer!r} must be empty or start with '/'")
    tokens = pointer[1:].split("/")
    for token in tokens:
        if "~" in token.replace("~0", "").replace("~1", ""):
            raise PointerError(f"JSON Pointer {pointer!r} has a '~' not followed by 0 or 1")
    return tuple(t.replace("~1", "/").replace("~0", "~") for t in tokens)


def _index(container: list[Any], token: str, *, appending: bool) -> int:
    """The list index ``token`` names; ``-`` is one past the end (only to append)."""
    if token == "-" and appending:
        return len(container)
    if not token.isdigit() or (token != "0" and token.startswith("0")):
        raise PointerError(f"{token!r} is not an array index")
    return int(token)


def get_at(document: Any, tokens: tuple[str, ...]) -> Any:
    """The value at ``tokens``, or one :func:`is_missing` recognises when a step does not exist."""
    current = document
    for token in tokens:
        if isinstance(current, dict):
            current = current.get(token, _MISSING)
        elif isinstance(current, list):
            try:
                position = _index(current, token, appending=False)
            except PointerError:
                return _MISSING
            current = current[position] if position < len(current) else _MISSING
        else:
            return _MISSING
        if current is _MISSING:
            return _MISSING
    return current


def set_at(document: dict[str, Any], tokens: tuple[str, ...], value: Any) -> None:
    """Set ``value`` at ``tokens`` in place: the last step is created, ``-`` appends.

    Every step before the last must already exist, as in RFC 6902 ``add``.
    """
    if not tokens:
        raise PointerError("cannot replace the whole arguments object")
    parent = get_at(document, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        position = _index(parent, last, appending=True)
        if position == len(parent):
            parent.append(value)
        elif position < len(parent):
            parent[position] = value
        else:
            raise PointerError(f"index {position} is past the end of the array")
    else:
        raise PointerError("the parent of the target does not exist or is not an object or array")


def is_missing(value: Any) -> bool:
    """Whether :func:`get_at` found nothing."""
    return value is _MISSING
