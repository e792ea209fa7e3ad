"""Routing a downsampled query: which source serves which part of its time span.

History first, level by level, up to where each level's data ends (HistoryEnds); the realtime
TSDB from there to the end, never before its retention. A span is cut only at bucket boundaries
of the rollup level in use, and buckets that straddle a cut are merged from partial aggregates, so
there is neither a gap nor a duplicate timestamp. Short downsample intervals inside the realtime
retention go to the realtime TSDB alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rtdp_dagster.batch.intervals import INTERVALS
from rtdp_dagster.serving.buckets import LEVEL_ORDER, Bucketing, coarsest_nesting_level

COARSE_LEVELS = ("1w", "1mo", "1y")
# 0all over history: the coarsest day-or-finer level with at least this many buckets in the range.
_ZERO_ALL_MIN_BUCKETS = 50


@dataclass(frozen=True)
class Segment:
    source: str  # "history" or "realtime"
    start_ms: int
    end_ms: int  # exclusive
    level: str | None = None

    def describe(self) -> str:
        name = f"history/{self.level}" if self.level else self.source
        return f"{name}:{self.start_ms}-{self.end_ms}"


@dataclass(frozen=True)
class Plan:
    segments: tuple[Segment, ...]

    def describe(self) -> str:
        return ",".join(segment.describe() for segment in self.segments) or "empty"


def plan_span(
    span_start: int,
    span_end: int,
    bucketing: Bucketing,
    levels: list[str],
    realtime_start_ms: int,
    realtime_below_ms: int,
    history_end: Callable[[str], int | None],
) -> Plan:
    """The segments serving the buckets of [span_start, span_end) (span_end exclusive)."""
    if bucketing.kind == "all":
        level = _zero_all_level(span_end - span_start, levels)
        if span_start >= realtime_start_ms or level is None:
            return _realtime_only(span_start, span_end, realtime_start_ms, bucketing)
        chain, cursor = [level], INTERVALS[level].start_ms(span_start)
    else:
        level = coarsest_nesting_level(bucketing, levels)
        fine = bucketing.kind == "fixed" and bucketing.width_ms < realtime_below_ms
        if level is None or (fine and span_start >= realtime_start_ms):
            return _realtime_only(span_start, span_end, realtime_start_ms, bucketing)
        chain = [level, "1d"] if level in COARSE_LEVELS and "1d" in levels else [level]
        cursor = span_start
    segments = []
    for name in chain:
        end = history_end(name)
        if end is None or end <= cursor:
            continue
        stop = min(end, span_end)
        segments.append(Segment("history", cursor, stop, name))
        cursor = stop
        if cursor >= span_end:
            break
    if cursor < span_end:
        start = cursor if cursor >= realtime_start_ms else _first_bucket_from(realtime_start_ms, bucketing)
        if start < span_end:
            segments.append(Segment("realtime", start, span_end))
    return Plan(tuple(segments))


def _realtime_only(span_start: int, span_end: int, realtime_start_ms: int, bucketing: Bucketing) -> Plan:
    start = span_start if span_start >= realtime_start_ms else _first_bucket_from(realtime_start_ms, bucketing)
    return Plan((Segment("realtime", start, span_end),) if start < span_end else ())


def _first_bucket_from(ts_ms: int, bucketing: Bucketing) -> int:
    """The first bucket start at or after ts_ms: a bucket whose beginning has expired is left out whole."""
    if bucketing.kind == "all":
        return ts_ms
    return ts_ms if bucketing.start_of(ts_ms) == ts_ms else bucketing.end_of(ts_ms)


def _zero_all_level(span_ms: int, levels: list[str]) -> str | None:
    day_levels = [name for name in LEVEL_ORDER[:3] if name in levels]
    fitting = [name for name in day_levels if INTERVALS[name].width_ms * _ZERO_ALL_MIN_BUCKETS <= span_ms]
    return fitting[-1] if fitting else (day_levels[0] if day_levels else None)
