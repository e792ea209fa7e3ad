"""Publishing to the history TSDB is exactly-once in effect when Spark runs a publishing task again.

The backfill drill ``backfill_worker_kill`` found it: a worker killed while rollups were published, Spark
ran the lost task again, and the new attempt re-sent every point of its rows, also those the TSDB had
acknowledged from the lost attempt (15,000 points doubled, the run SUCCESS). Here the re-run is what
the task runs (``part_writer``) run again over the same rows after the publish, with the first
attempt's points already stored: no worker is killed, and the outcome is the same every time.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pandas as pd
import pytest
import requests

from rtdp_dagster.batch.history import history_parts, part_writer, publish_partitions
from rtdp_dagster.batch.intervals import DAY_MS, ms_of_date
from rtdp_dagster.config import Settings
from rtdp_dagster.stack.process import wait_until
from rtdp_dagster.tsdb.history import AGGREGATES, DuplicatesKept, require_deduplication, rollup_points
from rtdp_dagster.tsdb.put import http_put
from rtdp_dagster.tsdb.query import export_series, force_flush
from tests.recent_days import today

LEVEL = "1h"
DAYS = [today() - dt.timedelta(days=n) for n in (3, 2)]  # two closed days: two parts of the 1h level
HOSTS = ("a", "b")
HOURS = 3
SCHEMA = (
    "metric string, tags map<string,string>, bucket_start long, "
    "count long, sum double, min double, max double, first double, last double"
)
HOUR_MS = 3_600_000


def _part(day: dt.date) -> tuple[str, int, int]:
    return day.isoformat(), ms_of_date(day), ms_of_date(day) + DAY_MS


def _rows(metric: str, values: dict[dt.date, float]) -> list[tuple]:
    """One rollup row per host and hour; every aggregate derived from the day's value."""
    return [
        (metric, {"host": host}, ms_of_date(day) + hour * HOUR_MS, 2, 2 * value, value, value + 1, value, value + 1)
        for day, value in values.items()
        for host in HOSTS
        for hour in range(HOURS)
    ]


def _expected(metric: str, values: dict[dt.date, float]) -> dict[tuple, float]:
    """(host, part, agg, ts) -> value: what the TSDB must hold, once each."""
    expected = {}
    for row in _rows(metric, values):
        day = dt.datetime.fromtimestamp(row[2] / 1000, dt.UTC).date().isoformat()
        aggregates: dict[str, float] = dict(zip(AGGREGATES, row[3:], strict=True))
        for point in rollup_points(metric, dict(row[1]), row[2], LEVEL, day, aggregates):
            expected[(point.tags["host"], point.tags["part"], point.tags["agg"], point.timestamp_ms)] = point.value
    return expected


def _samples(url: str, metric: str, stored: bool = False) -> list[tuple[tuple, float]]:
    """Every sample of the metric's 1h series, as reads get them or (``stored``) as the TSDB holds them."""
    force_flush(url)
    return [
        ((series["tags"]["host"], series["tags"]["part"], series["tags"]["agg"], int(ts)), float(value))
        for series in export_series(url, metric, {"rollup": LEVEL}, stored=stored)
        for ts, value in series["points"]
    ]


def _read_once(url: str, metric: str) -> dict[tuple, float]:
    samples = _samples(url, metric)
    keys = [key for key, _ in samples]
    assert len(keys) == len(set(keys)), "a sample read twice"
    return dict(samples)


def _counted_by_query(url: str, metric: str) -> int:
    """The samples a query counts (the router's path: /api/v1/query, not the export)."""
    at_s = (ms_of_date(DAYS[-1]) + DAY_MS) / 1000
    query = f'sum(count_over_time({{__name__="{metric}",rollup="{LEVEL}"}}[3d]))'
    response = requests.get(f"{url}/api/v1/query", params={"query": query, "time": at_s, "nocache": "1"}, timeout=30)
    response.raise_for_status()
    (result,) = response.json()["data"]["result"]
    return int(float(result["value"][1]))


