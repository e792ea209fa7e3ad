"""Downsampled queries VictoriaMetrics answers whole, passed through as bytes.

The common dashboard query (a downsample with fill policy ``none``, no rate, every series its own
group, buckets of whole seconds, each source reading whole buckets in one request) needs nothing
from the router but routing and renaming: VictoriaMetrics computes the downsample function per
bucket and reports it at the bucket's start, which is the OpenTSDB data point. Its answer's pairs
``[ts,"value"]`` become OpenTSDB's ``"ts":value`` without parsing a number: the response carries
VictoriaMetrics' own decimal text, the same numbers the general path would write (it parses them into
floats and writes those back). Which series are shown, in what order and with what JSON around them
is worked out once per distinct labels (layout.py); the response is then the pairs of every series
and that JSON rewritten together by a few bytes operations (pairs.py). Anything else (an aggregate
across series, a bucket two sources share, NaN or Inf, calendar buckets read row by row) takes the
general path (fetch, partials, aggregate).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

from rtdp_dagster.serving import pairs
from rtdp_dagster.serving.encode import EncodedResults
from rtdp_dagster.serving.fetch import Source, expression, windows
from rtdp_dagster.serving.layout import layout
from rtdp_dagster.serving.model import QueryRequest, SubQuery
from rtdp_dagster.serving.plan import Plan, Segment
from rtdp_dagster.serving.segment_cache import SegmentCache
from rtdp_dagster.serving.vm import MAX_STEPS_PER_REQUEST, Deadline, matrix_texts

# Downsample functions the history level computes across its parts inside VictoriaMetrics (first and
# last come per part and are merged by the router).
_HISTORY_FUNCTIONS = ("avg", "sum", "count", "min", "max")


@dataclass(frozen=True)
class Call:
    segment: Segment
    source: Source
    expr: str
    start_ms: int
    end_ms: int
    step_ms: int


def calls(
    query: SubQuery, plan: Plan, starts: np.ndarray, ends: np.ndarray, source_of: Callable[[Segment], Source]
) -> list[Call] | None:
    """One VictoriaMetrics request per segment answering its buckets whole; None when the query needs the
    general path. The caller has checked that no bucket is shared between segments."""
    downsample = query.downsample
    if downsample is None or downsample.fill != "none" or query.rate or query.aggregator == "count":
        return None
    if not len(starts) or np.any(starts % 1000):
        return None
    found = []
    for segment in plan.segments:
        if segment.level is not None and downsample.function not in _HISTORY_FUNCTIONS:
            return None
        runs = windows(starts, ends, segment.start_ms, segment.end_ms)
        if not runs:
            continue
        if len(runs) > 1 or runs[0].count > MAX_STEPS_PER_REQUEST or runs[0].width_ms % 1000:
            return None
        (run,) = runs
        first = int(np.searchsorted(starts, run.start_ms))
        if first >= len(starts) or int(starts[first]) != run.start_ms:
            return None
        source = source_of(segment)
        expr = expression(source, segment.level, (downsample.function,), run.width_ms)
        last = run.start_ms + (run.count - 1) * run.width_ms
        found.append(Call(segment, source, expr, run.start_ms, last, run.width_ms))
    return found


def fetch(calls: list[Call], deadline: Deadline, pool: Executor, cache: SegmentCache | None) -> list[bytes]:
    """Every call's answer, in call order: the first on this thread, the others at the same time on the
    pool; history answers are kept in the cache like the general path's history reads."""

    def one(call: Call) -> bytes:
        key = _cache_key(call, cache)
        cached = cache.get(key) if key is not None and cache is not None else None
        if isinstance(cached, bytes):
            return cached
        content = call.source.client.query_range_bytes(call.expr, call.start_ms, call.end_ms, call.step_ms, deadline)
        if key is not None and cache is not None:
            cache.put(key, content)
        return content

    jobs = [pool.submit(one, call) for call in calls[1:]]
    first = [one(calls[0])] if calls else []
    return first + [job.result() for job in jobs]


async def fetch_on_loop(calls: list[Call], deadline: Deadline, cache: SegmentCache | None) -> list[bytes]:
    """fetch on the running event loop (every call's client has ``on_loop``): the calls at the same time,
    without a worker thread."""

    async def one(call: Call) -> bytes:
        key = _cache_key(call, cache)
        cached = cache.get(key) if key is not None and cache is not None else None
        if isinstance(cached, bytes):
            return cached
        client = call.source.client
        content = await client.query_range_bytes_on_loop(call.expr, call.start_ms, call.end_ms, call.step_ms, deadline)
        if key is not None and cache is not None:
            cache.put(key, content)
        return content

    if len(calls) == 1:  # the common case: no task to create
        return [await one(calls[0])]
    return list(await asyncio.gather(*(one(call) for call in calls)))


def _cache_key(call: Call, cache: SegmentCache | None) -> tuple | None:
    """History answers are cached like the general path's history reads; realtime ones never."""
    if cache is None or not call.segment.level:
        return None
    return (call.source.client.base_url, call.expr, call.start_ms, call.end_ms, call.step_ms, "bytes")


def results(query: SubQuery, request: QueryRequest, calls: list[Call], answers: list[bytes]) -> EncodedResults | None:
    """The result objects, one per series in the general path's order; None when an answer needs the
    general path (values that are not plain numbers, two series with the same tags, groups of several)."""
    found = [matrix_texts(content) for content in answers]
    texts = [item for item in found if item is not None]
    if len(texts) < len(found):
        return None
    levels = tuple(call.segment.level for call in calls)
    labels = tuple(b",".join(labels) for labels, _ in texts)
    shown = layout(query, request.show_query, request.arrays, levels, labels)
    if shown is None:
        return None
    text = shown.fill([pairs for _, pairs in texts])
    rewritten = pairs.rewrite(text, request.ms_resolution, request.arrays)
    if rewritten is None:
        return None
    return EncodedResults(rewritten, len(shown.parts), pairs.points(text, len(shown.parts)))
