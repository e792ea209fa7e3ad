"""A micro-batch that runs again after its realtime put (its bronze write failed: a full disk, a
killed driver) against the session's realtime VictoriaMetrics: without the put journal its points
are doubled; with it, a restarted writer puts only what the TSDB does not hold. A journal that
cannot be written stops the batch before anything is put."""

import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from rtdp_dagster.config import Settings
from rtdp_dagster.streaming.dedup import WatermarkDedup
from rtdp_dagster.streaming.realtime import MasterDataCache, RealtimeWriter
from rtdp_dagster.streaming.realtime_replay import time_spans
from rtdp_dagster.streaming.realtime_state import last_put_begun
from rtdp_dagster.tsdb.query import export_series, force_flush
from tests.batch.bronze_rows import Record, bronze_frame


def test_time_spans_split_where_points_are_far_apart() -> None:
    spans = time_spans(np.array([5_000, 0, 200_000, 1_000, 130_000]), gap_ms=60_000)
    assert [sorted(span.tolist()) for span in spans] == [[0, 1, 3], [4], [2]]
    assert time_spans(np.array([], dtype=np.int64)) == []


def _writer(spark, stack: Settings, tmp_path: Path, journal: Path | None) -> RealtimeWriter:
    """A writer as a freshly started stream has it: empty dedup state, the journal on disk."""
    return RealtimeWriter(
        spark,
        stack.tsdb.realtime,
        5.0,
        100,
        MasterDataCache(spark, str(tmp_path / "delta" / "master_data_hosts")),
        str(tmp_path / "delta" / "tsdb_repair"),
        WatermarkDedup(ttl_ms=3_600_000),
        put_journal=journal,
    )


def _stored(stack: Settings, metric: str) -> list[tuple[int, float]]:
    force_flush(stack.tsdb.realtime.url)
    series = export_series(stack.tsdb.realtime.url, metric, stored=True)
    return sorted(point for one in series for point in one["points"])


def test_a_batch_run_again_after_its_put_is_not_doubled(stack: Settings, spark, tmp_path: Path) -> None:
    start = (int(time.time()) - 600) * 1000
    metric = f"rtdp.test.replay.{uuid.uuid4().hex[:8]}"
    batch = [Record(metric, {"host": "h1"}, start + i * 1000, float(i), ums_id=1, offset=i) for i in range(5)]
    journal = tmp_path / "checkpoint.realtime-put.json"

    first = _writer(spark, stack, tmp_path, journal)(bronze_frame(spark, batch), 7)
    assert first["tsdb_written"] == 5 and last_put_begun(journal) == 7

    # The driver died before bronze committed batch 7; the restarted stream runs it again with one
    # more record that Kafka held by then (the batch's offsets are fixed, but the test widens it to
    # show that what is missing is still put).
    more = Record(metric, {"host": "h1"}, start + 5_000, 5.0, ums_id=1, offset=5)
    again = _writer(spark, stack, tmp_path, journal)(bronze_frame(spark, [*batch, more]), 7)
    assert again["tsdb_already_held"] == 5 and again["tsdb_written"] == 1 and again["tsdb_failed"] == 0
    assert _stored(stack, metric) == [(r.ts_ms, r.value) for r in [*batch, more]]

    # The next batch is new: a correction of point 0 is put (no read-back for a batch seen first).
    correction = Record(metric, {"host": "h1"}, start, 40.0, ums_id=2, op="u", offset=6)
    nxt = _writer(spark, stack, tmp_path, journal)(bronze_frame(spark, [correction]), 8)
    assert nxt["tsdb_written"] == 1 and nxt["tsdb_already_held"] == 0 and last_put_begun(journal) == 8


def test_without_the_journal_a_replayed_batch_doubles_its_points(stack: Settings, spark, tmp_path: Path) -> None:
    start = (int(time.time()) - 600) * 1000
    metric = f"rtdp.test.replay.{uuid.uuid4().hex[:8]}"
    batch = [Record(metric, {"host": "h2"}, start + i * 1000, float(i), ums_id=1, offset=i) for i in range(3)]
    for _ in range(2):
        _writer(spark, stack, tmp_path, None)(bronze_frame(spark, batch), 3)
    assert len(_stored(stack, metric)) == 6, "the hazard the journal exists for"


def test_a_journal_that_cannot_be_written_stops_the_batch_before_any_put(
    stack: Settings, spark, tmp_path: Path
) -> None:
    start = (int(time.time()) - 600) * 1000
    metric = f"rtdp.test.replay.{uuid.uuid4().hex[:8]}"
    batch = [Record(metric, {"host": "h3"}, start + i * 1000, float(i), ums_id=1, offset=i) for i in range(3)]
    unwritable = tmp_path / "missing-dir" / "checkpoint.realtime-put.json"  # as a full disk: the write raises
    with pytest.raises(OSError):
        _writer(spark, stack, tmp_path, unwritable)(bronze_frame(spark, batch), 4)
    assert _stored(stack, metric) == []
