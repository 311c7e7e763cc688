"""Reading decision-log records back for replay, with ``FILE:LINE`` for every bad line.

Only records written with ``decision_log.record_arguments: true`` can be replayed:
re-deciding needs the arguments as sent and, for history-based policies, what
each earlier call returned.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mcpfence.telemetry.sealing import Sealer, SealError
from mcpfence.yamlsource import Diagnostic, SourceError

_TEXT_FIELDS = ("time", "route", "session_id", "client_id", "tool", "decision", "args_sha256")
_DECISIONS = frozenset({"allow", "mutate", "audit", "deny"})


@dataclass(frozen=True)
class RecordedCall:
    """One decision-log line with its replay fields (``where`` is ``FILE:LINE``)."""

    where: str
    time: datetime
    route: str
    session_id: str
    client_id: str
    tool: str
    decision: str
    violations: tuple[tuple[str, str], ...]  # (policy, message)
    mutations: frozenset[tuple[str, str]]  # (policy, path)
    args_sha256: str
    arguments: dict[str, Any]
    ok: bool
    result: Any

    @property
    def acting(self) -> frozenset[str]:
        """The policies that denied, flagged or rewrote this call."""
        return frozenset(p for p, _ in self.violations) | {p for p, _ in self.mutations}


def log_files(path: Path) -> list[Path]:
    """A decision log and its rotated backups, oldest first (``.5`` … ``.1``, then the live file)."""
    backups = [p for p in path.parent.glob(f"{path.name}.*") if p.suffix[1:].isdigit()]
    backups.sort(key=lambda p: int(p.suffix[1:]), reverse=True)
    return [*backups, *([path] if path.exists() else [])]


def read_records(paths: Sequence[Path], sealer: Sealer | None = None) -> list[RecordedCall]:
    """Every record in ``paths``, in time order; a :class:`SourceError` lists each bad line."""
    calls: list[RecordedCall] = []
    problems: list[Diagnostic] = []
    for path in paths:
        try:
            lines = path.read_text("utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            problems.append(Diagnostic(str(path), 1, 1, f"cannot read the log: {error}"))
            continue
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                calls.append(_parse(f"{path}:{number}", line, sealer))
            except ValueError as error:
                problems.append(Diagnostic(str(path), number, 1, str(error)))
    if problems:
        raise SourceError(problems)
    calls.sort(key=lambda call: call.time)  # stable: lines of one file keep their order
    return calls


def parse_time(text: str) -> datetime:
    """An ISO-8601 time; one without a zone is taken as UTC."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _parse(where: str, line: str, sealer: Sealer | None) -> RecordedCall:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"not a JSON line: {error.msg}") from None
    if not isinstance(record, dict):
        raise ValueError("a decision record is a JSON object")
    for name in _TEXT_FIELDS:
        if not isinstance(record.get(name), str):
            raise ValueError(f"{name}: missing or not a string")
    if record["decision"] not in _DECISIONS:
        raise ValueError(f"decision: unknown value {record['decision']!r}")
    replayed = _replay_fields(record, sealer)
    arguments = replayed.get("arguments")
    if not isinstance(arguments, dict):
        raise ValueError("arguments: not an object")
    try:
        time = parse_time(record["time"])
    except ValueError:
        raise ValueError(f"time: not an ISO-8601 time: {record['time']!r}") from None
    return RecordedCall(
        where=where,
        time=time,
        route=record["route"],
        session_id=record["session_id"],
        client_id=record["client_id"],
        tool=record["tool"],
        decision=record["decision"],
        violations=tuple((v["policy"], v["message"]) for v in _entries(record, "violations", "message")),
        mutations=frozenset((m["policy"], m["path"]) for m in _entries(record, "mutations", "path")),
        args_sha256=record["args_sha256"],
        arguments=arguments,
        ok=replayed.get("ok") is True,
        result=replayed.get("result"),
    )


def _replay_fields(record: dict[str, Any], sealer: Sealer | None) -> dict[str, Any]:
    if "sealed" in record:
        if sealer is None:
            raise ValueError("the record is sealed: set decision_log.key_env and its variable to open it")
        try:
            return sealer.open(str(record["sealed"]))
        except SealError as error:
            raise ValueError(str(error)) from None
    if "arguments" not in record:
        raise ValueError("no arguments recorded: replay needs decision_log.record_arguments: true")
    return record


def _entries(record: dict[str, Any], name: str, second: str) -> Iterable[dict[str, str]]:
    entries = record.get(name)
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and isinstance(e.get("policy"), str) and isinstance(e.get(second), str)
        for e in entries
    ):
        raise ValueError(f"{name}: not a list of {{policy, {second}}}")
    return entries
