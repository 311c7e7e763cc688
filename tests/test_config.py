"""The config file (docs/reference/config.md): the rules ``load_config`` applies, and
``mcpfence serve`` refusing a bad file before it listens.

Each refused case is a config file a person could plausibly write; the error must point
at ``FILE:LINE:COL`` and name what is wrong, and the exit code must be 2.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mcpfence.config import load_config
from mcpfence.yamlsource import SourceError
from tests.servers import free_port

UNSET_VAR = "MCPFENCE_TEST_NEVER_SET"
ROUTE = """\
routes:
  - name: echo
    path: /echo/mcp
    upstream:
      url: http://127.0.0.1:9/mcp
"""
CASES = {
    "unknown-top-level-key": (ROUTE + "telemetryy:\n  service_name: x\n", 6, "telemetryy"),
    "unknown-nested-key": (ROUTE + "      timeout_secs: 5\n", 6, "timeout_secs"),
    "bad-type": ("server:\n  max_body_bytes: lots\n" + ROUTE, 2, "max_body_bytes"),
    "bad-item-type": (ROUTE + "      timeout_seconds: [30]\n", 6, "timeout_seconds"),
    "unset-variable": (
        ROUTE + "      headers:\n        Authorization: Bearer ${" + UNSET_VAR + "}\n",
        7,
        UNSET_VAR,
    ),
}


def serve(config: Path) -> subprocess.CompletedProcess[str]:
    """Run ``mcpfence serve`` to completion; a config error must end it quickly."""
    env = {k: v for k, v in os.environ.items() if k != UNSET_VAR}
    command = [sys.executable, "-m", "mcpfence", "serve", "--config", str(config)]
    command += ["--host", "127.0.0.1", "--port", str(free_port())]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, env=env)


@pytest.mark.parametrize(("text", "line", "named"), CASES.values(), ids=CASES.keys())
def test_a_bad_config_stops_start_up_with_exit_2_and_a_located_error(
    tmp_path: Path, text: str, line: int, named: str
) -> None:
    config = tmp_path / "mcpfence.yaml"
    config.write_text(text)
    finished = serve(config)
    output = finished.stderr + finished.stdout
    assert finished.returncode == 2, output
    located = re.search(rf"{re.escape(str(config))}:{line}:\d+: (.*)", output)
    assert located, output
    assert named in located.group(1)


@pytest.mark.parametrize(
    ("config", "env", "message"),
    [
        ({}, {"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER: unknown exporter 'zipkin'"),
        ({"decision_log": {"path": "-", "redact": ["/a~b"]}}, {}, "~"),
    ],
    ids=["unknown-exporter", "malformed-redact-pointer"],
)
def test_an_unusable_environment_stops_start_up_with_exit_2_and_a_clear_message(
    tmp_path: Path, config: dict[str, object], env: dict[str, str], message: str
) -> None:
    path = tmp_path / "mcpfence.yaml"
    path.write_text(yaml.safe_dump({**config, "storage": {"path": str(tmp_path / "m.db")}}))
    result = subprocess.run(
        [sys.executable, "-m", "mcpfence", "serve", "--config", str(path)],
        capture_output=True, text=True, timeout=60, env={**os.environ, **env},
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_route_filter_takes_the_finer_method_names(tmp_path: Path) -> None:
    config = tmp_path / "mcpfence.yaml"
    config.write_text(ROUTE + "    expose: {methods: [read, update], tags: []}\n")

    assert load_config(config).routes[0].expose.methods == ("read", "update")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mcpfence.yaml"
    path.write_text(text)
    return path


def test_env_references_are_expanded(tmp_path: Path) -> None:
    path = write(tmp_path, "routes:\n  - name: a\n    path: /a\n    upstream:\n"
                           "      url: http://127.0.0.1:1/mcp\n      headers: {X-Key: '${KEY}'}\n")
    config = load_config(path, env={"KEY": "s3cret"})
    assert config.routes[0].upstream.headers == {"X-Key": "s3cret"}


def test_an_unset_env_reference_names_the_key_and_variable(tmp_path: Path) -> None:
    path = write(tmp_path, "routes:\n  - name: a\n    path: /a\n    upstream:\n"
                           "      url: http://127.0.0.1:1/mcp\n      headers: {X-Key: '${KEY}'}\n")
    with pytest.raises(SourceError) as caught:
        load_config(path, env={})
    assert "routes.0.upstream.headers.X-Key: environment variable KEY is not set" in str(caught.value)


def test_a_command_with_an_http_transport_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "routes:\n  - name: a\n    path: /a\n    upstream:\n"
                           "      command: [python, server.py]\n      transport: sse\n")
    with pytest.raises(SourceError) as caught:
        load_config(path, env={})
    assert "upstream.command goes with transport stdio" in str(caught.value)


def test_duplicate_route_names_are_refused(tmp_path: Path) -> None:
    route = "  - name: a\n    path: /{p}\n    upstream: {{url: 'http://127.0.0.1:1/mcp'}}\n"
    path = write(tmp_path, "routes:\n" + route.format(p="x") + route.format(p="y"))
    with pytest.raises(SourceError) as caught:
        load_config(path, env={})
    assert "route names must be unique: a" in str(caught.value)


def test_paths_in_the_file_are_relative_to_it(tmp_path: Path) -> None:
    path = write(tmp_path, "policies: [rules/]\n")
    assert load_config(path, env={}).policy_paths == [(tmp_path / "rules").resolve()]


ROUTE_WITH_LIMITS = (
    "routes:\n  - name: a\n    path: /a\n    upstream: {{url: 'http://127.0.0.1:1/mcp'}}\n    limits: {}\n"
)


def test_streams_default_to_three_quarters_of_the_connections(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ROUTE_WITH_LIMITS.format("{connections: 40}")), env={})
    assert config.routes[0].limits.stream_cap == 30


def test_streams_taking_every_connection_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, ROUTE_WITH_LIMITS.format("{connections: 8, streams: 8}"))
    with pytest.raises(SourceError) as caught:
        load_config(path, env={})
    assert "limits.streams must be below limits.connections" in str(caught.value)


def test_an_unknown_limit_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, ROUTE_WITH_LIMITS.format("{stream: 8}"))
    with pytest.raises(SourceError) as caught:
        load_config(path, env={})
    assert "routes.0.limits.stream: unknown key" in str(caught.value)


def test_input_schema_defaults_to_enforce(tmp_path: Path) -> None:
    path = write(tmp_path, "routes:\n  - {name: a, path: /a, upstream: {url: 'http://127.0.0.1:1/mcp'}}\n")
    assert load_config(path).routes[0].input_schema == "enforce"


def test_an_unknown_input_schema_mode_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "routes:\n  - {name: a, path: /a, input_schema: strict,\n"
                           "     upstream: {url: 'http://127.0.0.1:1/mcp'}}\n")
    with pytest.raises(SourceError) as caught:
        load_config(path)
    assert "routes.0.input_schema" in str(caught.value)


def test_a_private_stdio_route_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "routes:\n  - name: a\n    path: /a\n    public: false\n    upstream:\n"
                           "      command: [python, server.py]\n")
    with pytest.raises(SourceError) as caught:
        load_config(path, env={})
    assert "public: false needs an HTTP upstream" in str(caught.value)
