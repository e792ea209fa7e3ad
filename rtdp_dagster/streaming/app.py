"""`rtdp stream`: one streaming query from Kafka to both sinks, its progress, and a clean stop.

Each micro-batch's records are parsed by the query and checked (``micro_batch.MicroBatch``), then
it writes quarantine + bronze (exactly once per Kafka record) and, deduplicated within the watermark
and enriched with master data, the realtime TSDB. One query rather than one per sink: on two cores
reading and parsing Kafka twice cost more than everything else together. Its checkpoint folder is
``bronze`` (the name it had when it was the bronze query, so existing streams resume). SIGTERM
stops it between micro-batches; ``once`` drains what is on Kafka now (availableNow) and exits.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming.query import StreamingQuery

from rtdp_dagster.config import Settings
from rtdp_dagster.streaming import tables
from rtdp_dagster.streaming.bronze import BronzeWriter
from rtdp_dagster.streaming.clock import batch_time_ms
from rtdp_dagster.streaming.dedup import WatermarkDedup
from rtdp_dagster.streaming.micro_batch import MicroBatch
from rtdp_dagster.streaming.parse import parsed_records
from rtdp_dagster.streaming.progress import ProgressRecorder
from rtdp_dagster.streaming.realtime import MasterDataCache, RealtimeWriter
from rtdp_dagster.streaming.realtime_state import put_journal_file, restore_dedup_state, state_file

logger = logging.getLogger("rtdp.stream")

FLUSH_EVERY_S = 5.0
QUERY = "stream"
CHECKPOINT = "bronze"


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


# Larger fetches than the consumer's 1 MiB per partition: reading a 500k-record backlog took 2.3 s
# with the defaults and 1.0 s with these.
KAFKA_FETCH = {"kafka.max.partition.fetch.bytes": str(16 << 20), "kafka.fetch.max.bytes": str(64 << 20)}


def records_per_trigger(settings: Settings) -> int:
    """Records per micro-batch: the points budget over the most points a v2 record may hold."""
    budget = settings.stream.max_points_per_trigger
    if budget is None:
        return settings.stream.max_offsets_per_trigger
    return max(1, min(settings.stream.max_offsets_per_trigger, budget // settings.collection.ums_batch.max_points))


def kafka_stream(spark: SparkSession, settings: Settings) -> DataFrame:
    return (
        spark.readStream.format("kafka")
        .options(**KAFKA_FETCH)
        .options(**settings.kafka.spark_options())
        .option("subscribePattern", settings.stream.topic_pattern)
        .option("startingOffsets", "earliest")
        .option("maxOffsetsPerTrigger", records_per_trigger(settings))
        .option("minPartitions", settings.stream.min_partitions)
        .load()
    )


class StartPhases:
    """Seconds per step of a start, for the log: where a restart's time goes."""

    def __init__(self) -> None:
        self.began = self._last = time.monotonic()
        self.seconds: dict[str, float] = {}

    def done(self, step: str) -> None:
        now = time.monotonic()
        self.seconds[step] = now - self._last
        self._last = now

    def summary(self) -> str:
        steps = ", ".join(f"{step} {seconds:.1f} s" for step, seconds in self.seconds.items())
        return f"{time.monotonic() - self.began:.1f} s ({steps})"


def start_query(
    spark: SparkSession, settings: Settings, recorder: ProgressRecorder, once: bool, phases: StartPhases
) -> StreamingQuery:
    stream = settings.stream
    checkpoint = Path(stream.checkpoint_root) / CHECKPOINT
    bronze_path = settings.delta.table_path(tables.BRONZE)
    tables.ensure_bronze(spark, bronze_path)
    tables.ensure_quarantine(spark, settings.delta.table_path(tables.QUARANTINE))
    phases.done("tables")
    dedup = WatermarkDedup(int(stream.dedup_ttl_s * 1000))
    restore_dedup_state(spark, dedup, checkpoint, bronze_path)
    phases.done("dedup state")
    master = MasterDataCache(spark, settings.delta.table_path(settings.master_data.table), stream.master_check_s)
    realtime = RealtimeWriter(
        spark,
        settings.tsdb.realtime,
        settings.tsdb.timeout_s,
        stream.tsdb_put_chunk,
        master,
        settings.delta.table_path(tables.TSDB_REPAIR),
        dedup,
        state_file(checkpoint),
        put_journal_file(checkpoint),
    )
    bronze = BronzeWriter(bronze_path, settings.delta.table_path(tables.QUARANTINE), checkpoint_app_id(checkpoint))
    rules, kinds = settings.validation, settings.quality.metric_kinds
    micro_batch = MicroBatch(
        bronze, realtime, recorder.count, rules, kinds, lambda batch_id: batch_time_ms(checkpoint, batch_id)
    )
    # Parsed in the query: its expressions are built once, not for every micro-batch.
    writer = (
        parsed_records(kafka_stream(spark, settings), rules, kinds)
        .writeStream.queryName(QUERY)
        .foreachBatch(micro_batch)  # type: ignore[arg-type]
        .option("checkpointLocation", str(checkpoint))
    )
    if once:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=f"{stream.trigger_interval_s} seconds")
    query = writer.start()
    phases.done("query")
    return query


