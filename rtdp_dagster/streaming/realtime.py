"""The realtime query's micro-batch: enrich with master data, write to the realtime TSDB.

Duplicates were dropped upstream within the watermark (same point_key, value and op: a re-read
by a later wave); a correction has another value and is written, after its original, so queries
of the TSDB return it. A retraction cannot delete one sample of a TSDB series: it is counted and
left to the batch layer. When the TSDB cannot be reached, the batch's time range is recorded in
the ``tsdb_repair`` table for the repair job and the stream goes on: bronze never waits for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

import pandas as pd
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from rtdp_dagster.config import TsdbEndpoint
from rtdp_dagster.master_data.tags import UNKNOWN, enriched_tag_dict
from rtdp_dagster.tsdb.put import TsdbPoint, TsdbWriteError, http_put

_RESULT_SCHEMA = (
    "written long, failed long, unknown_hosts long, retractions long, min_ts long, max_ts long, "
    "latency_sum_ms long, latency_max_ms long"
)


def tsdb_writer(
    put_http_url: str, timeout_s: float, chunk: int
) -> Callable[[Iterable[pd.DataFrame]], Iterable[pd.DataFrame]]:
    """A mapInPandas function putting each partition's points; yields its counts."""

    def write(frames: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        written = failed = unknown = retractions = latency_sum = latency_max = 0
        min_ts, max_ts = None, None
        for frame in frames:
            points, received = [], []
            for metric, tags, value, ts, op, site, app, known, kafka_ms in zip(
                frame["metric"], frame["tags"], frame["value"], frame["ums_ts_"], frame["ums_op_"], frame["site"],
                frame["app"], frame["host_known"], frame["kafka_ms"], strict=True,
            ):  # fmt: skip
                if op == "d":  # a TSDB cannot delete one sample: left to the batch layer, counted
                    retractions += 1
                    continue
                labels = enriched_tag_dict(dict(tags), {"site": site, "app": app}, bool(known))
                points.append(TsdbPoint(metric, int(ts), float(value), labels))
                received.append(int(kafka_ms))
                unknown += 0 if known else 1
            if not points:
                continue
            low, high = int(frame["ums_ts_"].min()), int(frame["ums_ts_"].max())
            min_ts = low if min_ts is None else min(min_ts, low)
            max_ts = high if max_ts is None else max(max_ts, high)
            for start in range(0, len(points), chunk):
                part = points[start : start + chunk]
                try:
                    written += http_put(put_http_url, part, timeout_s=timeout_s, attempts=3)
                except (TsdbWriteError, ValueError):
                    failed += len(part)
                    continue
                # End-to-end latency: from the record's arrival on Kafka to its write to the TSDB.
                done_ms = int(time.time() * 1000)
                latencies = [done_ms - ms for ms in received[start : start + chunk]]
                latency_sum += sum(latencies)
                latency_max = max(latency_max, *latencies)
        yield pd.DataFrame([{"written": written, "failed": failed, "unknown_hosts": unknown,
                             "retractions": retractions, "min_ts": min_ts, "max_ts": max_ts,
                             "latency_sum_ms": latency_sum, "latency_max_ms": latency_max}])  # fmt: skip

    return write


class MasterDataCache:
    """The current master-data hosts, re-read between micro-batches when a new version appears."""

    def __init__(self, spark: SparkSession, path: str, check_every_s: float = 5.0) -> None:
        self.spark, self.path, self.check_every_s = spark, path, check_every_s
        self.version: int | None = None
        self.hosts: DataFrame | None = None
        self._checked = 0.0

    def current(self) -> DataFrame | None:
        if time.monotonic() - self._checked >= self.check_every_s:
            from rtdp_dagster.master_data.lookup import hosts_as_of, latest_version

            self._checked = time.monotonic()
            version = latest_version(self.spark, self.path)
            if version != self.version:
                if self.hosts is not None:
                    self.hosts.unpersist()
                self.hosts = None if version is None else hosts_as_of(self.spark, self.path).cache()
                self.version = version
        return self.hosts


def with_master_data(points: DataFrame, hosts: DataFrame | None) -> DataFrame:
    points = points.withColumn("host_key", F.coalesce(F.col("tags")["host"], F.col("tags")["instance"]))
    if hosts is None:
        return points.select("*", *[F.lit(UNKNOWN).alias(c) for c in ("site", "app")], F.lit(False).alias("host_known"))
    from rtdp_dagster.master_data.lookup import enrich

    return enrich(points, hosts, host_column="host_key")


class RealtimeWriter:
    def __init__(
        self,
        spark: SparkSession,
        tsdb: TsdbEndpoint,
        timeout_s: float,
        chunk: int,
        master: MasterDataCache,
        repair_path: str,
        record: Callable[[str, int, dict], None],
    ) -> None:
        self.spark, self.master, self.repair_path, self.record = spark, master, repair_path, record
        self.write = tsdb_writer(tsdb.put_http_url, timeout_s, chunk)

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        # Versions of one point inside a batch: only the latest is written, so the TSDB never has
        # to order two samples of equal timestamp that arrived together. One job per batch.
        newest_first = Window.partitionBy("point_key").orderBy(F.col("ums_id_").desc())
        latest = batch.withColumn("version_rank", F.row_number().over(newest_first)).where(F.col("version_rank") == 1)
        totals = (
            with_master_data(latest, self.master.current())
            .select(
                "metric",
                "tags",
                "value",
                "ums_ts_",
                "ums_op_",
                "site",
                "app",
                "host_known",
                F.unix_millis("kafka_timestamp").alias("kafka_ms"),
            )
            .mapInPandas(self.write, _RESULT_SCHEMA)
            .agg(
                *[F.sum(c).alias(c) for c in ("written", "failed", "unknown_hosts", "retractions", "latency_sum_ms")],
                F.max("latency_max_ms").alias("latency_max_ms"),
                F.min("min_ts").alias("min_ts"),
                F.max("max_ts").alias("max_ts"),
            )
            .first()
        )
        names = ("written", "failed", "unknown_hosts", "retractions", "latency_sum_ms", "latency_max_ms")
        figures = {name: int(totals[name] or 0) for name in names} if totals else {}
        if totals is not None and figures["failed"]:
            self.spark.createDataFrame(
                [(batch_id, int(totals["min_ts"]), int(totals["max_ts"]), figures["failed"], int(time.time() * 1000))],
                "batch_id long, min_ts long, max_ts long, failed long, recorded_at long",
            ).write.format("delta").mode("append").save(self.repair_path)
        self.record("realtime", batch_id, {"tsdb_written": figures.get("written", 0),
                                           "tsdb_failed": figures.get("failed", 0),
                                           "unknown_hosts": figures.get("unknown_hosts", 0),
                                           "retractions_not_applied": figures.get("retractions", 0),
                                           "latency_avg_ms": figures.get("latency_sum_ms", 0)
                                           // max(1, figures.get("written", 0)),
                                           "latency_max_ms": figures.get("latency_max_ms", 0),
                                           "master_version": self.master.version})  # fmt: skip
