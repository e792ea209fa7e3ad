"""A small workload for every metric the dashboards read, written with the project's writers.

Realtime TSDB: the last 30 minutes at the collection cadence for two hosts of every site of the
master data (site and app as the stream enriches them) and for any host other tests left there,
the collection log figures of waves 1-3, the stream's progress figures and data-quality results.
History TSDB: rollup series (1d for a year, 1w and 1mo for three years; rtdp_dagster/tsdb/history.py
naming), as the batch layer publishes them.
"""

from __future__ import annotations

import datetime as dt
import math

import requests

from rtdp_dagster.collection.metrics import log_points
from rtdp_dagster.collection.state import LogRow
from rtdp_dagster.config import Settings
from rtdp_dagster.master_data import load_master_data
from rtdp_dagster.stack.process import wait_until
from rtdp_dagster.streaming.progress import METRICS as STREAM_FIGURES
from rtdp_dagster.tsdb.history import rollup_points
from rtdp_dagster.tsdb.put import TsdbPoint, http_put
from rtdp_dagster.tsdb.query import force_flush

CADENCE_MS = 10_000
REALTIME_SPAN_MS = 30 * 60_000
DAY_MS = 86_400_000
GAUGES = {"sys.cpu.util": 40.0, "sys.mem.used_mb": 4096.0, "sys.load.avg": 2.0, "sys.cpu.cores": 8.0}
# Counters and their increase per step.
COUNTERS = {"app.requests.count": 500.0, "sys.net.bytes_in": 200_000.0, "sys.net.bytes_out": 120_000.0}
LONG_RANGE_METRICS = ("sys.cpu.util", "sys.load.avg", "sys.mem.used_mb")


def sample_hosts(settings: Settings, per_site: int = 2) -> list[dict[str, str]]:
    """The first hosts of every site of the latest master data version, tagged as the stream enriches them."""
    chosen: dict[str, list[dict[str, str]]] = {}
    for entry in load_master_data(settings.master_data.dir).latest.hosts():
        hosts = chosen.setdefault(entry.site, [])
        if len(hosts) < per_site:
            hosts.append({"host": entry.host, "site": entry.site, "app": entry.app})
    return [tags for hosts in chosen.values() for tags in hosts]


def existing_hosts(query_url: str, metric: str = "sys.cpu.util") -> list[dict[str, str]]:
    """host/site/app of every series of the metric other tests left in the TSDB."""
    response = requests.get(
        f"{query_url.rstrip('/')}/api/v1/series",
        params={"match[]": f'{{__name__="{metric}"}}', "start": "0"},
        timeout=30,
    )
    response.raise_for_status()
    found = []
    for labels in response.json()["data"]:
        if all(labels.get(key) for key in ("host", "site", "app")):
            found.append({key: labels[key] for key in ("host", "site", "app")})
    return found


def _host_points(hosts: list[dict[str, str]], start_ms: int, end_ms: int) -> list[TsdbPoint]:
    points = []
    for number, tags in enumerate(hosts):
        for step, ts in enumerate(range(start_ms, end_ms, CADENCE_MS)):
            wave = math.sin(step / 30 + number)
            points += [TsdbPoint(metric, ts, level * (1 + 0.2 * wave), tags) for metric, level in GAUGES.items()]
            points += [TsdbPoint(metric, ts, increase * step, tags) for metric, increase in COUNTERS.items()]
    return points


def _collection_points(start_ms: int, end_ms: int) -> list[TsdbPoint]:
    points = []
    for window_end in range(start_ms + 60_000, end_ms, 60_000):
        for wave, new in ((1, 60), (2, 3), (3, 1)):
            row = LogRow(
                "synthetic_fleet",
                wave,
                window_end - 60_000,
                window_end,
                rows_read=62,
                rows_valid=61,
                rows_new=new,
                rows_dead_lettered=1,
                duration_ms=40,
                status="done",
                attempts=1,
                finished_at=window_end,
            )
            points += log_points(row)
    return points


def _stream_points(start_ms: int, end_ms: int) -> list[TsdbPoint]:
    return [
        TsdbPoint(f"rtdp.stream.{figure}", ts, float(batch % 7), {"query": query})
        for batch, ts in enumerate(range(start_ms, end_ms, 5_000))
        for query in ("bronze", "realtime")
        for figure in STREAM_FIGURES
    ]


