"""The built-in argument check: a call's arguments against the tool's ``inputSchema``.

Models send ``"false"`` for ``false`` and ``"412"`` for ``412``, and many MCP
servers coerce such values silently, so a rule written against the typed value
never sees the one that does harm. Every call is therefore validated against the
tool's JSON Schema (2020-12), strictly, on exactly the arguments that are
forwarded. The validator is jsonschema-rs (chosen by measurement, see
``benchmarks/bench_schema.py``): about half a microsecond for a valid call, with
structured errors to say which pointer failed and what it got instead.

Each distinct schema is compiled once and shared (the cache is keyed by the
schema's canonical hash, so every route, tool and session listing the same
schema uses the same validator). Messages quote argument values for the model;
their log form (``Violation.logged``) names only the JSON type.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

import jsonschema_rs

from mcpfence.jsonrpc import canonical

INPUT_SCHEMA_POLICY: Final = "mcpfence-input-schema"
SchemaMode = Literal["enforce", "audit", "off"]
MAX_PROBLEMS: Final = 5  # a model fixes a few at a time; more only lengthens the answer
_CACHE_SIZE: Final = 4096
_QUOTED: Final = 60  # longest quoted string value in a message

_ARTICLES: Final = {
    "boolean": "a boolean",
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "array": "an array",
    "object": "an object",
    "null": "null",
}


@dataclass(frozen=True)
class Problem:
    """One way the arguments break the schema: for the model, and for the log."""

    message: str
    logged: str


def _no_remote_refs(uri: str) -> Any:
    raise ValueError(f"mcpfence does not fetch remote $ref {uri}")


class InputSchema:
    """One tool's ``inputSchema``, compiled (use :func:`compile_input_schema`)."""

    def __init__(self, schema: Mapping[str, Any], key: str) -> None:
        self.schema = schema
        self.key = key
        self.error: str | None = None
        self._validator: Any = None
        try:
            self._validator = jsonschema_rs.Draft202012Validator(dict(schema), retriever=_no_remote_refs)
        except (jsonschema_rs.ValidationError, ValueError) as exc:
            self.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, InputSchema) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)

    def conforms(self, args: Any) -> bool:
        """Whether ``args`` are valid: the common answer, without building any problem."""
        return self._validator is not None and bool(self._validator.is_valid(args))

    def problems(self, args: Any) -> list[Problem]:
        """What is wrong with ``args``, most useful first; empty when they conform."""
        if self._validator is None:
            text = f"the tool's inputSchema is not a valid JSON Schema ({self.error}); no call can be checked"
            return [Problem(text, text)]
        if self._validator.is_valid(args):
            return []
        found = sorted(self._validator.iter_errors(args), key=lambda e: len(e.instance_path))
        return [_explain(error, self.schema) for error in found[:MAX_PROBLEMS]]


_compiled: OrderedDict[str, InputSchema] = OrderedDict()


def compile_input_schema(schema: Mapping[str, Any]) -> InputSchema:
    """The compiled form of ``schema``, compiled once per distinct schema."""
    key = hashlib.sha256(canonical(schema)).hexdigest()
    found = _compiled.get(key)
    if found is None:
        found = _compiled[key] = InputSchema(schema, key)
        if len(_compiled) > _CACHE_SIZE:
            _compiled.popitem(last=False)
    else:
        _compiled.move_to_end(key)
    return found


# -- messages --------------------------------------------------------------


