"""``mcpfence replay``: exit 0 when nothing changes, 1 when something does, 2 on bad input."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TextIO

from mcpfence.config import load_config
from mcpfence.policy import load_policy_set
from mcpfence.replay.diff import ReplayReport, replay
from mcpfence.replay.records import read_records
from mcpfence.telemetry.sealing import sealer


def run(
    config_path: Path,
    policy_paths: list[Path],
    logs: list[Path],
    since: datetime | None,
    as_json: bool,
    out: TextIO,
) -> int:
    """Replay ``logs`` against the policies at ``policy_paths``; the config gives the log's key."""
    config = load_config(config_path)
    policies = load_policy_set(policy_paths)
    calls = read_records(logs, sealer(config.decision_log))
    report = replay(policies, calls, since)
    if as_json:
        print(json.dumps(report.as_json(), indent=2, ensure_ascii=False), file=out)
    else:
        out.write(summary(report))
    return 1 if report.changes else 0


def summary(report: ReplayReport) -> str:
    """The report for people: counts per policy and change, then a few examples."""
    lines = [f"{report.calls} calls replayed, {len(report.changes)} would change"]
    for policy, kinds in report.by_policy().items():
        counts = ", ".join(f"{kind}: {count}" for kind, count in kinds.items())
        lines.append(f"  {policy}: {counts}")
    examples = report.examples()
    if examples:
        lines.append("examples:")
    for change in examples:
        call = change.call
        lines.append(
            f"  {call.where} {call.time.isoformat()} route {call.route} tool {call.tool} "
            f"session {call.session_id or '-'}: {change.kind} ({', '.join(change.policies)})"
        )
        lines.extend(f"    {v.policy}: {v.message}" for v in change.after.violations)
    return "\n".join(lines) + "\n"
