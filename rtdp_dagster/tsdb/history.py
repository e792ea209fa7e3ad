"""Rollups in the history TSDB, replaced one partition at a time.

VictoriaMetrics cannot delete a time range of a series, and it keeps every sample written for a
timestamp. So each part of a rollup level (a day for 1m/1h, a month for 1d, a week, month or
year for the coarser levels: see rtdp_dagster.batch.history) is its own set of series, tagged
``part=<key>``: re-publishing a part first deletes exactly those series, then writes them again.
A re-run leaves neither stale nor doubled values, and queries merge the parts (their time ranges
never overlap).

Naming: the point's own metric and tags, plus ``rollup=<level>``, ``agg=<aggregate>`` and
``part``; the aggregates are count, sum, min, max, first and last (avg = sum / count, exact).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import requests

from rtdp_dagster.tsdb.put import TsdbPoint, http_put
from rtdp_dagster.tsdb.query import force_flush

AGGREGATES = ("count", "sum", "min", "max", "first", "last")


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
