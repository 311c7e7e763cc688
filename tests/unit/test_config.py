"""Config rules that need no running proxy (the CLI tests cover exit codes and output)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcpfence.config import load_config
from mcpfence.yamlsource import SourceError


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
