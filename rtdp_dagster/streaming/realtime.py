"""The realtime TSDB half of a micro-batch: dedup within the watermark, master data, bulk put.

The JVM does the per-row work (master-data join, OpenTSDB JSON of each point, dedup hashes); the
driver gets those few columns as Arrow and decides with numpy what is written:

1. late rows (behind the watermark) and duplicates (same point_key, value and op: a re-read by a
   later wave) are dropped and counted (``dedup.WatermarkDedup``);
2. of a point's versions inside one batch only the latest is written, so the TSDB never has to
   order two samples of equal timestamp that arrived together; a correction in a later batch is
   written after its original, so queries return it;
3. a retraction cannot delete one sample of a TSDB series: it is counted and left to the batch layer.

When the TSDB cannot be reached, the time range of the points not written is recorded in the
``tsdb_repair`` table for the repair job and the batch goes on: bronze never waits for the TSDB.

Before a batch's first put its id goes to the put journal; a batch that runs again under that id
(its bronze write failed after the put) puts only what the TSDB does not hold (``realtime_replay``).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import requests
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from rtdp_dagster.config import TsdbEndpoint
from rtdp_dagster.master_data.lookup import master_data_tags, with_master_data
from rtdp_dagster.streaming.dedup import WatermarkDedup
from rtdp_dagster.streaming.realtime_replay import already_held
from rtdp_dagster.streaming.realtime_state import (
    AcknowledgedPuts,
    dedup_hash,
    last_put_begun,
    mark_put_begun,
    save_max_event,
    saved_tsdb_state,
)
from rtdp_dagster.tsdb.put import TsdbWriteError, http_put_json
from rtdp_dagster.tsdb.restarts import RestartWatch, start_time

logger = logging.getLogger("rtdp.stream")

# Attempts per put request; once one request has failed them all the TSDB is taken as down and the
# rest of the batch is recorded for repair at once (a dead TSDB must not hold bronze up for long).
PUT_ATTEMPTS = 3
# How long the TSDB may hold acknowledged points in memory only (VictoriaMetrics' default
# -inmemoryDataFlushInterval is 5 s), with a margin.
ACKNOWLEDGED_AT_RISK_S = 15.0


class MasterDataCache:
    """The current master-data hosts, re-read between micro-batches when a new version appears."""

    def __init__(self, spark: SparkSession, path: str, check_every_s: float = 5.0) -> None:
        self.spark, self.path, self.check_every_s = spark, path, check_every_s
        self.version: int | None = None
        self.hosts: DataFrame | None = None
        self._checked = 0.0

    def current(self) -> DataFrame | None:
        if time.monotonic() - self._checked >= self.check_every_s:
            self._checked = time.monotonic()
            try:
                self._refresh()
            except Exception as exc:  # a lookup: the stream goes on with the version it has
                logger.warning("master data at %s not read (version %s stays): %s", self.path, self.version, exc)
        return self.hosts

    def _refresh(self) -> None:
        from rtdp_dagster.master_data.lookup import hosts_as_of, latest_version

        version = latest_version(self.spark, self.path)
        if version != self.version:
            hosts = None if version is None else hosts_as_of(self.spark, self.path).cache()
            if self.hosts is not None:
                self.hosts.unpersist()
            self.hosts, self.version = hosts, version


def realtime_rows(accepted: DataFrame, hosts: DataFrame | None) -> DataFrame:
    """Per accepted row (bronze's columns) what the driver needs to decide and write it.

    The verdict columns ``native_valid`` and ``reason`` are passed through where present: a caller
    that sends rows not accepted yet sets those aside by them; so is ``received_ms``, which caps how
    far a row moves the dedup watermark.
    """
    enriched = with_master_data(accepted, hosts)
    tags = master_data_tags()
    point = F.struct(F.col("metric"), F.col("ums_ts_").alias("timestamp"), F.col("value"), tags.alias("tags"))
    return enriched.select(
        *[name for name in ("native_valid", "reason", "received_ms") if name in accepted.columns],
        F.to_json(point).alias("put_json"),
        F.xxhash64("point_key").alias("point_hash"),
        dedup_hash().alias("dedup_hash"),
        "ums_id_",
        "ums_ts_",
        (F.col("ums_op_") == "d").alias("retraction"),
        "host_known",
        F.unix_millis("kafka_timestamp").alias("kafka_ms"),
    )


def latest_versions(point_hash: np.ndarray, version: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Of the given row indices, the one with the highest version of each point."""
    if not len(rows):
        return rows
    order = rows[np.lexsort((version[rows], point_hash[rows]))]  # by point, then version
    hashes = point_hash[order]
    last_of_point = np.append(hashes[1:] != hashes[:-1], True)
    return order[last_of_point]


class RealtimeWriter:
    def __init__(
        self,
        spark: SparkSession,
        tsdb: TsdbEndpoint,
        timeout_s: float,
        chunk: int,
        master: MasterDataCache,
        repair_path: str,
        dedup: WatermarkDedup,
        state_file: Path | None = None,
        put_journal: Path | None = None,
    ) -> None:
        self.spark, self.master, self.repair_path, self.dedup = spark, master, repair_path, dedup
        self.state_file, self.put_journal = state_file, put_journal
        self.put_begun = last_put_begun(put_journal) if put_journal is not None else None
        self.query_url = tsdb.url
        self.put_url, self.timeout_s, self.chunk = tsdb.put_http_url, timeout_s, chunk
        self.session = requests.Session()
        # What the TSDB acknowledged lately and its start time, as the stream's last run left them: a
        # TSDB killed soon after that run's last put is repaired too.
        self.acknowledged, known, known_at = (
            saved_tsdb_state(state_file, ACKNOWLEDGED_AT_RISK_S)
            if state_file is not None
            else (AcknowledgedPuts(ACKNOWLEDGED_AT_RISK_S), None, None)
        )
        # A short timeout: a TSDB that does not answer now fails the put that follows anyway.
        self.restarts = RestartWatch(
            lambda: start_time(self.session, tsdb.url, min(timeout_s, 2.0)), known=known, known_at=known_at
        )

    def collect(self, accepted: DataFrame) -> pa.Table:
        """The realtime columns of a batch's rows (a Spark job); see ``realtime_rows``."""
        return realtime_rows(accepted, self.master.current()).toArrow()

    def __call__(self, accepted: DataFrame, batch_id: int) -> dict:
        return self.write(self.collect(accepted), batch_id)

    def write(self, rows: pa.Table, batch_id: int) -> dict:
        """Decide and put one batch's rows; returns its figures for the progress table."""
        column = {name: rows.column(name).to_numpy(zero_copy_only=False) for name in rows.column_names}
        max_event_before = self.dedup.max_event_ms
        admitted = self.dedup.admit(column["dedup_hash"], column["ums_ts_"], column.get("received_ms"))
        latest = latest_versions(column["point_hash"], column["ums_id_"], np.flatnonzero(admitted.keep))
        retraction = column["retraction"][latest]
        to_write = np.sort(latest[~retraction])  # in Kafka order
        restarted_after = self.restarts.restarted_after() if len(to_write) else None
        to_write, held, unread = self._not_held_if_replayed(column["put_json"], to_write, batch_id)
        if len(to_write) and self.put_journal is not None and batch_id != self.put_begun:
            mark_put_begun(self.put_journal, batch_id)  # raises on a full disk: then nothing was put
            self.put_begun = batch_id
        written, failed, latencies = self._put(column["put_json"], column["kafka_ms"], to_write)
        failed = np.concatenate([unread, failed])
        now = time.time()
        recorded_at = int(now * 1000)
        for_repair = []
        if restarted_after is not None:
            # Killed and back with no put failing, some time after the look that read its old start
            # time: what it acknowledged in the seconds before the kill may be gone.
            at_risk = self.acknowledged.at_risk(since=restarted_after - ACKNOWLEDGED_AT_RISK_S)
            logger.warning("the realtime TSDB restarted since the last micro-batch; at risk: %s", at_risk)
            if at_risk is not None:
                for_repair.append((batch_id, *at_risk, recorded_at))
        if len(failed):
            # The whole batch's range: chunks of it the TSDB acknowledged before it failed are at risk too.
            timestamps = column["ums_ts_"][np.concatenate([to_write, unread])]
            for_repair.append((batch_id, int(timestamps.min()), int(timestamps.max()), len(failed), recorded_at))
            at_risk = self.acknowledged.at_risk()
            if at_risk is not None:
                for_repair.append((batch_id, *at_risk, recorded_at))
        elif written:
            written_ts = column["ums_ts_"][to_write]
            self.acknowledged.add(now, int(written_ts.min()), int(written_ts.max()), written)
        if for_repair:
            self.spark.createDataFrame(
                for_repair, "batch_id long, min_ts long, max_ts long, failed long, recorded_at long"
            ).write.format("delta").mode("append").save(self.repair_path)
        if self.state_file is not None:
            save_max_event(self.state_file, batch_id, max_event_before, self.dedup.max_event_ms, self._tsdb_state())
        return {
            "tsdb_written": written,
            "tsdb_failed": len(failed),
            "tsdb_already_held": held,
            "deduplicated": admitted.duplicates,
            "late_for_realtime": admitted.late,
            "unknown_hosts": int((~column["host_known"][to_write]).sum()),
            "retractions_not_applied": int(retraction.sum()),
            "latency_avg_ms": int(latencies.mean()) if len(latencies) else 0,
            "latency_max_ms": int(latencies.max()) if len(latencies) else 0,
            "watermark_ms": self.dedup.watermark_ms,
            "master_version": self.master.version,
        }

    def _not_held_if_replayed(
        self, points_json: np.ndarray, rows: np.ndarray, batch_id: int
    ) -> tuple[np.ndarray, int, np.ndarray]:
        """(rows to put, how many the TSDB already held, rows not put because it could not be read).

        Only for the batch whose put the journal says began: it runs again after a failure."""
        if batch_id != self.put_begun or not len(rows):
            return rows, 0, rows[:0]
        try:
            held = already_held(self.query_url, points_json[rows], self.timeout_s)
        except requests.RequestException as exc:
            logger.warning("batch %d runs again; the realtime TSDB not readable (%s): left for repair", batch_id, exc)
            return rows[:0], 0, rows
        logger.warning(
            "batch %d runs again after its realtime put began: %d of its %d points already in the TSDB, not put again",
            batch_id,
            int(held.sum()),
            len(rows),
        )
        return rows[~held], int(held.sum()), rows[:0]

    def _tsdb_state(self) -> dict:
        """What ``saved_tsdb_state`` reads back after a restart."""
        watch = self.restarts
        return {"acknowledged": self.acknowledged.saved(), "known": watch.known, "known_at": watch.known_at}

    def _put(self, points_json: np.ndarray, kafka_ms: np.ndarray, rows: np.ndarray):
        """Put the rows in chunks; returns (written, indices not written, latencies of the written)."""
        written, not_written, latencies = 0, [rows[:0]], [np.empty(0, dtype=np.int64)]
        for start in range(0, len(rows), self.chunk):
            part = rows[start : start + self.chunk]
            try:
                written += http_put_json(
                    self.session,
                    self.put_url,
                    points_json[part].tolist(),
                    timeout_s=self.timeout_s,
                    attempts=PUT_ATTEMPTS,
                )
            except ValueError:  # this request was refused (HTTP 4xx): the next ones may not be
                not_written.append(part)
                continue
            except TsdbWriteError:  # the TSDB is down: the rest waits for the repair job
                not_written.append(rows[start:])
                break
            # End-to-end latency: from the record's arrival on Kafka to its write to the TSDB.
            latencies.append(int(time.time() * 1000) - kafka_ms[part])
        return written, np.concatenate(not_written), np.concatenate(latencies)
