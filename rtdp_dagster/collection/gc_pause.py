"""Pausing Python's cyclic garbage collector while a window is read and packed.

A window allocates a few container objects per point (tuples, a record's lists); every 700 of
them the cyclic collector runs, and its older generations walk every live object of the process:
measured, 35-45 % of the v2 collector's CPU. A window's objects hold no cycles (reference counting
frees them as usual), so the cyclic collector is paused while a window is read and packed; cycles
made meanwhile, if any, are collected once it resumes. Pauses overlap across threads (one worker
per source): the collector resumes when the last one ends, and stays off if it was off before.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_pauses = 0
_resume = False


@contextmanager
def gc_paused() -> Iterator[None]:
    global _pauses, _resume
    with _lock:
        if _pauses == 0:
            _resume = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _lock:
            _pauses -= 1
            if _pauses == 0 and _resume:
                gc.enable()
