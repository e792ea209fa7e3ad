"""Re-putting the points the stream could not write to the realtime TSDB, from bronze.

The stream appends each micro-batch whose puts failed to ``tsdb_repair`` (the event-time range of
the range of the points not written and how many). The failure is recorded while the same
micro-batch's bronze write may still be running, so
a failure is repaired only once bronze has caught up past it: a bronze micro-batch that started
after the failure was recorded ended with no Kafka lag (``stream_progress``), so every record the
failed batch read is in bronze. Until then it waits. For every failure due, this reads bronze in
those ranges, keeps the latest version of each point with retractions removed (silver's rule),
enriches it with the current master data and tags it exactly as the stream does, and puts what the
TSDB does not hold yet. One export per metric and range decides that: VictoriaMetrics keeps every
sample written for a timestamp, so the part of a failed batch that did get through, and other
batches' points in the same time range, must not be written a second time.

A failure is marked repaired (a row in ``tsdb_repair_done``) only when no put of the run failed,
so a TSDB that is still down leaves it pending for the next scheduled run; within a run nothing is
retried beyond ``http_put``'s few attempts. A point the TSDB refuses (HTTP 4xx) is counted as
rejected and not retried: it would be refused again.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import pandas as pd
import requests
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from rtdp_dagster.batch.intervals import date_of_ms
from rtdp_dagster.batch.silver import silver_for_days
from rtdp_dagster.master_data.lookup import hosts_as_of, with_master_data
from rtdp_dagster.master_data.table import read_table
from rtdp_dagster.master_data.tags import enriched_tag_dict
from rtdp_dagster.tsdb.put import TsdbPoint, TsdbWriteError, http_put, validate_point
from rtdp_dagster.tsdb.query import holds_value, stored_values

TSDB_REPAIR_DONE = "tsdb_repair_done"
# The stream's columns that identify one failure record.
FAILURE_KEY = ["batch_id", "min_ts", "max_ts", "recorded_at"]
_DONE_SCHEMA = "batch_id long, min_ts long, max_ts long, recorded_at long, repaired_at long, run_written long"
_COUNTS = ("checked", "present", "written", "failed", "rejected")
_COUNTS_SCHEMA = ", ".join(f"{name} long" for name in _COUNTS)


@dataclass
class RepairResult:
    pending: int = 0  # failures handled in this run
    waiting: int = 0  # failures bronze has not caught up past yet: left for a later run
    ranges: list[tuple[int, int]] = field(default_factory=list)
    checked: int = 0  # latest points in the ranges (bronze)
    present: int = 0  # already in the TSDB with that value
    written: int = 0
    failed: int = 0  # puts that failed: the failures stay pending
    rejected: int = 0  # refused by the TSDB: reported, not retried
    repaired: int = 0  # failures marked repaired

    def metadata(self) -> dict:
        return {
            "failures_pending": self.pending,
            "failures_waiting_for_bronze": self.waiting,
            "failures_repaired": self.repaired,
            "ranges": [list(r) for r in self.ranges],
            "points_checked": self.checked,
            "points_already_present": self.present,
            "points_written": self.written,
            "points_failed": self.failed,
            "points_rejected": self.rejected,
        }


def merge_ranges(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Inclusive [low, high] ranges merged where they overlap or touch, sorted."""
    merged: list[tuple[int, int]] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return merged


def days_of_ranges(ranges: Iterable[tuple[int, int]]) -> list[dt.date]:
    """The UTC days the ranges (epoch ms, inclusive) touch."""
    days: set[dt.date] = set()
    for low, high in ranges:
        day, last = date_of_ms(low), date_of_ms(high)
        while day <= last:
            days.add(day)
            day += dt.timedelta(days=1)
    return sorted(days)


def pending_failures(spark: SparkSession, repair_path: str, done_path: str) -> list[dict]:
    """Failure records of the stream without a repaired mark (FAILURE_KEY columns and ``failed``)."""
    failures = read_table(spark, repair_path)
    if failures is None:
        return []
    done = read_table(spark, done_path)
    if done is not None:
        failures = failures.join(done.select(*FAILURE_KEY), FAILURE_KEY, "left_anti")
    return [row.asDict() for row in failures.select(*FAILURE_KEY, "failed").collect()]


def bronze_caught_up_at(spark: SparkSession, progress_path: str) -> int:
    """Start time (epoch ms) of the latest bronze micro-batch that ended with no Kafka lag; 0 if none."""
    progress = read_table(spark, progress_path)
    if progress is None:
        return 0
    row = progress.where((F.col("query") == "bronze") & (F.col("kafka_lag") == 0)).agg(F.max("timestamp_ms")).first()
    return int(row[0]) if row is not None and row[0] is not None else 0


