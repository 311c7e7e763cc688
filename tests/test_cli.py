"""The command line itself (each command's behaviour is tested with its feature)."""

from __future__ import annotations

import subprocess
import sys

from mcpfence import __version__


def test_version_prints_the_package_version() -> None:
    run = subprocess.run([sys.executable, "-m", "mcpfence", "--version"], capture_output=True, text=True)
    assert run.returncode == 0
    assert run.stdout.strip() == f"mcpfence {__version__}"


def test_a_missing_command_is_a_usage_error() -> None:
    run = subprocess.run([sys.executable, "-m", "mcpfence"], capture_output=True, text=True)
    assert run.returncode == 2
    assert "usage: mcpfence" in run.stderr
