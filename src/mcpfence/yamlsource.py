"""YAML loading that remembers where every value came from.

Config and policy files are written by people, so every error must point at
``FILE:LINE:COL``. PyYAML's composer keeps marks on nodes; we turn each document
into plain Python data plus a table from value paths to positions, and reject
duplicate keys (which plain ``yaml.safe_load`` silently merges).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

Loc = tuple[str | int, ...]
# libyaml's parser when PyYAML was built with it (measured ~10x faster on large policy
# sets); it yields the same nodes, marks included.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Diagnostic:
    """One problem in one file, printed as ``FILE:LINE:COL: message`` (1-based)."""

    file: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


class SourceError(Exception):
    """One or more diagnostics that stop a file from loading."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = list(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))


@dataclass
class YamlDocument:
    """A YAML document as plain data, with positions of each value and key."""

    file: str
    data: Any
    line: int
    col: int
    positions: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[Loc, tuple[int, int]] = field(default_factory=dict)

    def position(self, loc: Loc, *, key: bool = False) -> tuple[int, int]:
        """Position of the value at ``loc`` (of its key, with ``key``), or of its
        nearest existing ancestor."""
        if key and tuple(loc) in self.key_positions:
            return self.key_positions[tuple(loc)]
        for end in range(len(loc), -1, -1):
            found = self.positions.get(tuple(loc[:end]))
            if found is not None:
                return found
        return self.line, self.col

    def diagnostic(self, loc: Loc, message: str, *, key: bool = False) -> Diagnostic:
        """A diagnostic at the value at ``loc``; at its key with ``key`` (unknown keys)."""
        line, col = self.position(loc, key=key)
        return Diagnostic(self.file, line, col, message)


class _Builder:
    """Turns a composed node tree into plain data, recording positions."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.positions: dict[Loc, tuple[int, int]] = {}
        self.key_positions: dict[Loc, tuple[int, int]] = {}
        self._constructor = yaml.SafeLoader("")

    def build(self, node: Node, loc: Loc) -> Any:
        self.positions[loc] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, MappingNode):
            return self._mapping(node, loc)
        if isinstance(node, SequenceNode):
            return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
        assert isinstance(node, ScalarNode)
        return self._constructor.construct_object(node, deep=True)

    def _mapping(self, node: MappingNode, loc: Loc) -> dict[Any, Any]:
        self._constructor.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = self.build(key_node, (*loc, "<key>"))
            if not isinstance(key, str | int):
                raise self._error(key_node, "mapping keys must be strings or integers")
            if key in out:
                raise self._error(key_node, f"duplicate key {key!r}")
            self.key_positions[(*loc, key)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[key] = self.build(value_node, (*loc, key))
        self.positions.pop((*loc, "<key>"), None)
        return out

    def _error(self, node: Node, message: str) -> SourceError:
        mark = node.start_mark
        return SourceError([Diagnostic(self.file, mark.line + 1, mark.column + 1, message)])


def parse_yaml_documents(text: str, file: str) -> list[YamlDocument]:
    """Parse every document of ``text``; raise :class:`SourceError` on bad YAML."""
    documents = []
    try:
        # One node tree at a time (a 10,000-policy file would otherwise be held whole).
        for node in yaml.compose_all(text, Loader=_LOADER):
            if node is None:
                continue
            builder = _Builder(file)
            data = builder.build(node, ())
            line, col = node.start_mark.line + 1, node.start_mark.column + 1
            documents.append(YamlDocument(file, data, line, col, builder.positions, builder.key_positions))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise SourceError([Diagnostic(file, line, col, f"invalid YAML: {exc.problem}")]) from None
    return documents


def load_yaml_documents(path: Path) -> list[YamlDocument]:
    """Read and parse ``path``; a missing or unreadable file is a diagnostic too."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError([Diagnostic(str(path), 1, 1, f"cannot read file: {exc}")]) from None
    return parse_yaml_documents(text, str(path))
