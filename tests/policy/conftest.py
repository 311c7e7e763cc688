"""The ``load`` fixture: policies written to a real file and loaded from it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mcpfence.policy import PolicySet, load_policy_set

Loader = Callable[..., PolicySet]


@pytest.fixture
def load(tmp_path: Path) -> Loader:
    """Write the given documents to one policy file and load it."""

    def _load(*documents: dict[str, Any]) -> PolicySet:
        path = tmp_path / "policies.yaml"
        path.write_text(yaml.safe_dump_all(documents, sort_keys=False))
        return load_policy_set([path])

    return _load
