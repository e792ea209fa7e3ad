"""Rollups in the history TSDB, replaced one partition at a time.

VictoriaMetrics cannot delete a time range of a series, and it keeps every sample written for a
timestamp. So each rollup partition (a day for 1m/1h/1d, a week, month or year for coarser
levels) is its own set of series, tagged ``part=<partition key>``: re-publishing a partition
first deletes exactly those series, then writes them again. A re-run leaves neither stale nor
doubled values, and queries merge the parts (their time ranges never overlap).

Naming: the point's own metric and tags, plus ``rollup=<level>``, ``agg=<aggregate>`` and
``part``; the aggregates are count, sum, min, max, first and last (avg = sum / count, exact).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import requests

from rtdp_dagster.tsdb.put import TsdbPoint, http_put

AGGREGATES = ("count", "sum", "min", "max", "first", "last")


def partition_selector(rollup: str, part: str) -> str:
    return "{" + f'__name__=~".+",rollup={json.dumps(rollup)},part={json.dumps(part)}' + "}"


def delete_partition(query_url: str, rollup: str, part: str, timeout_s: float = 30.0) -> None:
    response = requests.post(
        f"{query_url.rstrip('/')}/api/v1/admin/tsdb/delete_series",
        params={"match[]": partition_selector(rollup, part)},
        timeout=timeout_s,
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