def _retried_task(metric: str, values: dict[dt.date, float], parts: list, put_http_url: str) -> int:
    """What Spark runs again after a lost executor: the task's rows (as mapInPandas hands them over),
    every point put again."""
    columns = ["metric", "tags", "bucket_start", *AGGREGATES]
    frame = pd.DataFrame(_rows(metric, values), columns=pd.Index(columns))
    (written,) = part_writer(LEVEL, history_parts(LEVEL, parts), put_http_url)([frame])
    return int(written["written"].iloc[0])


def _http_rows_inserted(url: str) -> float:
    """Samples the TSDB took over HTTP put so far (VictoriaMetrics' own counter, counted a moment after
    the put is answered)."""
    text = requests.get(f"{url}/metrics", timeout=10).text
    line = next(line for line in text.splitlines() if line.startswith('vm_rows_inserted_total{type="opentsdbhttp"}'))
    return float(line.split()[-1])


def test_a_retried_publishing_task_is_read_once_and_a_rerun_still_replaces_its_window(stack: Settings, spark) -> None:
    history = stack.tsdb.history
    metric = f"rtdp.test.retry.{uuid.uuid4().hex[:8]}"
    parts = [_part(day) for day in DAYS]
    values = {DAYS[0]: 10.0, DAYS[1]: 20.0}
    points = len(DAYS) * len(HOSTS) * HOURS * len(AGGREGATES)

    table = spark.createDataFrame(_rows(metric, values), SCHEMA)
    assert publish_partitions(table, LEVEL, parts, history.url, history.put_http_url) == points
    force_flush(history.url)  # the first attempt's points stored before the retry re-sends them
    inserted = _http_rows_inserted(history.url)
    assert _retried_task(metric, {DAYS[0]: values[DAYS[0]]}, parts, history.put_http_url) == points // 2

    # The TSDB took the first day a second time (the realtime TSDB would now read each point twice:
    # the test below) ...
    assert wait_until(lambda: _http_rows_inserted(history.url) - inserted >= points // 2, timeout_s=10)
    stored = _samples(history.url, metric, stored=True)
    assert len(stored) >= points  # the duplicates stay stored until a merge drops them
    # ... and reads get each point once, with its value.
    assert _read_once(history.url, metric) == _expected(metric, values)
    assert _counted_by_query(history.url, metric) == points

    # A correction to the first day, lower than before (deduplication alone would keep the higher,
    # older value): the re-run replaces exactly that day, retried too, and leaves the other day as it was.
    values[DAYS[0]] = -5.0
    table = spark.createDataFrame(_rows(metric, values), SCHEMA)
    assert publish_partitions(table, LEVEL, parts[:1], history.url, history.put_http_url) == points // 2
    assert _retried_task(metric, {DAYS[0]: values[DAYS[0]]}, parts[:1], history.put_http_url) == points // 2
    assert _read_once(history.url, metric) == _expected(metric, values)
    assert _counted_by_query(history.url, metric) == points


def test_publishing_refuses_a_tsdb_that_keeps_re_sent_points(stack: Settings, spark) -> None:
    """The realtime TSDB keeps every sample written (its corrections win by being written later): there a
    re-sent point is read twice, the defect itself, so a publish to such a TSDB refuses to start."""
    realtime = stack.tsdb.realtime
    metric = f"rtdp.test.retry.{uuid.uuid4().hex[:8]}"
    aggregates: dict[str, float] = dict.fromkeys(AGGREGATES, 1.0)
    sent = rollup_points(metric, {"host": "a"}, ms_of_date(DAYS[0]), LEVEL, DAYS[0].isoformat(), aggregates)
    http_put(realtime.put_http_url, sent)
    force_flush(realtime.url)
    http_put(realtime.put_http_url, sent)  # the retried task
    assert len(_samples(realtime.url, metric)) == 2 * len(sent)

    require_deduplication(stack.tsdb.history.url)
    with pytest.raises(DuplicatesKept, match=r"dedup\.minScrapeInterval"):
        require_deduplication(realtime.url)
    table = spark.createDataFrame(_rows(metric, {DAYS[1]: 1.0}), SCHEMA)
    with pytest.raises(DuplicatesKept):
        publish_partitions(table, LEVEL, [_part(DAYS[1])], realtime.url, realtime.put_http_url)
    assert not [key for key, _ in _samples(realtime.url, metric) if key[1] == DAYS[1].isoformat()]
