"""Routing against the real TSDBs: realtime for recent and fine, the daily rollup for a year, and a
span across the boundary that is continuous, without duplicates, and equal to pandas over the raw points."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rtdp_dagster.batch.intervals import DAY_MS, HOUR_MS, MINUTE_MS, MONDAY_OFFSET_MS, date_of_ms, ms_of_date
from tests.serving.conftest import RECENT, SPAN, YEAR, ServedData, post_query


def segments(route: str) -> list[tuple[str, int, int]]:
    result = []
    for item in route.split(","):
        name, _, span = item.partition(":")
        start, _, end = span.partition("-")
        result.append((name, int(start), int(end)))
    return result


def by_host(response) -> dict[str, list[list]]:
    assert response.status_code == 200, response.text
    return {item["tags"]["host"]: item["dps"] for item in response.json()}


def expected(frame: pd.DataFrame, width_ms: int, offset_ms: int = 0, how: str = "mean") -> dict[str, pd.Series]:
    bucket = frame.ts - (frame.ts - offset_ms) % width_ms
    grouped = frame.assign(bucket=bucket).groupby(["host", "bucket"])["value"].agg(how)
    return {str(host): grouped.loc[host] for host in grouped.index.get_level_values(0).unique()}


def assert_matches(dps: list[list], truth: pd.Series, step_ms: int) -> None:
    times = np.array([pair[0] for pair in dps])
    assert len(times) > 0 and np.all(np.diff(times) > 0), "timestamps must be strictly increasing"
    if step_ms:
        assert set(np.diff(times)) == {step_ms}, "no gap"
    assert list(times) == list(truth.index), "the same buckets as the direct computation"
    np.testing.assert_allclose([pair[1] for pair in dps], truth.to_numpy(), rtol=1e-9)


def test_six_hours_at_one_minute_come_from_realtime(router, served: ServedData):
    start = served.now_ms - 6 * HOUR_MS
    response = post_query(
        router.url,
        {
            "start": start,
            "end": served.now_ms,
            "msResolution": True,
            "queries": [{"metric": RECENT, "aggregator": "sum", "downsample": "1m-avg", "tags": {"host": "*"}}],
        },
        arrays=True,
    )
    (route,) = segments(response.headers["X-Rtdp-Route"])
    assert route[0] == "realtime"
    recent = served.recent.loc[served.recent["ts"] >= start - start % MINUTE_MS]
    truth = expected(recent, MINUTE_MS)
    for host, dps in by_host(response).items():
        assert_matches(dps, truth[host], MINUTE_MS)


def test_one_year_at_one_day_comes_from_the_daily_rollup(router, served: ServedData):
    start = served.now_ms - 365 * DAY_MS
    response = post_query(
        router.url,
        {
            "start": start,
            "end": served.now_ms,
            "msResolution": True,
            "queries": [{"metric": YEAR, "aggregator": "avg", "downsample": "1d-avg", "tags": {"host": "*"}}],
        },
        arrays=True,
    )
    history = segments(response.headers["X-Rtdp-Route"])[0]
    assert history[0] == "history/1d" and history[1] == start - start % DAY_MS
    assert history[2] == served.now_ms - served.now_ms % DAY_MS, "the daily rollup up to today"
    rows = served.year.loc[served.year["bucket_start"] >= start - start % DAY_MS]
    for host, dps in by_host(response).items():
        mine = rows.loc[rows["host"] == host].set_index("bucket_start")
        assert_matches(dps, mine["sum"] / mine["count"], DAY_MS)


def test_twenty_days_across_the_boundary_are_continuous_and_exact(router, served: ServedData):
    start = served.now_ms - 20 * DAY_MS
    response = post_query(
        router.url,
        {
            "start": start,
            "end": served.now_ms,
            "msResolution": True,
            "queries": [{"metric": SPAN, "aggregator": "sum", "downsample": "1h-avg", "tags": {"host": "*"}}],
        },
        arrays=True,
    )
    route = segments(response.headers["X-Rtdp-Route"])
    assert [name for name, _, _ in route] == ["history/1h", "realtime"]
    assert route[0][2] == route[1][1] == served.history_end_ms, "split where the published rollups end"
    span = served.span.loc[served.span["ts"] >= start - start % HOUR_MS]
    truth = expected(span, HOUR_MS)
    results = by_host(response)
    assert sorted(results) == ["h1", "h2", "h3"]
    for host, dps in results.items():
        assert_matches(dps, truth[host], HOUR_MS)
    for item in response.json():
        assert set(item["tags"]) | set(item["aggregateTags"]) <= {"host", "site"}, "rollup tags never show"


def test_a_week_straddling_the_boundary_merges_rollup_and_raw_points(router, served: ServedData):
    start = served.now_ms - 20 * DAY_MS
    response = post_query(
        router.url,
        {
            "start": start,
            "end": served.now_ms,
            "msResolution": True,
            "queries": [{"metric": SPAN, "aggregator": "max", "downsample": "1w-sum", "tags": {"host": "*"}}],
        },
        arrays=True,
    )
    route = segments(response.headers["X-Rtdp-Route"])
    assert [name for name, _, _ in route] == ["history/1d", "realtime"]
    week = 7 * DAY_MS
    first_week = start - (start - MONDAY_OFFSET_MS) % week
    truth = expected(served.span.loc[served.span["ts"] >= first_week], week, MONDAY_OFFSET_MS, "sum")
    for host, dps in by_host(response).items():
        assert_matches(dps, truth[host], week)


def test_fill_policies_and_rate_of_a_counter(router, served: ServedData):
    start = served.now_ms - 2 * HOUR_MS
    body = {
        "start": start,
        "end": served.now_ms,
        "msResolution": True,
        "queries": [
            {"metric": "serve.test.counter", "aggregator": "sum", "downsample": "1m-max-zero"},
            {"metric": "serve.test.counter", "aggregator": "sum", "downsample": "1m-max-null"},
            {
                "metric": "serve.test.counter",
                "aggregator": "sum",
                "downsample": "1m-max",
                "rate": True,
                "rateOptions": {"counter": True, "dropResets": True},
            },
        ],
    }
    zero, null, rated = post_query(router.url, body).json()
    buckets = (served.now_ms - served.now_ms % MINUTE_MS - (start - start % MINUTE_MS)) // MINUTE_MS + 1
    assert len(zero["dps"]) == len(null["dps"]) == buckets, "every bucket of the range, data or not"
    first_data = served.counter.ts.min() - served.counter.ts.min() % MINUTE_MS
    assert zero["dps"][str(first_data - MINUTE_MS)] == 0.0 and null["dps"][str(first_data - MINUTE_MS)] is None
    per_minute = expected(served.counter, MINUTE_MS, how="max")["c1"]
    deltas = per_minute.diff().iloc[1:]
    rates = (deltas[deltas >= 0] / 60.0).round(9)
    assert {int(k): round(v, 9) for k, v in rated["dps"].items()} == rates.to_dict(), "per second, reset dropped"


def test_calendar_months_over_a_year_from_daily_rows(router, served: ServedData):
    start = served.now_ms - 365 * DAY_MS
    response = post_query(
        router.url,
        {
            "start": start,
            "end": served.now_ms,
            "msResolution": True,
            "queries": [{"metric": YEAR, "aggregator": "sum", "downsample": "1n-sum", "tags": {"host": "*"}}],
        },
        arrays=True,
    )
    assert segments(response.headers["X-Rtdp-Route"])[0][0] == "history/1d"

    def month_of(ms: int) -> int:
        return ms_of_date(date_of_ms(ms).replace(day=1))

    rows = served.year.loc[served.year["bucket_start"] >= month_of(start)]
    months = [month_of(int(ms)) for ms in rows["bucket_start"]]
    truth = rows.assign(month=months).groupby(["host", "month"])["sum"].sum()
    for host, dps in by_host(response).items():
        assert_matches(dps, truth.loc[host], 0)
