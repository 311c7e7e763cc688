"""``mcpfence replay`` against a decision log recorded from the seed workflows."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from mcpfence.cli import main
from mcpfence.telemetry import DecisionLog
from mcpfence.telemetry.sealing import Sealer
from tests.e2e.workflows.conftest import POLICIES
from tests.replay.conftest import SeedLog

NO_PASSWORD_RESETS = """\
apiVersion: mcpfence/v1
kind: ToolPolicy
metadata:
  name: no-password-resets
spec:
  match:
    tools: [create_a_postmark_templated_email]
  validations:
    - expression: args.TemplateAlias != 'password-reset'
      message: password resets go through the accounts service
"""
POSTMARK = POLICIES / "postmark.yaml"
RESETS_MESSAGE = "password resets go through the accounts service"


def argv(seed: SeedLog, policies: Path, log: Path | None = None, *extra: str) -> list[str]:
    log = log or seed.path
    return ["replay", "--config", str(seed.config), "--policies", str(policies), "--log", str(log), *extra]


def replay(
    capsys: pytest.CaptureFixture[str], seed: SeedLog, policies: Path, extra: tuple[str, ...] = ()
) -> tuple[int, str]:
    code = main(argv(seed, policies, None, *extra))
    return code, capsys.readouterr().out


def candidate(tmp_path: Path, text: str = NO_PASSWORD_RESETS) -> Path:
    """The shipped packs plus one more policy file."""
    folder = tmp_path / "candidate"
    shutil.copytree(POLICIES, folder)
    (folder / "extra.yaml").write_text(text)
    return folder


def test_the_policies_that_wrote_the_log_change_nothing_and_exit_0(
    seed_log: SeedLog, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = replay(capsys, seed_log, POLICIES, extra=("--json",))
    assert (code, json.loads(out)) == (0, {"calls": 5, "changed": 0, "by_policy": {}, "examples": []})


def test_session_history_is_replayed_so_a_read_then_edit_is_rewritten_again(
    seed_log: SeedLog, capsys: pytest.CaptureFixture[str]
) -> None:
    # Without its session's earlier read the edit would be denied, not rewritten.
    [edit] = [line for line in seed_log.lines() if line["tool"] == "update_a_i_post_contact_by_id"][:1]
    assert edit["mutations"] == [{"policy": "ipost-email-update-keeps-status", "path": "/GlobalEmailStatus"}]
    assert replay(capsys, seed_log, POLICIES)[0] == 0


def test_a_candidate_that_blocks_a_recorded_call_reports_it_and_exits_1(
    seed_log: SeedLog, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out = replay(capsys, seed_log, candidate(tmp_path), extra=("--json",))
    report = json.loads(out)
    assert code == 1
    assert (report["calls"], report["changed"]) == (5, 1)
    assert report["by_policy"] == {"no-password-resets": {"allow->deny": 1}}
    [example] = report["examples"]
    assert example == {
        "route": "postmark",
        "tool": "create_a_postmark_templated_email",
        "session_id": example["session_id"],
        "before": "allow",
        "after": "deny",
        "violations": [{"policy": "no-password-resets", "message": RESETS_MESSAGE}],
    }
    assert example["session_id"]


def test_dropping_a_pack_reports_its_denials_and_rewrites_as_lost(
    seed_log: SeedLog, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = replay(capsys, seed_log, POSTMARK, extra=("--json",))
    by_policy = json.loads(out)["by_policy"]
    assert code == 1
    assert by_policy == {
        "ipost-email-update-keeps-status": {"mutate->allow": 1},
        "ipost-md5-emails-lowercase": {"mutate->allow": 1},
        "ipost-no-silent-resubscribe": {"deny->allow": 1},
    }


def test_the_text_report_counts_per_policy_and_quotes_the_new_message(
    seed_log: SeedLog, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out = replay(capsys, seed_log, candidate(tmp_path))
    assert code == 1
    assert out.startswith("5 calls replayed, 1 would change\n  no-password-resets: allow->deny: 1\n")
    assert "no-password-resets: password resets go through the accounts service" in out
    assert f"{seed_log.path}:4 " in out  # the example says where the call was recorded


def test_since_reports_only_later_calls(
    seed_log: SeedLog, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    after_all = "2999-01-01T00:00:00Z"
    code, out = replay(capsys, seed_log, candidate(tmp_path), extra=("--json", "--since", after_all))
    assert (code, json.loads(out)["calls"]) == (0, 0)


def test_a_bad_log_line_exits_2_with_file_and_line(
    seed_log: SeedLog, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    log = tmp_path / "broken.jsonl"
    log.write_text(seed_log.path.read_text() + "{not json\n")
    code = main(argv(seed_log, POLICIES, log))
    assert code == 2
    assert f"{log}:6:1: not a JSON line" in capsys.readouterr().err


def test_a_log_without_recorded_arguments_exits_2_saying_what_to_turn_on(
    seed_log: SeedLog, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    log = tmp_path / "plain.jsonl"
    replay_fields = ("arguments", "ok", "result")
    plain = [{k: v for k, v in line.items() if k not in replay_fields} for line in seed_log.lines()]
    log.write_text("".join(json.dumps(line) + "\n" for line in plain))
    code = main(argv(seed_log, POLICIES, log))
    assert code == 2
    assert f"{log}:1:1: no arguments recorded: replay needs decision_log.record_arguments: true" in (
        capsys.readouterr().err
    )


def test_a_bad_candidate_policy_exits_2_with_its_position(
    seed_log: SeedLog, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    broken = candidate(tmp_path, NO_PASSWORD_RESETS.replace("!=", "!=="))
    code = main(argv(seed_log, broken))
    assert code == 2
    assert f"{broken / 'extra.yaml'}:9:40: spec.validations.0.expression: Syntax error" in (
        capsys.readouterr().err
    )


def test_sealed_records_replay_with_the_key_named_in_the_config(
    seed_log: SeedLog, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = Fernet.generate_key().decode()
    sealed = tmp_path / "sealed.jsonl"
    log = DecisionLog(sealed, record_arguments=True, sealer=Sealer(key))
    for line in seed_log.lines():
        log.write({**line, "args": line["arguments"]})
    log.close()
    config = tmp_path / "mcpfence.yaml"
    config.write_text(f"decision_log: {{path: {sealed}, record_arguments: true, key_env: LOG_KEY}}\n")
    args = ["replay", "--config", str(config), "--policies", str(POSTMARK), "--log", str(sealed), "--json"]

    monkeypatch.setenv("LOG_KEY", key)
    assert main(args) == 1
    assert json.loads(capsys.readouterr().out)["changed"] == 3  # as from the plain log
    monkeypatch.setenv("LOG_KEY", Fernet.generate_key().decode())
    assert main(args) == 2
    assert f"{sealed}:1:1: the sealed fields cannot be opened with this key" in capsys.readouterr().err


def test_a_since_that_is_not_a_time_exits_2(seed_log: SeedLog, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv(seed_log, POLICIES, None, "--since", "last tuesday"))
    assert exited.value.code == 2
    assert "not an ISO-8601 time: 'last tuesday'" in capsys.readouterr().err
