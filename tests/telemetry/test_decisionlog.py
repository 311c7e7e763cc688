"""The decision log: one JSON line per tools/call, hashed, redacted, rotated."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from mcpfence.config import ConfigError, DecisionLogConfig
from mcpfence.jsonrpc import canonical as canonical_json
from mcpfence.telemetry import DecisionLog
from mcpfence.telemetry.sealing import Sealer, SealError, sealer

LOG_FIELDS = [
    "time",
    "decision_id",
    "policy_revision",
    "trace_id",
    "route",
    "session_id",
    "client_id",
    "tool",
    "decision",
    "violations",
    "mutations",
    "args_sha256",
    "duration_ms",
]


def record(**overrides: Any) -> dict[str, Any]:
    return {
        "policy_revision": "rev-1",
        "trace_id": "0af7651916cd43dd8448eb211c80319c",
        "route": "postmark",
        "session_id": "sess-1",
        "client_id": "ci-bot",
        "tool": "send_email",
        "decision": "mutate",
        "violations": [],
        "mutations": [{"policy": "lowercase", "path": "/to"}],
        "args": {"to": "ann@example.com", "body": "the secret plan", "tags": ["a", "pin-1234"]},
        "duration_ms": 1.5,
        **overrides,
    }


def written(path: Path, *records: dict[str, Any], **options: Any) -> list[dict[str, Any]]:
    log = DecisionLog(path, **options)
    for item in records:
        log.write(item)
    log.close()
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_each_line_has_exactly_the_spec_fields_in_order(tmp_path: Path) -> None:
    [line] = written(tmp_path / "d.jsonl", record())
    assert list(line) == LOG_FIELDS


def test_line_values_come_from_the_record(tmp_path: Path) -> None:
    violation = {"policy": "no-external", "message": "to must be internal", "extra": 1}
    [line] = written(tmp_path / "d.jsonl", record(decision="deny", violations=[violation]))
    assert line["decision"] == "deny"
    assert line["violations"] == [{"policy": "no-external", "message": "to must be internal"}]
    assert line["mutations"] == [{"policy": "lowercase", "path": "/to"}]
    assert (line["route"], line["tool"], line["client_id"]) == ("postmark", "send_email", "ci-bot")
    assert line["duration_ms"] == 1.5


def test_time_is_utc_rfc3339_with_milliseconds(tmp_path: Path) -> None:
    [line] = written(tmp_path / "d.jsonl", record())
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])


def test_write_returns_the_decision_id_it_logs(tmp_path: Path) -> None:
    log = DecisionLog(tmp_path / "d.jsonl")
    generated = log.write(record())
    given = log.write(record(decision_id="fixed-id"))
    assert given == "fixed-id"
    log.close()
    lines = [json.loads(x) for x in (tmp_path / "d.jsonl").read_text().splitlines()]
    assert [line["decision_id"] for line in lines] == [generated, "fixed-id"]


def test_args_sha256_is_the_hash_of_sorted_compact_utf8_json(tmp_path: Path) -> None:
    args = {"z": "ünï", "a": [1, {"y": None, "b": True}]}
    [line] = written(tmp_path / "d.jsonl", record(args=args))
    expected = '{"a":[1,{"b":true,"y":null}],"z":"ünï"}'.encode()
    assert line["args_sha256"] == hashlib.sha256(expected).hexdigest()


def test_canonical_json_sorts_keys_without_spaces_in_utf8() -> None:
    assert canonical_json({"b": 1, "a": ["é", 2.5]}) == '{"a":["é",2.5],"b":1}'.encode()


def test_canonical_json_refuses_nan() -> None:
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


def test_argument_values_are_not_logged_by_default(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    [line] = written(path, record())
    assert "args" not in line
    assert "secret" not in path.read_text()
    assert "ann@example.com" not in path.read_text()


def test_arguments_are_logged_when_included(tmp_path: Path) -> None:
    [line] = written(tmp_path / "d.jsonl", record(), include_arguments=True)
    assert list(line)[-1] == "args"
    assert line["args"] == record()["args"]


def test_redacted_pointers_are_replaced_and_the_hash_is_of_the_real_arguments(
    tmp_path: Path,
) -> None:
    args = {"body": "the secret plan", "tags": ["a", "pin-1234"], "a/b": {"c": 1}, "to": "x"}
    [line] = written(
        tmp_path / "d.jsonl",
        record(args=args),
        include_arguments=True,
        redact=["/body", "/tags/1", "/a~1b/c", "/missing/path"],
    )
    assert line["args"] == {
        "body": "[REDACTED]",
        "tags": ["a", "[REDACTED]"],
        "a/b": {"c": "[REDACTED]"},
        "to": "x",
    }
    assert line["args_sha256"] == hashlib.sha256(canonical_json(args)).hexdigest()


def test_redaction_leaves_the_callers_arguments_untouched(tmp_path: Path) -> None:
    item = record()
    written(tmp_path / "d.jsonl", item, include_arguments=True, redact=["/body", "/tags/0"])
    assert item["args"] == record()["args"]


def test_redact_rejects_a_pointer_without_leading_slash(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="JSON Pointer"):
        DecisionLog(tmp_path / "d.jsonl", redact=["body"])


def test_lines_are_appended_to_an_existing_log(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    written(path, record())
    assert len(written(path, record())) == 2


def test_log_rotates_by_size_keeping_the_configured_backups(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    line_size = len(json.dumps(written(tmp_path / "probe.jsonl", record())[0]).encode()) + 1
    log = DecisionLog(path, max_bytes=line_size * 2, backups=2)
    ids = [log.write(record(decision_id=f"id-{n}")) for n in range(7)]
    log.close()
    files = [path, path.with_name("d.jsonl.1"), path.with_name("d.jsonl.2")]
    kept = [json.loads(x)["decision_id"] for f in reversed(files) for x in f.read_text().splitlines()]
    assert kept == ids[-5:]
    assert not path.with_name("d.jsonl.3").exists()
    assert all(f.stat().st_size <= line_size * 2 for f in files)


def test_dash_writes_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    log = DecisionLog("-")
    log.write(record())
    log.close()
    assert json.loads(capsys.readouterr().out)["tool"] == "send_email"


def test_unicode_line_separators_cannot_split_a_line(tmp_path: Path) -> None:
    """``str.splitlines()`` breaks at U+2028/U+2029/U+0085 too: a client-chosen tool name must not
    turn one record into two half-lines for readers that use it."""
    name = "send\u2028email\u2029now\x85"
    violations = [{"policy": "p", "message": f"tool {name} refused"}]
    [line] = written(tmp_path / "d.jsonl", record(tool=name, violations=violations))
    assert line["tool"] == name
    assert line["violations"][0]["message"] == f"tool {name} refused"


REPLAY_FIELDS = {
    "arguments": {"to": "Ann@Example.com", "body": "the secret plan"},
    "ok": True,
    "result": {"id": 7},
}


def test_replay_fields_are_not_recorded_by_default(tmp_path: Path) -> None:
    [line] = written(tmp_path / "d.jsonl", record(**REPLAY_FIELDS))
    assert not {"arguments", "ok", "result", "sealed"} & line.keys()


def test_recorded_arguments_are_the_ones_sent_redacted_with_the_outcome(tmp_path: Path) -> None:
    [line] = written(tmp_path / "d.jsonl", record(**REPLAY_FIELDS), record_arguments=True, redact=["/body"])
    assert line["arguments"] == {"to": "Ann@Example.com", "body": "[REDACTED]"}
    assert (line["ok"], line["result"]) == (True, {"id": 7})
    assert "args" not in line


def test_sealed_replay_fields_open_only_with_the_key(tmp_path: Path) -> None:
    sealer = Sealer(Fernet.generate_key())
    [line] = written(tmp_path / "d.jsonl", record(**REPLAY_FIELDS), record_arguments=True, sealer=sealer)
    assert not {"arguments", "ok", "result"} & line.keys()
    assert "secret" not in json.dumps(line)
    assert sealer.open(line["sealed"])["arguments"] == REPLAY_FIELDS["arguments"]
    with pytest.raises(SealError):
        Sealer(Fernet.generate_key()).open(line["sealed"])


def test_a_named_but_unset_key_variable_stops_start_up() -> None:
    with pytest.raises(ConfigError, match="MCPFENCE_LOG_KEY is not set"):
        sealer(DecisionLogConfig(record_arguments=True, key_env="MCPFENCE_LOG_KEY"), env={})


def test_a_key_that_is_not_a_fernet_key_stops_start_up() -> None:
    with pytest.raises(ConfigError, match="not a Fernet key"):
        sealer(DecisionLogConfig(key_env="K"), env={"K": "hunter2"})
