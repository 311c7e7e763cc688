"""Choosing the JSON Schema library for the argument-schema check (numbers, not tests).

Run: ``.venv/bin/python benchmarks/bench_schema.py``. Compares ``jsonschema``
(a compiled ``Draft202012Validator`` per schema), ``fastjsonschema`` (generated
Python code per schema) and ``jsonschema-rs`` (Rust) on tool schemas as MCP SDK
servers publish them (pydantic-generated: ``anyOf`` with ``null``, ``$defs``
and ``$ref``, nested arrays of objects), with a valid and an invalid call each.
Prints, per library: compile time, the per-call time of a valid and of an
invalid call (including getting the error's pointer and types), whether the
error detail is there, and which 2020-12 keywords it honours. Then what the
check adds to a whole decision in mcpfence (no policies loaded, check on vs off).
"""

from __future__ import annotations

import importlib.metadata
import timeit
from collections.abc import Callable
from typing import Any

import fastjsonschema
import jsonschema
import jsonschema_rs

from mcpfence.policy import PolicySet, ToolCall
from mcpfence.policy.argschema import compile_input_schema

# iPost-like "update contact": what FastMCP generates for optional, nullable fields.
UPDATE_CONTACT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"title": "Id", "type": "string"},
        "Email": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None, "title": "Email"},
        "FirstName": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        "LastName": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        "GlobalEmailStatus": {"anyOf": [{"type": "boolean"}, {"type": "null"}], "default": None},
        "Phone": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        "CustomFields": {
            "anyOf": [{"type": "object", "additionalProperties": {"type": "string"}}, {"type": "null"}],
            "default": None,
        },
    },
    "required": ["id"],
    "additionalProperties": False,
}

# Postmark-like templated batch send: $defs, $ref, nested arrays, enum, integer bounds.
TEMPLATED_BATCH: dict[str, Any] = {
    "$defs": {
        "Attachment": {
            "type": "object",
            "properties": {
                "Name": {"type": "string"},
                "Content": {"type": "string"},
                "ContentType": {"type": "string"},
            },
            "required": ["Name", "Content", "ContentType"],
        },
        "Message": {
            "type": "object",
            "properties": {
                "TemplateId": {"type": "integer", "minimum": 1},
                "From": {"type": "string"},
                "To": {"type": "string"},
                "TemplateModel": {"type": "object"},
                "MessageStream": {"enum": ["outbound", "broadcast"]},
                "TrackOpens": {"type": "boolean", "default": True},
                "Attachments": {"type": "array", "items": {"$ref": "#/$defs/Attachment"}},
            },
            "required": ["TemplateId", "From", "To"],
        },
    },
    "type": "object",
    "properties": {"Messages": {"type": "array", "items": {"$ref": "#/$defs/Message"}, "minItems": 1}},
    "required": ["Messages"],
}

MESSAGE = {
    "TemplateId": 40004,
    "From": "news@example.com",
    "To": "ann@example.org",
    "TemplateModel": {"name": "Ann", "items": [1, 2, 3]},
    "MessageStream": "outbound",
    "TrackOpens": True,
    "Attachments": [{"Name": "a.pdf", "Content": "JVBERi0=", "ContentType": "application/pdf"}],
}

CASES: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    (
        "update contact",
        UPDATE_CONTACT,
        {"id": "100001", "FirstName": "Ann", "GlobalEmailStatus": True, "CustomFields": {"tier": "gold"}},
        {"id": "100001", "FirstName": "Ann", "GlobalEmailStatus": "false"},
    ),
    (
        "templated batch (10 messages)",
        TEMPLATED_BATCH,
        {"Messages": [MESSAGE] * 10},
        {"Messages": [MESSAGE] * 9 + [{**MESSAGE, "TemplateId": "40004"}]},
    ),
]

# 2020-12 keywords a tool schema may use; each schema with an instance it must refuse.
DIALECT_2020_12: list[tuple[str, dict[str, Any], Any]] = [
    ("prefixItems", {"prefixItems": [{"type": "integer"}], "items": False}, [1, 2]),
    ("$defs + $ref", {"$defs": {"n": {"type": "integer"}}, "$ref": "#/$defs/n"}, "1"),
    ("unevaluatedProperties", {"properties": {"a": {}}, "unevaluatedProperties": False}, {"b": 1}),
    ("dependentRequired", {"dependentRequired": {"a": ["b"]}}, {"a": 1}),
]


