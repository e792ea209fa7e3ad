"""What a silver or rollup materialization does, step by step and timed: the assets run these, and so
does the batch benchmark, so the bench measures the assets' own code.

Steps (seconds in ``StepTimes``): ``plan`` builds the frames (silver counts its days' bronze rows here
to size its shuffle, from Delta's file statistics); ``write`` is the one Spark job that reads,
computes and commits the partitions (``replaceWhere``: exactly the run's window); ``commit`` reads
that commit's version and row count back from the Delta log (the write's own metrics, tagged with
``userMetadata``), instead of counting the written rows again.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from rtdp_dagster.batch.intervals import BUCKET_DATE, interval
from rtdp_dagster.batch.rollups import ROLLUP_STATS_COLUMNS, rollup_columns, rollup_points, rollup_rollups
from rtdp_dagster.batch.silver import SILVER_PARTITION, SILVER_STATS_COLUMNS, MasterData, silver_for_days
from rtdp_dagster.batch.writes import Commit, committed, new_commit_tag, replace_window, write_days
from rtdp_dagster.master_data.table import read_table


@dataclass
class StepTimes:
    """Seconds per step of one materialization (a step entered twice adds up)."""

    started: float = field(default_factory=time.monotonic)
    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        began = time.monotonic()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.monotonic() - began, 3)

    def total(self) -> float:
        return time.monotonic() - self.started


def enrich_with_master_data(spark: SparkSession, master_path: str) -> MasterData:
    """The master data silver's points take site and app from (``silver_for_days``' ``enrich``)."""
    return MasterData(read_table(spark, master_path))


def materialize_silver(
    spark: SparkSession,
    bronze_path: str,
    master_path: str,
    path: str,
    days: Sequence[dt.date],
    times: StepTimes,
    bronze_version: int = -1,
) -> Commit:
    """Silver of these days from bronze (at bronze_version; -1: the newest), enriched, replacing
    exactly those days at path."""
    tag = new_commit_tag()
    with times.step("plan"):
        reader = spark.read.format("delta")
        if bronze_version >= 0:
            reader = reader.option("versionAsOf", bronze_version)
        bronze = reader.load(bronze_path)
        frame = silver_for_days(bronze, days, enrich=enrich_with_master_data(spark, master_path))
    with times.step("write"):
        write_days(frame, path, days, SILVER_PARTITION, stats_columns=SILVER_STATS_COLUMNS, commit_tag=tag)
    with times.step("commit"):
        return committed(spark, path, tag)


def _read_days(spark: SparkSession, path: str, column: str, days: Sequence[dt.date]) -> DataFrame:
    return spark.read.format("delta").load(path).where(F.col(column).isin(list(days)))


def materialize_rollup(
    spark: SparkSession,
    level: str,
    source_path: str,
    from_silver: bool,
    path: str,
    days: Sequence[dt.date],
    window_ms: tuple[int, int],
    times: StepTimes,
) -> Commit:
    """One rollup level of these days from the finer level (or silver) at source_path, replacing exactly
    its window at path: the days for 1m/1h/1d, the buckets starting in [window_ms) for 1w/1mo/1y."""
    tag = new_commit_tag()
    spec = interval(level)
    with times.step("plan"):
        finer = _read_days(spark, source_path, SILVER_PARTITION if from_silver else BUCKET_DATE, days)
        frame = rollup_points(finer, level) if from_silver else rollup_rollups(finer, level)
        frame = frame.select(*rollup_columns(level))
    with times.step("write"):
        if spec.partition_column == BUCKET_DATE:
            write_days(frame, path, days, BUCKET_DATE, stats_columns=ROLLUP_STATS_COLUMNS, commit_tag=tag)
        else:
            predicate = f"bucket_start >= {window_ms[0]} AND bucket_start < {window_ms[1]}"
            replace_window(
                frame, path, spec.partition_column, predicate, stats_columns=ROLLUP_STATS_COLUMNS, commit_tag=tag
            )
    with times.step("commit"):
        # The frame holds only buckets of the window: the rows the write reports are the window's.
        return committed(spark, path, tag)
