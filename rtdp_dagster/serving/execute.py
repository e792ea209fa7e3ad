"""Answering /api/query: each sub-query planned, fetched, downsampled, rated, grouped and formatted."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

from rtdp_dagster.serving import passthrough
from rtdp_dagster.serving.aggregate import Group, Series, aggregate
from rtdp_dagster.serving.encode import EncodedResults, QueryResult
from rtdp_dagster.serving.errors import ApiError, bad_request
from rtdp_dagster.serving.fetch import Source, fetch_segment
from rtdp_dagster.serving.history_end import HistoryEnds
from rtdp_dagster.serving.model import QueryRequest, SubQuery
from rtdp_dagster.serving.partials import NEEDS, PartialSet, series_tags
from rtdp_dagster.serving.plan import Plan, Segment, plan_span
from rtdp_dagster.serving.rate import rate
from rtdp_dagster.serving.segment_cache import SegmentCache
from rtdp_dagster.serving.vm import Deadline, VmClient


@dataclass(frozen=True)
class PassedQuery:
    """A sub-query VictoriaMetrics answers whole (passthrough.py): its plan and its calls."""

    query: SubQuery
    plan: Plan
    calls: list[passthrough.Call]


@dataclass(frozen=True)
class Limits:
    max_series: int
    max_datapoints: int


@dataclass
class QueryEngine:
    realtime: VmClient
    history: VmClient
    history_ends: HistoryEnds
    levels: list[str]
    realtime_retention_ms: int
    realtime_below_ms: int
    limits: Limits
    pool: Executor
    history_cache: SegmentCache | None = None

    def run(
        self, request: QueryRequest, deadline: Deadline, now_ms: int | None = None
    ) -> tuple[list[QueryResult | EncodedResults], str]:
        """The OpenTSDB result objects of every sub-query, and a description of the routes taken."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        results: list[QueryResult | EncodedResults] = []
        routes, points = [], 0
        for query in request.queries:
            groups, plan = self._sub_query(query, request, deadline, now_ms)
            routes.append(plan.describe())
            for group in groups:
                result = group if isinstance(group, EncodedResults) else format_result(query, group, request)
                points += len(result)
                if points > self.limits.max_datapoints:
                    raise _too_many_points(self.limits.max_datapoints)
                results.append(result)
        return results, ";".join(routes)

    def _sub_query(
        self, query: SubQuery, request: QueryRequest, deadline: Deadline, now_ms: int
    ) -> tuple[list[Group] | list[EncodedResults], Plan]:
        matchers = tuple(matcher for item in query.filters for matcher in item.matchers())
        realtime_start = now_ms - self.realtime_retention_ms
        if query.downsample is None:
            series, plan = self._raw(query, request, matchers, realtime_start, deadline)
        else:
            history_end = functools.partial(self.history_ends.end_ms, query.metric, deadline=deadline)
            starts, ends, plan = self._plan(query, request, realtime_start, history_end)
            passed, answered = self._passthrough(query, request, matchers, starts, ends, plan, deadline)
            if passed is not None:
                return [passed], plan
            series = self._downsampled(query, matchers, starts, ends, plan, deadline, answered)
        if query.rate:
            for item in series:
                item.timestamps, item.values = rate(item.timestamps, item.values, query.rate_options)
        return aggregate(series, query.aggregator, query.group_by), plan

    def _raw(
        self, query: SubQuery, request: QueryRequest, matchers: tuple[str, ...], realtime_start: int, deadline: Deadline
    ) -> tuple[list[Series], Plan]:
        if request.start_ms < realtime_start:
            raise bad_request(
                f"{query.metric}: a query without downsample reads raw points, which only the realtime "
                f"TSDB keeps (for the last {self.realtime_retention_ms / 86_400_000:g} days); add a "
                "downsample such as 1h-avg to read the rollups"
            )
        source = Source(self.realtime, query.metric, matchers)
        found = source.client.export(
            source.selector(), request.start_ms, request.end_ms, deadline, self.limits.max_datapoints
        )
        series = []
        for item in found:
            tags = series_tags(item.labels)
            if not query.accepts(tags):
                continue
            order = np.argsort(item.timestamps, kind="stable")
            timestamps, values = item.timestamps[order], item.values[order]
            # Several samples on one timestamp (a correction after its original): the later one wins.
            last = np.append(timestamps[1:] != timestamps[:-1], True)
            series.append(Series(tags, timestamps[last], values[last]))
        self._check_series(query, len(series))
        plan = Plan((Segment("realtime", request.start_ms, request.end_ms + 1),))
        return _merge_same_tags(series), plan

    def _plan(
        self, query: SubQuery, request: QueryRequest, realtime_start: int, history_end: Callable[[str], int | None]
    ) -> tuple[np.ndarray, np.ndarray, Plan]:
        """The buckets (starts, exclusive ends) of a downsampled sub-query and the segments serving them."""
        assert query.downsample is not None
        downsample, bucketing = query.downsample, query.downsample.bucketing
        if bucketing.kind == "all":
            starts = np.array([request.start_ms], dtype=np.int64)
            ends = np.array([request.end_ms + 1], dtype=np.int64)
        else:
            buckets = bucketing.count_between(request.start_ms, request.end_ms)
            if buckets > self.limits.max_datapoints:
                raise bad_request(
                    f"downsample {downsample.text} makes {buckets:,} buckets per series over this range "
                    f"(serve.max_datapoints is {self.limits.max_datapoints:,}); use a coarser "
                    "interval"
                )
            starts = bucketing.starts(request.start_ms, request.end_ms)
            ends = np.append(starts[1:], bucketing.end_of(int(starts[-1])))
        plan = plan_span(
            int(starts[0]),
            int(ends[-1]),
            bucketing,
            self.levels,
            realtime_start,
            self.realtime_below_ms,
            history_end,
        )
        return starts, ends, plan

    def _passthrough(
        self,
        query: SubQuery,
        request: QueryRequest,
        matchers: tuple[str, ...],
        starts: np.ndarray,
        ends: np.ndarray,
        plan: Plan,
        deadline: Deadline,
    ) -> tuple[EncodedResults | None, dict[Segment, list[bytes]]]:
        """The sub-query's results straight from VictoriaMetrics' answers (passthrough.py), or None and
        the answers read so far (per segment), for the general path to use."""
        found = self._passthrough_calls(query, matchers, starts, ends, plan)
        if found is None:
            return None, {}
        answers = passthrough.fetch(found, deadline, self.pool, self.history_cache)
        encoded = self._passed(query, request, found, answers)
        if encoded is None:
            return None, {call.segment: [answer] for call, answer in zip(found, answers, strict=True)}
        return encoded, {}

    def _passthrough_calls(
        self, query: SubQuery, matchers: tuple[str, ...], starts: np.ndarray, ends: np.ndarray, plan: Plan
    ) -> list[passthrough.Call] | None:
        assert query.downsample is not None
        function = query.downsample.function
        if _partials_needed(function, plan, starts) != (function,):
            return None
        if query.aggregator != "none" and not query.group_by:
            return None  # one group of every series
        return passthrough.calls(query, plan, starts, ends, lambda segment: self._source(segment, query, matchers))

    def _passed(
        self, query: SubQuery, request: QueryRequest, found: list[passthrough.Call], answers: list[bytes]
    ) -> EncodedResults | None:
        encoded = passthrough.results(query, request, found, answers)
        if encoded is not None:
            self._check_series(query, encoded.count)
        return encoded

    def plan_passthrough(self, request: QueryRequest, now_ms: int) -> list[PassedQuery] | None:
        """Every sub-query's passthrough calls when the whole request is answered that way and is planned
        without a read (where history ends is known already); None: the general path (run)."""
        planned = []
        for query in request.queries:
            if query.downsample is None:
                return None
            matchers = tuple(matcher for item in query.filters for matcher in item.matchers())
            known = functools.partial(self.history_ends.known_end_ms, query.metric)
            try:
                starts, ends, plan = self._plan(query, request, now_ms - self.realtime_retention_ms, known)
            except KeyError:
                return None  # a history end to read first: the general path reads it (and keeps it)
            found = self._passthrough_calls(query, matchers, starts, ends, plan)
            if found is None or not found or any(call.source.client.on_loop is None for call in found):
                return None
            planned.append(PassedQuery(query, plan, found))
        return planned

    def passed_results(
        self, request: QueryRequest, planned: list[PassedQuery], answers: list[list[bytes]]
    ) -> tuple[list[EncodedResults], str] | None:
        """run's answer from the answers of plan_passthrough's calls; None when one needs the general path."""
        results: list[EncodedResults] = []
        points = 0
        for item, found in zip(planned, answers, strict=True):
            encoded = self._passed(item.query, request, item.calls, found)
            if encoded is None:
                return None
            points += len(encoded)
            if points > self.limits.max_datapoints:
                raise _too_many_points(self.limits.max_datapoints)
            results.append(encoded)
        return results, ";".join(item.plan.describe() for item in planned)

    def _source(self, segment: Segment, query: SubQuery, matchers: tuple[str, ...]) -> Source:
        return Source(self.history if segment.source == "history" else self.realtime, query.metric, matchers)

    def _downsampled(
        self,
        query: SubQuery,
        matchers: tuple[str, ...],
        starts: np.ndarray,
        ends: np.ndarray,
        plan: Plan,
        deadline: Deadline,
        answered: dict[Segment, list[bytes]],
    ) -> list[Series]:
        assert query.downsample is not None
        downsample = query.downsample
        partials = PartialSet(len(starts), _partials_needed(downsample.function, plan, starts))
        for segment in plan.segments:
            fetch_segment(
                segment,
                self._source(segment, query, matchers),
                starts,
                ends,
                partials,
                deadline,
                self.pool,
                self.limits.max_datapoints,
                self.history_cache,
                answered.get(segment),
            )
        series = []
        for key, values in partials.evaluate(downsample.function).items():
            tags = partials.tags[key]
            if not query.accepts(tags):
                continue
            if downsample.fill == "none":
                present = ~np.isnan(values)
                series.append(Series(tags, starts[present], values[present]))
            else:
                filled = np.nan_to_num(values, nan=0.0) if downsample.fill == "zero" else values
                series.append(Series(tags, starts.copy(), filled))
        self._check_series(query, len(series))
        return series

    def _check_series(self, query: SubQuery, count: int) -> None:
        if count > self.limits.max_series:
            raise bad_request(
                f"{query.metric}: the filters select {count:,} series, more than serve.max_series "
                f"({self.limits.max_series:,}); narrow the tag filters"
            )


