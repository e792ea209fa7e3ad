"""Logging of long-running services: a file under the run folder, and stderr for the operator."""

from __future__ import annotations

import logging
from pathlib import Path


def log_to_file(run_dir: Path, service: str, level: int = logging.INFO) -> Path:
    path = run_dir / "logs" / f"{service}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s")
    root = logging.getLogger()
    root.setLevel(level)
    for handler in (logging.FileHandler(path), logging.StreamHandler()):
        handler.setFormatter(formatter)
        root.addHandler(handler)
    # kafka-python is chatty at INFO about every connection it opens.
    logging.getLogger("kafka").setLevel(logging.WARNING)
    return path
