"""Logging of long-running services: a file under the run folder, and stderr for the operator."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path


def _same_file(path: Path) -> bool:
    """Whether stderr already is this log file (the stack starts services with their output there)."""
    try:
        return os.path.samestat(os.fstat(sys.stderr.fileno()), os.stat(path))
    except (OSError, ValueError, AttributeError):
        return False


def log_to_file(run_dir: Path, service: str, level: int = logging.INFO) -> Path:
    path = run_dir / "logs" / f"{service}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s")
    root = logging.getLogger()
    root.setLevel(level)
    handlers: list[logging.Handler] = [logging.FileHandler(path)]
    if not _same_file(path):
        handlers.append(logging.StreamHandler())
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    # kafka-python is chatty at INFO about every connection it opens.
    logging.getLogger("kafka").setLevel(logging.WARNING)
    return path
