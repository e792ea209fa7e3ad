"""Delta upkeep per table: retention, compaction (OPTIMIZE, optionally ZORDER) and VACUUM.

What stays untouched, so upkeep never races a writer of the same files:
- partitions younger than ``maintenance.optimize_min_age_days`` (today's stream appends, late data,
  the daily job's re-runs): OPTIMIZE only rewrites older ones; coarse rollups (partitioned by year)
  only past years. Unpartitioned ``stream_progress`` is compacted whole: Delta lets blind appends
  commit alongside a compaction.
- the job skips itself while a run that writes silver, rollups or bronze is in progress (see jobs).

Retention deletes whole partitions older than the cutoff (``batch.retention_days`` for silver and
rollups, ``maintenance.bronze_retention_days`` for bronze): a metadata-only Delta DELETE for date
partitions; week, month and year rollups drop the buckets that start before the cutoff's bucket.
Compaction commits carry ``dataChange=false``, which the late-data sensor ignores.

VACUUM removes files unreferenced for ``maintenance.vacuum_retain_hours`` (at least Delta's 7 days,
so readers and time travel of the last week keep working).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

from pyspark.sql import SparkSession

from rtdp_dagster.batch.intervals import BUCKET_DATE, BUCKET_YEAR, interval, ms_of_date
from rtdp_dagster.config import BatchConfig, MaintenanceConfig
from rtdp_dagster.master_data.table import read_table
from rtdp_dagster.spark.session import delta_table_sql
from rtdp_dagster.streaming.tables import BRONZE, QUARANTINE, STREAM_PROGRESS


@dataclass(frozen=True)
class TablePlan:
    """How one table is kept: its partition column (None: unpartitioned), retention and ZORDER."""

    name: str
    partition_column: str | None
    retention_days: int | None = None
    zorder: tuple[str, ...] = ()
    # For tables partitioned by bucket_year: the rollup level, whose buckets retention drops whole.
    level: str | None = None


def table_plans(batch: BatchConfig, upkeep: MaintenanceConfig) -> list[TablePlan]:
    by_series = ("series_key",) if upkeep.zorder_rollups else ()
    return [
        TablePlan(BRONZE, "event_date", upkeep.bronze_retention_days),
        TablePlan(QUARANTINE, "received_date"),
        TablePlan(STREAM_PROGRESS, None),
        # Silver is already written in (series, time) order per day: compaction keeps that.
        TablePlan("silver", "event_date", batch.retention_days),
        *[TablePlan(f"rollup_{level}", BUCKET_DATE, batch.retention_days, by_series) for level in ("1m", "1h", "1d")],
        *[
            TablePlan(f"rollup_{level}", BUCKET_YEAR, batch.retention_days, level=level)
            for level in ("1w", "1mo", "1y")
        ],
    ]


def retention_predicate(plan: TablePlan, today: dt.date) -> str | None:
    """SQL selecting what retention deletes; None when the table keeps everything."""
    if plan.retention_days is None or plan.partition_column is None:
        return None
    cutoff = today - dt.timedelta(days=plan.retention_days)
    if plan.level is None:
        return f"`{plan.partition_column}` < DATE'{cutoff.isoformat()}'"
    first_kept = interval(plan.level).start_ms(ms_of_date(cutoff))
    return f"`{BUCKET_YEAR}` <= {cutoff.year} AND bucket_start < {first_kept}"


def optimize_predicate(plan: TablePlan, today: dt.date, min_age_days: int) -> str | None:
    """SQL selecting the partitions old enough to compact; None for the whole (unpartitioned) table."""
    newest = today - dt.timedelta(days=min_age_days)
    if plan.partition_column is None:
        return None
    if plan.level is None:
        return f"`{plan.partition_column}` <= DATE'{newest.isoformat()}'"
    return f"`{BUCKET_YEAR}` < {newest.year}"


def table_files(spark: SparkSession, path: str) -> tuple[int, int]:
    """Files and bytes of the table's current version."""
    row = spark.sql(f"DESCRIBE DETAIL {delta_table_sql(path)}").select("numFiles", "sizeInBytes").first()
    return (int(row["numFiles"] or 0), int(row["sizeInBytes"] or 0)) if row else (0, 0)


def delete_where(spark: SparkSession, path: str, predicate: str) -> int:
    """Delete the matching rows; returns how many."""
    row = spark.sql(f"DELETE FROM {delta_table_sql(path)} WHERE {predicate}").first()
    return int(row["num_affected_rows"] or 0) if row else 0


def optimize(spark: SparkSession, path: str, predicate: str | None, zorder: tuple[str, ...]) -> tuple[int, int]:
    """Compact (and ZORDER) the selected partitions; returns (files removed, files added)."""
    statement = f"OPTIMIZE {delta_table_sql(path)}"
    if predicate:
        statement += f" WHERE {predicate}"
    if zorder:
        statement += f" ZORDER BY ({', '.join(f'`{column}`' for column in zorder)})"
    row = spark.sql(statement).select("metrics.numFilesRemoved", "metrics.numFilesAdded").first()
    return (int(row["numFilesRemoved"] or 0), int(row["numFilesAdded"] or 0)) if row else (0, 0)


@contextlib.contextmanager
def _session_conf(spark: SparkSession, values: dict[str, str]) -> Iterator[None]:
    previous = {key: spark.conf.get(key, None) for key in values}
    for key, value in values.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def vacuum(spark: SparkSession, path: str, retain_hours: float, listing_tasks: int = 4) -> int:
    """Delete files unreferenced for retain_hours; returns how many were deleted.

    This Delta honours RETAIN only with ``retentionWindowIgnore`` off (otherwise the table property
    ``delta.deletedFileRetentionDuration`` rules, and setting that is a metadata commit that would
    fail the stream's concurrent append). The directory listing runs in listing_tasks tasks:
    Spark's default (up to 10,000) took a minute for a tiny table on two cores.
    """
    retain = f"RETAIN {retain_hours:g} HOURS"
    conf = {
        "spark.databricks.delta.vacuum.retentionWindowIgnore.enabled": "false",
        "spark.sql.sources.parallelPartitionDiscovery.parallelism": str(listing_tasks),
    }
    with _session_conf(spark, conf):
        deleted = spark.sql(f"VACUUM {delta_table_sql(path)} {retain} DRY RUN").count()
        if deleted:
            spark.sql(f"VACUUM {delta_table_sql(path)} {retain}").collect()
    return deleted


def maintain_table(
    spark: SparkSession,
    path: str,
    plan: TablePlan,
    today: dt.date,
    min_age_days: int,
    retain_hours: float,
    listing_tasks: int = 4,
) -> dict:
    """Retention, then compaction, then VACUUM of one table; the figures for the run's metadata."""
    if read_table(spark, path) is None:
        return {"table": plan.name, "absent": True}
    files_before, bytes_before = table_files(spark, path)
    doomed = retention_predicate(plan, today)
    rows_deleted = delete_where(spark, path, doomed) if doomed else 0
    removed, added = optimize(spark, path, optimize_predicate(plan, today, min_age_days), plan.zorder)
    vacuumed = vacuum(spark, path, retain_hours, listing_tasks)
    files_after, bytes_after = table_files(spark, path)
    return {
        "table": plan.name,
        "files_before": files_before,
        "files_after": files_after,
        "bytes_before": bytes_before,
        "bytes_after": bytes_after,
        "rows_deleted": rows_deleted,
        "files_compacted": removed,
        "files_written": added,
        "files_vacuumed": vacuumed,
    }
