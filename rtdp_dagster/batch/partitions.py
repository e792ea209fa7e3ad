"""Partitions of the batch layer (UTC): days for silver and the 1m/1h/1d rollups, ISO weeks,
calendar months and years for the coarse rollups, all from ``batch.start_date``."""

import datetime as dt
from dataclasses import dataclass

import dagster as dg


@dataclass(frozen=True)
class BatchPartitions:
    daily: dg.DailyPartitionsDefinition
    weekly: dg.WeeklyPartitionsDefinition
    monthly: dg.MonthlyPartitionsDefinition
    yearly: dg.TimeWindowPartitionsDefinition


def batch_partitions(start_date: str) -> BatchPartitions:
    """The partitions from ``start_date`` (YYYY-MM-DD)."""
    # Days are processed once closed; a week, month or year also while it is in progress (end_offset=1),
    # so this year's rollup exists before the year ends and grows as its days arrive.
    return BatchPartitions(
        daily=dg.DailyPartitionsDefinition(start_date=start_date, timezone="UTC"),
        # ISO weeks start on Monday (day_offset=1).
        weekly=dg.WeeklyPartitionsDefinition(start_date=start_date, timezone="UTC", day_offset=1, end_offset=1),
        monthly=dg.MonthlyPartitionsDefinition(start_date=start_date[:8] + "01", timezone="UTC", end_offset=1),
        yearly=dg.TimeWindowPartitionsDefinition(
            cron_schedule="0 0 1 1 *", start=start_date[:4], fmt="%Y", timezone="UTC", end_offset=1
        ),
    )


def days_of(window: dg.TimeWindow) -> list[dt.date]:
    """The UTC days inside a partition time window (one for a day, seven for a week, ...)."""
    first, end = window.start.date(), window.end.date()
    return [first + dt.timedelta(days=offset) for offset in range((end - first).days)]


def ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)