def per_call_us(function: Callable[[], object], number: int = 2000) -> float:
    """Best of five runs, in microseconds per call."""
    return min(timeit.repeat(function, number=number, repeat=5)) / number * 1e6


class Library:
    """One library behind the same three questions: compile, check, explain."""

    name = ""

    def compile(self, schema: dict[str, Any]) -> Any:
        raise NotImplementedError

    def check(self, compiled: Any, instance: Any) -> str | None:
        """None when valid, else the first error as ``pointer: detail``."""
        raise NotImplementedError


class Jsonschema(Library):
    name = f"jsonschema {importlib.metadata.version('jsonschema')}"

    def compile(self, schema: dict[str, Any]) -> Any:
        return jsonschema.Draft202012Validator(schema)

    def check(self, compiled: Any, instance: Any) -> str | None:
        if compiled.is_valid(instance):
            return None
        error = jsonschema.exceptions.best_match(compiled.iter_errors(instance))
        return f"{error.json_path}: {error.validator}={error.validator_value!r}, got {error.instance!r}"


class FastJsonschema(Library):
    name = f"fastjsonschema {importlib.metadata.version('fastjsonschema')}"

    def compile(self, schema: dict[str, Any]) -> Any:
        return fastjsonschema.compile(schema)

    def check(self, compiled: Any, instance: Any) -> str | None:
        try:
            compiled(instance)
        except fastjsonschema.JsonSchemaValueException as error:
            return f"{error.path}: {error.rule}={error.rule_definition!r} ({error.message})"
        return None


class JsonschemaRs(Library):
    name = f"jsonschema-rs {importlib.metadata.version('jsonschema-rs')}"

    def compile(self, schema: dict[str, Any]) -> Any:
        return jsonschema_rs.Draft202012Validator(schema)

    def check(self, compiled: Any, instance: Any) -> str | None:
        if compiled.is_valid(instance):
            return None
        error = next(compiled.iter_errors(instance))
        kind = error.kind
        return f"{error.instance_path}: {kind.name} {kind.as_dict()}, got {error.instance!r}"


def dialect_support(library: Library) -> str:
    """The 2020-12 keywords the library enforces, out of :data:`DIALECT_2020_12`."""
    honoured = []
    for keyword, schema, refused in DIALECT_2020_12:
        try:
            if library.check(library.compile(schema), refused) is not None:
                honoured.append(keyword)
        except Exception:  # a library that cannot even compile the keyword does not honour it
            continue
    return f"{len(honoured)}/{len(DIALECT_2020_12)}"


def main() -> None:
    libraries: list[Library] = [Jsonschema(), FastJsonschema(), JsonschemaRs()]
    print(f"{'library':<24} {'case':<30} {'compile µs':>11} {'valid µs':>9} {'invalid µs':>11}  2020-12")
    examples: dict[str, str | None] = {}
    for library in libraries:
        support = dialect_support(library)
        for label, schema, valid, invalid in CASES:
            compile_us = per_call_us(lambda s=schema, lib=library: lib.compile(s), number=50)
            compiled = library.compile(schema)
            assert library.check(compiled, valid) is None, (library.name, label)
            valid_us = per_call_us(lambda c=compiled, v=valid, lib=library: lib.check(c, v))
            invalid_us = per_call_us(lambda c=compiled, i=invalid, lib=library: lib.check(c, i))
            examples[f"{library.name} / {label}"] = library.check(compiled, invalid)
            row = f"{library.name:<24} {label:<30} {compile_us:>11.1f} {valid_us:>9.1f} {invalid_us:>11.1f}"
            print(f"{row}  {support}")
    print("\nerror detail each library gives for the invalid call:")
    for key, detail in examples.items():
        print(f"  {key}: {detail}")
    print("\nmcpfence decision, no policies (µs per call):")
    empty = PolicySet([], "bench")
    for label, schema, valid, invalid in CASES:
        compiled = compile_input_schema(schema)
        timings = []
        for args, mode in ((valid, "off"), (valid, "enforce"), (invalid, "enforce")):
            call = ToolCall("r", "t", args, input_schema=compiled, schema_mode=mode)  # type: ignore[arg-type]
            timings.append(per_call_us(lambda c=call: empty.decide(c)))
        print(f"  {label:<30} off {timings[0]:.1f}  valid {timings[1]:.1f}  invalid {timings[2]:.1f}")


if __name__ == "__main__":
    main()
