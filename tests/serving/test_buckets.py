"""Downsample buckets, and which rollup level fits a downsample interval."""

from __future__ import annotations

import datetime as dt

import pytest

from rtdp_dagster.batch.intervals import ms_of_date
from rtdp_dagster.serving.buckets import coarsest_nesting_level, parse_interval

LEVELS = ["1m", "1h", "1d", "1w", "1mo", "1y"]
DAY = 86_400_000


@pytest.mark.parametrize(
    ("interval", "level"),
    [
        ("1m", "1m"),
        ("5m", "1m"),
        ("90s", None),
        ("1h", "1h"),
        ("12h", "1h"),
        ("1d", "1d"),
        ("7d", "1d"),
        ("1w", "1w"),
        ("2w", "1w"),
        ("1n", "1mo"),
        ("3n", "1mo"),
        ("1y", "1y"),
        ("1dc", "1d"),
        ("30s", None),
    ],
)
def test_the_coarsest_rollup_level_that_nests(interval: str, level: str | None):
    assert coarsest_nesting_level(parse_interval(interval), LEVELS) == level


def test_weeks_start_on_monday_and_months_are_calendar_months():
    week = parse_interval("1w")
    wednesday = ms_of_date(dt.date(2026, 11, 18)) + 5 * 3_600_000
    assert week.start_of(wednesday) == ms_of_date(dt.date(2026, 11, 16))
    months = parse_interval("1n")
    assert list(months.starts(ms_of_date(dt.date(2026, 1, 31)), ms_of_date(dt.date(2026, 3, 1)))) == [
        ms_of_date(dt.date(2026, 1, 1)),
        ms_of_date(dt.date(2026, 2, 1)),
        ms_of_date(dt.date(2026, 3, 1)),
    ]
    assert months.end_of(ms_of_date(dt.date(2026, 12, 5))) == ms_of_date(dt.date(2027, 1, 1))
    quarter = parse_interval("3n")
    assert quarter.start_of(ms_of_date(dt.date(2026, 5, 20))) == ms_of_date(dt.date(2026, 4, 1))
    year = parse_interval("1y")
    assert year.count_between(ms_of_date(dt.date(2024, 6, 1)), ms_of_date(dt.date(2026, 1, 1))) == 3


def test_fixed_buckets_cover_the_range():
    hour = parse_interval("1h")
    starts = hour.starts(10 * 3_600_000 + 5, 12 * 3_600_000)
    assert list(starts) == [10 * 3_600_000, 11 * 3_600_000, 12 * 3_600_000]
    assert hour.count_between(10 * 3_600_000 + 5, 12 * 3_600_000) == 3
