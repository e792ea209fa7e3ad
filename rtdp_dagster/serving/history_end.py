"""Where the history TSDB's rollups end, per metric and level: the split point for spanning queries.

Found cheaply: the newest ``part`` values of the level (an index lookup), then the newest bucket
inside those parts. Day levels (1m, 1h, 1d) are trusted to the end of their newest bucket, but never
into the current UTC day; a week, month or year bucket grows while its period runs, so a coarse
level is trusted to the end of its newest bucket only when the daily level covers that whole
bucket, otherwise only to its start. Results are kept for ``serve.history_end_cache_s``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from rtdp_dagster.batch.intervals import DAY_MS, INTERVALS
from rtdp_dagster.serving import metricsql
from rtdp_dagster.serving.vm import Deadline, VmClient

DAY_LEVELS = ("1m", "1h", "1d")
# Parts whose newest bucket one lookup asks for.
_PARTS_PER_LOOKUP = 40


class HistoryEnds:
    def __init__(
        self,
        client: VmClient,
        levels: list[str],
        retention_ms: int,
        ttl_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client, self.levels, self.retention_ms, self.ttl_s = client, levels, retention_ms, ttl_s
        self.clock = clock
        self._cache: dict[tuple[str, str], tuple[float, int | None]] = {}
        self._lock = threading.Lock()

    def end_ms(self, metric: str, level: str, deadline: Deadline) -> int | None:
        """Exclusive end of the trusted history of metric at level (None: no rollups there)."""
        key = (metric, level)
        now = self.clock()
        with self._lock:
            cached = self._cache.get(key)
        if cached and cached[0] > now:
            return cached[1]
        end = self._find(metric, level, deadline, int(now * 1000))
        with self._lock:
            self._cache[key] = (now + self.ttl_s, end)
        return end

    def known_end_ms(self, metric: str, level: str) -> int | None:
        """end_ms without a read: KeyError when it is not known (or no longer trusted) yet."""
        with self._lock:
            cached = self._cache.get((metric, level))
        if cached is None or cached[0] <= self.clock():
            raise KeyError((metric, level))
        return cached[1]

    def _find(self, metric: str, level: str, deadline: Deadline, now_ms: int) -> int | None:
        newest = self.newest_bucket_ms(metric, level, deadline, now_ms)
        if newest is None:
            return None
        bucket_end = INTERVALS[level].end_ms(newest)
        if level in DAY_LEVELS:
            return min(bucket_end, now_ms - now_ms % DAY_MS)
        day_end = self.end_ms(metric, "1d", deadline) if "1d" in self.levels else None
        return bucket_end if day_end is not None and bucket_end <= day_end else newest

    def newest_bucket_ms(self, metric: str, level: str, deadline: Deadline, now_ms: int) -> int | None:
        base = [metricsql.matcher("rollup", "=", level), metricsql.matcher("agg", "=", "count")]
        start_ms = now_ms - self.retention_ms
        parts = self.client.label_values("part", metricsql.selector(metric, base), start_ms, deadline)
        window_s = self.retention_ms // 1000
        # Newest first, a few at a time: VictoriaMetrics still lists the parts of deleted series for a
        # while (a re-published month deletes the day parts of an earlier layout), and those hold nothing.
        newest = sorted(parts, reverse=True)
        for first in range(0, len(newest), _PARTS_PER_LOOKUP):
            batch = newest[first : first + _PARTS_PER_LOOKUP]
            pattern = "|".join(metricsql.regex_literal(part) for part in batch)
            selector = metricsql.selector(metric, [*base, metricsql.matcher("part", "=~", pattern)])
            found = self.client.instant(f"max(tlast_over_time({selector}[{window_s}s]))", now_ms, deadline)
            if found:
                return round(found[0][2] * 1000)
        return None
