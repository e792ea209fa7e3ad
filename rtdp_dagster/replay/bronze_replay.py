"""Replaying Kafka offset ranges into bronze and quarantine, each record at most once.

The records go through the stream's own code: ``checked_records`` and ``verdicts`` (the collectors'
validation rules, natively or in Python) and ``BronzeWriter`` (valid rows to bronze, invalid
ones to quarantine, one idempotent Delta transaction each). Before writing, every record whose
Kafka coordinates (topic, partition, offset, index in the record) are already in bronze or quarantine is dropped
(an anti-join restricted to the replayed ranges, which Delta's per-file min/max of the offsets
prunes), so replaying a range that is all there adds nothing, and replaying after a loss restores
exactly what is missing. Replay ranges the stream has already consumed: a record the stream is
writing at the same moment is not seen by the anti-join.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from rtdp_dagster.config import KafkaConfig
from rtdp_dagster.envelope.metric_kinds import MetricKinds
from rtdp_dagster.envelope.validation import PointRules
from rtdp_dagster.master_data.table import read_table
from rtdp_dagster.replay.offsets import OffsetRange, offset_ranges, spark_offsets
from rtdp_dagster.streaming.bronze import BronzeWriter
from rtdp_dagster.streaming.parse import checked_records, parsed_records, verdicts
from rtdp_dagster.wall_clock import now_ms

# A point's coordinates; a v2 record holds many points (kafka_index, 0 for a v1 record's one).
COORDINATES = ["kafka_topic", "kafka_partition", "kafka_offset", "kafka_index"]


@dataclass
class ReplayResult:
    ranges: list[OffsetRange] = field(default_factory=list)
    records_read: int = 0
    already_stored: int = 0
    bronze_added: int = 0
    quarantined_added: int = 0
    # Event days (ISO dates) that got bronze rows: the days silver and the rollups must recompute.
    days: list[str] = field(default_factory=list)

    def metadata(self) -> dict:
        return {
            "offset_ranges": [f"{r.topic}/{r.partition}: [{r.start}, {r.end})" for r in self.ranges],
            "records_read": self.records_read,
            "already_stored": self.already_stored,
            "bronze_added": self.bronze_added,
            "quarantined_added": self.quarantined_added,
            "days_with_new_rows": self.days,
        }


def _in_ranges(ranges: Sequence[OffsetRange]) -> Column:
    return functools.reduce(
        operator.or_,
        [
            (F.col("kafka_topic") == r.topic)
            & (F.col("kafka_partition") == r.partition)
            & F.col("kafka_offset").between(r.start, r.end - 1)
            for r in ranges
        ],
    )


def _stored_index(table: DataFrame) -> Column:
    """A stored row's index: 0 where there is none (rows written before v2 were all v1 records; a
    v2 record refused whole is one row, matched by its first point)."""
    index = F.col("kafka_index") if "kafka_index" in table.columns else F.lit(None)
    return F.coalesce(index, F.lit(0)).cast("int").alias("kafka_index")


def stored_coordinates(spark: SparkSession, paths: Sequence[str], ranges: Sequence[OffsetRange]) -> DataFrame | None:
    """Coordinates within the ranges already in any of the tables; None when no table exists yet."""
    frames = [
        table.where(_in_ranges(ranges)).select(*COORDINATES[:3], _stored_index(table))
        for table in (read_table(spark, path) for path in paths)
        if table is not None
    ]
    return functools.reduce(DataFrame.unionByName, frames) if frames else None


def replay_into_bronze(
    spark: SparkSession,
    kafka: KafkaConfig,
    rules: PointRules,
    ranges: Sequence[OffsetRange],
    bronze_path: str,
    quarantine_path: str,
    app_id: str,
    kinds: MetricKinds | None = None,
) -> ReplayResult:
    """Read the ranges from Kafka and add the records not stored yet; app_id names the Delta transaction.

    rules and kinds are the stream's (``validation``, ``quality.metric_kinds``): the same verdicts.
    """
    result = ReplayResult(ranges=list(ranges))
    if not ranges:
        return result
    source = spark.read.format("kafka").options(**kafka.spark_options()).options(**spark_offsets(ranges)).load()
    # A record whose Kafka timestamp its producer set is judged by the replay's own clock.
    checked = checked_records(parsed_records(source, rules, kinds), rules, receive_ms=now_ms())
    stored = stored_coordinates(spark, [bronze_path, quarantine_path], ranges)
    if stored is None:
        flagged = checked.withColumn("_stored", F.lit(False))
    else:
        marks = stored.distinct().withColumn("_stored", F.lit(True))
        flagged = checked.join(marks, COORDINATES, "left").withColumn("_stored", F.coalesce("_stored", F.lit(False)))
    flagged = flagged.persist()  # Kafka is read and the JSON parsed once
    try:
        with verdicts(flagged, rules, kinds) as judged:
            # The event date exactly as BronzeWriter derives it.
            day = F.to_date(F.timestamp_millis(F.col("envelope.ums_ts_"))).cast("string")
            rows = judged.groupBy("_stored", "reason", day.alias("day")).count().collect()
            by_reason: dict[str, int] = {}
            for row in rows:
                result.records_read += row["count"]
                if row["_stored"]:
                    result.already_stored += row["count"]
                elif row["reason"] is None:
                    result.bronze_added += row["count"]
                else:
                    result.quarantined_added += row["count"]
                    by_reason[row["reason"]] = by_reason.get(row["reason"], 0) + row["count"]
            result.days = sorted({row["day"] for row in rows if not row["_stored"] and row["reason"] is None})
            if result.bronze_added or result.quarantined_added:
                BronzeWriter(bronze_path, quarantine_path, app_id).write(
                    judged.where(~F.col("_stored")), 0, result.bronze_added, by_reason
                )
    finally:
        flagged.unpersist()
    return result


def replay_time_range(
    spark: SparkSession,
    kafka: KafkaConfig,
    rules: PointRules,
    *,
    start_ms: int,
    end_ms: int,
    topics: Sequence[str],
    topic_pattern: str,
    bronze_path: str,
    quarantine_path: str,
    app_id: str,
    kinds: MetricKinds | None = None,
) -> ReplayResult:
    """Replay the records Kafka timestamps in [start_ms, end_ms) (topics, or those of the stream's pattern)."""
    ranges = offset_ranges(kafka, start_ms, end_ms, topics, topic_pattern)
    return replay_into_bronze(spark, kafka, rules, ranges, bronze_path, quarantine_path, app_id, kinds)
