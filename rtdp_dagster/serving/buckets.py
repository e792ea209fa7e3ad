"""Downsample buckets: how an interval such as ``1h``, ``1w``, ``3n`` or ``0all`` cuts time (UTC).

A bucket is the half-open range [start, end) and is reported at its start. Fixed intervals are
aligned to the epoch, except weeks, which start on Monday (ISO weeks, like the 1w rollup); months
(``n``) and years (``y``) are calendar months and years, like the 1mo and 1y rollups.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal

import numpy as np

from rtdp_dagster.batch.intervals import DAY_MS, INTERVALS, MONDAY_OFFSET_MS, Interval, date_of_ms, ms_of_date
from rtdp_dagster.serving.errors import bad_request
from rtdp_dagster.serving.timeparse import UNIT_MS

_INTERVAL = re.compile(r"^(\d{1,9})(ms|s|m|h|d|w|n|y)c?$")
# Rollup levels from finest to coarsest.
LEVEL_ORDER = ("1m", "1h", "1d", "1w", "1mo", "1y")


@dataclass(frozen=True)
class Bucketing:
    text: str
    kind: Literal["fixed", "calendar", "all"]
    width_ms: int = 0
    offset_ms: int = 0
    months: int = 0

    def start_of(self, ts_ms: int) -> int:
        if self.kind == "fixed":
            return ts_ms - (ts_ms - self.offset_ms) % self.width_ms
        if self.kind == "calendar":
            return _month_start(_month_index(ts_ms) - _month_index(ts_ms) % self.months)
        raise ValueError("0all has a single bucket: the query's range")

    def end_of(self, ts_ms: int) -> int:
        """Exclusive end of the bucket containing ts_ms."""
        if self.kind == "fixed":
            return self.start_of(ts_ms) + self.width_ms
        if self.kind == "calendar":
            index = _month_index(ts_ms)
            return _month_start(index - index % self.months + self.months)
        raise ValueError("0all has a single bucket: the query's range")

    def starts(self, first_ms: int, last_ms: int) -> np.ndarray:
        """Starts of every bucket overlapping [first_ms, last_ms]."""
        if self.kind == "fixed":
            return np.arange(self.start_of(first_ms), last_ms + 1, self.width_ms, dtype=np.int64)
        begin = _month_index(first_ms) - _month_index(first_ms) % self.months
        stop = _month_index(last_ms)
        return np.array([_month_start(index) for index in range(begin, stop + 1, self.months)], dtype=np.int64)

    def count_between(self, first_ms: int, last_ms: int) -> int:
        if self.kind == "fixed":
            return (last_ms - self.start_of(first_ms)) // self.width_ms + 1
        if self.kind == "calendar":
            first = _month_index(first_ms) - _month_index(first_ms) % self.months
            return (_month_index(last_ms) - first) // self.months + 1
        return 1

    def approx_width_ms(self) -> int:
        return self.width_ms if self.kind == "fixed" else self.months * 30 * DAY_MS


def parse_interval(text: str) -> Bucketing:
    """The bucketing of a downsample interval (``1m``, ``12h``, ``1w``, ``3n``, ``1y``, ``0all``, ``1dc``)."""
    if text == "0all":
        return Bucketing(text, "all")
    match = _INTERVAL.match(text)
    if not match or int(match.group(1)) == 0:
        raise bad_request(
            f"invalid downsample interval {text!r}: expected <number><unit> with unit ms, s, m, h, d, w, n "
            "(calendar months) or y (calendar years), optionally followed by c, or 0all"
        )
    amount, unit = int(match.group(1)), match.group(2)
    if unit == "n":
        return Bucketing(text, "calendar", months=amount)
    if unit == "y":
        return Bucketing(text, "calendar", months=12 * amount)
    offset = MONDAY_OFFSET_MS if unit == "w" else 0
    return Bucketing(text, "fixed", width_ms=amount * UNIT_MS[unit], offset_ms=offset)


def level_nests(level: Interval, bucketing: Bucketing) -> bool:
    """Whether every bucket of the rollup level lies inside one downsample bucket."""
    if bucketing.kind == "all":
        return False
    if level.kind == "fixed":
        if bucketing.kind == "fixed":
            aligned = (bucketing.offset_ms - level.offset_ms) % level.width_ms == 0
            return bucketing.width_ms % level.width_ms == 0 and aligned
        # Calendar boundaries are midnights: the level's buckets must tile whole days.
        return DAY_MS % level.width_ms == 0 and level.offset_ms % level.width_ms == 0
    if bucketing.kind != "calendar":
        return False
    return level.kind == "month" or bucketing.months % 12 == 0


def coarsest_nesting_level(bucketing: Bucketing, levels: list[str]) -> str | None:
    """The coarsest configured rollup level whose buckets nest in the downsample buckets, if any."""
    usable = [name for name in LEVEL_ORDER if name in levels and level_nests(INTERVALS[name], bucketing)]
    return usable[-1] if usable else None


def _month_index(ts_ms: int) -> int:
    day = date_of_ms(ts_ms)
    return (day.year - 1970) * 12 + day.month - 1


def _month_start(index: int) -> int:
    return ms_of_date(dt.date(1970 + index // 12, index % 12 + 1, 1))
