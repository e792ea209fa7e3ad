"""The bronze query's micro-batch: invalid rows to quarantine, valid rows to bronze, exactly once.

Both writes carry Delta's idempotent-transaction options (txnAppId = this checkpoint's app id,
txnVersion = the batch id): a batch replayed after a crash skips every table it already
committed to, so each Kafka record lands exactly once in bronze or quarantine. A table with no
rows in a batch gets no commit (validation is deterministic, so a replay decides the same).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from rtdp_dagster.envelope.metric_kinds import MetricKinds
from rtdp_dagster.envelope.validation import PointRules
from rtdp_dagster.streaming.parse import verdicts
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
        self,
        bronze_path: str,
        quarantine_path: str,
        app_id: str,
        record: Callable[[str, int, dict], None],
        rules: PointRules,
        kinds: MetricKinds | None = None,
    ) -> None:
        self.bronze_path, self.quarantine_path, self.app_id, self.record = bronze_path, quarantine_path, app_id, record
        self.rules, self.kinds = rules, kinds

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        """batch: ``checked_records`` of one micro-batch."""
        ingested_at = int(time.time() * 1000)
        stamp = [F.lit(batch_id).cast("long").alias("batch_id"), F.lit(ingested_at).cast("long").alias("ingested_at")]
        rejected = F.col("reason").isNotNull()
        # Cached once so Kafka is read and the JSON parsed once per record. The raw record is kept
        # only where Python still has to judge it (quarantine needs it, bronze does not).
        slow = ~F.col("native_valid")
        cached = batch.select(
            "native_valid", *KAFKA_COORDINATES, "envelope",
            *[F.when(slow, F.col(name)).alias(name) for name in ("raw_key", "raw_value", "raw_bytes")],
        ).persist()  # fmt: skip
        try:
            with verdicts(cached, self.rules, self.kinds) as judged:
                by_reason = {row["reason"]: row["count"] for row in judged.groupBy("reason").count().collect()}
                if any(reason is not None for reason in by_reason):
                    quarantine = judged.where(rejected).select(
                        "raw_key", "raw_value", "reason", "detail", *KAFKA_COORDINATES, *stamp,
                        F.to_date(F.col("kafka_timestamp")).alias("received_date"),
                    )  # fmt: skip
                    _append(quarantine, self.quarantine_path, self.app_id, batch_id, "received_date")
                if None in by_reason:
                    bronze = judged.where(~rejected).select(
                        *[F.col(f"envelope.{name}").alias(name) for name in ENVELOPE_FIELDS], *KAFKA_COORDINATES,
                        *stamp, F.to_date(F.timestamp_millis(F.col("envelope.ums_ts_"))).alias("event_date"),
                    )  # fmt: skip
                    _append(bronze, self.bronze_path, self.app_id, batch_id, "event_date")
        finally:
            cached.unpersist()
        bronze_rows = by_reason.pop(None, 0)
        self.record("bronze", batch_id, {"bronze_rows": bronze_rows, "quarantined": sum(by_reason.values()),
                                         "quarantined_by_reason": by_reason})  # fmt: skip
