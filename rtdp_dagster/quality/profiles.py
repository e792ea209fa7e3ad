"""Per-series profiles of the days of a run: what each rule found, computed by Spark in one pass.

The expectation suites judge these small frames (one row per day and series), so the days of a run
(a backfill's whole range) cost one Spark job per dataset, not one per day, and every figure a check
reports is an exact count. For each rule a profile holds the number of offending rows and the
earliest offending point (time and value), the sample a failing check shows. Each profile has a
``day`` column (ISO date): the day whose partition the row judges.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from rtdp_dagster.batch.intervals import BUCKET_DATE, DAY_MS, interval
from rtdp_dagster.batch.silver import series_key_column
from rtdp_dagster.config import QualityConfig
from rtdp_dagster.envelope.metric_kinds import MetricKinds, glob_regex
from rtdp_dagster.spark.metric_kinds import first_match, kind_column
from rtdp_dagster.spark.shuffle import sort_tasks

KEY_COLUMNS = ("metric", "tags", "ums_ts_", "point_key", "ums_id_", "ums_op_")
# The ISO date a profile row judges (a partition of the points or of the rollup).
DAY = "day"

# Rule -> the profile column counting its offending rows.
POINT_RULES = {
    "keys_not_null": "null_keys",
    "in_partition_day": "outside_day",
    "value_range": "out_of_range",
    "point_key_unique": "duplicate_keys",
    "series_time_unique": "duplicate_times",
    "counter_monotonic": "counter_decreases",
}


def as_days(days: dt.date | Sequence[dt.date]) -> list[dt.date]:
    """One day or several, sorted and without repeats."""
    return [days] if isinstance(days, dt.date) else sorted(set(days))


def _day_start_ms(date: Column) -> Column:
    return F.unix_date(date).cast("long") * DAY_MS


def in_own_day(ts: Column, partition: Column) -> Column:
    """A row (a point's time, a bucket's start: epoch ms) inside the UTC day of its partition (a DATE).

    Judging several days at once, a row outside its partition's day would land in another day of the
    run (the points checks report it); a day judged alone never sees it.
    """
    return interval("1d").partition_value(ts) == partition


def _count_and_example(condition: Column, name: str) -> list[Column]:
    # The earliest offending point of the series; rows without a time still count.
    at = F.when(condition, F.col("ums_ts_"))
    return [
        F.sum(condition.cast("long")).alias(name),
        F.min(at).alias(f"{name}_ts"),
        F.min_by(F.col("value"), at).alias(f"{name}_value"),
    ]


def _outside(value: Column, low: float | None, high: float | None) -> Column:
    """A value outside [low, high] (None: unbounded) or NaN; null values are not judged."""
    outside = F.isnan(value)
    if low is not None:
        outside = outside | (value < low)
    if high is not None:
        outside = outside | (value > high)
    return value.isNotNull() & outside


def _by_kind(kind: Column, columns: dict[str, Column]) -> Column:
    """Per profile row, the column of its kind (``columns``: kind name -> column); null for another kind."""
    result = F.lit(None)
    for name, column in columns.items():
        result = F.when(kind == name, column).otherwise(result)
    return result


def points_profile(
    frame: DataFrame,
    days: dt.date | Sequence[dt.date],
    quality: QualityConfig,
    *,
    silver: bool,
    silver_table: DataFrame | None = None,
) -> DataFrame:
    """One row per day and series of bronze (silver=False) or silver points of these days (``event_date``).

    Columns: day, series_key, metric, kind, rows, and per rule its count with ``_ts``/``_value`` of the
    earliest offending point. Silver adds duplicate point keys, rows repeating a (series, time) (a
    point_key that is not its identity's hash slips past the first) and counter decreases (bronze
    keeps every version of a point on purpose, so none is a defect there) and, given the whole silver
    table (for the cadence history), the completeness columns of ``completeness_profile``.

    A row's metric kind is not looked up per row (a regex per pattern and row was a third of the pass):
    each row is judged against every distinct range of the kinds, and the counter rules on every series;
    each series keeps the figures of its own kind, picked once aggregated.
    """
    days = as_days(days)
    kinds = quality.metric_kinds
    ranges = sorted({(kind.min, kind.max) for kind in kinds.kinds.values()}, key=str)
    start = _day_start_ms(F.col("event_date"))
    key = F.col("series_key") if silver else series_key_column(F.col("metric"), F.col("tags"))
    is_value = F.coalesce(F.col("ums_op_") != "d", F.lit(True))
    null_key = F.lit(False)
    for name in KEY_COLUMNS:
        null_key = null_key | F.col(name).isNull()
    rules = {
        "null_keys": null_key | (is_value & F.col("value").isNull()),
        "outside_day": (F.col("ums_ts_") < start) | (F.col("ums_ts_") >= start + DAY_MS),
    }
    for n, (low, high) in enumerate(ranges):
        rules[f"range_{n}"] = is_value & _outside(F.col("value"), low, high)
    rows = frame.where(F.col("event_date").isin(days))
    points = rows.select(
        key.alias("series_key"),
        "event_date",
        "metric",
        "value",
        "ums_ts_",
        "point_key",
        *[F.coalesce(condition, F.lit(False)).alias(f"_{name}") for name, condition in rules.items()],
    )
    if silver:
        # Sized by the rows (Spark's 4 shuffle partitions spilled gigabytes for a week): partitioned by
        # series, so the window's sort and the aggregation below need no other shuffle.
        points = points.repartition(sort_tasks(rows), "series_key")
        # Both rules walk each series of a day in time order, in one sort.
        in_order = Window.partitionBy("series_key", "event_date").orderBy("ums_ts_", "point_key")
        # Counters: the value before, skipping rows without one (what a window over the counter rows
        # with a value sees); a drop to at most the reset fraction is a reset, any other drop a defect.
        before = F.last("value", ignorenulls=True).over(in_order.rowsBetween(Window.unboundedPreceding, -1))
        decrease = F.col("value") < before
        reset = decrease & (F.col("value") <= before * quality.counter_reset_max_fraction)
        window_rules = {
            # Rows after the first of their (series, time).
            "duplicate_times": F.lag("ums_ts_").over(in_order) == F.col("ums_ts_"),
            "counter_decreases": decrease & ~reset,
            "counter_resets": reset,
        }
        points = points.select(
            "*", *[F.coalesce(condition, F.lit(False)).alias(f"_{name}") for name, condition in window_rules.items()]
        )
        rules.update(window_rules)
    aggregates = [F.first("metric", ignorenulls=True).alias("metric"), F.count(F.lit(1)).alias("rows")]
    for name in rules:
        if name == "counter_resets":
            aggregates.append(F.sum(F.col(f"_{name}").cast("long")).alias(name))
        else:
            aggregates += _count_and_example(F.col(f"_{name}"), name)
    # Grouped by the window's own keys in its order (no second shuffle or sort); the day as text once aggregated.
    profile = points.groupBy("series_key", "event_date").agg(*aggregates)
    if silver:
        profile = _with_repeated_keys(profile, points)
    profile = profile.withColumn(DAY, F.col("event_date").cast("string")).drop("event_date")
    profile = profile.withColumn("kind", kind_column(F.col("metric"), kinds))
    profile = _own_kind(profile, kinds, ranges, silver=silver)
    if silver_table is not None:
        completeness = completeness_profile(silver_table, days, quality).drop("metric")
        profile = profile.join(completeness, [DAY, "series_key"], "left").fillna(0, subset=["missing", "gaps"])
    return profile


def _with_repeated_keys(profile: DataFrame, points: DataFrame) -> DataFrame:
    """The profile with ``duplicate_keys``: rows of a day and series beyond the first of their point_key.

    A hash aggregation of its own: a distinct count among the profile's aggregates sorted every row again.
    """
    per_key = points.groupBy("series_key", "event_date", "point_key").agg(F.count(F.lit(1)).alias("n"))
    extra = F.when(F.col("point_key").isNotNull(), F.col("n") - 1).otherwise(F.lit(0))
    repeats = per_key.groupBy(F.col("series_key").alias("_series"), F.col("event_date").alias("_date")).agg(
        F.sum(extra).alias("duplicate_keys")
    )
    # Null-safe: rows without a series key are a group of the profile too (the null_keys rule's).
    same = F.col("series_key").eqNullSafe(F.col("_series")) & F.col("event_date").eqNullSafe(F.col("_date"))
    return profile.join(F.broadcast(repeats), same, "left").drop("_series", "_date")


def _own_kind(
    profile: DataFrame, kinds: MetricKinds, ranges: list[tuple[float | None, float | None]], *, silver: bool
) -> DataFrame:
    """The range figures of each series' own kind as ``out_of_range``; counter figures only for counters."""
    kind, suffixes = F.col("kind"), ("", "_ts", "_value")
    range_of = {name: f"range_{ranges.index((k.min, k.max))}" for name, k in kinds.kinds.items()}
    picked = {
        f"out_of_range{suffix}": _by_kind(kind, {name: F.col(f"{column}{suffix}") for name, column in range_of.items()})
        for suffix in suffixes
    }
    if silver:
        counter = kind.isin([name for name, k in kinds.kinds.items() if k.counter])
        for name in ("counter_decreases", "counter_resets"):
            picked[name] = F.when(counter, F.col(name)).otherwise(F.lit(0))
        for name in ("counter_decreases_ts", "counter_decreases_value"):
            picked[name] = F.when(counter, F.col(name))
    profile = profile.withColumns(picked)
    return profile.drop(*[f"range_{n}{suffix}" for n in range(len(ranges)) for suffix in suffixes])


