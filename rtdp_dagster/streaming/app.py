"""`rtdp stream`: the two streaming queries, their progress, and a clean stop.

- ``bronze``: Kafka → validate → quarantine + bronze (exactly once per Kafka record);
- ``realtime``: Kafka → the same validation → dedup within the watermark → master data →
  realtime TSDB. It reads Kafka itself, beside bronze rather than after it: waiting for bronze's
  Delta commit and reading it back doubled the latency. Both keep exactly the records the same
  rules accept, so the TSDB holds no point that bronze will not.
Each query has its own checkpoint folder. SIGTERM stops each query between micro-batches;
``once`` drains what is on Kafka now (availableNow) and exits.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming.query import StreamingQuery

from rtdp_dagster.config import Settings
from rtdp_dagster.streaming import tables
from rtdp_dagster.streaming.bronze import BronzeWriter
from rtdp_dagster.streaming.parse import accepted_records, checked_records
from rtdp_dagster.streaming.progress import ProgressRecorder
from rtdp_dagster.streaming.realtime import MasterDataCache, RealtimeWriter

logger = logging.getLogger("rtdp.stream")

FLUSH_EVERY_S = 5.0
# The realtime query's checkpoint folder. It reads Kafka now; "realtime" held the offsets of the
# bronze Delta stream it read before, which a Kafka source cannot resume from.
REALTIME_CHECKPOINT = "realtime-kafka"
LEGACY_REALTIME_CHECKPOINT = "realtime"


class StreamError(Exception):
    """A streaming query failed; its checkpoint lets a restart resume where it stopped."""


def checkpoint_app_id(checkpoint: Path) -> str:
    """A stable id for Delta's idempotent writes, renewed only with a fresh checkpoint.

    Batch ids restart at 0 in a new checkpoint; a new app id keeps Delta from skipping them.
    """
    id_file = checkpoint.parent / f"{checkpoint.name}.txn-app-id"
    if (checkpoint / "offsets").exists() and id_file.exists():
        return id_file.read_text().strip()
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    app_id = f"rtdp-{checkpoint.name}-{uuid.uuid4().hex[:12]}"
    id_file.write_text(app_id)
    return app_id


def committed_offsets(checkpoint: Path) -> str | None:
    """The Kafka end offsets (JSON) of a query's last committed micro-batch, from its checkpoint."""
    commits = checkpoint / "commits"
    done = [int(name.name) for name in commits.iterdir() if name.name.isdigit()] if commits.is_dir() else []
    if not done:
        return None
    lines = (checkpoint / "offsets" / str(max(done))).read_text().strip().splitlines()
    return lines[-1] if len(lines) >= 3 and lines[-1].startswith("{") else None


def realtime_starting_offsets(root: Path) -> str:
    """Earliest for a new stream. After an upgrade from the bronze-fed realtime query (its old
    checkpoint present, the new one not), where bronze has committed: the old query had written
    (nearly) all of that, and re-reading Kafka from the start would write every point twice."""
    if (root / REALTIME_CHECKPOINT / "offsets").exists() or not (root / LEGACY_REALTIME_CHECKPOINT).exists():
        return "earliest"
    offsets = committed_offsets(root / "bronze")
    if offsets is None:
        return "earliest"
    logger.warning("realtime: checkpoint %s is of the bronze-fed query; starting a new one in %s at bronze's "
                   "committed Kafka offsets %s", root / LEGACY_REALTIME_CHECKPOINT, root / REALTIME_CHECKPOINT,
                   offsets)  # fmt: skip
    return offsets


def kafka_stream(spark: SparkSession, settings: Settings, starting_offsets: str = "earliest") -> DataFrame:
    return (
        spark.readStream.format("kafka")
        .options(**settings.kafka.spark_options())
        .option("subscribePattern", settings.stream.topic_pattern)
        .option("startingOffsets", starting_offsets)
        .option("maxOffsetsPerTrigger", settings.stream.max_offsets_per_trigger)
        .load()
    )


