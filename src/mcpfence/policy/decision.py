"""What the engine is asked (:class:`ToolCall`) and what it answers (:class:`Decision`)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from mcpfence.policy.argschema import InputSchema, SchemaMode
from mcpfence.protocol import TYPED_RESULT_VERSIONS

DecisionKind = Literal["allow", "mutate", "deny", "audit"]
Action = Literal["enforce", "audit"]


@dataclass(frozen=True)
class ToolCall:
    """One ``tools/call`` and the context policies may look at (see policy/context.py)."""

    route: str
    tool: str
    args: dict[str, Any]
    annotations: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    session_id: str = ""
    session_calls: Sequence[Mapping[str, object]] = ()
    client_id: str = ""
    # Opaque strings seen in earlier tool results (docs/reference/policies.md#opaque-tokens). Pass a
    # :class:`~mcpfence.policy.opaque.TokenMemory` to reuse its index across calls.
    known_tokens: Collection[str] = ()
    # The built-in argument check (see argschema.py): the tool's compiled inputSchema
    # (None: unknown) and whether a mismatch denies, is audited, or is not checked.
    input_schema: InputSchema | None = None
    schema_mode: SchemaMode = "off"


@dataclass(frozen=True)
class Violation:
    """A rule a call broke; ``audit`` ones are reported but do not deny."""

    policy: str
    message: str
    action: Action = "enforce"
    # The message as logs may keep it, when ``message`` quotes a secret (an opaque token).
    logged: str | None = None

    @property
    def loggable(self) -> str:
        return self.message if self.logged is None else self.logged


@dataclass(frozen=True)
class Mutation:
    """A pointer a policy actually changed (writes of the same value are not listed)."""

    policy: str
    path: str


@dataclass(frozen=True)
class Decision:
    """The outcome of one call: what to do and exactly which arguments to forward."""

    decision: DecisionKind
    args: dict[str, Any]
    violations: tuple[Violation, ...] = ()
    mutations: tuple[Mutation, ...] = ()
    matched: tuple[str, ...] = ()

    @classmethod
    def allowed(cls, args: dict[str, Any]) -> Decision:
        """``Decision("allow", args)``, built without the frozen dataclass's ``__init__``
        (an ``object.__setattr__`` per field): every call no policy matches gets one."""
        decision = cls.__new__(cls)
        decision.__dict__.update(_ALLOWED, args=args)
        return decision

    @property
    def blocking(self) -> tuple[Violation, ...]:
        """The violations that deny the call (``action: enforce``)."""
        return tuple(v for v in self.violations if v.action == "enforce")

    def as_dict(self) -> dict[str, Any]:
        """JSON form shared by ``explain --json``, test output and the decision log."""
        return {
            "decision": self.decision,
            "args": self.args,
            "violations": [
                {"policy": v.policy, "message": v.message, "action": v.action}
                for v in self.violations
            ],
            "mutations": [{"policy": m.policy, "path": m.path} for m in self.mutations],
            "policies": list(self.matched),
        }


_ALLOWED: dict[str, object] = {"decision": "allow", "violations": (), "mutations": (), "matched": ()}


def denial_result(decision: Decision, protocol_version: str = "") -> dict[str, Any]:
    """The tool result a denied call is answered with, readable by the model (an error result
    naming each blocking policy and its message)."""
    blocking = decision.blocking
    text = "\n".join(f"Blocked by policy {v.policy}: {v.message}" for v in blocking)
    typed = {"resultType": "complete"} if protocol_version in TYPED_RESULT_VERSIONS else {}
    return {
        **typed,
        "isError": True,
        "content": [{"type": "text", "text": text}],
        "_meta": {
            "mcpfence/decision": {
                "decision": decision.decision,
                "violations": [{"policy": v.policy, "message": v.message} for v in blocking],
            }
        },
    }