def cadence_column(metric: Column, learned_s: Column, quality: QualityConfig) -> Column:
    """Expected seconds between points: a configured override, else the learned median step, else the default."""
    overrides = [(glob_regex(item.pattern), F.lit(item.cadence_s)) for item in quality.cadence_overrides]
    fallback = F.coalesce(learned_s, F.lit(quality.default_cadence_s))
    return first_match(metric, overrides, fallback)


# Days judged by one pass of completeness_profile: the sort covers their partitions and histories, and
# each point carries one running "point before" per day of the pass.
DAYS_PER_PASS = 16


def completeness_profile(
    silver_table: DataFrame, days: dt.date | Sequence[dt.date], quality: QualityConfig
) -> DataFrame:
    """One row per day and series: cadence, observed and missing points, missing share, gaps.

    The cadence is learned as the median step of the series over the day's partition and the
    ``cadence_history_days`` partitions before it (its history). A step of s seconds at cadence c
    misses round(s/c) - 1 points; a step longer than ``gap_factor`` cadences is a gap. Only steps
    inside the day count, so a series is judged over its own span within the day.

    The days of a run are judged ``DAYS_PER_PASS`` at a time, each pass reading the partitions of
    its days and their histories once, in one sort of each series by time. A day sees exactly its own
    history: the point before a point is the one before it among the day's history partitions (a
    point another day's history adds, such as one in a later partition with an earlier time, is not
    in between), so a day judged with others has the figures it has judged alone.
    """
    days = as_days(days)
    passes = [
        _completeness_pass(silver_table, days[i : i + DAYS_PER_PASS], quality)
        for i in range(0, len(days), DAYS_PER_PASS)
    ]
    return functools.reduce(DataFrame.unionByName, passes)


