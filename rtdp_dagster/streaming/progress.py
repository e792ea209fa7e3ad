"""Per micro-batch progress of the stream: Delta `stream_progress`, `rtdp.stream.*` metrics, heartbeat.

Spark's own progress (rates, duration, watermark, offsets, state-operator counters) is merged
with what the micro-batch functions counted themselves (quarantined, TSDB writes, unknown hosts).
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
from rtdp_dagster.heartbeat import write_heartbeat
from rtdp_dagster.tsdb.put import TsdbPoint, TsdbWriteError, http_put

logger = logging.getLogger("rtdp.stream")

# Figures published as rtdp.stream.<name>, tagged with the query.
METRICS = (
    "input_rows_per_s", "processed_rows_per_s", "batch_duration_ms", "kafka_lag", "quarantined", "bronze_rows",
    "deduplicated", "late_for_realtime", "tsdb_written", "tsdb_failed", "unknown_hosts",
)  # fmt: skip
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


def _operator_sum(progress: dict[str, Any], key: str, custom: bool = False) -> int:
    total = 0
    for operator in progress.get("stateOperators", []):
        source = operator.get("customMetrics", {}) if custom else operator
        total += int(source.get(key, 0) or 0)
    return total


class ProgressRecorder:
    def __init__(self, settings: Settings, spark: SparkSession) -> None:
        self.settings, self.spark = settings, spark
        self.path = settings.delta.table_path("stream_progress")
        self.heartbeat_file = settings.run_dir / "stream" / "heartbeat.json"
        self._counted: dict[tuple[str, int], dict] = {}
        self._last_batch: dict[str, int] = {}
        self._rows: list[dict] = []
        self._latest: dict[str, dict] = {}
        self._lock = threading.Lock()
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
                batch_id = int(progress["batchId"])
                if batch_id <= self._last_batch.get(name, -1):
                    continue
                self._last_batch[name] = batch_id
                self._rows.append(self._row(name, batch_id, progress))

    def _row(self, name: str, batch_id: int, progress: dict[str, Any]) -> dict:
        with self._lock:
            counted = self._counted.pop((name, batch_id), {})
        lag = kafka_lag(progress)
        row = {
            "query": name,
            "batch_id": batch_id,
            "timestamp_ms": _epoch_ms(progress.get("timestamp")) or int(time.time() * 1000),
            "num_input_rows": int(progress.get("numInputRows", 0)),
            "input_rows_per_s": float(progress.get("inputRowsPerSecond", 0.0) or 0.0),
            "processed_rows_per_s": float(progress.get("processedRowsPerSecond", 0.0) or 0.0),
            "batch_duration_ms": int(progress.get("durationMs", {}).get("triggerExecution", 0)),
            "kafka_lag": sum(lag.values()),
            "quarantined": int(counted.get("quarantined", 0)),
            "bronze_rows": int(counted.get("bronze_rows", 0)),
            "deduplicated": _operator_sum(progress, "numDroppedDuplicateRows", custom=True),
            "late_for_realtime": _operator_sum(progress, "numRowsDroppedByWatermark"),
            "tsdb_written": int(counted.get("tsdb_written", 0)),
            "tsdb_failed": int(counted.get("tsdb_failed", 0)),
            "unknown_hosts": int(counted.get("unknown_hosts", 0)),
            "watermark_ms": _epoch_ms(progress.get("eventTime", {}).get("watermark")),
            "lag_by_partition": json.dumps(lag, sort_keys=True),
        }
        for key in ("quarantined", "bronze_rows", "deduplicated", "late_for_realtime", "tsdb_written", "tsdb_failed",
                    "unknown_hosts", "num_input_rows"):  # fmt: skip
            self.totals[f"{name}.{key}"] = self.totals.get(f"{name}.{key}", 0) + int(row[key])
        self._latest[name] = row
        return row

    def flush(self) -> None:
        rows, self._rows = self._rows, []
        if rows:
            frame = self.spark.createDataFrame([tuple(row[c] for c in _COLUMNS) for row in rows], schema=(
                "query string, batch_id long, timestamp_ms long, num_input_rows long, input_rows_per_s double, "
                "processed_rows_per_s double, batch_duration_ms long, kafka_lag long, quarantined long, "
                "bronze_rows long, deduplicated long, late_for_realtime long, tsdb_written long, tsdb_failed long, "
                "unknown_hosts long, watermark_ms long, lag_by_partition string"))  # fmt: skip
            frame.write.format("delta").mode("append").save(self.path)
            self._publish(rows)
        self.write_heartbeat()

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
        write_heartbeat(self.heartbeat_file, {"at": time.time(), "queries": self._latest, "totals": self.totals})
