"""Recently read history segments, reused for ``serve.history_cache_s``.

Rollups change only when a partition is re-published, so a dashboard refreshing its long-range
panels reads the history TSDB once per period instead of on every refresh; the realtime part of a
query is always read afresh. Least recently used entries go first beyond ``serve.history_cache_entries``.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Contribution:
    """One partial aggregate of one series for some windows (window start ms -> value)."""

    tags: dict[str, str]
    aggregate: str
    window_starts: np.ndarray
    values: np.ndarray


# A segment's contributions, or a TSDB answer kept as it came (passthrough.py).
Cached = list[Contribution] | bytes


class SegmentCache:
    def __init__(self, ttl_s: float, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s, self.max_entries, self.clock = ttl_s, max_entries, clock
        self._entries: OrderedDict[Hashable, tuple[float, Cached]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Cached | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] <= self.clock():
                self._entries.pop(key, None)
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def put(self, key: Hashable, contributions: Cached) -> None:
        if self.ttl_s <= 0 or self.max_entries <= 0:
            return
        with self._lock:
            self._entries[key] = (self.clock() + self.ttl_s, contributions)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