def _completeness_pass(silver_table: DataFrame, days: list[dt.date], quality: QualityConfig) -> DataFrame:
    steps = _step_histogram(silver_table, days, quality)
    learned = _median_steps(steps)
    cadence = cadence_column(F.col("metric"), F.col("learned_s"), quality)
    step_s = F.when(F.col("inside"), F.col("step_ms") / 1000.0)
    missing = F.greatest(F.round(step_s / F.col("cadence_s")) - 1, F.lit(0.0)) * F.col("n")
    is_gap = F.coalesce(step_s > F.col("cadence_s") * quality.gap_factor, F.lit(False))
    return (
        # The day's own points (the median learned from the whole history).
        steps.where("own")
        .join(learned, ["series_key", "target"], "left")
        .withColumn("cadence_s", cadence)
        .groupBy(F.col("target").cast("string").alias(DAY), "series_key")
        .agg(
            F.first("metric").alias("metric"),
            F.first("cadence_s").alias("cadence_s"),
            F.first(F.col("learned_s").isNotNull() & (F.col("cadence_s") == F.col("learned_s"))).alias("learned"),
            F.sum("n").alias("observed"),
            F.coalesce(F.sum(missing), F.lit(0.0)).cast("long").alias("missing"),
            F.sum(F.when(is_gap, F.col("n")).otherwise(F.lit(0))).alias("gaps"),
            F.coalesce(F.max(step_s), F.lit(0.0)).alias("longest_step_s"),
            F.min(F.when(is_gap, F.col("from_ts"))).alias("first_gap_from_ts"),
        )
        .withColumn("expected", F.col("observed") + F.col("missing"))
        .withColumn("missing_share", F.col("missing") / F.col("expected"))
    )


