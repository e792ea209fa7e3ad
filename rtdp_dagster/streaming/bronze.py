"""The bronze half of a micro-batch: invalid rows to quarantine, valid rows to bronze, exactly once.

Every commit names its writer (the checkpoint's app id) and batch in Delta's ``userMetadata``. Only
the first batch a process runs can be one an earlier process already committed (Spark replays the
last batch that has offsets but no commit), so only a writer's first commit to each table checks:
the table's recent history for its own tag, and, for commits written before the tag existed,
Delta's txnAppId/txnVersion. Later commits skip that check: in Delta 4.4 the txnVersion lookup
rebuilds the whole table state (three Spark jobs, 0.5 s per batch on a small table, growing with
it). A table with no rows in a batch gets no commit (validation is deterministic, so a replay
decides the same).
"""

from __future__ import annotations

import json
import time

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from rtdp_dagster.spark.session import delta_table_sql, is_missing_table
from rtdp_dagster.streaming.tables import KAFKA_COORDINATES, envelope_columns

# Commits looked at first for a writer's last batch; the whole history only when none is found.
RECENT_COMMITS = 100


def commit_tag(app_id: str, batch_id: int, planned_at: int | None = None) -> str:
    """planned_at: the micro-batch's time in the query's offset log (taken just after Spark read the
    Kafka end offsets it covers); reconciliation tells records still in flight by it."""
    tag: dict[str, object] = {"app_id": app_id, "batch_id": batch_id}
    if planned_at is not None:
        tag["planned_at"] = planned_at
    return json.dumps(tag, sort_keys=True)


def _tag(user_metadata: str | None) -> dict | None:
    try:
        tag = json.loads(user_metadata or "")
    except ValueError:
        return None  # another writer's free-form metadata
    return tag if isinstance(tag, dict) and isinstance(tag.get("batch_id"), int) else None


def _tagged_batch(user_metadata: str | None, app_id: str) -> int | None:
    tag = _tag(user_metadata)
    return tag["batch_id"] if tag is not None and tag.get("app_id") == app_id else None


def _recent_metadata(spark: SparkSession, path: str, limit: int | None) -> list[str | None] | None:
    """The userMetadata of the table's newest commits (all with limit None); None: no table."""
    query = f"DESCRIBE HISTORY {delta_table_sql(path)}" + (f" LIMIT {limit}" if limit else "")
    try:
        return [row["userMetadata"] for row in spark.sql(query).select("userMetadata").collect()]
    except AnalysisException as exc:
        if is_missing_table(exc) or exc.getCondition() == "DELTA_TABLE_ONLY_OPERATION":
            return None
        raise


def last_committed_batch(spark: SparkSession, path: str, app_id: str) -> int:
    """The highest batch app_id committed to the table at path, by its commits' tags; -1 if none
    (also when there is no table yet: a writer's first commit may create it)."""
    for limit in (RECENT_COMMITS, None):
        commits = _recent_metadata(spark, path, limit)
        if commits is None:
            return -1
        batches = [batch for metadata in commits if (batch := _tagged_batch(metadata, app_id)) is not None]
        if batches:
            return max(batches)
        if limit is not None and len(commits) < limit:
            break  # that was the whole history
    return -1


def last_planned_at(spark: SparkSession, path: str) -> int | None:
    """The newest micro-batch time among the stream's recent commits to the table at path: every record
    Kafka had confirmed before it is in the table (or in quarantine, written first). None: no such commit."""
    commits = _recent_metadata(spark, path, RECENT_COMMITS) or []
    planned = [tag["planned_at"] for metadata in commits if (tag := _tag(metadata)) and "planned_at" in tag]
    return max(planned, default=None)


def _stamp(spark: SparkSession, batch_id: int, ingested_at: int) -> DataFrame:
    """The batch's id and landing time, as a one-row table to join to its rows.

    Not literals: Spark compiles a literal into the generated code, so every batch generated new
    classes for the JIT to compile again (40% of the stream's CPU at 10k points/s).
    """
    values = f"VALUES ({int(batch_id)}L, {int(ingested_at)}L) AS stamp(batch_id, ingested_at)"
    return F.broadcast(spark.sql(f"SELECT * FROM {values}"))


class BronzeWriter:
    def __init__(self, bronze_path: str, quarantine_path: str, app_id: str) -> None:
        self.bronze_path, self.quarantine_path, self.app_id = bronze_path, quarantine_path, app_id
        self._checked: set[str] = set()  # tables this writer has committed to (or checked) already

    def _append(self, frame: DataFrame, path: str, batch_id: int, partition_by: str, planned_at: int | None) -> None:
        writer = frame.write.format("delta").mode("append").partitionBy(partition_by)
        writer = writer.option("userMetadata", commit_tag(self.app_id, batch_id, planned_at))
        # Tables created before a column was added (kafka_index, raw_size) gain it on their next append.
        writer = writer.option("mergeSchema", "true")
        if path not in self._checked:
            if last_committed_batch(frame.sparkSession, path, self.app_id) >= batch_id:
                self._checked.add(path)
                return  # a replayed batch: an earlier process committed it
            # Delta's own check covers commits written before they carried the tag.
            writer = writer.option("txnAppId", self.app_id).option("txnVersion", batch_id)
        writer.save(path)
        self._checked.add(path)

    def write(
        self,
        judged: DataFrame,
        batch_id: int,
        accepted: int,
        by_reason: dict[str, int],
        planned_at: int | None = None,
    ) -> dict:
        """judged: one micro-batch's ``verdicts`` (cached); accepted: how many of them have no reason,
        by_reason: how many of the others have each reason (the caller counted them already);
        planned_at: the micro-batch's time in the offset log (none for a replay).

        Returns the batch's figures for the progress table.
        """
        stamp = _stamp(judged.sparkSession, batch_id, int(time.time() * 1000))
        if by_reason:
            quarantine = (
                judged.where(F.col("reason").isNotNull())
                .crossJoin(stamp)
                .select(
                    "raw_key",
                    "raw_value",
                    "reason",
                    "detail",
                    "raw_size",
                    *KAFKA_COORDINATES,
                    "batch_id",
                    "ingested_at",
                    F.to_date(F.col("kafka_timestamp")).alias("received_date"),
                )
            )
            self._append(quarantine, self.quarantine_path, batch_id, "received_date", planned_at)
        if accepted:
            bronze = (
                judged.where(F.col("reason").isNull())
                .crossJoin(stamp)
                .select(
                    *envelope_columns(),
                    *KAFKA_COORDINATES,
                    "batch_id",
                    "ingested_at",
                    F.to_date(F.timestamp_millis(F.col("envelope.ums_ts_"))).alias("event_date"),
                )
            )
            self._append(bronze, self.bronze_path, batch_id, "event_date", planned_at)
        return {"bronze_rows": accepted, "quarantined": sum(by_reason.values()), "quarantined_by_reason": by_reason}