def _stop_between_batches(query: StreamingQuery, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while query.isActive and query.status.get("isTriggerActive") and time.monotonic() < deadline:
        time.sleep(0.1)
    query.stop()


class QueryRestarts:
    """When a failed query is started again: backoff doubling per failure in a row, up to a limit."""

    MAX_BACKOFF_S = 60.0

    def __init__(self, attempts: int, backoff_s: float, reset_s: float) -> None:
        self.attempts, self.backoff_s, self.reset_s = attempts, backoff_s, reset_s
        self.in_a_row = 0

    def after_failure(self, ran_s: float) -> float | None:
        """Seconds to wait before the next start, or None: give up."""
        self.in_a_row = 1 if ran_s >= self.reset_s else self.in_a_row + 1
        if self.in_a_row > self.attempts:
            return None
        return min(self.MAX_BACKOFF_S, self.backoff_s * 2 ** (self.in_a_row - 1))


# Wrappers around a query's failure; the cause is the last error line that is none of these.
_WRAPPERS = re.compile(r"py4j|Py4J|SparkException|StreamingQueryException")
_ERROR_LINE = re.compile(r"^\s*(?:Caused by: )?[\w.$]+(?:Error|Exception)\b")


def failure_cause(failure: object) -> str:
    """One line naming why a query failed (its error text is a Python traceback in Java's)."""
    lines = str(failure).splitlines()
    causes = [line.strip() for line in lines if _ERROR_LINE.match(line) and not _WRAPPERS.search(line)]
    return (causes[-1] if causes else lines[0] if lines else "unknown")[:300]


def run_stream(settings: Settings, stop: threading.Event, once: bool = False) -> dict[str, int]:
    """Run until stop is set (or, with once, until Kafka is drained); returns the totals.

    A query that fails is started again from its checkpoint (``QueryRestarts``): the batch it was
    in runs again, exactly once into bronze, and only what the realtime TSDB lacks is put. With
    once, a failure ends the run."""
    from rtdp_dagster.streaming.session import stream_session

    phases = StartPhases()
    spark = stream_session(settings)
    phases.done("Spark session")
    recorder = ProgressRecorder(settings, spark)
    stream = settings.stream
    restarts = QueryRestarts(0 if once else stream.restart_attempts, stream.restart_backoff_s, stream.restart_reset_s)
    query, started = start_query(spark, settings, recorder, once, phases), time.monotonic()
    logger.info(
        "stream running: query %s, checkpoints under %s; started in %s",
        query.name,
        stream.checkpoint_root,
        phases.summary(),
    )
    last_flush = time.monotonic()
    try:
        while not stop.is_set():
            failure = query.exception()
            if failure is not None:
                recorder.poll([query])
                wait_s = restarts.after_failure(time.monotonic() - started)
                if wait_s is None:
                    raise StreamError(f"query {query.name} failed: {failure}")
                logger.error(
                    "query %s failed (%d in a row); starting it again from its checkpoint in %.0f s: %s",
                    query.name,
                    restarts.in_a_row,
                    wait_s,
                    failure,
                )
                recorder.problem = f"query failed ({restarts.in_a_row} in a row), restarting: {failure_cause(failure)}"
                recorder.write_heartbeat()
                if stop.wait(wait_s):
                    break
                query, started = start_query(spark, settings, recorder, once, StartPhases()), time.monotonic()
                logger.info("stream running again: query %s (restart %d in a row)", query.name, restarts.in_a_row)
                continue
            recorder.poll([query])
            if recorder.problem is not None and query.lastProgress is not None:
                recorder.problem = None  # the query started again has run a trigger
            if time.monotonic() - last_flush >= FLUSH_EVERY_S:
                recorder.flush()
                last_flush = time.monotonic()
            if once and not query.isActive:
                break
            stop.wait(0.5)
        if stop.is_set():
            logger.info("stream: stop requested; stopping between micro-batches")
    finally:
        if query.isActive:
            _stop_between_batches(query, settings.stack.stop_timeout_s)
        recorder.poll([query])
        recorder.flush(wait=True)
        logger.info("stream stopped: %s", recorder.totals)
    return recorder.totals
