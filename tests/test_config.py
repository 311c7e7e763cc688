"""``mcpfence serve`` refuses a bad config before it listens (docs/reference/config.md).

Each case is a config file a person could plausibly write; the error must point
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
