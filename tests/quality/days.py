"""Days of points for the quality tests: bronze records, silver rows written as-is, rollups, outcomes by check."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from rtdp_dagster.batch.intervals import date_of_ms
from rtdp_dagster.batch.rollups import rollup_points, rollup_rollups, write_rollup
from rtdp_dagster.batch.silver import silver_for_days, write_silver_days
from rtdp_dagster.envelope.keys import series_key
from rtdp_dagster.quality.evaluate import SILVER_SCHEMA
from rtdp_dagster.quality.outcomes import CheckOutcome
from tests.batch.bronze_rows import Record, write_bronze

FIVE_MINUTES = 300_000


def silver_rows(records: Iterable[Record], event_date: dt.date | None = None) -> list[tuple]:
    """Silver rows exactly as given (no de-duplication): defects stay in."""
    return [
        (
            r.metric,
            r.tags,
            series_key(r.metric, r.tags),
            r.value,
            r.ts_ms,
            r.point_key,
            r.ums_id,
            r.op,
            r.source,
            r.namespace,
            event_date or date_of_ms(r.ts_ms),
        )
        for r in records
    ]


def write_silver_rows(spark: SparkSession, rows: list[tuple], path: str) -> DataFrame:
    spark.createDataFrame(rows, SILVER_SCHEMA).write.format("delta").partitionBy("event_date").save(path)
    return spark.read.format("delta").load(path)


def write_rollups(spark: SparkSession, silver: DataFrame, day: dt.date, root: Path) -> dict[str, DataFrame]:
    """rollup_1m/1h/1d of the day's silver (points of the day only), as Delta tables; returns them."""
    from pyspark.sql import functions as F

    from rtdp_dagster.batch.intervals import DAY_MS, ms_of_date

    start = ms_of_date(day)
    points = silver.where((F.col("event_date") == F.lit(day)) & F.col("ums_ts_").between(start, start + DAY_MS - 1))
    frames = {"1m": rollup_points(points, "1m")}
    frames["1h"] = rollup_rollups(frames["1m"], "1h")
    frames["1d"] = rollup_rollups(frames["1h"], "1d")
    tables = {}
    for level, frame in frames.items():
        path = str(root / f"rollup_{level}")
        write_rollup(frame, path, level, [day])
        tables[f"rollup_{level}"] = spark.read.format("delta").load(path)
    return tables


def bronze_and_silver(spark: SparkSession, records: list[Record], day: dt.date, root: Path) -> dict[str, DataFrame]:
    """Bronze from records, silver computed from it as the batch layer does, and the day's rollups."""
    bronze = write_bronze(spark, records, str(root / "bronze"))
    write_silver_days(silver_for_days(bronze, [day]), str(root / "silver"), [day])
    silver = spark.read.format("delta").load(str(root / "silver"))
    return {"bronze": bronze, "silver": silver, **write_rollups(spark, silver, day, root)}


def by_check(outcomes: Iterable[CheckOutcome]) -> dict[str, CheckOutcome]:
    return {f"{o.asset}.{o.check}": o for o in outcomes}


def failures(outcomes: Iterable[CheckOutcome]) -> dict[str, int]:
    """asset.check -> failing rows, for every check that failed."""
    return {key: o.failing_rows for key, o in by_check(outcomes).items() if not o.passed}
