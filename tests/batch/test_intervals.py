"""Buckets are calendar-correct in UTC: 28- to 31-day months, leap years, ISO weeks across a year boundary.

Expected starts are written out by hand, so the rules are checked against the calendar rather
than against a second implementation. The same instants go through the Python rule, the Spark
columns and the rollups.
"""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import functions as F

from rtdp_dagster.batch.intervals import INTERVALS, interval
from rtdp_dagster.batch.rollups import avg_column, rollup_points, rollup_rollups
from rtdp_dagster.envelope.keys import series_key
from tests.batch.bronze_rows import ms

# instant → expected bucket start per level
CASES = {
    "2024-02-29 12:34:56.789": {
        "1m": "2024-02-29 12:34",
        "1h": "2024-02-29 12:00",
        "1d": "2024-02-29",
        "1w": "2024-02-26",
        "1mo": "2024-02-01",
        "1y": "2024-01-01",
    },
    "2023-02-28 23:59:59.999": {
        "1m": "2023-02-28 23:59",
        "1h": "2023-02-28 23:00",
        "1d": "2023-02-28",
        "1w": "2023-02-27",
        "1mo": "2023-02-01",
        "1y": "2023-01-01",
    },
    "2024-01-31 23:59:59.999": {
        "1m": "2024-01-31 23:59",
        "1h": "2024-01-31 23:00",
        "1d": "2024-01-31",
        "1w": "2024-01-29",
        "1mo": "2024-01-01",
        "1y": "2024-01-01",
    },
    "2024-02-01 00:00:00": {
        "1m": "2024-02-01 00:00",
        "1h": "2024-02-01 00:00",
        "1d": "2024-02-01",
        "1w": "2024-01-29",
        "1mo": "2024-02-01",
        "1y": "2024-01-01",
    },
    # ISO week 1 of 2025 starts on Monday 2024-12-30; 2021-01-03 (a Sunday) is in 2020's week 53.
    "2024-12-31 23:59:59.999": {"1w": "2024-12-30", "1mo": "2024-12-01", "1y": "2024-01-01"},
    "2025-01-01 00:00:00": {"1w": "2024-12-30", "1mo": "2025-01-01", "1y": "2025-01-01"},
    "2025-01-05 23:59:59.999": {"1w": "2024-12-30"},
    "2025-01-06 00:00:00": {"1w": "2025-01-06"},
    "2021-01-03 12:00:00": {"1w": "2020-12-28", "1y": "2021-01-01"},
    "2100-02-28 23:00:00": {"1mo": "2100-02-01"},
    "2000-02-29 00:00:00": {"1mo": "2000-02-01", "1w": "2000-02-28"},
}
# bucket start → expected end (the next start): month and year lengths
ENDS = [
    ("1mo", "2023-02-01", "2023-03-01"),  # 28 days
    ("1mo", "2024-02-01", "2024-03-01"),  # 29 days
    ("1mo", "2100-02-01", "2100-03-01"),  # 28 days: 2100 is not a leap year
    ("1mo", "2024-04-01", "2024-05-01"),  # 30 days
    ("1mo", "2024-01-01", "2024-02-01"),  # 31 days
    ("1mo", "2024-12-01", "2025-01-01"),
    ("1y", "2024-01-01", "2025-01-01"),
    ("1w", "2024-12-30", "2025-01-06"),
    ("1d", "2024-02-28", "2024-02-29"),
]


def _cases() -> list[tuple[str, str, str]]:
    return [(instant, level, start) for instant, starts in CASES.items() for level, start in starts.items()]


@pytest.mark.parametrize(("instant", "level", "start"), _cases())
def test_python_bucket_start(instant: str, level: str, start: str) -> None:
    assert interval(level).start_ms(ms(instant)) == ms(start)


@pytest.mark.parametrize(("level", "start", "end"), ENDS)
def test_bucket_end_is_the_next_start(level: str, start: str, end: str) -> None:
    assert interval(level).end_ms(ms(start)) == ms(end)
    assert interval(level).end_ms(ms(end) - 1) == ms(end)
    assert interval(level).start_ms(ms(end)) == ms(end)


def test_nesting() -> None:
    nests = {
        (finer, coarser) for finer in INTERVALS for coarser in INTERVALS if interval(finer).nests_in(interval(coarser))
    }
    assert {("1m", "1h"), ("1h", "1d"), ("1d", "1w"), ("1d", "1mo"), ("1d", "1y"), ("1mo", "1y"), ("1m", "1w")} <= nests
    assert not {("1w", "1mo"), ("1w", "1y"), ("1y", "1mo"), ("1mo", "1w"), ("1h", "1m"), ("1d", "1h")} & nests
    with pytest.raises(ValueError, match="unknown interval '5m'"):
        interval("5m")