def pointer(path: Any) -> str:
    """RFC 6901 pointer of a path (a list of keys and indexes); ``""`` is the whole object."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def received(value: Any) -> str:
    """``the string "false"``, ``the integer 0``, ``null``, ``an object``: what was sent."""
    kind = _json_type(value)
    if kind == "null":
        return "null"
    if kind in ("array", "object"):
        return _ARTICLES[kind]
    if kind == "string":
        text = json.dumps(value, ensure_ascii=False)
        if len(text) > _QUOTED:
            text = text[: _QUOTED - 4] + '..."'
        return f"the string {text}"
    return f"the {kind} {json.dumps(value)}"


def expected(types: Any) -> str:
    """``a boolean``, ``a boolean or null``: one JSON type name or several."""
    names = [types] if isinstance(types, str) else list(dict.fromkeys(types))
    names.sort(key=lambda name: name == "null")  # "a boolean or null" reads better than the reverse
    words = [_ARTICLES.get(name, name) for name in names]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _subschema(schema: Mapping[str, Any], path: Any) -> Any:
    node: Any = schema
    for step in path:
        if isinstance(node, Mapping):
            node = node.get(step)
        elif isinstance(node, list) and isinstance(step, int) and step < len(node):
            node = node[step]
        else:
            return None
    return node


def _where(path: Any) -> str:
    return pointer(path) or "the arguments"


def _explain(error: Any, schema: Mapping[str, Any]) -> Problem:
    """A sentence that says where, what was expected and what was sent."""
    kind = error.kind
    name = type(kind).__name__  # the keyword's class: Type, AnyOf, Required, ...
    where = _where(error.instance_path)
    value = error.instance
    if name == "Type":
        return _typed(where, expected(kind.types), value)
    if name in ("AnyOf", "OneOfNotValid"):
        return _alternatives(error, where, value)
    if name == "Required":
        missing = pointer([*error.instance_path, kind.property])
        text = f"{missing} is required"
        return Problem(text, text)
    if name == "AdditionalProperties":
        return _extra(error, schema)
    if name in ("Enum", "Constant"):
        options = kind.options if name == "Enum" else [kind.expected_value]
        allowed = ", ".join(json.dumps(o, ensure_ascii=False) for o in options)
        return _typed(where, f"one of {allowed}" if name == "Enum" else allowed, value)
    bound = _bounds(name, kind, value)
    if bound is not None:
        return Problem(f"{where} {bound}", f"{where} {bound.split(', got')[0]}")
    if name in ("FalseSchema", "Not"):
        text = f"{where} is not accepted by this tool; leave it out"
        return Problem(text, text)
    text = f"{where}: {error.message}"
    return Problem(text, f"{where} breaks the schema's {_keyword(error)} rule")


def _typed(where: str, wanted: str, value: Any) -> Problem:
    article = "an" if _json_type(value) in ("integer", "array", "object") else "a"
    logged = "null" if value is None else f"{article} {_json_type(value)}"
    said = f"{where} must be {wanted}, got"
    return Problem(f"{said} {received(value)}", f"{said} {logged}")


def _alternatives(error: Any, where: str, value: Any) -> Problem:
    """anyOf/oneOf: a nullable field and the like read as one union of types."""
    branches = error.kind.context
    types: list[str] = []
    for branch in branches:
        here = [e for e in branch if e.instance_path == error.instance_path]
        if len(here) != len(branch) or any(type(e.kind).__name__ != "Type" for e in here):
            break
        types.extend(t for e in here for t in e.kind.types)
    else:
        if types:
            return _typed(where, expected(types), value)
    # Mixed shapes: show the branch that came closest (its shape fits, fewest errors inside).
    def distance(branch: list[Any]) -> tuple[int, int]:
        return sum(e.instance_path == error.instance_path for e in branch), len(branch)

    closest: list[Any] = min(branches, key=distance, default=[])
    if closest:
        inner = _explain(closest[0], {})
        return Problem(
            f"{where} matches none of the accepted forms; closest: {inner.message}",
            f"{where} matches none of the accepted forms; closest: {inner.logged}",
        )
    text = f"{where} matches none of the accepted forms"
    return Problem(text, text)


def _extra(error: Any, schema: Mapping[str, Any]) -> Problem:
    """A property the schema forbids: name it and list what the tool does accept."""
    names = error.kind.unexpected
    extra = ", ".join(pointer([*error.instance_path, n]) for n in names)
    verb = "is" if len(names) == 1 else "are"
    parent = _subschema(schema, list(error.schema_path)[:-1])
    accepted = list(parent.get("properties", {})) if isinstance(parent, Mapping) else []
    hint = f"; accepted here: {', '.join(accepted[:20])}" if accepted else "; leave it out"
    text = f"{extra} {verb} not accepted by this tool{hint}"
    return Problem(text, text)


_BOUND_WORDS: Final = {
    "Minimum": ("must be at least", "limit"),
    "Maximum": ("must be at most", "limit"),
    "ExclusiveMinimum": ("must be greater than", "limit"),
    "ExclusiveMaximum": ("must be less than", "limit"),
    "MultipleOf": ("must be a multiple of", "multiple_of"),
    "MinLength": ("must be at least {} characters long", "limit"),
    "MaxLength": ("must be at most {} characters long", "limit"),
    "MinItems": ("must have at least {} items", "limit"),
    "MaxItems": ("must have at most {} items", "limit"),
    "MinProperties": ("must have at least {} properties", "limit"),
    "MaxProperties": ("must have at most {} properties", "limit"),
    "Pattern": ("must match the pattern {}", "pattern"),
    "UniqueItems": ("must not repeat items", ""),
}


def _bounds(name: str, kind: Any, value: Any) -> str | None:
    words = _BOUND_WORDS.get(name)
    if words is None:
        return None
    phrase, attribute = words
    limit = getattr(kind, attribute) if attribute else None
    text = phrase.format(limit) if "{}" in phrase else phrase + (f" {limit}" if attribute else "")
    if limit == 1:  # "at least 1 item", not "1 items"
        text = text.replace(" items", " item").replace(" characters", " character")
        text = text.replace(" properties", " property")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{text}, got {json.dumps(value)}"
    if isinstance(value, str | list | dict) and name.endswith(("Length", "Items", "Properties")):
        return f"{text}, got {len(value)}"
    return text


def _keyword(error: Any) -> str:
    path = list(error.schema_path)
    return str(path[-1]) if path else "schema"


def schema_check(schema: Mapping[str, Any] | None, mode: SchemaMode) -> dict[str, Any]:
    """``ToolCall`` fields for an offline decision (tests, explain): checked only when a
    schema is supplied, since offline there is no upstream to list it."""
    if schema is None or mode == "off":
        return {}
    return {"input_schema": compile_input_schema(schema), "schema_mode": mode}


def problems_of(schema: InputSchema | None, args: Any) -> list[Problem]:
    """Problems of ``args`` against ``schema``; one when the schema is unknown."""
    if schema is None:
        text = (
            "mcpfence does not know this tool's inputSchema (the upstream's tools/list did not "
            "name it, or could not be fetched), so its arguments cannot be checked; "
            "call tools/list, then retry"
        )
        return [Problem(text, text)]
    return schema.problems(args)
