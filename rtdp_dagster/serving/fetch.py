"""Reading the partial aggregates of one planned segment from its TSDB, one request per window run.

Realtime: raw points, aggregated by VictoriaMetrics per window (``count_over_time`` etc. over
``[w] offset -(w - 1ms)`` evaluated at each window's start, so a window is exactly [start, start + w)).
History: the rollup rows of one level; counts and sums add up and min and max combine across the
``part`` series inside VictoriaMetrics, first and last come per part and are merged here in part
(time) order. Calendar-month buckets have uneven widths: history reads those rows raw (they are few).
A segment whose buckets no other segment shares reads the downsample function itself (aggregates
``("avg",)``: ``avg_over_time``, or the rollups' sum / count), so only the answer comes back.
History reads are kept in a SegmentCache for a short while: rollups change only when re-published.
"""

from __future__ import annotations

import itertools
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

from rtdp_dagster.serving import metricsql
from rtdp_dagster.serving.partials import PartialSet, reduce_samples, series_tags
from rtdp_dagster.serving.plan import Segment
from rtdp_dagster.serving.segment_cache import Contribution, SegmentCache
from rtdp_dagster.serving.vm import Deadline, RawSeries, VmClient, steps

# Window runs a segment may take in evaluated queries before history reads its rows instead.
_MAX_RUNS = 8
# The label naming the aggregate in a realtime union (labels starting with __ never reach users).
_AGG_LABEL = "__rtdp_agg"


@dataclass(frozen=True)
class Run:
    """Consecutive windows of equal width: [start + k*width, start + (k+1)*width) for k < count."""

    start_ms: int
    width_ms: int
    count: int


@dataclass(frozen=True)
class Source:
    """A TSDB and the series a sub-query selects there (metric and tag-filter matchers)."""

    client: VmClient
    metric: str
    matchers: tuple[str, ...]

    def selector(self, level: str | None = None, aggregates: tuple[str, ...] = ()) -> str:
        """The raw series (no level), or the rollup rows of a level for the given aggregates."""
        extra = []
        if level is not None:
            extra.append(metricsql.matcher("rollup", "=", level))
            if len(aggregates) == 1:
                extra.append(metricsql.matcher("agg", "=", aggregates[0]))
            else:
                extra.append(metricsql.matcher("agg", "=~", "|".join(metricsql.regex_literal(a) for a in aggregates)))
        return metricsql.selector(self.metric, [*self.matchers, *extra])


def windows(starts: np.ndarray, ends: np.ndarray, seg_start: int, seg_end: int) -> list[Run]:
    """The segment's part of each bucket, grouped into runs of contiguous windows of equal width
    (in arrays: a year of hours is 8,760 buckets)."""
    first = int(np.searchsorted(ends, seg_start, side="right"))
    last = int(np.searchsorted(starts, seg_end, side="left"))
    lows = np.maximum(starts[first:last], seg_start)
    highs = np.minimum(ends[first:last], seg_end)
    kept = lows < highs
    lows, widths = lows[kept], (highs - lows)[kept]
    if not len(lows):
        return []
    # A run ends where the width changes or the next window does not start where this one ends.
    cuts = np.flatnonzero((widths[1:] != widths[:-1]) | (lows[1:] != lows[:-1] + widths[:-1])) + 1
    bounds = [0, *cuts.tolist(), len(lows)]
    return [Run(int(lows[begin]), int(widths[begin]), end - begin) for begin, end in itertools.pairwise(bounds)]


def fetch_segment(
    segment: Segment,
    source: Source,
    starts: np.ndarray,
    ends: np.ndarray,
    partials: PartialSet,
    deadline: Deadline,
    pool: Executor,
    max_samples: int,
    cache: SegmentCache | None = None,
    answered: list[bytes] | None = None,
) -> None:
    """Merge the segment's partial aggregates into partials (buckets starting at starts). ``answered``:
    the answers of the segment's evaluated queries, read already (passthrough.py)."""
    runs = windows(starts, ends, segment.start_ms, segment.end_ms)
    if not runs:
        return
    key = (source.client.base_url, source.metric, source.matchers, segment.level, partials.aggregates, tuple(runs))
    cached = cache.get(key) if cache is not None and segment.level else None
    contributions = cached if isinstance(cached, list) else None
    if contributions is None and answered is not None:
        found = [source.client.matrix(content) for content in answered]
        contributions = _contributions(segment, partials.aggregates, found)
    if contributions is None:
        if segment.level and len(runs) > _MAX_RUNS:
            contributions = _history_rows(segment, source, starts, partials.aggregates, deadline, max_samples)
        else:
            contributions = _evaluated(segment, source, runs, partials.aggregates, deadline, pool)
        if cache is not None and segment.level:
            cache.put(key, contributions)
    for item in contributions:
        index = np.searchsorted(starts, item.window_starts, side="right") - 1
        partials.add(item.tags, item.aggregate, index, item.values)