def test_spark_buckets_and_partitions_match(spark) -> None:
    instants = spark.createDataFrame([(ms(instant),) for instant in CASES], "ts long")
    levels = list(INTERVALS.values())
    frame = instants.select(
        "ts",
        *[level.bucket_start(F.col("ts")).alias(level.name) for level in levels],
        *[level.partition_value(level.bucket_start(F.col("ts"))).alias(f"p{level.name}") for level in levels],
    )
    for row in frame.collect():
        for level in levels:
            start = level.start_ms(row["ts"])
            assert row[level.name] == start, (level.name, row["ts"])
            assert row[f"p{level.name}"] == level.partition_value_of(start)
    # Spark's own session time zone plays no part.
    spark.conf.set("spark.sql.session.timeZone", "America/New_York")
    try:
        assert frame.where(F.col("1d") != F.col("ts") - F.pmod("ts", F.lit(86_400_000))).isEmpty()
        assert [row["p1d"] for row in frame.collect()][:1] == [dt.date(2024, 2, 29)]
    finally:
        spark.conf.unset("spark.sql.session.timeZone")


def test_rollups_put_points_in_calendar_buckets(spark) -> None:
    metric, tags = "sys.disk.used", {"host": "h1"}
    instants = [
        "2023-02-28 23:59:59.999",
        "2024-01-31 23:59:59.999",
        "2024-02-01 00:00:00",
        "2024-02-29 12:00:00",
        "2024-12-31 23:59:59.999",
        "2025-01-01 00:00:00",
    ]
    silver = spark.createDataFrame(
        [(series_key(metric, tags), float(i + 1), ms(instant)) for i, instant in enumerate(instants)],
        "series_key string, value double, ums_ts_ long",
    )
    daily = rollup_rollups(rollup_points(silver, "1h"), "1d", finer_level="1h").localCheckpoint()

    def buckets(level: str) -> dict[int, tuple]:
        frame = rollup_rollups(daily, level, finer_level="1d")
        rows = frame.select("*", avg_column().alias("avg")).collect()
        assert all((row["metric"], row["tags"]) == (metric, tags) for row in rows)
        return {
            row["bucket_start"]: (
                row["count"],
                float(row["sum"]),
                row["first"],
                row["last"],
                row["avg"],
                row["bucket_year"],
            )
            for row in rows
        }

    assert buckets("1mo") == {
        ms("2023-02-01"): (1, 1.0, 1.0, 1.0, 1.0, 2023),
        ms("2024-01-01"): (1, 2.0, 2.0, 2.0, 2.0, 2024),
        ms("2024-02-01"): (2, 7.0, 3.0, 4.0, 3.5, 2024),
        ms("2024-12-01"): (1, 5.0, 5.0, 5.0, 5.0, 2024),
        ms("2025-01-01"): (1, 6.0, 6.0, 6.0, 6.0, 2025),
    }
    assert buckets("1y") == {
        ms("2023-01-01"): (1, 1.0, 1.0, 1.0, 1.0, 2023),
        ms("2024-01-01"): (4, 14.0, 2.0, 5.0, 3.5, 2024),
        ms("2025-01-01"): (1, 6.0, 6.0, 6.0, 6.0, 2025),
    }
    weeks = buckets("1w")
    # The last day of 2024 and the first of 2025 share ISO week 2025-W01, filed under its start's year.
    assert weeks[ms("2024-12-30")] == (2, 11.0, 5.0, 6.0, 5.5, 2024)
    assert weeks[ms("2024-01-29")][0] == 2  # Wednesday 2024-01-31 and Thursday 2024-02-01
    assert sum(count for count, *_ in weeks.values()) == len(instants)


def test_levels_refuse_what_they_cannot_make_exactly(spark) -> None:
    frame = spark.createDataFrame([("m|", 1.0, 0)], "series_key string, value double, ums_ts_ long")
    with pytest.raises(ValueError, match="roll 1w up from 1d"):
        rollup_points(frame, "1w")
    with pytest.raises(ValueError, match="1w buckets do not nest in 1mo"):
        rollup_rollups(rollup_points(frame, "1d"), "1mo", finer_level="1w")
