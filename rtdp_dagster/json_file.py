"""A small JSON file replaced whole: a reader, or a process killed mid-write, sees the old content or the
new one, never a part (heartbeats, the stream's realtime state and put journal)."""

from __future__ import annotations

import json
import os
from pathlib import Path


def replace_json(path: Path, payload: dict, *, indent: int | None = None) -> None:
    """Write payload to a staged copy beside path, then rename it over path (atomic on one filesystem).
    The folder must exist: a write that cannot happen raises before anything else is done."""
    staged = path.with_suffix(".tmp")
    staged.write_text(json.dumps(payload, indent=indent, default=str))
    os.replace(staged, path)
