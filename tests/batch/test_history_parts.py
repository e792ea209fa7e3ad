"""The daily level in the history TSDB is kept in month parts: re-publishing one day rewrites its month
from the rollup table, so the day is replaced and the month's other days stay exactly once, also when
the month still holds day parts of the earlier layout and when two days of one month are published
at the same time."""

from __future__ import annotations

import datetime as dt
import threading
import uuid

from rtdp_dagster.batch.history import publish_partitions
from rtdp_dagster.batch.intervals import DAY_MS, ms_of_date
from rtdp_dagster.config import Settings
from rtdp_dagster.tsdb.history import replace_partition, rollup_points
from rtdp_dagster.tsdb.query import export_series, force_flush
from tests.recent_days import today

# The first three days of last month: a closed month inside the history retention.
MONTH = (today().replace(day=1) - dt.timedelta(days=1)).replace(day=1)
DAYS = [MONTH + dt.timedelta(days=n) for n in range(3)]
SCHEMA = (
    "metric string, tags map<string,string>, bucket_start long, "
    "count long, sum double, min double, max double, first double, last double"
)


def _rows(metric: str, day_values: dict[dt.date, float]) -> list[tuple]:
    return [
        (metric, {"host": host}, ms_of_date(day), 2, 2 * value, value, value, value, value)
        for day, value in day_values.items()
        for host in ("a", "b")
    ]


def _part(day: dt.date) -> tuple[str, int, int]:
    return day.isoformat(), ms_of_date(day), ms_of_date(day) + DAY_MS


def _history(url: str, metric: str) -> dict[tuple[str, str, str], list[tuple[int, float]]]:
    force_flush(url)
    found: dict[tuple[str, str, str], list[tuple[int, float]]] = {}
    for series in export_series(url, metric, {"rollup": "1d", "agg": "sum"}):
        key = (series["tags"]["host"], series["tags"]["part"], series["tags"]["agg"])
        found.setdefault(key, []).extend(series["points"])
    return {key: sorted(points) for key, points in found.items()}


def _expected(metric: str, day_values: dict[dt.date, float]) -> dict[tuple[str, str, str], list[tuple[int, float]]]:
    return {
        (host, MONTH.isoformat(), "sum"): [(ms_of_date(day), 2 * value) for day, value in day_values.items()]
        for host in ("a", "b")
    }


def test_republishing_a_day_rewrites_its_month_exactly(stack: Settings, spark) -> None:
    metric = f"rtdp.test.parts.{uuid.uuid4().hex[:8]}"
    history = stack.tsdb.history
    # The earlier layout: the first day in its own day part.
    replace_partition(
        history.url,
        history.put_http_url,
        "1d",
        DAYS[0].isoformat(),
        [
            point
            for host in ("a", "b")
            for point in rollup_points(
                metric,
                {"host": host},
                ms_of_date(DAYS[0]),
                "1d",
                DAYS[0].isoformat(),
                {"count": 2, "sum": 2.0, "min": 1.0, "max": 1.0, "first": 1.0, "last": 1.0},
            )
        ],
    )

    values = {DAYS[0]: 1.0, DAYS[1]: 2.0, DAYS[2]: 3.0}
    table = spark.createDataFrame(_rows(metric, values), SCHEMA)
    written = publish_partitions(table, "1d", [_part(DAYS[1])], history.url, history.put_http_url)
    assert written == 2 * 3 * 6
    assert _history(history.url, metric) == _expected(metric, values)

    # The second day changes: published alone, it is replaced and the other days stay once.
    values[DAYS[1]] = 20.0
    table = spark.createDataFrame(_rows(metric, values), SCHEMA)
    publish_partitions(table, "1d", [_part(DAYS[1])], history.url, history.put_http_url)
    assert _history(history.url, metric) == _expected(metric, values)

    # Two days of the month published at once by two runs: each value once, as the table holds it.
    values[DAYS[0]], values[DAYS[2]] = 10.0, 30.0
    table = spark.createDataFrame(_rows(metric, values), SCHEMA)
    errors: list[BaseException] = []

    def publish(day: dt.date) -> None:
        try:
            publish_partitions(table, "1d", [_part(day)], history.url, history.put_http_url)
        except BaseException as exc:  # reported by the test thread below
            errors.append(exc)

    threads = [threading.Thread(target=publish, args=(day,)) for day in (DAYS[0], DAYS[2])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert _history(history.url, metric) == _expected(metric, values)
