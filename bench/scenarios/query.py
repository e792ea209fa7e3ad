"""Query router latency: /api/query for 100 series over 1 h, 24 h, 30 d and 1 y, against the same data read
directly from VictoriaMetrics at raw resolution (``/api/v1/export``).

The data: 100 series (one metric, one host tag each). Realtime TSDB: a point a minute for the last
day. History TSDB: raw points (a point every 10 minutes for the last 30 days, an hour before that,
a year in all) as the baseline's source, and their 1h and 1d rollups as the batch layer publishes
them (1h in day parts, 1d in month parts). The router asks what a dashboard asks for each range:
1m-avg over 1 h and 5m-avg over 24 h (realtime), 1h-avg over 30 d and 1d-avg over 1 y (rollups);
the baseline reads the raw points of the same series and range. Both sides include the client's
JSON decoding (orjson on both) and are timed in turn, request by request, up to 400 samples each
(fewer for the long ranges, within the time budget). The long ranges run twice: with the router's
history cache (a dashboard refreshing) and without it (every query reads the rollups).
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import orjson
import pandas as pd
import requests

from bench.results import Record
from bench.router_process import free_port, start_router_process, stop_router_process
from rtdp_dagster.batch.history import day_level_part
from rtdp_dagster.batch.intervals import DAY_MS, HOUR_MS, MINUTE_MS
from rtdp_dagster.config import Settings
from rtdp_dagster.tsdb.history import AGGREGATES, rollup_points
from rtdp_dagster.tsdb.put import TsdbPoint, http_put
from rtdp_dagster.tsdb.query import force_flush

SCENARIO = "query"
SERIES = 100
REALTIME_METRIC, HISTORY_METRIC = "bench.query.realtime", "bench.query.history"
# (figure label, range, metric, downsample)
CASES = (
    ("1h", HOUR_MS, REALTIME_METRIC, "1m-avg"),
    ("24h", DAY_MS, REALTIME_METRIC, "5m-avg"),
    ("30d", 30 * DAY_MS, HISTORY_METRIC, "1h-avg"),
    ("1y", 365 * DAY_MS, HISTORY_METRIC, "1d-avg"),
)
# Up to 400 samples a side: a p99 of 50 was their worst one or two, one scheduling hiccup apart.
MIN_RUNS, MAX_RUNS = 5, 400
JSON_HEADERS = {"Content-Type": "application/json"}


def _hosts() -> list[str]:
    return [f"q{number:03d}" for number in range(SERIES)]


def _frame(times: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    return pd.concat(
        [
            pd.DataFrame({"host": host, "ts": times, "value": rng.normal(50, 10, len(times)).round(3)})
            for host in _hosts()
        ],
        ignore_index=True,
    )


def _points(metric: str, frame: pd.DataFrame) -> list[TsdbPoint]:
    return [
        TsdbPoint(metric, int(ts), float(value), {"host": host})
        for host, ts, value in frame[["host", "ts", "value"]].itertuples(index=False)
    ]


def _rollups(frame: pd.DataFrame, level: str, width_ms: int) -> list[TsdbPoint]:
    rows = frame.sort_values("ts").assign(bucket=lambda f: f.ts - f.ts % width_ms)
    aggregated = rows.groupby(["host", "bucket"])["value"].agg(list(AGGREGATES)).reset_index()
    points = []
    for row in aggregated.to_dict("records"):
        bucket = int(row["bucket"])
        values = {name: float(row[name]) for name in AGGREGATES}
        points += rollup_points(
            HISTORY_METRIC, {"host": str(row["host"])}, bucket, level, day_level_part(level, bucket), values
        )
    return points


def _delete(url: str) -> None:
    requests.post(
        f"{url}/api/v1/admin/tsdb/delete_series", params={"match[]": '{__name__=~"bench\\\\.query\\\\..+"}'}, timeout=60
    ).raise_for_status()


def _load(settings: Settings, now_ms: int, log) -> None:
    rng = np.random.default_rng(2026)
    today = now_ms - now_ms % DAY_MS
    for url in (settings.tsdb.realtime.url, settings.tsdb.history.url):
        _delete(url)
    realtime = _frame(np.arange(now_ms - DAY_MS - HOUR_MS, now_ms, MINUTE_MS), rng)
    older = np.arange(today - 366 * DAY_MS, today - 31 * DAY_MS, HOUR_MS)
    recent = np.arange(today - 31 * DAY_MS, today, 10 * MINUTE_MS)
    history = _frame(np.concatenate([older, recent]), rng)
    started = time.perf_counter()
    http_put(settings.tsdb.realtime.put_http_url, _points(REALTIME_METRIC, realtime))
    http_put(settings.tsdb.history.put_http_url, _points(HISTORY_METRIC, history))
    http_put(
        settings.tsdb.history.put_http_url, _rollups(history.loc[history["ts"] >= today - 31 * DAY_MS], "1h", HOUR_MS)
    )
    http_put(settings.tsdb.history.put_http_url, _rollups(history, "1d", DAY_MS))
    for url in (settings.tsdb.realtime.url, settings.tsdb.history.url):
        force_flush(url)
    log(
        f"query: wrote {len(realtime):,} realtime and {len(history):,} raw history points with their 1h/1d "
        f"rollups in {time.perf_counter() - started:.0f} s"
    )


def _timed(calls: tuple, budget_s: float) -> tuple[list[float], ...]:
    """Samples of each call, the calls taken in turn: every side sees the same moments of the machine."""
    for call in calls:
        for _ in range(2):
            call()  # warm-up: connections, caches of the router and of VictoriaMetrics
    samples: tuple[list[float], ...] = tuple([] for _ in calls)
    started = time.perf_counter()
    while len(samples[0]) < MAX_RUNS and (len(samples[0]) < MIN_RUNS or time.perf_counter() - started < budget_s):
        for call, found in zip(calls, samples, strict=True):
            began = time.perf_counter()
            call()
            found.append((time.perf_counter() - began) * 1000)
    return samples


def _p99(samples: list[float]) -> float:
    return float(np.percentile(samples, 99))


def _case(
    session: requests.Session,
    router_url: str,
    settings: Settings,
    case: tuple,
    now_ms: int,
    budget: float,
    label_suffix: str,
    log,
) -> list[Record]:
    label, span, metric, downsample = case
    start = now_ms - span
    query = {"metric": metric, "aggregator": "sum", "downsample": downsample, "tags": {"host": "*"}}
    payload = orjson.dumps({"start": start, "end": now_ms, "queries": [query]})
    raw_url = settings.tsdb.realtime.url if metric == REALTIME_METRIC else settings.tsdb.history.url
    raw_params = {
        "match[]": f'{{__name__="{metric}",rollup=""}}',
        "start": f"{start / 1000:.3f}",
        "end": f"{now_ms / 1000:.3f}",
    }
    counts = {"router": 0, "raw": 0}

    def routed() -> None:
        response = session.post(f"{router_url}/api/query", data=payload, headers=JSON_HEADERS, timeout=60)
        response.raise_for_status()
        counts["router"] = sum(len(item["dps"]) for item in orjson.loads(response.content))

    def direct() -> None:
        response = session.get(f"{raw_url}/api/v1/export", params=raw_params, timeout=120)
        response.raise_for_status()
        lines = [orjson.loads(line) for line in response.content.splitlines() if line.strip()]
        counts["raw"] = sum(len(line["values"]) for line in lines)

    mine, theirs = _timed((routed, direct), budget)
    log(
        f"query {label}{label_suffix}: router p50 {statistics.median(mine):.1f} ms ({counts['router']:,} points), "
        f"raw VictoriaMetrics p50 {statistics.median(theirs):.1f} ms ({counts['raw']:,} points)"
    )
    name = f"100 series, {label} ({downsample}){label_suffix}"
    return [
        Record(
            SCENARIO,
            f"/api/query p50, {name}",
            round(statistics.median(mine), 2),
            "ms",
            round(statistics.median(theirs), 2),
            samples=mine,
        ),
        Record(SCENARIO, f"/api/query p99, {name}", round(_p99(mine), 2), "ms", round(_p99(theirs), 2)),
    ]


def run(settings: Settings, seconds: float = 60.0, log=print) -> list[Record]:
    now_ms = int(time.time() * 1000)
    _load(settings, now_ms, log)
    # Long ranges twice: with the router's history cache off (every query reads the rollups) and on.
    # Each router is `rtdp serve` in its own process, as Grafana reaches it.
    log_path = settings.run_dir / "logs" / "bench-router.log"
    ports = {"": free_port(), ", cache off": free_port()}
    routers = {
        "": start_router_process(ports[""], log_path),
        ", cache off": start_router_process(ports[", cache off"], log_path, RTDP_SERVE__HISTORY_CACHE_S="0"),
    }
    session = requests.Session()
    records: list[Record] = []
    budget = max(6.0, seconds / 5)  # both sides share it
    try:
        for case in CASES:
            suffixes = ["", ", cache off"] if case[2] == HISTORY_METRIC else [""]
            for suffix in suffixes:
                url = f"http://127.0.0.1:{ports[suffix]}"
                records += _case(session, url, settings, case, now_ms, budget, suffix, log)
    finally:
        for router in routers.values():
            stop_router_process(router)
        for url in (settings.tsdb.realtime.url, settings.tsdb.history.url):
            _delete(url)
    return records
