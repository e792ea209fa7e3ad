"""Days for tests, counted back from today (UTC): inside every retention and after the batch
layer's start date whatever the calendar says, so no test is overtaken by time."""

from __future__ import annotations

import datetime as dt


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def recent_monday(weeks_back: int = 2, *, week_in_one_month: bool = False) -> dt.date:
    """The Monday of the ISO week ``weeks_back`` weeks before this one; with ``week_in_one_month``,
    the latest such Monday (at least that far back) whose Monday-to-Sunday lies in one month."""
    this_monday = today() - dt.timedelta(days=today().weekday())
    monday = this_monday - dt.timedelta(weeks=weeks_back)
    while week_in_one_month and (monday + dt.timedelta(days=6)).month != monday.month:
        monday -= dt.timedelta(weeks=1)
    return monday


def partition_keys(day: dt.date) -> dict[str, str]:
    """The partition key of every level for the partitions containing ``day``."""
    monday = day - dt.timedelta(days=day.weekday())
    return {"1d": day.isoformat(), "1w": monday.isoformat(), "1mo": day.replace(day=1).isoformat(), "1y": str(day.year)}
