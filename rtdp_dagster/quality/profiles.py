"""Per-series profiles of one day of points: what each rule found, computed by Spark in one pass.

The expectation suites judge these small frames (one row per series), so a day of millions of
points costs one Spark job per dataset, and every figure a check reports is an exact count.
For each rule a profile holds the number of offending rows and the earliest offending point
(time and value), the sample a failing check shows.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from rtdp_dagster.batch.intervals import DAY_MS, ms_of_date
from rtdp_dagster.batch.silver import series_key_column
from rtdp_dagster.config import QualityConfig
from rtdp_dagster.envelope.metric_kinds import glob_regex
from rtdp_dagster.spark.metric_kinds import first_match, is_counter, kind_column, out_of_range

KEY_COLUMNS = ("metric", "tags", "ums_ts_", "point_key", "ums_id_", "ums_op_")

# Rule -> the profile column counting its offending rows.
POINT_RULES = {
    "keys_not_null": "null_keys",
    "in_partition_day": "outside_day",
    "value_range": "out_of_range",
    "point_key_unique": "duplicate_keys",
    "series_time_unique": "duplicate_times",
    "counter_monotonic": "counter_decreases",
}


def _count_and_example(condition: Column, name: str) -> list[Column]:
    # The earliest offending point of the series; rows without a time still count.
    at = F.when(condition, F.col("ums_ts_"))
    return [
        F.sum(condition.cast("long")).alias(name),
        F.min(at).alias(f"{name}_ts"),
        F.min_by(F.col("value"), at).alias(f"{name}_value"),
    ]


def points_profile(
    frame: DataFrame, day: dt.date, quality: QualityConfig, *, silver: bool, silver_table: DataFrame | None = None
) -> DataFrame:
    """One row per series of a day of bronze (silver=False) or silver points.

    Columns: series_key, metric, kind, rows, and per rule its count with ``_ts``/``_value`` of the
    earliest offending point. Silver adds duplicate point keys, rows repeating a (series, time) (a
    point_key that is not its identity's hash slips past the first) and counter decreases (bronze
    keeps every version of a point on purpose, so none is a defect there) and, given the whole silver
    table (for the cadence history), the completeness columns of ``completeness_profile``.
    """
    kinds = quality.metric_kinds
    start = ms_of_date(day)
    key = F.col("series_key") if silver else series_key_column(F.col("metric"), F.col("tags"))
    is_value = F.coalesce(F.col("ums_op_") != "d", F.lit(True))
    null_key = F.lit(False)
    for name in KEY_COLUMNS:
        null_key = null_key | F.col(name).isNull()
    rules = {
        "null_keys": null_key | (is_value & F.col("value").isNull()),
        "outside_day": (F.col("ums_ts_") < start) | (F.col("ums_ts_") >= start + DAY_MS),
        "out_of_range": is_value & out_of_range(F.col("metric"), F.col("value"), kinds),
    }
    if silver:
        # Rows after the first of their (series, time): partitioned by series like the aggregation
        # below, so the window adds a sort, not a shuffle.
        same_time = F.lag("ums_ts_").over(Window.partitionBy(key).orderBy("ums_ts_", "point_key")) == F.col("ums_ts_")
        rules["duplicate_times"] = same_time
    points = frame.select(
        key.alias("series_key"),
        "metric",
        "value",
        "ums_ts_",
        "point_key",
        *[F.coalesce(condition, F.lit(False)).alias(f"_{name}") for name, condition in rules.items()],
    )
    aggregates = [F.first("metric", ignorenulls=True).alias("metric"), F.count(F.lit(1)).alias("rows")]
    for name in rules:
        aggregates += _count_and_example(F.col(f"_{name}"), name)
    if silver:
        aggregates.append((F.count("point_key") - F.count_distinct("point_key")).alias("duplicate_keys"))
    profile = points.groupBy("series_key").agg(*aggregates)
    if silver:
        profile = profile.join(_counter_profile(frame, quality), "series_key", "left")
        profile = profile.fillna(0, subset=["counter_decreases", "counter_resets"])
    if silver_table is not None:
        completeness = completeness_profile(silver_table, day, quality).drop("metric")
        profile = profile.join(completeness, "series_key", "left").fillna(0, subset=["missing", "gaps"])
    return profile.withColumn("kind", kind_column(F.col("metric"), kinds))


def _counter_profile(silver: DataFrame, quality: QualityConfig) -> DataFrame:
    """Per counter series: decreases that are not resets (a drop to at most the reset fraction)."""
    counters = silver.where(is_counter(F.col("metric"), quality.metric_kinds) & F.col("value").isNotNull())
    previous = F.lag("value").over(Window.partitionBy("series_key").orderBy("ums_ts_", "point_key"))
    steps = counters.select("series_key", "ums_ts_", "value", previous.alias("previous"))
    decrease = F.coalesce(F.col("value") < F.col("previous"), F.lit(False))
    reset = decrease & (F.col("value") <= F.col("previous") * quality.counter_reset_max_fraction)
    return steps.groupBy("series_key").agg(
        *_count_and_example(decrease & ~reset, "counter_decreases"), F.sum(reset.cast("long")).alias("counter_resets")
    )


def cadence_column(metric: Column, learned_s: Column, quality: QualityConfig) -> Column:
    """Expected seconds between points: a configured override, else the learned median step, else the default."""
    overrides = [(glob_regex(item.pattern), F.lit(item.cadence_s)) for item in quality.cadence_overrides]
    fallback = F.coalesce(learned_s, F.lit(quality.default_cadence_s))
    return first_match(metric, overrides, fallback)


def completeness_profile(silver_table: DataFrame, day: dt.date, quality: QualityConfig) -> DataFrame:
    """One row per series of the day: cadence, observed and missing points, missing share, gaps.

    The cadence is learned as the median step of the series over the day and the
    ``cadence_history_days`` before it. A step of s seconds at cadence c misses round(s/c) - 1
    points; a step longer than ``gap_factor`` cadences is a gap. Only steps inside the day count,
    so a series is judged over its own span within the day.
    """
    start = ms_of_date(day)
    first_day = day - dt.timedelta(days=quality.cadence_history_days)
    history = silver_table.where(F.col("event_date").between(F.lit(first_day), F.lit(day))).select(
        "series_key", "metric", "ums_ts_"
    )
    previous = F.lag("ums_ts_").over(Window.partitionBy("series_key").orderBy("ums_ts_"))
    steps = history.select("series_key", "metric", "ums_ts_", previous.alias("previous"))
    learned = (
        steps.where(F.col("previous").isNotNull())
        .groupBy("series_key")
        .agg(F.percentile_approx((F.col("ums_ts_") - F.col("previous")) / 1000.0, 0.5, 10_000).alias("learned_s"))
    )
    in_day = steps.where(F.col("ums_ts_").between(start, start + DAY_MS - 1)).join(learned, "series_key", "left")
    cadence = cadence_column(F.col("metric"), F.col("learned_s"), quality)
    step_s = F.when(F.col("previous") >= start, (F.col("ums_ts_") - F.col("previous")) / 1000.0)
    missing = F.greatest(F.round(step_s / F.col("cadence_s")) - 1, F.lit(0.0))
    is_gap = F.coalesce(step_s > F.col("cadence_s") * quality.gap_factor, F.lit(False))
    profile = (
        in_day.withColumn("cadence_s", cadence)
        .groupBy("series_key")
        .agg(
            F.first("metric").alias("metric"),
            F.first("cadence_s").alias("cadence_s"),
            F.first(F.col("learned_s").isNotNull() & (F.col("cadence_s") == F.col("learned_s"))).alias("learned"),
            F.count(F.lit(1)).alias("observed"),
            F.coalesce(F.sum(missing), F.lit(0.0)).cast("long").alias("missing"),
            F.sum(is_gap.cast("long")).alias("gaps"),
            F.coalesce(F.max(step_s), F.lit(0.0)).alias("longest_step_s"),
            F.min(F.when(is_gap, F.col("previous"))).alias("first_gap_from_ts"),
        )
        .withColumn("expected", F.col("observed") + F.col("missing"))
        .withColumn("missing_share", F.col("missing") / F.col("expected"))
    )
    return profile


def rollup_validity(rollup: DataFrame, tolerance: float) -> DataFrame:
    """One row per series of a day's rollup buckets: buckets with count <= 0, and with avg outside [min, max]."""
    avg = (F.col("sum") / F.col("count")).cast("double")
    slack = F.greatest(F.lit(1.0), F.abs(F.col("min")), F.abs(F.col("max"))) * tolerance
    bad_count = F.coalesce(F.col("count") <= 0, F.lit(True))
    disordered = F.coalesce((F.col("min") > avg + slack) | (avg > F.col("max") + slack), F.lit(True)) & ~bad_count
    at_count, at_order = F.when(bad_count, F.col("bucket_start")), F.when(disordered, F.col("bucket_start"))
    return rollup.groupBy("series_key").agg(
        F.count(F.lit(1)).alias("buckets"),
        F.sum((bad_count | disordered).cast("long")).alias("invalid_buckets"),
        F.sum(bad_count.cast("long")).alias("zero_counts"),
        F.min(at_count).alias("zero_counts_bucket"),
        F.sum(disordered.cast("long")).alias("disordered"),
        F.min(at_order).alias("disordered_bucket"),
    )