class QueryStarter:
    """Starts the stream's queries, each with its checkpoint folder and trigger."""

    def __init__(self, spark: SparkSession, settings: Settings, recorder: ProgressRecorder, once: bool) -> None:
        self.spark, self.settings, self.recorder, self.once = spark, settings, recorder, once
        self.root = Path(settings.stream.checkpoint_root)

    def _start(self, frame: DataFrame, name: str, batch_function: object, checkpoint: str) -> StreamingQuery:
        writer = (
            frame.writeStream.queryName(name)
            .foreachBatch(batch_function)  # type: ignore[arg-type]
            .option("checkpointLocation", str(self.root / checkpoint))
        )
        if self.once:
            writer = writer.trigger(availableNow=True)
        else:
            writer = writer.trigger(processingTime=f"{self.settings.stream.trigger_interval_s} seconds")
        return writer.start()

    def bronze(self) -> StreamingQuery:
        settings = self.settings
        tables.ensure_bronze(self.spark, settings.delta.table_path(tables.BRONZE))
        tables.ensure_quarantine(self.spark, settings.delta.table_path(tables.QUARANTINE))
        kafka = kafka_stream(self.spark, settings)
        checked = checked_records(kafka, settings.validation, settings.quality.metric_kinds)
        writer = BronzeWriter(
            settings.delta.table_path(tables.BRONZE), settings.delta.table_path(tables.QUARANTINE),
            checkpoint_app_id(self.root / "bronze"), self.recorder.count, settings.validation,
            settings.quality.metric_kinds,
        )  # fmt: skip
        return self._start(checked, "bronze", writer, "bronze")

    def realtime(self) -> StreamingQuery:
        settings = self.settings
        master = MasterDataCache(
            self.spark, settings.delta.table_path(settings.master_data.table), settings.stream.master_check_s
        )
        writer = RealtimeWriter(
            self.spark, settings.tsdb.realtime, settings.tsdb.timeout_s, settings.stream.tsdb_put_chunk, master,
            settings.delta.table_path(tables.TSDB_REPAIR), self.recorder.count,
        )  # fmt: skip
        checked = checked_records(
            kafka_stream(self.spark, settings), settings.validation, settings.quality.metric_kinds
        )
        deduplicated = (
            accepted_records(checked, settings.validation, settings.quality.metric_kinds)
            .select(*[F.col(f"envelope.{name}").alias(name) for name in tables.ENVELOPE_FIELDS], "kafka_timestamp")
            .withColumn("event_time", F.timestamp_millis("ums_ts_"))
            .withWatermark("event_time", f"{int(settings.stream.dedup_ttl_s)} seconds")
            # A re-read (same point, value and operation) is a duplicate; a correction is not.
            .dropDuplicatesWithinWatermark(["point_key", "value", "ums_op_"])
        )
        return self._start(deduplicated, "realtime", writer, REALTIME_CHECKPOINT)


def _stop_between_batches(query: StreamingQuery, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while query.isActive and query.status.get("isTriggerActive") and time.monotonic() < deadline:
        time.sleep(0.1)
    query.stop()


def run_stream(settings: Settings, stop: threading.Event, once: bool = False) -> dict[str, int]:
    """Run until stop is set (or, with once, until Kafka is drained); returns the totals."""
    from rtdp_dagster.streaming.session import stream_session

    spark = stream_session(settings)
    recorder = ProgressRecorder(settings, spark)
    starter = QueryStarter(spark, settings, recorder, once)
    queries = [starter.bronze(), starter.realtime()]
    logger.info("stream running: queries %s, checkpoints under %s", [q.name for q in queries],
                settings.stream.checkpoint_root)  # fmt: skip
    last_flush = time.monotonic()
    try:
        while not stop.is_set():
            for query in queries:
                if query.exception() is not None:
                    raise StreamError(f"query {query.name} failed: {query.exception()}")
            recorder.poll(queries)
            if time.monotonic() - last_flush >= FLUSH_EVERY_S:
                recorder.flush()
                last_flush = time.monotonic()
            if once and not any(query.isActive for query in queries):
                break
            stop.wait(0.5)
    finally:
        for query in queries:
            if query.isActive:
                _stop_between_batches(query, settings.stack.stop_timeout_s)
        recorder.poll(queries)
        recorder.flush(wait=True)
        logger.info("stream stopped: %s", recorder.totals)
    return recorder.totals
