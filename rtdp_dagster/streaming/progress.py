"""Per micro-batch progress of the stream: Delta `stream_progress`, `rtdp.stream.*` metrics, heartbeat.

Spark's own progress (rates, duration, offsets) is merged with what the micro-batch counted
itself. A batch gives one row per part, ``bronze`` and ``realtime`` (the ``query`` column and
tag): dashboards, the repair job and reconciliation read the two sinks' figures apart.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql.streaming.query import StreamingQuery

from rtdp_dagster.config import Settings
from rtdp_dagster.heartbeat import STREAM_BRONZE, STREAM_REALTIME, write_heartbeat
from rtdp_dagster.tsdb.put import TsdbPoint, TsdbWriteError, http_put

logger = logging.getLogger("rtdp.stream")

# Figures published as rtdp.stream.<name>, tagged with the query.
METRICS = (
    "input_rows_per_s",
    "processed_rows_per_s",
    "batch_duration_ms",
    "kafka_lag",
    "quarantined",
    "bronze_rows",
    "deduplicated",
    "late_for_realtime",
    "tsdb_written",
    "tsdb_failed",
    "unknown_hosts",
    "latency_avg_ms",
    "latency_max_ms",
)
# Progress rows are appended to Delta this often (metrics and heartbeat go out at every flush).
ROWS_EVERY_S = 30.0
# The parts of each micro-batch, each with a row of its own.
PARTS = (STREAM_BRONZE, STREAM_REALTIME)
_COLUMNS = ("query", "batch_id", "timestamp_ms", "num_input_rows", *METRICS, "watermark_ms", "lag_by_partition")


def _epoch_ms(iso: str | None) -> int | None:
    if not iso:
        return None
    import datetime as dt

    return int(dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def kafka_lag(progress: dict[str, Any]) -> dict[str, int]:
    """Records behind the latest offset, per topic-partition, after this batch."""
    lag: dict[str, int] = {}
    for source in progress.get("sources", []):
        latest, end = source.get("latestOffset"), source.get("endOffset")
        latest = json.loads(latest) if isinstance(latest, str) else latest
        end = json.loads(end) if isinstance(end, str) else end
        for topic, partitions in (latest or {}).items():
            for partition, offset in partitions.items():
                lag[f"{topic}/{partition}"] = max(0, int(offset) - int((end or {}).get(topic, {}).get(partition, 0)))
    return lag


class ProgressRecorder:
    def __init__(self, settings: Settings, spark: SparkSession) -> None:
        self.settings, self.spark = settings, spark
        self.path = settings.delta.table_path("stream_progress")
        self.heartbeat_file = settings.run_dir / "stream" / "heartbeat.json"
        self._counted: dict[tuple[str, int], dict] = {}
        self._last_batch: dict[str, int] = {}
        self._rows: list[dict] = []  # not published yet
        self._unwritten: list[dict] = []  # published, not in Delta yet
        self._appended_at = float("-inf")
        self._latest: dict[str, dict] = {}
        # What keeps the stream from running, for `rtdp stack status` (a failed query restarting); None: nothing.
        self.problem: str | None = None
        self._lock = threading.Lock()
        self._writer: threading.Thread | None = None
        self.totals: dict[str, int] = {}

    def count(self, query: str, batch_id: int, figures: dict) -> None:
        """Called by the micro-batch functions with what they counted themselves."""
        with self._lock:
            self._counted[(query, batch_id)] = figures

    def poll(self, queries: list[StreamingQuery]) -> None:
        for query in queries:
            name = query.name or "?"
            for item in query.recentProgress:
                progress = json.loads(item.json) if hasattr(item, "json") else dict(item)
                if "addBatch" not in progress.get("durationMs", {}):
                    continue  # an idle trigger: it reports the id the next real batch will have
                batch_id = int(progress["batchId"])
                if batch_id <= self._last_batch.get(name, -1):
                    continue
                self._last_batch[name] = batch_id
                self._log(batch_id, progress)
                self._rows += [self._row(part, batch_id, progress) for part in PARTS]

    @staticmethod
    def _log(batch_id: int, progress: dict[str, Any]) -> None:
        durations = progress.get("durationMs", {})
        steps = ", ".join(f"{k} {v}" for k, v in sorted(durations.items()) if k != "triggerExecution")
        logger.info(
            "batch %d: %d rows in %d ms (%s)",
            batch_id,
            int(progress.get("numInputRows", 0)),
            int(durations.get("triggerExecution", 0)),
            steps,
        )

    def _row(self, name: str, batch_id: int, progress: dict[str, Any]) -> dict:
        with self._lock:
            counted = self._counted.pop((name, batch_id), {})
        lag = kafka_lag(progress)
        row = {
            "query": name,
            "batch_id": batch_id,
            "timestamp_ms": _epoch_ms(progress.get("timestamp")) or int(time.time() * 1000),
            "num_input_rows": int(counted.get("num_input_rows", progress.get("numInputRows", 0))),
            "input_rows_per_s": float(progress.get("inputRowsPerSecond", 0.0) or 0.0),
            "processed_rows_per_s": float(progress.get("processedRowsPerSecond", 0.0) or 0.0),
            "batch_duration_ms": int(progress.get("durationMs", {}).get("triggerExecution", 0)),
            "kafka_lag": sum(lag.values()),
            "quarantined": int(counted.get("quarantined", 0)),
            "bronze_rows": int(counted.get("bronze_rows", 0)),
            "deduplicated": int(counted.get("deduplicated", 0)),
            "late_for_realtime": int(counted.get("late_for_realtime", 0)),
            "tsdb_written": int(counted.get("tsdb_written", 0)),
            "tsdb_failed": int(counted.get("tsdb_failed", 0)),
            "unknown_hosts": int(counted.get("unknown_hosts", 0)),
            "latency_avg_ms": int(counted.get("latency_avg_ms", 0)),
            "latency_max_ms": int(counted.get("latency_max_ms", 0)),
            "watermark_ms": counted.get("watermark_ms"),
            "lag_by_partition": json.dumps(lag, sort_keys=True),
        }
        for key in (
            "quarantined",
            "bronze_rows",
            "deduplicated",
            "late_for_realtime",
            "tsdb_written",
            "tsdb_failed",
            "unknown_hosts",
            "num_input_rows",
        ):
            self.totals[f"{name}.{key}"] = self.totals.get(f"{name}.{key}", 0) + int(row[key])
        self._latest[name] = row
        return row

    def flush(self, wait: bool = False) -> None:
        """Heartbeat and metrics now; the Delta rows every ``ROWS_EVERY_S``, in a background thread.

        The Delta append is a Spark job and a commit that compete with the stream's own
        micro-batches for the cores, and the heartbeat must not wait for it, or a busy stream would
        look dead. wait: the final flush, which writes every row left.
        """
        self.write_heartbeat()
        fresh, self._rows = self._rows, []
        if fresh:
            self._publish(fresh)
            self._unwritten += fresh
        if not wait and time.monotonic() - self._appended_at < ROWS_EVERY_S:
            return
        if self._writer is not None and self._writer.is_alive():
            if not wait:
                return  # the rows wait for the next flush
            self._writer.join()
        rows, self._unwritten = self._unwritten, []
        if not rows:
            return
        self._appended_at = time.monotonic()
        self._writer = threading.Thread(target=self._append, args=(rows,), name="stream-progress", daemon=True)
        self._writer.start()
        if wait:
            self._writer.join()

    def _append(self, rows: list[dict]) -> None:
        try:
            frame = self.spark.createDataFrame(
                [tuple(row[c] for c in _COLUMNS) for row in rows],
                schema=(
                    "query string, batch_id long, timestamp_ms long, num_input_rows long, input_rows_per_s double, "
                    "processed_rows_per_s double, batch_duration_ms long, kafka_lag long, quarantined long, "
                    "bronze_rows long, deduplicated long, late_for_realtime long, tsdb_written long, tsdb_failed long, "
                    "unknown_hosts long, latency_avg_ms long, latency_max_ms long, watermark_ms long, "
                    "lag_by_partition string"
                ),
            )
            # mergeSchema: a progress table from before a new figure was added keeps its rows.
            frame.write.format("delta").mode("append").option("mergeSchema", "true").save(self.path)
        except Exception:  # progress rows are a record, not the data: log and keep the stream going
            logger.exception("stream_progress: %d row(s) not written", len(rows))

    def _publish(self, rows: list[dict]) -> None:
        points = [
            TsdbPoint(f"rtdp.stream.{name}", row["timestamp_ms"], float(row[name]), {"query": row["query"]})
            for row in rows
            for name in METRICS
        ]
        try:
            http_put(self.settings.tsdb.realtime.put_http_url, points, timeout_s=2.0, attempts=1)
        except TsdbWriteError as exc:  # the stream's own metrics must never stop the stream
            logger.warning("stream metrics not written: %s", exc)

    def write_heartbeat(self) -> None:
        beat = {"at": time.time(), "queries": self._latest, "totals": self.totals}
        if self.problem is not None:
            beat["problem"] = self.problem
        write_heartbeat(self.heartbeat_file, beat)
