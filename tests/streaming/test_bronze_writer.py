"""Bronze and quarantine take each micro-batch once, also when a restarted stream runs a batch again.

Spark re-runs, after a restart, the last batch it had not marked committed; the writer of the new
process must recognise it from the table, whether the earlier commit carried the writer's tag or
only Delta's txnAppId/txnVersion (streams from before the tag).
"""

from __future__ import annotations

import time
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from rtdp_dagster.envelope.metric_kinds import MetricKinds
from rtdp_dagster.envelope.schema import encode
from rtdp_dagster.envelope.validation import PointRules
from rtdp_dagster.streaming import tables
from rtdp_dagster.streaming.bronze import BronzeWriter, _tagged_batch, commit_tag, last_committed_batch
from rtdp_dagster.streaming.parse import checked_records, parsed_records, verdicts
from tests.streaming.test_parse import kafka_frame
from tests.streaming.test_stream_mix import envelope


def _write(spark, writer: BronzeWriter, batch_id: int, first_offset: int) -> None:
    """A batch of two valid records and one malformed one, at Kafka offsets from first_offset."""
    now = int(time.time() * 1000)
    values = [encode(envelope("site01-host0001", now - 5_000 - i, 1.0, version=1)) for i in range(2)] + [b"{no"]
    kafka = kafka_frame(spark, values, now).withColumn("offset", F.col("offset") + first_offset)
    checked = checked_records(
        parsed_records(kafka, PointRules(), MetricKinds()), PointRules(), receive_ms=now
    ).persist()
    try:
        with verdicts(checked, PointRules(), MetricKinds()) as judged:
            writer.write(judged, batch_id, accepted=2, by_reason={"invalid_json": 1})
    finally:
        checked.unpersist()


def _offsets(spark, path: str) -> list[int]:
    frame: DataFrame = spark.read.format("delta").load(path)
    return sorted(row["kafka_offset"] for row in frame.select("kafka_offset").collect())


def _tables(spark, tmp_path: Path) -> tuple[str, str]:
    bronze, quarantine = str(tmp_path / "bronze"), str(tmp_path / "quarantine")
    tables.ensure_bronze(spark, bronze)
    tables.ensure_quarantine(spark, quarantine)
    return bronze, quarantine


def test_a_batch_run_again_after_a_restart_lands_once(spark, tmp_path: Path) -> None:
    bronze, quarantine = _tables(spark, tmp_path)
    before = BronzeWriter(bronze, quarantine, "app-restart")
    _write(spark, before, 0, first_offset=0)
    _write(spark, before, 1, first_offset=3)
    # The restarted process: batch 1 again (committed to both tables, not marked in the checkpoint), then 2.
    after = BronzeWriter(bronze, quarantine, "app-restart")
    _write(spark, after, 1, first_offset=3)
    _write(spark, after, 2, first_offset=6)

    assert _offsets(spark, bronze) == [0, 1, 3, 4, 6, 7]
    assert _offsets(spark, quarantine) == [2, 5, 8]
    assert last_committed_batch(spark, bronze, "app-restart") == 2
    assert last_committed_batch(spark, quarantine, "app-restart") == 2
    assert last_committed_batch(spark, bronze, "another-app") == -1
    assert last_committed_batch(spark, str(tmp_path / "not_yet"), "app-restart") == -1


def test_a_batch_committed_before_commits_were_tagged_lands_once(spark, tmp_path: Path) -> None:
    bronze, quarantine = _tables(spark, tmp_path)
    # How the stream wrote before the tag: Delta's idempotent-transaction options only.
    legacy = spark.read.format("delta").load(bronze).limit(0)
    legacy.write.format("delta").mode("append").option("txnAppId", "app-legacy").option("txnVersion", 4).save(bronze)
    _write(spark, BronzeWriter(bronze, quarantine, "app-legacy"), 5, first_offset=10)
    history = spark.sql(f"DESCRIBE HISTORY delta.`{bronze}`").select("version").count()

    restarted = BronzeWriter(bronze, quarantine, "app-legacy")
    _write(spark, restarted, 5, first_offset=10)  # tagged: found in the history, no commit at all
    assert spark.sql(f"DESCRIBE HISTORY delta.`{bronze}`").select("version").count() == history
    assert _offsets(spark, bronze) == [10, 11]

    # A writer whose first batch was committed with the txn options only: Delta's own check skips it.
    untagged = BronzeWriter(bronze, quarantine, "app-legacy-2")
    spark.read.format("delta").load(bronze).where(F.col("kafka_offset") == 10).write.format("delta").mode(
        "append"
    ).option("txnAppId", "app-legacy-2").option("txnVersion", 7).save(bronze)
    _write(spark, untagged, 7, first_offset=20)
    assert _offsets(spark, bronze) == [10, 10, 11]


def test_only_the_writers_own_tags_count() -> None:
    assert _tagged_batch(commit_tag("a", 3), "a") == 3
    assert _tagged_batch(commit_tag("b", 3), "a") is None
    assert _tagged_batch("nightly compaction", "a") is None
    assert _tagged_batch(None, "a") is None
    assert _tagged_batch('{"app_id": "a", "batch_id": "3"}', "a") is None


def test_an_existing_bronze_table_gets_the_current_properties(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "old_bronze")
    tables.ensure_table(spark, path, tables.BRONZE_SCHEMA, "event_date")  # as an earlier version created it
    tables.ensure_bronze(spark, path)
    properties = spark.sql(f"DESCRIBE DETAIL delta.`{path}`").select("properties").first()["properties"]
    assert {key: properties.get(key) for key in tables.BRONZE_PROPERTIES} == tables.BRONZE_PROPERTIES
