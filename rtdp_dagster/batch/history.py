"""Publishing a rollup level's partitions to the history TSDB (replacing them exactly).

Each ``part`` is replaced whole: its series are deleted, then every row of the rollup table inside
it is written again. The daily level is kept in month parts (``part`` = the month's partition key,
e.g. ``2026-11-01``): a year of it is then 12 series per series and aggregate instead of 365, and
VictoriaMetrics' time for a long-range read grows with the series it selects (a year of 1d-avg
for 100 series: 664 ms of its CPU from day parts, 37 ms from month parts). Re-publishing a day therefore
rewrites its month from the table, which holds every day of that month (a month of the daily level
is at most 31 rows per series); the months' deletes also remove the day parts an earlier layout
left there. The finer levels (1m, 1h) stay in day parts: a month of them is 30 times the rows to
rewrite for one day, and the ranges read from them are short.

Two runs publishing the same part (two days of one month, or one partition twice) take turns: a
lock per part around its delete and write, and the write reads the table once it holds the lock, so
the last run to publish a part writes the table as every run before it left it. The lock is a file
lock on this machine (every run of the local profiles runs here).

Inside one publish, Spark may run a task again (its executor lost with the worker, kill -9 in the
backfill drill): the new attempt re-sends every point of its rows, also those the lost attempt had
put. The history TSDB reads each of them once because it deduplicates (one sample per series and
millisecond; ``rtdp_dagster.tsdb.history``), and a publish refuses to start against one that does not.
That covers every re-send of an equal point (a task's retry, an HTTP put retried after its answer was
lost) without a second pass: verifying each part's count after the job and re-publishing a part that
differs would cost a read of every part and a second Spark job, and could itself be cut short.
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
import fcntl
import hashlib
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from rtdp_dagster.batch.intervals import date_of_ms, ms_of_date
from rtdp_dagster.tsdb.history import AGGREGATES, delete_parts, require_deduplication, rollup_points
from rtdp_dagster.tsdb.put import http_put

# Levels whose day partitions are published in month parts.
MONTH_PARTS = ("1d",)
_LOCK_DIR = Path(tempfile.gettempdir()) / "rtdp-history-publish"


def history_parts(level: str, parts: Sequence[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """The parts (key, start ms, end ms) to rewrite for these partitions of a level, in time order: the
    partitions themselves, or for a month-part level the months containing them."""
    if level not in MONTH_PARTS:
        return sorted(set(parts), key=lambda part: part[1])
    months = set()
    for key, _, _ in parts:
        first = dt.date.fromisoformat(key).replace(day=1)
        following = (first + dt.timedelta(days=31)).replace(day=1)
        months.add((first.isoformat(), ms_of_date(first), ms_of_date(following)))
    return sorted(months, key=lambda part: part[1])


def day_level_part(level: str, bucket_start_ms: int) -> str:
    """The part a bucket of a day-partitioned level (1m, 1h, 1d) is published under: its day, or its month."""
    day = date_of_ms(bucket_start_ms)
    return (day.replace(day=1) if level in MONTH_PARTS else day).isoformat()


def part_pattern(level: str, key: str) -> str:
    """A regexp matching the ``part`` values of a part: a month part also matches the days of that
    month (the day parts an earlier layout wrote)."""
    if level in MONTH_PARTS:
        return key[:7] + r"-\d\d"
    return _regex_literal(key)


def publish_partitions(
    frame: DataFrame, level: str, parts: Sequence[tuple[str, int, int]], query_url: str, put_http_url: str
) -> int:
    """Replace these partitions (key, start ms, end ms) of a level in the history TSDB: delete the series
    of their parts, then write the frame's rows inside those parts, each under its part's ``part``;
    returns points written. ``frame`` is the level's table: for a month-part level it must hold every
    day of the months concerned.

    One Spark job for all of them (a backfill's whole range), the puts running next to the data
    (mapInPandas on the Spark workers), not through the driver.
    """
    if not parts:
        return 0
    require_deduplication(query_url)  # else a retried task doubles what it re-sends
    published = history_parts(level, parts)
    keys = [part[0] for part in published]
    inside = F.lit(False)
    for _, start_ms, end_ms in published:
        inside = inside | ((F.col("bucket_start") >= start_ms) & (F.col("bucket_start") < end_ms))
    columns = ["metric", "tags", "bucket_start", *[F.col(n).cast("double").alias(n) for n in AGGREGATES]]
    with contextlib.ExitStack() as locks:
        for key in keys:  # in time order: two runs never wait for each other's parts in a cycle
            locks.enter_context(_part_lock(query_url, level, key))
        for key in keys:
            delete_parts(query_url, level, part_pattern(level, key))
        # The table as it is now, under the locks: a day another run wrote before is in it.
        rows = frame.where(inside).select(*columns)
        put = part_writer(level, published, put_http_url)
        total = rows.mapInPandas(put, "written long").agg(F.sum("written")).first()  # type: ignore[arg-type]
    return int(total[0] or 0) if total else 0


def part_writer(
    level: str, published: Sequence[tuple[str, int, int]], put_http_url: str
) -> Callable[[Iterable[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """What one Spark task of a publish runs (mapInPandas): put its rows' points, each under the part
    (of ``published``, in time order) its bucket falls in, and yield how many it put."""
    starts, keys = [part[1] for part in published], [part[0] for part in published]

    def put(frames: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        written = 0
        for chunk in frames:
            points = []
            for row in chunk.to_dict("records"):
                bucket_start = int(row["bucket_start"])
                part = keys[bisect.bisect_right(starts, bucket_start) - 1]
                values = {name: row[name] for name in AGGREGATES}
                points += rollup_points(row["metric"], dict(row["tags"]), bucket_start, level, part, values)
            if points:
                written += http_put(put_http_url, points)
        yield pd.DataFrame({"written": [written]})

    return put


@contextlib.contextmanager
def _part_lock(query_url: str, level: str, key: str) -> Iterator[None]:
    _LOCK_DIR.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256(f"{query_url.rstrip('/')}\n{level}\n{key}".encode()).hexdigest()[:24]
    with open(_LOCK_DIR / f"{name}.lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _regex_literal(text: str) -> str:
    return "".join("\\" + char if char in r".^$*+?()[]{}|\\" else char for char in text)
