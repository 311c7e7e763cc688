"""DuckDB over the decision log: rotated files, appended lines, half-written lines."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mcpfence.console.decisions import DecisionStore, Filters
from mcpfence.telemetry import DecisionLog


def record(number: int, decision: str = "allow", policy: str = "") -> dict[str, Any]:
    violations = [{"policy": policy, "message": f"no {number}"}] if policy and decision == "deny" else []
    mutations = [{"policy": policy, "path": "/to"}] if policy and decision == "mutate" else []
    return {
        "decision_id": f"d-{number}", "policy_revision": "r", "trace_id": "", "route": "mail",
        "session_id": "s", "client_id": "c", "tool": "send", "decision": decision,
        "violations": violations, "mutations": mutations, "args": {"n": number}, "duration_ms": 1.0,
    }


def write(path: Path, records: list[dict[str, Any]], **options: Any) -> None:
    log = DecisionLog(path, **options)
    for item in records:
        log.write(item)
    log.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DecisionStore]:
    found = DecisionStore(tmp_path / "decisions.jsonl")
    yield found
    found.close()


def total(store: DecisionStore, **filters: Any) -> int:
    return store.page(Filters(**filters)).total


def test_rotated_files_are_read_with_the_live_one(store: DecisionStore, tmp_path: Path) -> None:
    write(tmp_path / "decisions.jsonl", [record(n) for n in range(30)], max_bytes=2000, backups=10)
    assert len(list(tmp_path.glob("decisions.jsonl.*"))) >= 2
    assert total(store) == 30


def test_lines_appended_between_queries_are_added_once(store: DecisionStore, tmp_path: Path) -> None:
    log = tmp_path / "decisions.jsonl"
    write(log, [record(n) for n in range(3)])
    assert total(store) == 3
    write(log, [record(n) for n in range(3, 5)])
    assert total(store) == 5
    assert total(store) == 5


def test_a_line_still_being_written_waits_for_its_newline(store: DecisionStore, tmp_path: Path) -> None:
    log = tmp_path / "decisions.jsonl"
    write(log, [record(1), record(2)])
    text = log.read_text()
    first, second = text.splitlines(keepends=True)
    log.write_text(first + second[:20])
    assert total(store) == 1
    log.write_text(first + second)
    assert total(store) == 2


def test_rotation_after_a_query_neither_loses_nor_doubles_lines(store: DecisionStore, tmp_path: Path) -> None:
    log = tmp_path / "decisions.jsonl"
    write(log, [record(n) for n in range(5)], max_bytes=100_000)
    assert total(store) == 5
    write(log, [record(n) for n in range(5, 40)], max_bytes=2000, backups=20)
    assert total(store) == 40


def test_files_rotated_away_are_forgotten(store: DecisionStore, tmp_path: Path) -> None:
    log = tmp_path / "decisions.jsonl"
    write(log, [record(n) for n in range(40)], max_bytes=2000, backups=1)
    kept = sum(len(p.read_text().splitlines()) for p in (log, tmp_path / "decisions.jsonl.1"))
    assert total(store) == kept < 40


def test_filters_by_decision_and_policy_and_time(store: DecisionStore, tmp_path: Path) -> None:
    records = [record(1), record(2, "deny", "no-external"), record(3, "mutate", "lowercase")]
    write(tmp_path / "decisions.jsonl", [*records, record(4, "deny", "other")])
    assert total(store, decision="deny") == 2
    assert total(store, policy="no-external") == 1
    assert total(store, policy="lowercase", decision="mutate") == 1
    assert total(store, since=datetime.now(UTC) + timedelta(hours=1)) == 0
    [row] = store.page(Filters(policy="no-external")).rows
    assert row.violations == [{"policy": "no-external", "message": "no 2"}]


def test_series_counts_each_policy_per_bucket(store: DecisionStore, tmp_path: Path) -> None:
    records = [record(1, "deny", "a"), record(2, "deny", "a"), record(3, "mutate", "b")]
    write(tmp_path / "decisions.jsonl", records)
    series = store.series(Filters())
    assert {policy: sum(counts) for policy, counts in series.counts.items()} == {"a": 2, "b": 1}


def test_unparseable_lines_are_skipped(store: DecisionStore, tmp_path: Path) -> None:
    log = tmp_path / "decisions.jsonl"
    write(log, [record(1)])
    with log.open("a") as out:
        out.write("{not json\n" + json.dumps({"time": "never"}) + "\n")
    assert total(store) == 1