def format_result(query: SubQuery, group: Group, request: QueryRequest) -> QueryResult:
    timestamps = group.timestamps if request.ms_resolution else group.timestamps // 1000
    values = group.values
    if not request.ms_resolution and len(timestamps) > 1:
        # Second resolution can fold several points into one second: the last one is kept.
        last = np.append(timestamps[1:] != timestamps[:-1], True)
        timestamps, values = timestamps[last], values[last]
    head = {"metric": query.metric, "tags": group.tags, "aggregateTags": group.aggregate_tags}
    return QueryResult(head, timestamps, values, query.describe() if request.show_query else None)


def _too_many_points(limit: int) -> ApiError:
    return bad_request(
        f"the response would hold more than {limit:,} data points "
        "(serve.max_datapoints); use a coarser downsample or a shorter range"
    )


def _partials_needed(function: str, plan: Plan, starts: np.ndarray) -> tuple[str, ...]:
    """What each segment reads: the downsample function itself, computed by VictoriaMetrics, when no
    bucket has parts in two segments (nothing to merge); else the partial aggregates it needs."""
    cuts = [segment.start_ms for segment in plan.segments[1:]]
    if all(_is_bucket_start(cut, starts) for cut in cuts):
        return (function,)
    return NEEDS[function]


def _is_bucket_start(ts_ms: int, starts: np.ndarray) -> bool:
    index = int(np.searchsorted(starts, ts_ms))
    return index < len(starts) and int(starts[index]) == ts_ms


def _merge_same_tags(series: list[Series]) -> list[Series]:
    """Series the backend returns twice under one tag set (e.g. split export lines) become one."""
    merged: dict[tuple, Series] = {}
    for item in series:
        key = tuple(sorted(item.tags.items()))
        if key not in merged:
            merged[key] = item
            continue
        both = merged[key]
        timestamps = np.concatenate([both.timestamps, item.timestamps])
        values = np.concatenate([both.values, item.values])
        order = np.argsort(timestamps, kind="stable")
        timestamps, values = timestamps[order], values[order]
        last = np.append(timestamps[1:] != timestamps[:-1], True)
        merged[key] = Series(item.tags, timestamps[last], values[last])
    return list(merged.values())
