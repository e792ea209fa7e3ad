"""The realtime-TSDB repair job against the session stack: failures recorded by the stream's own writer
(its TSDB port closed), a run that waits for bronze to catch up, one while the TSDB is still
unreachable, then the repair: each point
once with its latest value, none of those already there doubled, and a re-run that repairs nothing."""

import time
import uuid
from pathlib import Path

import pytest

from rtdp_dagster.config import Settings, TsdbEndpoint
from rtdp_dagster.maintenance.jobs import tsdb_repair_job
from rtdp_dagster.resources import DeltaTablesResource, TsdbResource
from rtdp_dagster.streaming.dedup import WatermarkDedup
from rtdp_dagster.streaming.realtime import MasterDataCache, RealtimeWriter
from rtdp_dagster.streaming.tables import STREAM_PROGRESS, TSDB_REPAIR
from rtdp_dagster.tsdb.put import TsdbPoint, http_put
from rtdp_dagster.tsdb.query import export_series, force_flush
from tests.batch.bronze_rows import Record, bronze_frame, write_bronze
from tests.conftest import free_ports

# What the stream tags a host without master data with.
UNKNOWN_TAGS = {"site": "unknown", "app": "unknown"}


def run_repair(resources: dict, tsdb: TsdbResource) -> dict:
    result = tsdb_repair_job.execute_in_process(resources={**resources, "realtime_tsdb": tsdb})
    assert result.success
    return result.output_for_node("repair_realtime_tsdb")


def test_failed_points_are_repaired_once_with_their_latest_value(
    stack: Settings, spark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rtdp_dagster.definitions import defs

    metric = f"rtdp.test.repair.{uuid.uuid4().hex[:8]}"
    tags = {"host": "h1"}
    start = (int(time.time()) - 3600) * 1000
    originals = [Record(metric, tags, start + i * 1000, float(i), ums_id=1, offset=i) for i in range(5)]
    later = [
        Record(metric, tags, originals[0].ts_ms, 99.0, ums_id=2, op="u", offset=10),  # correction
        Record(metric, tags, originals[1].ts_ms, None, ums_id=3, op="d", offset=11),  # retraction
    ]
    delta = DeltaTablesResource(root=str(tmp_path / "delta"))
    write_bronze(spark, originals + later, delta.table_path("bronze"))

    # The stream wrote point 2 before the TSDB went away; its batch of the five originals failed.
    realtime = stack.tsdb.realtime
    http_put(realtime.put_http_url, [TsdbPoint(metric, originals[2].ts_ms, 2.0, {**tags, **UNKNOWN_TAGS})])
    closed = TsdbEndpoint(
        url=f"http://127.0.0.1:{free_ports(1)[0]}",
        put_host="127.0.0.1",
        put_port=1,
        put_http_url=f"http://127.0.0.1:{free_ports(1)[0]}",
    )
    writer = RealtimeWriter(
        spark,
        closed,
        1.0,
        100,
        MasterDataCache(spark, delta.table_path("master_data_hosts")),
        delta.table_path(TSDB_REPAIR),
        WatermarkDedup(ttl_ms=3_600_000),
    )
    writer(bronze_frame(spark, originals), 7)
    failures = spark.read.format("delta").load(delta.table_path(TSDB_REPAIR)).collect()
    assert [(r["batch_id"], r["min_ts"], r["max_ts"], r["failed"]) for r in failures] == [
        (7, originals[0].ts_ms, originals[-1].ts_ms, 5)
    ]

    resources = {**dict(defs.resources or {}), "delta": delta}
    tsdb = TsdbResource(
        url=realtime.url, put_host=realtime.put_host, put_port=realtime.put_port, put_http_url=realtime.put_http_url
    )
    waiting = run_repair(resources, tsdb)
    assert waiting["failures_waiting_for_bronze"] == 1 and waiting["points_written"] == 0, "bronze has not caught up"
    # The bronze query's next micro-batch ends with no Kafka lag: every record of the failed batch is in bronze.
    spark.createDataFrame(
        [("bronze", 0, int(time.time() * 1000) + 1000, 0)],
        "query string, batch_id long, timestamp_ms long, kafka_lag long",
    ).write.format("delta").save(delta.table_path(STREAM_PROGRESS))

    down = TsdbResource(
        url=closed.url, put_host="127.0.0.1", put_port=1, put_http_url=closed.put_http_url, timeout_s=1.0
    )
    still_down = run_repair(resources, down)
    assert still_down["failures_pending"] == 1 and still_down["points_failed"] == 4
    assert still_down["failures_repaired"] == 0, "a failure is kept until its points are in the TSDB"

    repaired = run_repair(resources, tsdb)
    # Points 0 (corrected), 2, 3, 4; point 1 was retracted.
    assert repaired["points_checked"] == 4 and repaired["points_already_present"] == 1
    assert repaired["points_written"] == 3 and repaired["failures_repaired"] == 1

    force_flush(realtime.url)
    (series,) = export_series(realtime.url, metric)
    assert series["tags"] == {**tags, **UNKNOWN_TAGS}
    assert sorted(series["points"]) == [(originals[0].ts_ms, 99.0)] + [(r.ts_ms, r.value) for r in originals[2:]]

    again = run_repair(resources, tsdb)
    assert again["failures_pending"] == 0 and again["points_written"] == 0
    force_flush(realtime.url)
    assert len(export_series(realtime.url, metric)[0]["points"]) == 4