_COMPARED = ("count", "sum", "min", "max", "first_ts", "first", "last_ts", "last")


def rollup_mismatches(expected: DataFrame, actual: DataFrame, prefix: str) -> DataFrame:
    """One row per series: buckets where the actual rollup differs from the expected one in any measure
    (or exists on one side only), with the first such bucket and both counts there; columns prefixed."""
    left = expected.select("series_key", "bucket_start", *[F.col(c).alias(f"expected_{c}") for c in _COMPARED])
    right = actual.select("series_key", "bucket_start", *[F.col(c).alias(f"actual_{c}") for c in _COMPARED])
    joined = left.join(right, ["series_key", "bucket_start"], "full_outer")
    differs = F.lit(False)
    for name in _COMPARED:
        differs = differs | ~F.col(f"expected_{name}").eqNullSafe(F.col(f"actual_{name}"))
    at = F.when(differs, F.col("bucket_start"))
    return joined.groupBy("series_key").agg(
        F.sum(differs.cast("long")).alias(f"{prefix}_mismatched"),
        F.min(at).alias(f"{prefix}_mismatched_bucket"),
        F.min_by(F.col("expected_count"), at).alias(f"{prefix}_expected_count"),
        F.min_by(F.col("actual_count"), at).alias(f"{prefix}_actual_count"),
    )


def rollup_profile(actual: DataFrame, expected: dict[str, DataFrame], tolerance: float) -> DataFrame:
    """One row per series of a day's rollup: its validity, and its mismatches against each expected rollup
    (``expected``: prefix -> the same buckets computed another way)."""
    profile = rollup_validity(actual, tolerance)
    for prefix, frame in expected.items():
        mismatches = rollup_mismatches(frame, actual, prefix)
        profile = profile.join(mismatches, "series_key", "full_outer").fillna(0, subset=[f"{prefix}_mismatched"])
    counts = ["buckets", "invalid_buckets", "zero_counts", "disordered"]
    return profile.fillna(0, subset=counts)
