"""Pure rules of the upkeep jobs: what retention deletes, what compaction may touch, repair ranges."""

import datetime as dt

from rtdp_dagster.maintenance.delta_upkeep import TablePlan, optimize_predicate, retention_predicate
from rtdp_dagster.maintenance.tsdb_repair import days_of_ranges, merge_ranges
from tests.batch.bronze_rows import ms

TODAY = dt.date(2026, 11, 21)


def test_retention_drops_whole_days_and_whole_coarse_buckets() -> None:
    assert retention_predicate(TablePlan("silver", "event_date", 30), TODAY) == "`event_date` < DATE'2026-10-22'"
    # The cutoff (2026-10-22) lies in October: months before October go, October stays whole.
    monthly = TablePlan("rollup_1mo", "bucket_year", 30, level="1mo")
    october = ms("2026-10-01T00:00:00")
    assert retention_predicate(monthly, TODAY) == f"`bucket_year` <= 2026 AND bucket_start < {october}"
    # 2026-10-22 is a Thursday: its ISO week starts on Monday 10-19.
    weekly = TablePlan("rollup_1w", "bucket_year", 30, level="1w")
    monday = ms("2026-10-19T00:00:00")
    assert retention_predicate(weekly, TODAY) == f"`bucket_year` <= 2026 AND bucket_start < {monday}"
    assert retention_predicate(TablePlan("quarantine", "received_date"), TODAY) is None


def test_compaction_leaves_the_young_partitions_and_this_year_alone() -> None:
    assert optimize_predicate(TablePlan("bronze", "event_date"), TODAY, 2) == "`event_date` <= DATE'2026-11-19'"
    yearly = TablePlan("rollup_1y", "bucket_year", 30, level="1y")
    assert optimize_predicate(yearly, TODAY, 2) == "`bucket_year` < 2026"
    assert optimize_predicate(yearly, dt.date(2027, 1, 1), 2) == "`bucket_year` < 2026", "late days of 2026"
    assert optimize_predicate(TablePlan("stream_progress", None), TODAY, 2) is None


def test_failure_ranges_merge_and_name_their_days() -> None:
    assert merge_ranges([(50, 60), (1, 10), (11, 20), (5, 8), (70, 80)]) == [(1, 20), (50, 60), (70, 80)]
    late = (ms("2026-10-04T23:59:00"), ms("2026-10-06T00:00:00"))
    assert days_of_ranges([late, (ms("2026-10-09T01:00:00"), ms("2026-10-09T02:00:00"))]) == [
        dt.date(2026, 10, 4),
        dt.date(2026, 10, 5),
        dt.date(2026, 10, 6),
        dt.date(2026, 10, 9),
    ]
