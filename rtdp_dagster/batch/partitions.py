"""Partitions of the batch layer (UTC): days for silver and the 1m/1h/1d rollups, ISO weeks,
calendar months and years for the coarse rollups."""

import datetime as dt

import dagster as dg

from rtdp_dagster.config import load_settings

_START = load_settings().batch.start_date

# Days are processed once closed; a week, month or year also while it is in progress (end_offset=1),
# so this year's rollup exists before the year ends and grows as its days arrive.
daily = dg.DailyPartitionsDefinition(start_date=_START, timezone="UTC")
# ISO weeks start on Monday (day_offset=1).
weekly = dg.WeeklyPartitionsDefinition(start_date=_START, timezone="UTC", day_offset=1, end_offset=1)
monthly = dg.MonthlyPartitionsDefinition(start_date=_START[:8] + "01", timezone="UTC", end_offset=1)
yearly = dg.TimeWindowPartitionsDefinition(
    cron_schedule="0 0 1 1 *", start=_START[:4], fmt="%Y", timezone="UTC", end_offset=1
)


def days_of(window: dg.TimeWindow) -> list[dt.date]:
    """The UTC days inside a partition time window (one for a day, seven for a week, ...)."""
    first, end = window.start.date(), window.end.date()
    return [first + dt.timedelta(days=offset) for offset in range((end - first).days)]


def ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)
