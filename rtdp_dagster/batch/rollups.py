"""Rollups: per series and bucket the aggregate state that coarser levels can combine exactly.

Each row keeps ``count``, ``sum`` (DECIMAL(38,12): every value is cast with the same HALF_UP
rounding to 12 decimals, so sums are exact and independent of the order Spark adds them in),
``min``, ``max``, ``first_ts``/``first`` (value at the smallest time) and ``last_ts``/``last`` (value
at the largest). A coarser level combines those — counts and sums add, min of mins, first of the
earliest first — so 1h from 1m, 1d from 1h and 1w/1mo/1y from 1d equal the same aggregation over
raw silver. The average is derived (``avg_column``), not stored.

A series has one point per timestamp in silver, so first and last are never ties. Rows are grouped
by (series_key, bucket_start) only, and ``metric`` and ``tags`` are read back from the series key
of each aggregated row: envelope validation limits metric names and tag keys and values to
``[A-Za-z0-9._/-]``, so ``metric|k=v,k2=v2`` is unambiguous. Carrying them through the aggregate
instead would cost a map normalisation per point (grouping by a map) or a sort-based aggregate
(``first`` of a string or map).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from rtdp_dagster.batch.intervals import POINT_LEVELS, Interval, interval
from rtdp_dagster.batch.writes import replace_partitions

SUM_TYPE = T.DecimalType(38, 12)
MEASURES = ["count", "sum", "min", "max", "first_ts", "first", "last_ts", "last"]
_KEYS = ["series_key", "metric", "tags", "bucket_start"]
# Per-file min/max Delta keeps: what reads by series and time range skip files by.
ROLLUP_STATS_COLUMNS = ("series_key", "bucket_start")


def rollup_columns(level: str) -> list[str]:
    """Columns of a level's table, its partition column last."""
    return [*_KEYS, *MEASURES, interval(level).partition_column]


def metric_and_tags(series_key: Column) -> tuple[Column, Column]:
    """Metric and tags of a series key (the inverse of ``series_key`` for valid names)."""
    tag_text = F.substring_index(series_key, "|", -1)
    no_tags = F.create_map().cast("map<string,string>")
    tags = F.when(tag_text == "", no_tags).otherwise(F.str_to_map(tag_text, F.lit(","), F.lit("=")))
    return F.substring_index(series_key, "|", 1), tags


def _finish(aggregated: DataFrame, level: Interval) -> DataFrame:
    metric, tags = metric_and_tags(F.col("series_key"))
    return aggregated.select(
        "series_key",
        metric.alias("metric"),
        tags.alias("tags"),
        "bucket_start",
        F.col("count").cast("long").alias("count"),
        F.col("sum").cast(SUM_TYPE).alias("sum"),
        *MEASURES[2:],
        level.partition_value(F.col("bucket_start")).alias(level.partition_column),
    )


def rollup_points(silver: DataFrame, level_name: str) -> DataFrame:
    """Rollup of silver points (``1m``, ``1h`` or ``1d``); columns ``rollup_columns(level_name)``."""
    level = interval(level_name)
    if level.name not in POINT_LEVELS:
        raise ValueError(f"rollup_points makes {', '.join(POINT_LEVELS)}; roll {level.name} up from 1d")
    value, ts = F.col("value"), F.col("ums_ts_")
    points = silver.select("series_key", level.bucket_start(ts).alias("bucket_start"), value, ts)
    aggregated = points.groupBy("series_key", "bucket_start").agg(
        F.count(F.lit(1)).alias("count"),
        F.sum(value.cast(SUM_TYPE)).alias("sum"),
        F.min(value).alias("min"),
        F.max(value).alias("max"),
        F.min(ts).alias("first_ts"),
        F.min_by(value, ts).alias("first"),
        F.max(ts).alias("last_ts"),
        F.max_by(value, ts).alias("last"),
    )
    return _finish(aggregated, level)


def rollup_rollups(finer: DataFrame, level_name: str, *, finer_level: str | None = None) -> DataFrame:
    """A coarser level from a finer rollup (``1h`` from ``1m``, ``1d`` from ``1h``, ``1w``/``1mo``/``1y``
    from ``1d``). Given ``finer_level``, refuses a pair whose buckets do not nest (``1mo`` from ``1w``).
    """
    level = interval(level_name)
    if finer_level is not None and not interval(finer_level).nests_in(level):
        raise ValueError(f"{finer_level} buckets do not nest in {level.name} buckets")
    # A finer bucket lies inside one coarser bucket, so its start places it.
    rows = finer.select("series_key", level.bucket_start(F.col("bucket_start")).alias("bucket_start"), *MEASURES)
    aggregated = rows.groupBy("series_key", "bucket_start").agg(
        F.sum("count").alias("count"),
        F.sum("sum").alias("sum"),
        F.min("min").alias("min"),
        F.max("max").alias("max"),
        F.min("first_ts").alias("first_ts"),
        F.min_by("first", "first_ts").alias("first"),
        F.max("last_ts").alias("last_ts"),
        F.max_by("last", "last_ts").alias("last"),
    )
    return _finish(aggregated, level)


def avg_column() -> Column:
    """The mean of a rollup row, derived from its exact sum and count (as a double)."""
    return (F.col("sum") / F.col("count")).cast("double")


def write_rollup(frame: DataFrame, path: str, level_name: str, partitions: Sequence[dt.date | int]) -> None:
    """Replace exactly these partitions (dates, or years for 1w/1mo/1y) of a level's table at path."""
    level = interval(level_name)
    replace_partitions(frame, path, level.partition_column, partitions, stats_columns=ROLLUP_STATS_COLUMNS)
