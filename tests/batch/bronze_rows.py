"""Bronze-shaped rows for the batch tests: points as the stream lands them, and reading results back."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession

from rtdp_dagster.envelope.keys import point_key
from rtdp_dagster.streaming.tables import BRONZE_SCHEMA

TOPIC = "rtdp.points.test"


def ms(text: str) -> int:
    """Epoch ms of an ISO time written without a zone, read as UTC."""
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp() * 1000)


@dataclass
class Record:
    """One bronze record; value None for a retraction."""

    metric: str
    tags: dict[str, str]
    ts_ms: int
    value: float | None
    ums_id: int
    op: str = "i"
    wave: int = 1
    partition: int = 0
    offset: int = 0
    index: int = 0
    topic: str = TOPIC
    source: str = "test"
    namespace: str = "test.local.metrics.points.v1.0.0"
    extra: dict = field(default_factory=dict)

    @property
    def point_key(self) -> str:
        return point_key(self.metric, self.tags, self.ts_ms)

    def row(self) -> tuple:
        received = dt.datetime.fromtimestamp(self.ts_ms / 1000, dt.UTC)
        return (
            self.namespace,
            self.metric,
            self.tags,
            self.value,
            self.ts_ms,
            self.point_key,
            self.ums_id,
            self.op,
            self.wave,
            self.source,
            self.ts_ms + 1000,
            "1.0",
            self.topic,
            self.partition,
            self.offset,
            self.index,
            received.replace(tzinfo=None),
            0,
            self.ts_ms + 2000,
            received.date(),
        )


def bronze_frame(spark: SparkSession, records: Iterable[Record]) -> DataFrame:
    return spark.createDataFrame([record.row() for record in records], BRONZE_SCHEMA)


def write_bronze(spark: SparkSession, records: Iterable[Record], path: str) -> DataFrame:
    """The records as a Delta table partitioned like bronze; returns the table."""
    bronze_frame(spark, records).write.format("delta").partitionBy("event_date").save(path)
    return spark.read.format("delta").load(path)
