"""Reading a decision log while mcpfence writes it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def written_lines(path: Path) -> list[dict[str, Any]]:
    """The log's complete lines. A reader can catch the writer mid-line; that line is
    left for the next read instead of failing to parse."""
    text = path.read_text("utf-8") if path.exists() else ""
    return [json.loads(line) for line in text.split("\n")[:-1] if line]
