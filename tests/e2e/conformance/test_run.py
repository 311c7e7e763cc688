"""How run.py scores the suite's results and compares a proxied run with a direct one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.e2e.conformance.run import Check, Score, differences, read_checks

REVISION = "2025-11-25"


def write_results(folder: Path, scenario: str, checks: list[dict[str, Any]]) -> Path:
    """A results folder laid out as the suite writes it: server-<scenario>-<timestamp>/."""
    target = folder / f"server-{scenario}-2026-11-24T12-01-16-582Z"
    target.mkdir(parents=True)
    (target / "checks.json").write_text(json.dumps(checks))
    return folder


def check(scenario: str, status: str, scored: bool = True, occurrence: int = 1) -> Check:
    return Check(REVISION, scenario, "the-check", occurrence, status, "", None, scored)


def test_read_checks_keeps_verdicts_and_drops_info(tmp_path: Path) -> None:
    raw = [{"id": "ping", "status": "SUCCESS"}, {"id": "outgoing-request", "status": "INFO"}]
    results = write_results(tmp_path, "ping", raw)

    checks = read_checks(results, REVISION, frozenset({"ping"}))

    assert [(c.scenario, c.id, c.status) for c in checks] == [("ping", "ping", "SUCCESS")]


def test_read_checks_marks_scenarios_outside_the_requirements_as_not_scored(
    tmp_path: Path,
) -> None:
    results = write_results(tmp_path, "tasks-lifecycle", [{"id": "t", "status": "FAILURE"}])

    (only,) = read_checks(results, REVISION, frozenset({"ping"}))

    assert not only.scored


def test_read_checks_numbers_repeated_ids_within_a_scenario(tmp_path: Path) -> None:
    raw = [{"id": "event", "status": "WARNING"}, {"id": "event", "status": "SUCCESS"}]
    results = write_results(tmp_path, "server-sse-polling", raw)

    checks = read_checks(results, REVISION, frozenset())

    assert [c.occurrence for c in checks] == [1, 2]


def test_score_counts_only_scored_checks() -> None:
    score = Score((check("a", "SUCCESS"), check("b", "FAILURE"), check("c", "FAILURE", False)))

    assert (score.passed(), score.total()) == (1, 2)


def test_differences_are_empty_when_every_verdict_matches() -> None:
    run = Score((check("a", "SUCCESS"), check("b", "WARNING")))

    assert differences(run, run) == []


def test_differences_show_a_changed_verdict_from_both_sides() -> None:
    direct = Score((check("a", "SUCCESS"),))
    proxied = Score((Check(REVISION, "a", "the-check", 1, "FAILURE", "HTTP 502", None, True),))

    lines = differences(direct, proxied)

    assert lines == [
        f"  {REVISION} a / the-check:",
        "    direct:  SUCCESS",
        "    proxied: FAILURE - HTTP 502",
    ]


def test_differences_report_a_check_only_one_side_ran() -> None:
    direct = Score((check("a", "SUCCESS"),))

    lines = differences(direct, Score(()))

    assert lines[-1] == "    proxied: not reported"


def test_read_checks_scores_every_scenario_of_a_revision_without_requirements(tmp_path: Path) -> None:
    results = write_results(tmp_path, "tools-list", [{"id": "t", "status": "SUCCESS"}])

    (only,) = read_checks(results, "2025-06-18", None)

    assert only.scored
