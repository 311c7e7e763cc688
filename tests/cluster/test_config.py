"""The ``cluster`` config key and ``MCPFENCE_REDIS_URL``."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcpfence.config import REDIS_URL_ENV, load_config
from mcpfence.yamlsource import SourceError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mcpfence.yaml"
    path.write_text(text)
    return path


def test_without_a_cluster_key_mcpfence_runs_embedded(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "routes: []\n"), env={}).cluster is None


def test_the_cluster_key_names_the_redis_url(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "cluster: {redis_url: 'redis://r:6379/0'}\n"), env={})
    assert config.cluster is not None
    assert config.cluster.redis_url == "redis://r:6379/0"


def test_the_environment_variable_turns_cluster_mode_on(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "routes: []\n"), env={REDIS_URL_ENV: "redis://r:6379/1"})
    assert config.cluster is not None
    assert config.cluster.redis_url == "redis://r:6379/1"


def test_a_cluster_url_that_is_not_redis_is_a_located_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"mcpfence.yaml:1:\d+: cluster.redis_url"):
        load_config(write(tmp_path, "cluster: {redis_url: 'http://r'}\n"), env={})


def test_public_url_must_be_an_http_url(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"server\.public_url"):
        load_config(write(tmp_path, "server: {public_url: 'mcp.example.com'}\n"), env={})
