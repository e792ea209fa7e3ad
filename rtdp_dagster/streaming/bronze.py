"""The bronze half of a micro-batch: invalid rows to quarantine, valid rows to bronze, exactly once.

Both writes carry Delta's idempotent-transaction options (txnAppId = this checkpoint's app id,
txnVersion = the batch id): a batch replayed after a crash skips every table it already
committed to, so each Kafka record lands exactly once in bronze or quarantine. A table with no
rows in a batch gets no commit (validation is deterministic, so a replay decides the same).
"""

from __future__ import annotations

import time

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from rtdp_dagster.streaming.tables import KAFKA_COORDINATES, envelope_columns


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
    def __init__(self, bronze_path: str, quarantine_path: str, app_id: str) -> None:
        self.bronze_path, self.quarantine_path, self.app_id = bronze_path, quarantine_path, app_id

    def write(self, judged: DataFrame, batch_id: int, accepted: int, by_reason: dict[str, int]) -> dict:
        """judged: one micro-batch's ``verdicts`` (cached); accepted: how many of them have no reason,
        by_reason: how many of the others have each reason (the caller counted them already).

        Returns the batch's figures for the progress table.
        """
        ingested_at = int(time.time() * 1000)
        stamp = [F.lit(batch_id).cast("long").alias("batch_id"), F.lit(ingested_at).cast("long").alias("ingested_at")]
        if by_reason:
            quarantine = judged.where(F.col("reason").isNotNull()).select(
                "raw_key", "raw_value", "reason", "detail", *KAFKA_COORDINATES, *stamp,
                F.to_date(F.col("kafka_timestamp")).alias("received_date"),
            )  # fmt: skip
            _append(quarantine, self.quarantine_path, self.app_id, batch_id, "received_date")
        if accepted:
            bronze = judged.where(F.col("reason").isNull()).select(
                *envelope_columns(), *KAFKA_COORDINATES,
                *stamp, F.to_date(F.timestamp_millis(F.col("envelope.ums_ts_"))).alias("event_date"),
            )  # fmt: skip
            _append(bronze, self.bronze_path, self.app_id, batch_id, "event_date")
        return {"bronze_rows": accepted, "quarantined": sum(by_reason.values()), "quarantined_by_reason": by_reason}
