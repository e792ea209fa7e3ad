"""Routing: which TSDB serves which part of a query's span, and where the split falls."""

from __future__ import annotations

import datetime as dt

from rtdp_dagster.batch.intervals import DAY_MS, ms_of_date
from rtdp_dagster.serving.buckets import parse_interval
from rtdp_dagster.serving.plan import plan_span

LEVELS = ["1m", "1h", "1d", "1w", "1mo", "1y"]
HOUR = 3_600_000
NOW = ms_of_date(dt.date(2026, 11, 21)) + 15 * HOUR
REALTIME_START = NOW - 14 * DAY_MS
TODAY = ms_of_date(dt.date(2026, 11, 21))


def plan(start: int, end: int, interval: str, ends: dict[str, int | None]):
    bucketing = parse_interval(interval)
    return plan_span(start, end, bucketing, LEVELS, REALTIME_START, HOUR, lambda level: ends.get(level)).segments


def test_fine_and_recent_is_realtime_only():
    (only,) = plan(NOW - 6 * HOUR, NOW, "1m", {"1m": TODAY})
    assert (only.source, only.start_ms, only.end_ms) == ("realtime", NOW - 6 * HOUR, NOW)


def test_coarse_reads_history_up_to_where_it_ends_then_realtime():
    start = TODAY - 20 * DAY_MS
    history, realtime = plan(start, TODAY + DAY_MS, "1h", {"1h": TODAY - 2 * DAY_MS})
    assert (history.source, history.level, history.start_ms, history.end_ms) == (
        "history",
        "1h",
        start,
        TODAY - 2 * DAY_MS,
    )
    assert (realtime.source, realtime.start_ms, realtime.end_ms) == ("realtime", TODAY - 2 * DAY_MS, TODAY + DAY_MS)


def test_a_week_bucket_is_completed_from_the_daily_level_then_realtime():
    monday = ms_of_date(dt.date(2026, 11, 16))
    start = monday - 10 * 7 * DAY_MS
    weeks, days, realtime = plan(start, monday + 7 * DAY_MS, "1w", {"1w": monday, "1d": TODAY})
    assert (weeks.level, weeks.end_ms, days.level, days.start_ms, days.end_ms) == ("1w", monday, "1d", monday, TODAY)
    assert (realtime.start_ms, realtime.end_ms) == (TODAY, monday + 7 * DAY_MS)


def test_without_history_the_expired_part_is_left_out_at_a_bucket_boundary():
    (realtime,) = plan(TODAY - 30 * DAY_MS, TODAY + DAY_MS, "1d", {})
    assert realtime.source == "realtime" and realtime.start_ms == TODAY - 13 * DAY_MS


def test_history_ending_before_the_realtime_retention_leaves_a_gap_not_an_overlap():
    history, realtime = plan(TODAY - 40 * DAY_MS, TODAY + DAY_MS, "1d", {"1d": TODAY - 20 * DAY_MS})
    assert history.end_ms == TODAY - 20 * DAY_MS and realtime.start_ms == TODAY - 13 * DAY_MS