def _step_histogram(silver_table: DataFrame, days: list[dt.date], quality: QualityConfig) -> DataFrame:
    """Per series, day of the pass (``target``) and step: how many points of the day's history follow the
    point before them (in that history) by ``step_ms``; ``own``: points inside the day, ``inside``: their
    point before is too; ``from_ts``: the earliest point before. A regular series has a few rows a day, so
    the median and the day's figures are computed on these, not on every point with a sort of its own."""
    back = dt.timedelta(days=quality.cadence_history_days)
    history = {day: F.col("event_date").between(F.lit(day - back), F.lit(day)) for day in days}
    read = sorted({day - dt.timedelta(days=n) for day in days for n in range(quality.cadence_history_days + 1)})
    earlier = Window.partitionBy("series_key").orderBy("ums_ts_").rowsBetween(Window.unboundedPreceding, -1)
    # Per day whose history holds the point's partition: the point before it in that history.
    targets = F.array(
        *[
            F.when(
                in_history,
                F.struct(
                    F.lit(day).alias("day"),
                    F.last(F.when(in_history, F.col("ums_ts_")), ignorenulls=True).over(earlier).alias("previous"),
                ),
            )
            for day, in_history in history.items()
        ]
    )
    rows = silver_table.where(F.col("event_date").isin(read))
    start = _day_start_ms(F.col("target"))
    return (
        rows.select("series_key", "metric", "ums_ts_", "event_date")
        # Sized by the rows (Spark's 4 shuffle partitions spilled for a week); the sort by series is the only one.
        .repartition(sort_tasks(rows), "series_key")
        .select("series_key", "metric", "ums_ts_", targets.alias("targets"))
        .select("series_key", "metric", "ums_ts_", F.explode(F.filter("targets", lambda t: t.isNotNull())).alias("t"))
        .select(
            "series_key", "metric", "ums_ts_", F.col("t.day").alias("target"), F.col("t.previous").alias("previous")
        )
        .groupBy(
            "series_key",
            "target",
            F.col("ums_ts_").between(start, start + DAY_MS - 1).alias("own"),
            (F.col("previous") >= start).alias("inside"),
            (F.col("ums_ts_") - F.col("previous")).alias("step_ms"),
        )
        .agg(F.first("metric").alias("metric"), F.count(F.lit(1)).alias("n"), F.min("previous").alias("from_ts"))
    )


