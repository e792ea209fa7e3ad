"""Data for the router tests, written with the project's own writers into the session's TSDBs.

- SPAN: 3 hosts every 10 min over 21 days. Raw points in the realtime TSDB (only its last 13.5 days:
  it keeps 14), and the 1h and 1d rollups of every day up to 3 days ago published to the history TSDB
  partition by partition, computed from the same points.
- RECENT: 2 hosts every 15 s over the last 6.5 hours, realtime only.
- COUNTER: a counter that resets once, every 10 s over the last hour, realtime only.
- YEAR: 2 hosts' daily rollups for the last 370 days (ending yesterday), history only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import requests

from rtdp_dagster.batch.intervals import DAY_MS, HOUR_MS, date_of_ms
from rtdp_dagster.config import Settings
from rtdp_dagster.tsdb.history import AGGREGATES, replace_partition, rollup_points
from rtdp_dagster.tsdb.put import TsdbPoint, http_put
from rtdp_dagster.tsdb.query import force_flush

SPAN, RECENT, COUNTER, YEAR = "serve.test.span", "serve.test.recent", "serve.test.counter", "serve.test.year"


@dataclass
class ServedData:
    now_ms: int
    span: pd.DataFrame  # host, site, ts, value: every raw point, also those too old for the realtime TSDB
    recent: pd.DataFrame
    counter: pd.DataFrame
    year: pd.DataFrame  # host, bucket_start and the six aggregates per day
    history_end_ms: int  # end of the newest published day of SPAN


def rollup(frame: pd.DataFrame, width_ms: int) -> pd.DataFrame:
    """count, sum, min, max, first, last per host and bucket: what the batch layer publishes."""
    frame = frame.sort_values("ts").assign(bucket_start=lambda f: f.ts - f.ts % width_ms)
    grouped = frame.groupby(["host", "site", "bucket_start"])["value"]
    return grouped.agg(["count", "sum", "min", "max", "first", "last"]).reset_index()


def _realtime_points(metric: str, frame: pd.DataFrame) -> list[TsdbPoint]:
    return [
        TsdbPoint(metric, int(ts), float(value), {"host": host, "site": site})
        for host, site, ts, value in frame[["host", "site", "ts", "value"]].itertuples(index=False)
    ]


def _publish_days(settings: Settings, metric: str, frame: pd.DataFrame, level: str, width_ms: int) -> None:
    """One history partition per day, each replaced as the batch layer replaces it."""
    parts: dict[str, list[TsdbPoint]] = {}
    for row in rollup(frame, width_ms).to_dict("records"):
        bucket = int(row["bucket_start"])
        key = date_of_ms(bucket).isoformat()
        values = {name: float(row[name]) for name in AGGREGATES}
        tags = {"host": str(row["host"]), "site": str(row["site"])}
        parts.setdefault(key, []).extend(rollup_points(metric, tags, bucket, level, key, values))
    for key, points in parts.items():
        replace_partition(settings.tsdb.history.url, settings.tsdb.history.put_http_url, level, key, points)


@pytest.fixture(scope="session")
def served(stack: Settings) -> ServedData:
    rng = np.random.default_rng(20261121)
    now_ms = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    today = now_ms - now_ms % DAY_MS
    realtime_from = now_ms - int(13.5 * DAY_MS)

    start = today - 21 * DAY_MS
    times = np.arange(start, now_ms - 120_000, 600_000)
    span = pd.concat(
        [
            pd.DataFrame({"host": host, "site": "s1", "ts": times, "value": rng.normal(50, 10, len(times)).round(3)})
            for host in ("h1", "h2", "h3")
        ],
        ignore_index=True,
    )
    history_end = today - 2 * DAY_MS
    published = span.loc[span["ts"] < history_end]
    for level, width in (("1h", HOUR_MS), ("1d", DAY_MS)):
        _publish_days(stack, SPAN, published, level, width)

    times = np.arange(now_ms - int(6.5 * HOUR_MS), now_ms - 5_000, 15_000)
    recent = pd.concat(
        [
            pd.DataFrame({"host": host, "site": site, "ts": times, "value": rng.uniform(0, 100, len(times)).round(2)})
            for host, site in (("r1", "s1"), ("r2", "s2"))
        ],
        ignore_index=True,
    )

    times = np.arange(now_ms - HOUR_MS, now_ms - 5_000, 10_000)
    steps = np.full(len(times), 10.0)
    steps[len(times) // 2] = -float(np.sum(steps[: len(times) // 2])) + 3.0  # the counter restarts at 3
    counter = pd.DataFrame({"host": "c1", "site": "s1", "ts": times, "value": np.cumsum(steps)})

    days = np.arange(today - 370 * DAY_MS, today, DAY_MS)
    year_rows = []
    for host in ("y1", "y2"):
        low, high = rng.uniform(0, 10, len(days)).round(2), rng.uniform(20, 30, len(days)).round(2)
        year_rows.append(
            pd.DataFrame(
                {
                    "host": host,
                    "site": "s9",
                    "bucket_start": days,
                    "count": 144.0,
                    "sum": rng.uniform(1000, 3000, len(days)).round(2),
                    "min": low,
                    "max": high,
                    "first": (low + 1).round(2),
                    "last": (high - 1).round(2),
                }
            )
        )
    year = pd.concat(year_rows, ignore_index=True)

    realtime = _realtime_points(SPAN, span.loc[span["ts"] >= realtime_from])
    realtime += _realtime_points(RECENT, recent) + _realtime_points(COUNTER, counter)
    http_put(stack.tsdb.realtime.put_http_url, realtime)
    yearly = []
    for row in year.to_dict("records"):
        bucket = int(row["bucket_start"])
        values = {name: float(row[name]) for name in AGGREGATES}
        tags = {"host": str(row["host"]), "site": str(row["site"])}
        yearly += rollup_points(YEAR, tags, bucket, "1d", date_of_ms(bucket).isoformat(), values)
    http_put(stack.tsdb.history.put_http_url, yearly)
    for url in (stack.tsdb.realtime.url, stack.tsdb.history.url):
        force_flush(url)
    return ServedData(now_ms, span, recent, counter, year, history_end)


def post_query(router_url: str, body: dict, arrays: bool = False) -> requests.Response:
    return requests.post(
        f"{router_url}/api/query", params={"arrays": "true"} if arrays else None, json=body, timeout=60
    )
