"""Decision-log queries for the console, answered by DuckDB.

Page views never parse the log in Python. The log and its rotated files are
loaded into a DuckDB table once, and each query first loads only what was
appended since: files are tracked by inode (rotation renames a file, it keeps
its inode) and by how many bytes were loaded, so a page view over a million
records costs one indexed-column scan in DuckDB, not a read of the files.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from mcpfence.replay.records import log_files

_COLUMNS = {
    "time": "TIMESTAMPTZ",
    "decision_id": "VARCHAR",
    "policy_revision": "VARCHAR",
    "trace_id": "VARCHAR",
    "route": "VARCHAR",
    "session_id": "VARCHAR",
    "client_id": "VARCHAR",
    "tool": "VARCHAR",
    "decision": "VARCHAR",
    "violations": "STRUCT(policy VARCHAR, message VARCHAR)[]",
    "mutations": "STRUCT(policy VARCHAR, path VARCHAR)[]",
    "duration_ms": "DOUBLE",
}
_POLICIES = (
    "list_distinct(list_concat(list_transform(violations, lambda v: v.policy),"
    " list_transform(mutations, lambda m: m.policy)))"
)
# Chart buckets: the first width that keeps a range within this many buckets.
_MAX_BUCKETS = 48
_WIDTHS = [timedelta(seconds=s) for s in (60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400)]


@dataclass(frozen=True)
class Filters:
    """What the decisions page filters by; empty strings and None mean "any"."""

    since: datetime | None = None
    until: datetime | None = None
    route: str = ""
    tool: str = ""
    decision: str = ""
    policy: str = ""
    client: str = ""

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = ["TRUE"]
        values: list[Any] = []
        if self.since is not None:
            clauses.append("time >= ?")
            values.append(self.since)
        if self.until is not None:
            clauses.append("time < ?")
            values.append(self.until)
        for column in ("route", "tool", "decision"):
            if getattr(self, column):
                clauses.append(f"{column} = ?")
                values.append(getattr(self, column))
        if self.client:
            clauses.append("client_id = ?")
            values.append(self.client)
        if self.policy:
            clauses.append("list_contains(policies, ?)")
            values.append(self.policy)
        return " AND ".join(clauses), values


@dataclass(frozen=True)
class Row:
    time: datetime
    decision_id: str
    trace_id: str
    route: str
    session_id: str
    client_id: str
    tool: str
    decision: str
    violations: list[dict[str, str]]
    mutations: list[dict[str, str]]
    duration_ms: float


@dataclass(frozen=True)
class Series:
    """Decisions per policy over time: bucket starts, and counts per policy per bucket."""

    buckets: list[datetime]
    width: timedelta
    counts: dict[str, list[int]] = field(default_factory=dict)


@dataclass(frozen=True)
class Page:
    rows: list[Row]
    total: int
    choices: dict[str, list[str]]  # distinct values for the filter menus


class DecisionStore:
    """A DuckDB table kept up to date with a decision log and its rotated files."""

    def __init__(self, log: Path | None, files: Callable[[Path], Sequence[Path]] = log_files) -> None:
        self._log = log
        self._files = files
        self._folder = tempfile.mkdtemp(prefix="mcpfence-console-")
        self._db = duckdb.connect(os.path.join(self._folder, "decisions.duckdb"))
        self._db.execute("SET TimeZone = 'UTC'")
        columns = ", ".join(f"{name} {kind}" for name, kind in _COLUMNS.items())
        self._db.execute(f"CREATE TABLE decisions ({columns}, policies VARCHAR[], inode UBIGINT)")
        self._loaded: dict[int, int] = {}  # inode -> bytes loaded
        self._version = 0  # changes whenever rows are added or removed
        self._menus: tuple[int, dict[str, list[str]]] = (-1, {})
        self._lock = threading.Lock()
        self._closed = False

    @property
    def log(self) -> Path | None:
        """The live decision log file (None: the proxy writes none, or to stdout)."""
        return self._log

    @property
    def has_log(self) -> bool:
        return self._log is not None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._db.close()
        shutil.rmtree(self._folder, ignore_errors=True)

    # -- queries -------------------------------------------------------------

    def page(self, filters: Filters, limit: int = 50, offset: int = 0) -> Page:
        where, values = filters.where()
        columns = ", ".join(Row.__dataclass_fields__)
        with self._lock:
            self._refresh()
            total = self._db.execute(f"SELECT count(*) FROM decisions WHERE {where}", values).fetchone()
            # Sort on the key alone, then fetch whole rows for one page: deep pages stay cheap.
            found = self._db.execute(
                f"SELECT {columns} FROM decisions WHERE rowid IN ("
                f" SELECT rowid FROM decisions WHERE {where} ORDER BY time DESC, rowid DESC LIMIT ? OFFSET ?"
                ") ORDER BY time DESC, rowid DESC",
                [*values, limit, offset],
            ).fetchall()
            choices = self._choices()
        return Page([Row(*row) for row in found], int(total[0]) if total else 0, choices)

    def _choices(self) -> dict[str, list[str]]:
        """Distinct values for the filter menus, recomputed only when rows came or went."""
        if self._menus[0] != self._version:
            menus = {
                column: [v for (v,) in self._db.execute(
                    f"SELECT DISTINCT {column} FROM decisions ORDER BY 1"
                ).fetchall()]
                for column in ("route", "tool", "client_id")
            }
            menus["policy"] = [p for (p,) in self._db.execute(
                "SELECT DISTINCT unnest(policies) FROM decisions ORDER BY 1"
            ).fetchall()]
            self._menus = (self._version, menus)
        return self._menus[1]

    def load(self) -> None:
        """Load what is on disk now (the console calls it once at start, in the background)."""
        with self._lock:
            if not self._closed:
                self._refresh()

    def series(self, filters: Filters, top: int = 8) -> Series:
        """Counts per policy per time bucket for the ``top`` busiest policies."""
        where, values = filters.where()
        with self._lock:
            self._refresh()
            query = f"SELECT min(time), max(time) FROM decisions WHERE {where}"
            span = self._db.execute(query, values).fetchone()
            if span is None or span[0] is None:
                return Series([], _WIDTHS[0])
            first, last = span
            width = next((w for w in _WIDTHS if (last - first) / w < _MAX_BUCKETS), _WIDTHS[-1])
            first = _floor(first, width)
            rows = self._db.execute(
                f"""
                WITH hits AS (
                    SELECT time_bucket(?, time, ?) AS bucket, unnest(policies) AS policy
                    FROM decisions WHERE {where}
                ), busiest AS (
                    SELECT policy FROM hits GROUP BY policy ORDER BY count(*) DESC, policy LIMIT ?
                )
                SELECT bucket, policy, count(*) FROM hits WHERE policy IN (SELECT policy FROM busiest)
                GROUP BY bucket, policy ORDER BY bucket, policy
                """,
                [width, first, *values, top],
            ).fetchall()
        buckets = [first + width * i for i in range(int((last - first) / width) + 1)]
        index = {bucket: i for i, bucket in enumerate(buckets)}
        counts: dict[str, list[int]] = {}
        for bucket, policy, count in rows:
            counts.setdefault(policy, [0] * len(buckets))[index[bucket]] = int(count)
        return Series(buckets, width, counts)

    # -- loading ---------------------------------------------------------------

    def _refresh(self) -> None:
        """Load what was appended to each file since the last query; forget files rotated away."""
        if self._log is None:
            return
        present: dict[int, Path] = {}
        for path in self._files(self._log):
            try:
                present[path.stat().st_ino] = path
            except FileNotFoundError:
                continue  # rotated between listing and stat: found under its new name next time
        for inode in set(self._loaded) - set(present):
            self._db.execute("DELETE FROM decisions WHERE inode = ?", [inode])
            del self._loaded[inode]
            self._version += 1
        for inode, path in present.items():
            self._append(inode, path)

    def _append(self, inode: int, path: Path) -> None:
        offset = self._loaded.setdefault(inode, 0)
        size = path.stat().st_size
        if size <= offset:
            return
        if offset == 0 and path != self._log:
            self._insert(str(path), inode)  # a rotated file is complete and no longer written
            self._loaded[inode] = size
            return
        part = os.path.join(self._folder, "part.jsonl")
        copied = _copy_lines(path, offset, size, part)
        if copied:
            self._insert(part, inode)
            self._loaded[inode] = offset + copied

    def _insert(self, source: str, inode: int) -> None:
        self._version += 1
        names = ", ".join(_COLUMNS)
        self._db.execute(
            f"INSERT INTO decisions SELECT {names}, {_POLICIES}, ? FROM read_json(?,"
            " format = 'newline_delimited', columns = ?, ignore_errors = true) WHERE time IS NOT NULL",
            [inode, source, _COLUMNS],
        )


def _floor(moment: datetime, width: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + ((moment - epoch) // width) * width


def _copy_lines(path: Path, offset: int, size: int, target: str) -> int:
    """Copy the complete lines in ``path[offset:size]`` to ``target``; how many bytes that is.

    A line still being written (no newline yet) is left for the next query.
    """
    copied = last_newline = 0
    with path.open("rb") as source, open(target, "wb") as out:
        source.seek(offset)
        while copied < size - offset:
            block = source.read(min(1 << 20, size - offset - copied))
            if not block:
                break
            out.write(block)
            found = block.rfind(b"\n")
            if found >= 0:
                last_newline = copied + found + 1
            copied += len(block)
        out.truncate(last_newline)
    return last_newline
