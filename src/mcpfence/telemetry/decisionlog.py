"""The decision log: one JSON line per ``tools/call`` (docs/how-to/observability.md), for audits.

``write`` only stamps the record and queues it; a writer thread hashes, redacts,
serializes, appends and flushes each line, so the event loop never waits for the
disk and a crash loses at most the lines still queued. The file rotates by size
like ``logging.handlers.RotatingFileHandler``: ``decisions.jsonl.1`` is the newest
backup.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import sys
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from mcpfence.jsonrpc import canonical, one_line
from mcpfence.policy.pointer import parse_pointer
from mcpfence.telemetry.redaction import redact
from mcpfence.telemetry.sealing import Sealer

__all__ = ["DecisionLog"]

_log = logging.getLogger(__name__)

_Entry = tuple[float, str, Mapping[str, Any]]


class DecisionLog:
    """Append decision records to ``path`` (``"-"`` for stdout) from any thread.

    A record passed to :meth:`write` holds ``policy_revision``, ``trace_id``,
    ``route``, ``session_id``, ``client_id``, ``tool``, ``decision``,
    ``violations`` (``[{"policy", "message"}]``), ``mutations``
    (``[{"policy", "path"}]``), ``duration_ms`` and ``args`` (the arguments as
    checked, after mutations), and optionally ``decision_id``; it must not be
    mutated afterwards. ``args`` are hashed always and written only with
    ``include_arguments``, with each ``redact`` JSON Pointer replaced by
    ``"[REDACTED]"``. Past ``max_bytes`` the file rotates, keeping ``backups``
    old files (none: it starts over).

    With ``record_arguments`` each line also keeps what replaying the call needs:
    ``arguments`` (as the client sent them, before any mutation, redacted like
    ``args``), and ``ok`` and ``result`` (the outcome ``session.calls`` remembers;
    the record passes them as ``arguments``, ``ok`` and ``result``). With a
    ``sealer`` those three are written only encrypted, as ``sealed``.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        include_arguments: bool = False,
        record_arguments: bool = False,
        sealer: Sealer | None = None,
        redact: Sequence[str] = (),
        max_bytes: int = 100 * 1024 * 1024,
        backups: int = 5,
    ) -> None:
        self._include_arguments = include_arguments
        self._record_arguments = record_arguments
        self._sealer = sealer
        self._redact = [parse_pointer(p) for p in redact]
        self._sink = _StdoutSink() if str(path) == "-" else _FileSink(Path(path), max_bytes, backups)
        self._queue: queue.SimpleQueue[_Entry | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="mcpfence-decision-log", daemon=True)
        self._thread.start()

    @property
    def records_arguments(self) -> bool:
        """Whether records should carry ``arguments``, ``ok`` and ``result`` (for replay)."""
        return self._record_arguments

    def write(self, record: Mapping[str, Any]) -> str:
        """Queue one decision; returns its ``decision_id``. Never blocks on I/O."""
        decision_id = str(record.get("decision_id") or uuid.uuid4())
        self._queue.put((time.time(), decision_id, record))
        return decision_id

    def close(self) -> None:
        """Write everything queued, then stop the writer thread and close the file."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (entry := self._queue.get()) is not None:
            try:
                self._sink.write(self._line(*entry))
            except Exception:
                _log.exception("decision log: cannot write a record")
        self._sink.close()

    def _line(self, timestamp: float, decision_id: str, record: Mapping[str, Any]) -> bytes:
        args = record["args"]
        line: dict[str, Any] = {
            "time": _utc(timestamp),
            "decision_id": decision_id,
            "policy_revision": record["policy_revision"],
            "trace_id": record["trace_id"],
            "route": record["route"],
            "session_id": record["session_id"],
            "client_id": record["client_id"],
            "tool": record["tool"],
            "decision": record["decision"],
            "violations": [
                {"policy": v["policy"], "message": v["message"]} for v in record["violations"]
            ],
            "mutations": [{"policy": m["policy"], "path": m["path"]} for m in record["mutations"]],
            "args_sha256": hashlib.sha256(canonical(args)).hexdigest(),
            "duration_ms": record["duration_ms"],
        }
        if self._include_arguments:
            line["args"] = redact(args, self._redact)
        if self._record_arguments:
            replay = {
                "arguments": redact(record.get("arguments", args), self._redact),
                "ok": record.get("ok", False),
                "result": record.get("result"),
            }
            if self._sealer is None:
                line.update(replay)
            else:
                line["sealed"] = self._sealer.seal(replay)
        return one_line(json.dumps(line, ensure_ascii=False, allow_nan=False).encode("utf-8")) + b"\n"


def _utc(timestamp: float) -> str:
    """RFC 3339 UTC with milliseconds: ``2026-11-24T12:00:00.123Z``."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class _StdoutSink:
    def write(self, line: bytes) -> None:
        sys.stdout.write(line.decode("utf-8"))
        sys.stdout.flush()

    def close(self) -> None:
        sys.stdout.flush()


class _FileSink:
    """An append-only file that rotates before a line would take it past ``max_bytes``."""

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self._path = path
        self._max_bytes = max_bytes
        self._backups = backups
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] = path.open("ab")
        self._size = self._file.tell()

    def write(self, line: bytes) -> None:
        if self._size and self._size + len(line) > self._max_bytes:
            self._rotate()
        self._file.write(line)
        self._file.flush()
        self._size += len(line)

    def _rotate(self) -> None:
        self._file.close()
        for index in range(self._backups - 1, 0, -1):
            older = self._path.with_name(f"{self._path.name}.{index}")
            if older.exists():
                os.replace(older, self._path.with_name(f"{self._path.name}.{index + 1}"))
        if self._backups:
            os.replace(self._path, self._path.with_name(f"{self._path.name}.1"))
        self._file = self._path.open("wb")
        self._size = 0

    def close(self) -> None:
        self._file.close()
