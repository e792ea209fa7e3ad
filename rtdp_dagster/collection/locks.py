"""One worker per (source, wave): an exclusive, non-blocking file lock under the run folder."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class AlreadyRunning(Exception):
    """Another process is collecting this source and wave right now."""


@contextmanager
def exclusive(run_dir: Path, source: str, wave: int) -> Iterator[None]:
    path = run_dir / "collection" / "locks" / f"{source}.wave{wave}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AlreadyRunning(f"{source}: wave {wave} is already being collected by another process") from None
        # The lock is released by the kernel when the process dies, even on kill -9.
        os.ftruncate(handle, 0)
        os.write(handle, str(os.getpid()).encode())
        yield
    finally:
        os.close(handle)