def expression(source: Source, level: str | None, aggregates: tuple[str, ...], width_ms: int) -> str:
    """MetricsQL giving every partial aggregate per window, from raw points (no level) or a rollup level."""
    window = f"[{width_ms}ms] offset -{width_ms - 1}ms"
    if level is None:
        parts = [(f"{name}_over_time({source.selector()}{window})", name) for name in aggregates]
        if len(parts) == 1:
            return parts[0][0]
        labelled = [
            f"label_set({text}, {metricsql.string_literal(_AGG_LABEL)}, {metricsql.string_literal(name)})"
            for text, name in parts
        ]
        return f"union({', '.join(labelled)})"
    if aggregates == ("avg",):
        sums, counts = (
            f"sum without (part, agg) (sum_over_time({source.selector(level, (name,))}{window}))"
            for name in ("sum", "count")
        )
        return f"{sums} / {counts}"
    texts = []
    additive = tuple(name for name in aggregates if name in ("count", "sum"))
    if additive:
        texts.append(f"sum without (part) (sum_over_time({source.selector(level, additive)}{window}))")
    for name in ("min", "max"):
        if name in aggregates:
            texts.append(f"{name} without (part) ({name}_over_time({source.selector(level, (name,))}{window}))")
    for name in ("first", "last"):
        if name in aggregates:
            texts.append(f"{name}_over_time({source.selector(level, (name,))}{window})")
    return texts[0] if len(texts) == 1 else f"union({', '.join(texts)})"


def _evaluated(
    segment: Segment, source: Source, runs: list[Run], aggregates: tuple[str, ...], deadline: Deadline, pool: Executor
) -> list[Contribution]:
    calls = []
    for run in runs:
        query = expression(source, segment.level, aggregates, run.width_ms)
        for first, last in steps(run.start_ms, run.start_ms + (run.count - 1) * run.width_ms, run.width_ms):
            calls.append((query, first, last, run.width_ms, deadline))
    if len(calls) == 1:  # the common case: no hand-over to another thread
        answers = [source.client.query_range(*calls[0])]
    else:
        answers = [job.result() for job in [pool.submit(source.client.query_range, *call) for call in calls]]
    return _contributions(segment, aggregates, answers)


def _contributions(segment: Segment, aggregates: tuple[str, ...], answers: list[list[RawSeries]]) -> list[Contribution]:
    contributions = []
    for found in answers:  # in call order, which is time order
        # first and last come per part: merged in part order, which is time order.
        found.sort(key=lambda series: series.labels.get("part", ""))
        for series in found:
            name = series.labels.get("agg" if segment.level else _AGG_LABEL, aggregates[0])
            if name in aggregates:
                contributions.append(Contribution(series_tags(series.labels), name, series.timestamps, series.values))
    return contributions


def _history_rows(
    segment: Segment,
    source: Source,
    starts: np.ndarray,
    aggregates: tuple[str, ...],
    deadline: Deadline,
    max_samples: int,
) -> list[Contribution]:
    if aggregates == ("avg",):
        return _averages(_history_rows(segment, source, starts, ("sum", "count"), deadline, max_samples))
    selector = source.selector(segment.level, aggregates)
    rows = source.client.export(selector, segment.start_ms, segment.end_ms - 1, deadline, max_samples)
    grouped: dict[tuple, list[RawSeries]] = {}
    for series in rows:
        tags = series_tags(series.labels)
        grouped.setdefault((tuple(sorted(tags.items())), series.labels.get("agg", "")), []).append(series)
    contributions = []
    for (key, aggregate), members in grouped.items():
        if aggregate not in aggregates:
            continue
        timestamps = np.concatenate([member.timestamps for member in members])
        values = np.concatenate([member.values for member in members])
        inside = (timestamps >= segment.start_ms) & (timestamps < segment.end_ms)
        timestamps, values = timestamps[inside], values[inside]
        index = np.searchsorted(starts, timestamps, side="right") - 1
        reduced = reduce_samples(aggregate, index, timestamps, values, len(starts))
        present = np.flatnonzero(~np.isnan(reduced))
        window_starts = np.maximum(starts[present], segment.start_ms)
        contributions.append(Contribution(dict(key), aggregate, window_starts, reduced[present]))
    return contributions


def _averages(contributions: list[Contribution]) -> list[Contribution]:
    """sum / count per series and window, from the sum and count contributions of the same windows."""
    by_series: dict[tuple, dict[str, Contribution]] = {}
    for item in contributions:
        by_series.setdefault(tuple(sorted(item.tags.items())), {})[item.aggregate] = item
    averages = []
    for parts in by_series.values():
        sums, counts = parts.get("sum"), parts.get("count")
        if sums is None or counts is None:
            continue
        shared, at_sum, at_count = np.intersect1d(sums.window_starts, counts.window_starts, return_indices=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            values = sums.values[at_sum] / counts.values[at_count]
        averages.append(Contribution(sums.tags, "avg", shared, values))
    return averages
