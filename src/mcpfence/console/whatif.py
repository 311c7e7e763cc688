"""The what-if page: a candidate policy file checked, tested and replayed against the log.

The candidate replaces one loaded policy file (or joins them as a new one), so the
replay shows exactly what shipping that edit would change. PolicyTest documents in
the candidate run against the whole candidate set.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from mcpfence.console.policies import CaseView
from mcpfence.policy import PolicySet, load_policy_set
from mcpfence.policy.loader import read_documents
from mcpfence.policy.models import PolicyTest
from mcpfence.policy.testing import run_case
from mcpfence.replay import ReplayReport, log_files, read_records, replay
from mcpfence.telemetry.sealing import Sealer
from mcpfence.yamlsource import SourceError

NEW_FILE = ""


@dataclass
class WhatIf:
    """What the page shows: load errors, else test results and the replay diff."""

    name: str
    errors: list[str] = field(default_factory=list)
    cases: list[CaseView] = field(default_factory=list)
    report: ReplayReport | None = None
    log_error: str = ""


def what_if(
    text: str,
    name: str,
    replaces: str,
    loaded_files: Sequence[Path],
    log: Path | None,
    sealer: Sealer | None,
    since: datetime | None,
) -> WhatIf:
    """Check, test and replay ``text`` as policy file ``name`` in place of ``replaces``."""
    result = WhatIf(name)
    with tempfile.TemporaryDirectory(prefix="mcpfence-what-if-") as folder:
        candidate = Path(folder) / "candidate.yaml"
        candidate.write_text(text, "utf-8")
        kept = [f for f in loaded_files if str(f) != replaces]
        try:
            policies = load_policy_set([*kept, candidate])
        except SourceError as error:
            result.errors = [str(d).replace(str(candidate), name) for d in error.diagnostics]
            return result
        result.cases = _cases(candidate, name, policies)
    if log is None:
        result.log_error = "no decision log is configured (decision_log.path)"
        return result
    try:
        result.report = replay(policies, read_records(log_files(log), sealer), since)
    except SourceError as error:
        result.log_error = str(error)
    return result


def _cases(candidate: Path, name: str, policies: PolicySet) -> list[CaseView]:
    entries, _ = read_documents([candidate], kinds=("PolicyTest",))
    views = []
    for doc, test in entries:
        assert isinstance(test, PolicyTest)
        for case in test.spec.cases:
            outcome = run_case(policies, case)
            views.append(CaseView(f"{name}:{doc.line}", case.name, outcome.passed, outcome.failures))
    return views
