"""Rollups in the history TSDB, replaced one partition at a time.

VictoriaMetrics cannot delete a time range of a series. So each part of a rollup level (a day for
1m/1h, a month for 1d, a week, month or year for the coarser levels: see rtdp_dagster.batch.history)
is its own set of series, tagged ``part=<key>``: re-publishing a part first deletes exactly those
series, then writes them again. A re-run leaves neither stale nor doubled values, and queries merge
the parts (their time ranges never overlap).

A point sent twice within one publish (a Spark task run again after its executor was lost re-sends
what the lost attempt had put) is another matter: no delete runs in between. The history TSDB
therefore deduplicates (``-dedup.minScrapeInterval=1ms``, set by ``rtdp stack``: one sample per
series and millisecond, and a rollup level's buckets are a minute apart at least), so a re-sent
point, equal to the one before it, is read once; ``require_deduplication`` refuses to publish to a
VictoriaMetrics without it. Deduplication keeps the biggest of two values at one timestamp, not the
last written, which is why a correction still goes through the delete (rtdp_dagster.tsdb.dedup).

Naming: the point's own metric and tags, plus ``rollup=<level>``, ``agg=<aggregate>`` and
``part``; the aggregates are count, sum, min, max, first and last (avg = sum / count, exact).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import requests

from rtdp_dagster.tsdb.dedup import FLAG, dedup_interval_ms
from rtdp_dagster.tsdb.put import TsdbPoint, http_put
from rtdp_dagster.tsdb.query import force_flush

AGGREGATES = ("count", "sum", "min", "max", "first", "last")
# Buckets of the finest level are a minute apart: a longer deduplication interval would merge them.
MAX_DEDUP_INTERVAL_MS = 60_000.0


class DuplicatesKept(Exception):
    """The history TSDB keeps every sample written for a timestamp (or merges distinct buckets)."""


def require_deduplication(query_url: str, timeout_s: float = 30.0) -> None:
    """Raise DuplicatesKept unless the history TSDB reads one sample per series and timestamp."""
    interval = dedup_interval_ms(query_url, timeout_s)
    if interval is None:  # not a VictoriaMetrics: it answers for its own duplicates
        return
    if not 0 < interval <= MAX_DEDUP_INTERVAL_MS:
        raise DuplicatesKept(
            f"the history TSDB at {query_url} runs with -{FLAG}={interval:g}ms: a retried publishing task "
            f"would double the points it re-sends (or buckets would merge); start it with -{FLAG}=1ms"
        )


def partition_selector(rollup: str, part: str) -> str:
    return "{" + f'__name__=~".+",rollup={json.dumps(rollup)},part={json.dumps(part)}' + "}"


def delete_partition(query_url: str, rollup: str, part: str, timeout_s: float = 30.0) -> None:
    _delete(query_url, partition_selector(rollup, part), timeout_s)


def delete_parts(query_url: str, rollup: str, pattern: str, timeout_s: float = 30.0) -> None:
    """Delete the series of a level whose ``part`` matches the regexp pattern (anchored, RE2)."""
    selector = "{" + f'__name__=~".+",rollup={json.dumps(rollup)},part=~{json.dumps(pattern)}' + "}"
    _delete(query_url, selector, timeout_s)


def _delete(query_url: str, selector: str, timeout_s: float) -> None:
    # Series written in the last seconds are not in the index yet, and a delete would miss them (a
    # day published right after another day of its month would then be doubled): flush first.
    force_flush(query_url, timeout_s)
    response = requests.post(
        f"{query_url.rstrip('/')}/api/v1/admin/tsdb/delete_series", params={"match[]": selector}, timeout=timeout_s
    )
    response.raise_for_status()


def replace_partition(
    query_url: str, put_http_url: str, rollup: str, part: str, points: Iterable[TsdbPoint], timeout_s: float = 30.0
) -> int:
    """Delete the partition's series, then write its points; returns how many were written."""
    delete_partition(query_url, rollup, part, timeout_s)
    batch = list(points)
    return http_put(put_http_url, batch, timeout_s=timeout_s) if batch else 0


def rollup_points(
    metric: str, tags: dict[str, str], bucket_start_ms: int, rollup: str, part: str, aggregates: dict[str, float]
) -> list[TsdbPoint]:
    """The history points of one (series, bucket) of a rollup level."""
    base = {**tags, "rollup": rollup, "part": part}
    return [
        TsdbPoint(metric, bucket_start_ms, float(aggregates[name]), {**base, "agg": name})
        for name in AGGREGATES
        if aggregates.get(name) is not None
    ]
