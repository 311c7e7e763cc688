"""Reading policy files and folders into a :class:`PolicySet`, or every problem at once."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from mcpfence.config import validation_diagnostics
from mcpfence.policy.compiler import CompiledPolicy, compile_policy
from mcpfence.policy.engine import PolicySet
from mcpfence.policy.models import PolicyTest, ToolPolicy
from mcpfence.yamlsource import Diagnostic, SourceError, YamlDocument, load_yaml_documents

_MODELS: dict[str, type[ToolPolicy] | type[PolicyTest]] = {
    "ToolPolicy": ToolPolicy,
    "PolicyTest": PolicyTest,
}
Entry = tuple[YamlDocument, BaseModel]


def policy_files(paths: Iterable[Path]) -> tuple[list[Path], list[Diagnostic]]:
    """Files named directly, plus ``*.yaml``/``*.yml`` under folders (recursively, sorted).

    A file reached twice (``policies/`` and a config's ``../policies/``) is read once.
    """
    files: list[Path] = []
    problems: list[Diagnostic] = []
    for path in paths:
        if path.is_dir():
            found = [p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()]
            files += sorted(found)
        elif path.exists():
            files.append(path)
        else:
            problems.append(Diagnostic(str(path), 1, 1, "no such file or folder"))
    unique: dict[Path, Path] = {}
    for file in files:
        unique.setdefault(file.resolve(), file)
    return list(unique.values()), problems


EMPTY_FILE = "the file holds no policy document (still being written?); delete it to remove its policies"


def read_documents(
    paths: Iterable[Path], kinds: Sequence[str] = tuple(_MODELS), *, allow_empty: bool = True
) -> tuple[list[Entry], list[Diagnostic]]:
    """Valid documents of the given kinds, in file order, and the problems of all others.

    Documents of other kinds are skipped (only their ``kind`` is checked). Without
    ``allow_empty`` a file holding no document at all is a problem.
    """
    files, problems = policy_files(paths)
    entries: list[Entry] = []
    for file in files:
        try:
            documents = load_yaml_documents(file)
        except SourceError as exc:
            problems += exc.diagnostics
            continue
        if not documents and not allow_empty:
            problems.append(Diagnostic(str(file), 1, 1, EMPTY_FILE))
        for doc in documents:
            kind = doc.data.get("kind") if isinstance(doc.data, dict) else None
            model = _MODELS.get(kind) if isinstance(kind, str) else None
            if model is None:
                problems.append(doc.diagnostic(("kind",), "kind must be ToolPolicy or PolicyTest"))
            elif kind in kinds:
                try:
                    entries.append((doc, model.model_validate(doc.data)))
                except ValidationError as exc:
                    problems += validation_diagnostics(doc, exc)
    return entries, problems


def load_policy_set(paths: Sequence[Path], *, allow_empty: bool = True) -> PolicySet:
    """Load every ToolPolicy under ``paths``; raise :class:`SourceError` with all problems.

    Hot reload passes ``allow_empty=False``: a file caught between being truncated and
    written again must not load as a set without its policies.
    """
    entries, problems = read_documents(paths, kinds=("ToolPolicy",), allow_empty=allow_empty)
    compiled: list[CompiledPolicy] = []
    first_seen: dict[str, str] = {}
    for order, (doc, model) in enumerate(entries):
        assert isinstance(model, ToolPolicy)
        name = model.metadata.name
        if name in first_seen:
            problems.append(doc.diagnostic(
                ("metadata", "name"),
                f"metadata.name: duplicate policy name {name!r} (first defined at {first_seen[name]})",
            ))
        else:
            line, col = doc.position(("metadata", "name"))
            first_seen[name] = f"{doc.file}:{line}:{col}"
        policy, diagnostics = compile_policy(doc, model, order)
        problems += diagnostics
        compiled.append(policy)
    problems += _opaque_writes(entries, compiled)
    if problems:
        raise SourceError(sorted(problems, key=lambda d: (d.file, d.line, d.col)))
    return PolicySet(compiled, _revision(doc.data for doc, _ in entries))


def _opaque_writes(entries: list[Entry], policies: list[CompiledPolicy]) -> list[Diagnostic]:
    """Mutations that would write to (or over) an opaque path of a policy on the same tools."""
    opaque = [(p, rule) for p in policies for rule in p.opaque]
    problems = []
    for (doc, _), policy in zip(entries, policies, strict=True):
        for index, mutation in enumerate(policy.mutations):
            for owner, rule in opaque:
                shortest = min(len(rule.tokens), len(mutation.tokens))
                same = rule.tokens[:shortest] == mutation.tokens[:shortest]
                if same and _overlap(policy, owner):
                    problems.append(doc.diagnostic(
                        ("spec", "mutations", index, "path"),
                        f"spec.mutations.{index}.path: mutations may not write to opaque "
                        f"path {rule.path} (declared by policy {owner.name})",
                    ))
                    break
    return problems


def _overlap(a: CompiledPolicy, b: CompiledPolicy) -> bool:
    """Whether two policies may apply to the same tool (conservatively, by glob)."""
    return any(fnmatchcase(x, y) or fnmatchcase(y, x) for x in a.tools for y in b.tools)


def _revision(documents: Iterable[Any]) -> str:
    """sha256 of the canonical JSON of the loaded documents, in load order."""
    text = json.dumps(list(documents), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()
