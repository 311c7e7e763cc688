"""Loading policy files: every problem reported as FILE:LINE:COL: message."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mcpfence.policy import load_policy_set
from mcpfence.yamlsource import SourceError

HEADER = """\
apiVersion: mcpfence/v1
kind: ToolPolicy
metadata:
  name: {name}
spec:
  match:
    tools: [send]
"""


def problems(tmp_path: Path, *files: str) -> list[str]:
    """The diagnostics of loading ``files`` (written as a.yaml, b.yaml, ...), path as FILE."""
    for index, text in enumerate(files):
        (tmp_path / f"{'abc'[index]}.yaml").write_text(textwrap.dedent(text))
    with pytest.raises(SourceError) as caught:
        load_policy_set([tmp_path])
    return [str(d).replace(str(tmp_path) + "/", "") for d in caught.value.diagnostics]


def test_a_cel_type_error_points_into_the_expression(tmp_path: Path) -> None:
    text = HEADER.format(name="p") + "  when: \"1 + 'a' == 2\"\n"

    assert problems(tmp_path, text) == [
        "a.yaml:8:12: spec.when: found no matching overload for '_+_' applied to '(int, string)'"
    ]


def test_a_cel_error_in_a_block_scalar_points_at_its_line(tmp_path: Path) -> None:
    text = HEADER.format(name="p") + (
        "  validations:\n"
        "    - expression: |\n"
        "        has(args.to) &&\n"
        "          args.to.size() + 'x'\n"
    )

    assert problems(tmp_path, text) == [
        "a.yaml:11:28: spec.validations.0.expression: "
        "found no matching overload for '_+_' applied to '(int, string)'"
    ]


def test_a_syntax_error_is_reported_at_load(tmp_path: Path) -> None:
    text = HEADER.format(name="p") + "  when: has(args.to) &&\n"

    [problem] = problems(tmp_path, text)

    assert problem.startswith("a.yaml:8:")
    assert "Syntax error" in problem


def test_a_validation_must_be_a_bool_expression(tmp_path: Path) -> None:
    text = HEADER.format(name="p") + "  validations:\n    - expression: \"'yes'\"\n"

    assert problems(tmp_path, text) == [
        "a.yaml:9:20: spec.validations.0.expression: expression must evaluate to bool, not STRING"
    ]


def test_an_undeclared_variable_is_an_error(tmp_path: Path) -> None:
    text = HEADER.format(name="p") + "  when: request.size() > 0\n"

    assert problems(tmp_path, text) == [
        "a.yaml:8:9: spec.when: undeclared reference to 'request' (in container '')"
    ]


def test_a_variable_cannot_hold_a_timestamp(tmp_path: Path) -> None:
    text = HEADER.format(name="p") + "  variables:\n    - {name: at, expression: now}\n"

    [problem] = problems(tmp_path, text)

    assert problem.startswith("a.yaml:9:30: spec.variables.0.expression: a variable cannot hold TIMESTAMP")


def test_unknown_fields_are_errors(tmp_path: Path) -> None:
    text = HEADER.format(name="p") + "  validation: []\n"

    assert problems(tmp_path, text) == ["a.yaml:8:3: spec.validation: unknown key"]


def test_policy_names_must_be_lowercase_words(tmp_path: Path) -> None:
    [problem] = problems(tmp_path, HEADER.format(name="My_Policy"))

    assert problem.startswith("a.yaml:4:9: metadata.name: String should match pattern")


def test_duplicate_names_across_files_are_errors(tmp_path: Path) -> None:
    assert problems(tmp_path, HEADER.format(name="p"), HEADER.format(name="p")) == [
        "b.yaml:4:9: metadata.name: duplicate policy name 'p' (first defined at a.yaml:4:9)"
    ]


def test_a_bad_json_pointer_is_an_error(tmp_path: Path) -> None:
    text = HEADER.format(name="p") + "  mutations:\n    - {path: emails, expression: '1'}\n"

    assert problems(tmp_path, text) == [
        "a.yaml:9:14: spec.mutations.0.path: JSON Pointer 'emails' must be empty or start with '/'"
    ]


def test_a_json_pointer_with_a_stray_tilde_is_an_error(tmp_path: Path) -> None:
    text = HEADER.format(name="p") + "  opaque:\n    - {path: /a~2b}\n"

    assert "has a '~' not followed by 0 or 1" in problems(tmp_path, text)[0]


def test_a_bad_glob_is_an_error(tmp_path: Path) -> None:
    text = HEADER.format(name="p").replace("[send]", "['send[']")

    assert problems(tmp_path, text) == ["a.yaml:7:13: spec.match.tools.0: glob 'send[' has an unclosed '['"]


def test_a_bad_regex_pattern_is_an_error(tmp_path: Path) -> None:
    text = HEADER.format(name="p") + "  opaque:\n    - {path: /blob, pattern: '^[a-z+$'}\n"

    [problem] = problems(tmp_path, text)

    assert problem.startswith("a.yaml:9:30: spec.opaque.0.pattern: invalid regular expression")


def test_a_mutation_may_not_write_to_an_opaque_path(tmp_path: Path) -> None:
    text = HEADER.format(name="p") + textwrap.indent(textwrap.dedent("""\
        opaque:
          - {path: /blob/token}
        mutations:
          - {path: /blob, expression: "{'token': 'x'}"}
    """), "  ")

    assert problems(tmp_path, text) == [
        "a.yaml:11:14: spec.mutations.0.path: mutations may not write to opaque path /blob/token "
        "(declared by policy p)"
    ]


def test_expressions_longer_than_the_cap_are_rejected(tmp_path: Path) -> None:
    long = " || ".join(["args.a == 1"] * 400)
    text = HEADER.format(name="p") + f"  when: \"{long}\"\n"

    assert problems(tmp_path, text) == [
        "a.yaml:8:10: spec.when: expression is 5996 characters; the limit is 4096"
    ]


def test_comprehensions_nested_three_deep_are_rejected(tmp_path: Path) -> None:
    expression = "args.a.all(x, x.all(y, y.exists(z, z == 1)))"
    text = HEADER.format(name="p") + f"  when: \"{expression}\"\n"

    assert problems(tmp_path, text) == [
        "a.yaml:8:10: spec.when: comprehensions (all, exists, map, filter, ...) are nested 3 deep; "
        "the limit is 2"
    ]


def test_every_problem_of_every_file_is_reported(tmp_path: Path) -> None:
    first = HEADER.format(name="p") + "  when: nope\n"
    second = HEADER.format(name="q") + "  action: block\n"

    found = problems(tmp_path, first, second)

    assert [line.split(":")[0] for line in found] == ["a.yaml", "b.yaml"]


def test_folders_skip_policy_test_documents(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(HEADER.format(name="p"))
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "t.yaml").write_text("apiVersion: mcpfence/v1\nkind: PolicyTest\n")

    assert len(load_policy_set([tmp_path])) == 1


def test_a_document_of_another_kind_is_an_error(tmp_path: Path) -> None:
    assert problems(tmp_path, "kind: Deployment\n") == ["a.yaml:1:7: kind must be ToolPolicy or PolicyTest"]


def test_a_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file or folder"):
        load_policy_set([tmp_path / "missing.yaml"])
