"""Rollup intervals and their buckets: the one place for bucket math (UTC, calendar-correct).

Every time is epoch milliseconds, UTC, and a bucket is the half-open range [start, end).
Fixed intervals (1m, 1h, 1d) and ISO weeks (starting Monday) are integer arithmetic on the
milliseconds; calendar months and years go through DATEs made from whole days since the epoch,
so neither Spark's session time zone nor the machine's affects a bucket. Each interval has a Spark
form (columns, for the rollups) and a Python form (plain ints, for planning which buckets a day
touches); both follow the same rule and are tested against each other.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from pyspark.sql import Column
from pyspark.sql import functions as F

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
WEEK_MS = 7 * DAY_MS
# The epoch was a Thursday; ISO weeks are aligned to the first Monday after it, 1970-01-05.
MONDAY_OFFSET_MS = 4 * DAY_MS

BUCKET_DATE = "bucket_date"
BUCKET_YEAR = "bucket_year"

_EPOCH = dt.date(1970, 1, 1)
Kind = Literal["fixed", "month", "year"]


@dataclass(frozen=True)
class Interval:
    """A rollup level. Fixed kinds are [offset + k*width, offset + (k+1)*width) for integer k."""

    name: str
    kind: Kind
    # Partition column of the level's table: DATE bucket_date for day-or-finer levels, INT
    # bucket_year (calendar year of the bucket's start) for weeks, months and years.
    partition_column: str
    width_ms: int = 0
    offset_ms: int = 0

    # --- Spark ---------------------------------------------------------------------------------

    def bucket_start(self, ts: Column) -> Column:
        """Start (epoch ms, long) of the bucket containing ts (epoch ms)."""
        if self.kind == "fixed":
            # pmod floors for times before the offset too (plain % would truncate toward zero).
            return ts - F.pmod(ts - F.lit(self.offset_ms), F.lit(self.width_ms).cast("long"))
        first = F.trunc(_date_of(ts), "month" if self.kind == "month" else "year")
        return F.unix_date(first).cast("long") * F.lit(DAY_MS)

    def partition_value(self, bucket_start: Column) -> Column:
        """The partition column's value for a bucket start (epoch ms)."""
        if self.partition_column == BUCKET_DATE:
            return _date_of(bucket_start)
        return F.year(_date_of(bucket_start))

    # --- Python --------------------------------------------------------------------------------

    def start_ms(self, ts_ms: int) -> int:
        """Start of the bucket containing ts_ms; the same rule as ``bucket_start``."""
        if self.kind == "fixed":
            return ts_ms - (ts_ms - self.offset_ms) % self.width_ms  # Python's % floors, like pmod
        day = date_of_ms(ts_ms)
        first = day.replace(day=1) if self.kind == "month" else day.replace(month=1, day=1)
        return ms_of_date(first)

    def end_ms(self, ts_ms: int) -> int:
        """Exclusive end of the bucket containing ts_ms (the next bucket's start)."""
        start = self.start_ms(ts_ms)
        if self.kind == "fixed":
            return start + self.width_ms
        first = date_of_ms(start)
        if self.kind == "year":
            return ms_of_date(first.replace(year=first.year + 1))
        return ms_of_date(first.replace(year=first.year + first.month // 12, month=first.month % 12 + 1))

    def partition_value_of(self, start_ms: int) -> dt.date | int:
        """The partition value of the bucket starting at start_ms (a date, or a year)."""
        day = date_of_ms(start_ms)
        return day if self.partition_column == BUCKET_DATE else day.year

    def nests_in(self, coarser: Interval) -> bool:
        """Whether every bucket of this interval lies inside one bucket of ``coarser``.

        True exactly when each boundary of ``coarser`` is also a boundary of this interval, which
        is what makes a rollup of this level into ``coarser`` equal to one over the raw points.
        """
        if self.kind == "fixed":
            if coarser.kind == "fixed":
                aligned = (coarser.offset_ms - self.offset_ms) % self.width_ms == 0
                return coarser.width_ms % self.width_ms == 0 and aligned
            # Month and year boundaries are midnights: the buckets must tile whole days.
            return DAY_MS % self.width_ms == 0 and self.offset_ms % self.width_ms == 0
        if self.kind == "month":
            return coarser.kind in ("month", "year")
        return coarser.kind == "year"


def _date_of(ts: Column) -> Column:
    # Whole days since the epoch, floored, then a DATE: no time zone is involved.
    days = ((ts - F.pmod(ts, F.lit(DAY_MS).cast("long"))) / F.lit(DAY_MS)).cast("int")
    return F.date_from_unix_date(days)


def date_of_ms(ts_ms: int) -> dt.date:
    """The UTC date of an epoch-ms time."""
    return _EPOCH + dt.timedelta(days=ts_ms // DAY_MS)


def ms_of_date(day: dt.date) -> int:
    """Epoch ms of a UTC date's midnight."""
    return (day - _EPOCH).days * DAY_MS


MINUTE = Interval("1m", "fixed", BUCKET_DATE, MINUTE_MS)
HOUR = Interval("1h", "fixed", BUCKET_DATE, HOUR_MS)
DAY = Interval("1d", "fixed", BUCKET_DATE, DAY_MS)
WEEK = Interval("1w", "fixed", BUCKET_YEAR, WEEK_MS, MONDAY_OFFSET_MS)
MONTH = Interval("1mo", "month", BUCKET_YEAR)
YEAR = Interval("1y", "year", BUCKET_YEAR)

INTERVALS: dict[str, Interval] = {item.name: item for item in (MINUTE, HOUR, DAY, WEEK, MONTH, YEAR)}
# Levels computed from silver points, and each coarser level's source level (the lineage).
POINT_LEVELS = ("1m", "1h", "1d")
ROLLED_FROM = {"1h": "1m", "1d": "1h", "1w": "1d", "1mo": "1d", "1y": "1d"}


def interval(name: str) -> Interval:
    """The interval called name (``1m``, ``1h``, ``1d``, ``1w``, ``1mo``, ``1y``)."""
    try:
        return INTERVALS[name]
    except KeyError:
        raise ValueError(f"unknown interval {name!r}; expected one of {', '.join(INTERVALS)}") from None