def _median_steps(steps: DataFrame) -> DataFrame:
    """Per series and day the median step of its history in seconds (``learned_s``), as ``percentile_approx``
    picks it (the step at rank ceil(n/2)), exactly."""
    counts = (
        steps.where(F.col("step_ms").isNotNull()).groupBy("series_key", "target", "step_ms").agg(F.sum("n").alias("n"))
    )
    of_day = Window.partitionBy("series_key", "target")
    below = F.coalesce(F.sum("n").over(of_day.orderBy("step_ms").rowsBetween(Window.unboundedPreceding, -1)), F.lit(0))
    rank = F.ceil(F.sum("n").over(of_day) * 0.5)
    return (
        counts.withColumn("below", below)
        .withColumn("rank", rank)
        .where((F.col("below") < F.col("rank")) & (F.col("below") + F.col("n") >= F.col("rank")))
        .select("series_key", "target", (F.col("step_ms") / 1000.0).alias("learned_s"))
    )


def _bucket_day(date: Column) -> Column:
    return date.cast("string").alias(DAY)


def rollup_validity(rollup: DataFrame, tolerance: float) -> DataFrame:
    """One row per day and series of rollup buckets: buckets with count <= 0, and with avg outside [min, max]."""
    avg = (F.col("sum") / F.col("count")).cast("double")
    slack = F.greatest(F.lit(1.0), F.abs(F.col("min")), F.abs(F.col("max"))) * tolerance
    bad_count = F.coalesce(F.col("count") <= 0, F.lit(True))
    disordered = F.coalesce((F.col("min") > avg + slack) | (avg > F.col("max") + slack), F.lit(True)) & ~bad_count
    at_count, at_order = F.when(bad_count, F.col("bucket_start")), F.when(disordered, F.col("bucket_start"))
    return rollup.groupBy(_bucket_day(F.col(BUCKET_DATE)), "series_key").agg(
        F.count(F.lit(1)).alias("buckets"),
        F.sum((bad_count | disordered).cast("long")).alias("invalid_buckets"),
        F.sum(bad_count.cast("long")).alias("zero_counts"),
        F.min(at_count).alias("zero_counts_bucket"),
        F.sum(disordered.cast("long")).alias("disordered"),
        F.min(at_order).alias("disordered_bucket"),
    )


_COMPARED = ("count", "sum", "min", "max", "first_ts", "first", "last_ts", "last")


def rollup_mismatches(expected: DataFrame, actual: DataFrame, prefix: str) -> DataFrame:
    """One row per day and series: buckets where the actual rollup differs from the expected one in any
    measure (or exists on one side only), with the first such bucket and both counts there; columns
    prefixed. Buckets meet within a partition (``bucket_date``), as when each day is compared alone."""
    keys = ["series_key", BUCKET_DATE, "bucket_start"]
    left = expected.select(*keys, *[F.col(c).alias(f"expected_{c}") for c in _COMPARED])
    right = actual.select(*keys, *[F.col(c).alias(f"actual_{c}") for c in _COMPARED])
    joined = left.join(right, keys, "full_outer")
    differs = F.lit(False)
    for name in _COMPARED:
        differs = differs | ~F.col(f"expected_{name}").eqNullSafe(F.col(f"actual_{name}"))
    at = F.when(differs, F.col("bucket_start"))
    return joined.groupBy(_bucket_day(F.col(BUCKET_DATE)), "series_key").agg(
        F.sum(differs.cast("long")).alias(f"{prefix}_mismatched"),
        F.min(at).alias(f"{prefix}_mismatched_bucket"),
        F.min_by(F.col("expected_count"), at).alias(f"{prefix}_expected_count"),
        F.min_by(F.col("actual_count"), at).alias(f"{prefix}_actual_count"),
    )


def rollup_profile(actual: DataFrame, expected: dict[str, DataFrame], tolerance: float) -> DataFrame:
    """One row per day and series of a rollup: its validity, and its mismatches against each expected
    rollup (``expected``: prefix -> the same buckets computed another way)."""
    profile = rollup_validity(actual, tolerance)
    for prefix, frame in expected.items():
        mismatches = rollup_mismatches(frame, actual, prefix)
        profile = profile.join(mismatches, [DAY, "series_key"], "full_outer").fillna(0, subset=[f"{prefix}_mismatched"])
    counts = ["buckets", "invalid_buckets", "zero_counts", "disordered"]
    return profile.fillna(0, subset=counts)