def _quality_points(start_ms: int, end_ms: int) -> list[TsdbPoint]:
    checks = (("silver", "one_row_per_point_key", "error"), ("bronze", "values_finite", "warn"))
    points = []
    for run, ts in enumerate(range(start_ms, end_ms, 300_000)):
        for asset, check, severity in checks:
            passed = float(run % 4 != 3)
            points.append(
                TsdbPoint("rtdp.dq.check_status", ts, passed, {"asset": asset, "check": check, "severity": severity})
            )
            points.append(
                TsdbPoint("rtdp.dq.failing_rows", ts, 0.0 if passed else 12.0, {"asset": asset, "check": check})
            )
        points += [TsdbPoint("rtdp.dq.recon.unexplained", ts, 0.0, {"stage": stage}) for stage in ("bronze", "silver")]
    return points


def _buckets(level: str, now: dt.datetime, years: int = 3) -> list[tuple[dt.datetime, str]]:
    """(bucket start, partition key) of every bucket of the level in the last ``years`` (UTC)."""
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    first = today.replace(year=today.year - years)
    if level == "1d":
        days = (today - first).days
        return [(moment, moment.strftime("%Y-%m-%d")) for moment in (first + dt.timedelta(days=d) for d in range(days))]
    if level == "1w":
        monday = today - dt.timedelta(days=today.weekday())
        weeks = (monday - first).days // 7
        return [(m, m.strftime("%Y-%m-%d")) for m in (monday - dt.timedelta(weeks=w) for w in range(weeks, 0, -1))]
    months = []
    moment = first.replace(day=1)
    while moment < today.replace(day=1):
        months.append((moment, moment.strftime("%Y-%m-%d")))
        moment = (moment + dt.timedelta(days=32)).replace(day=1)
    return months


def _history_points(hosts: list[dict[str, str]], now: dt.datetime) -> list[TsdbPoint]:
    points = []
    for tags in hosts:
        # Daily rollups for the one-year panels, weekly and monthly ones for three years.
        for level, years in (("1d", 1), ("1w", 3), ("1mo", 3)):
            for number, (start, part) in enumerate(_buckets(level, now, years)):
                for metric in LONG_RANGE_METRICS:
                    level_value = GAUGES[metric] * (1 + 0.1 * math.sin(number / 5))
                    count = 8640.0
                    aggregates = {
                        "count": count,
                        "sum": level_value * count,
                        "min": level_value * 0.5,
                        "max": level_value * 1.5,
                        "first": level_value,
                        "last": level_value,
                    }
                    points += rollup_points(metric, tags, int(start.timestamp() * 1000), level, part, aggregates)
    return points


def fill(settings: Settings) -> dict[str, int]:
    """Write the workload into both TSDBs; returns points written per TSDB."""
    # Hosts other tests wrote get fresh points too: every site a variable lists must show data.
    hosts = sample_hosts(settings)
    hosts += [tags for tags in existing_hosts(settings.tsdb.realtime.url) if tags not in hosts]
    now = dt.datetime.now(dt.UTC)
    end_ms = int(now.timestamp() * 1000) // CADENCE_MS * CADENCE_MS
    start_ms = end_ms - REALTIME_SPAN_MS
    realtime = (
        _host_points(hosts, start_ms, end_ms)
        + _collection_points(start_ms, end_ms)
        + _stream_points(start_ms, end_ms)
        + _quality_points(start_ms, end_ms)
    )
    history = _history_points(sample_hosts(settings, per_site=1), now)
    written = {
        "realtime": http_put(settings.tsdb.realtime.put_http_url, realtime, timeout_s=30),
        "history": http_put(settings.tsdb.history.put_http_url, history, timeout_s=30),
    }
    force_flush(settings.tsdb.history.url)
    # A series written for the first time can take a moment to be listed (variables list sites
    # from the series); the demo's earlier series of some sites are listed at once, the rest not.
    expected = {(tags["host"], tags["site"]) for tags in hosts}

    def listed() -> bool:
        force_flush(settings.tsdb.realtime.url)
        return expected <= {(tags["host"], tags["site"]) for tags in existing_hosts(settings.tsdb.realtime.url)}

    assert wait_until(listed, timeout_s=60, interval_s=1), "the workload's series were not listed within 60 s"
    return written