def latest_points(bronze: DataFrame, ranges: list[tuple[int, int]]) -> DataFrame:
    """Per point in the ranges its latest version, retractions removed (silver's columns)."""
    in_ranges: Column = functools.reduce(operator.or_, [F.col("ums_ts_").between(low, high) for low, high in ranges])
    return silver_for_days(bronze.where(in_ranges), days_of_ranges(ranges))


def missing_point_writer(
    query_url: str, put_http_url: str, timeout_s: float, chunk: int
) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """An applyInPandas function for the points of one metric: put those the TSDB lacks; yields counts."""

    def write(frame: pd.DataFrame) -> pd.DataFrame:
        counts = dict.fromkeys(_COUNTS, 0)
        metric = str(frame["metric"].iloc[0])
        points: list[TsdbPoint] = []
        for tags, value, ts, site, app, known in zip(
            frame["tags"],
            frame["value"],
            frame["ums_ts_"],
            frame["site"],
            frame["app"],
            frame["host_known"],
            strict=True,
        ):
            point = TsdbPoint(
                metric, int(ts), float(value), enriched_tag_dict(dict(tags), {"site": site, "app": app}, bool(known))
            )
            try:
                validate_point(point)
            except ValueError:
                counts["rejected"] += 1
                continue
            points.append(point)
        counts["checked"] = len(frame)
        if points:
            low, high = min(p.timestamp_ms for p in points), max(p.timestamp_ms for p in points)
            try:
                stored = stored_values(query_url, metric, low, high, timeout_s)
            except requests.RequestException:
                counts["failed"] = len(points)
                return pd.DataFrame([counts])
            missing = [
                point
                for point in points
                if not holds_value(stored.get((tuple(sorted(point.tags.items())), point.timestamp_ms)), point.value)
            ]
            counts["present"] = len(points) - len(missing)
            for start in range(0, len(missing), chunk):
                part = missing[start : start + chunk]
                try:
                    counts["written"] += http_put(put_http_url, part, timeout_s=timeout_s, attempts=3)
                except TsdbWriteError:
                    counts["failed"] += len(part)
                except ValueError:  # HTTP 4xx: the same points would be refused again
                    counts["rejected"] += len(part)
        return pd.DataFrame([counts])

    return write


def put_missing(
    points: DataFrame, hosts: DataFrame | None, query_url: str, put_http_url: str, timeout_s: float, chunk: int
) -> dict[str, int]:
    """Enrich the points as the stream does and put the missing ones, one task per metric group."""
    enriched = with_master_data(points, hosts).select("metric", "tags", "value", "ums_ts_", "site", "app", "host_known")
    writer = missing_point_writer(query_url, put_http_url, timeout_s, chunk)
    totals = (
        enriched.groupBy("metric")
        .applyInPandas(writer, _COUNTS_SCHEMA)
        .agg(*[F.sum(name).alias(name) for name in _COUNTS])
        .first()
    )
    return {name: int(totals[name] or 0) if totals else 0 for name in _COUNTS}


def repair_realtime(
    spark: SparkSession,
    *,
    bronze_path: str,
    repair_path: str,
    done_path: str,
    progress_path: str,
    master_path: str,
    query_url: str,
    put_http_url: str,
    timeout_s: float = 10.0,
    chunk: int = 5000,
) -> RepairResult:
    """Repair every pending failure; see the module docstring."""
    failures = pending_failures(spark, repair_path, done_path)
    caught_up_at = bronze_caught_up_at(spark, progress_path) if failures else 0
    due = [failure for failure in failures if int(failure["recorded_at"]) <= caught_up_at]
    result = RepairResult(pending=len(due), waiting=len(failures) - len(due))
    failures = due
    if not failures:
        return result
    result.ranges = merge_ranges((int(f["min_ts"]), int(f["max_ts"])) for f in failures)
    bronze = read_table(spark, bronze_path)
    if bronze is not None:
        hosts = hosts_as_of(spark, master_path) if read_table(spark, master_path) is not None else None
        counts = put_missing(latest_points(bronze, result.ranges), hosts, query_url, put_http_url, timeout_s, chunk)
        for name, value in counts.items():
            setattr(result, name, value)
    if result.failed == 0:
        repaired_at = int(time.time() * 1000)
        rows = [(*(int(f[key]) for key in FAILURE_KEY), repaired_at, result.written) for f in failures]
        spark.createDataFrame(rows, _DONE_SCHEMA).write.format("delta").mode("append").save(done_path)
        result.repaired = len(rows)
    return result
