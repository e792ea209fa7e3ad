"""The bronze query's micro-batch: invalid rows to quarantine, valid rows to bronze, exactly once.

Both writes carry Delta's idempotent-transaction options (txnAppId = this checkpoint's app id,
txnVersion = the batch id): a batch replayed after a crash skips every table it already
committed to, so each Kafka record lands exactly once in bronze or quarantine.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from rtdp_dagster.streaming.tables import ENVELOPE_FIELDS, KAFKA_COORDINATES


def _append(frame: DataFrame, path: str, app_id: str, batch_id: int, partition_by: str) -> None:
    (
        frame.write.format("delta")
        .mode("append")
        .option("txnAppId", app_id)
        .option("txnVersion", batch_id)
        .partitionBy(partition_by)
        .save(path)
    )


class BronzeWriter:
    def __init__(
        self, bronze_path: str, quarantine_path: str, app_id: str, record: Callable[[str, int, dict], None]
    ) -> None:
        self.bronze_path, self.quarantine_path, self.app_id, self.record = bronze_path, quarantine_path, app_id, record

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        ingested_at = int(time.time() * 1000)
        batch = batch.persist()  # the validation UDF runs once for both tables
        try:
            stamp = [F.lit(batch_id).alias("batch_id"), F.lit(ingested_at).alias("ingested_at")]
            quarantine = batch.where(F.col("reason").isNotNull()).select(
                "raw_key", "raw_value", "reason", "detail", *KAFKA_COORDINATES, *stamp,
                F.to_date(F.col("kafka_timestamp")).alias("received_date"),
            )  # fmt: skip
            bronze = batch.where(F.col("reason").isNull()).select(
                *[F.col(f"envelope.{name}").alias(name) for name in ENVELOPE_FIELDS], *KAFKA_COORDINATES, *stamp,
                F.to_date(F.timestamp_millis(F.col("envelope.ums_ts_"))).alias("event_date"),
            )  # fmt: skip
            _append(quarantine, self.quarantine_path, self.app_id, batch_id, "received_date")
            _append(bronze, self.bronze_path, self.app_id, batch_id, "event_date")
            by_reason = {row["reason"]: row["count"] for row in batch.groupBy("reason").count().collect()}
        finally:
            batch.unpersist()
        bronze_rows = by_reason.pop(None, 0)
        self.record("bronze", batch_id, {"bronze_rows": bronze_rows, "quarantined": sum(by_reason.values()),
                                         "quarantined_by_reason": by_reason})  # fmt: skip
