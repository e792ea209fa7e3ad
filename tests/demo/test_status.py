"""The demo's live status line: rates from two heartbeats, the stream's lag, the backfill's ETA."""

from __future__ import annotations

import time
from pathlib import Path

from rtdp_dagster.demo.dagster_api import BackfillProgress
from rtdp_dagster.demo.status import BackfillWatch, StatusLine, status_line
from rtdp_dagster.heartbeat import write_heartbeat


def beat(at: float, bronze_rows: int, lag: int) -> dict:
    """The stream's heartbeat as streaming.progress writes it (a part per sink, totals by part)."""
    return {
        "at": at,
        "totals": {"bronze.bronze_rows": bronze_rows, "realtime.num_input_rows": bronze_rows},
        "queries": {"bronze": {"kafka_lag": lag}, "realtime": {"kafka_lag": lag}},
    }


def test_no_heartbeat_yet_says_so():
    assert status_line(None, None, None, now=0.0) == "status: stream: no heartbeat yet"


def test_the_rate_comes_from_the_previous_line_and_the_lag_from_the_last_batch():
    line = status_line(beat(1020.0, 250_000, 1_234), previous=(1000.0, 50_000), backfill=None, now=0.0)
    assert line == "status: in 10,000 points/s · bronze 250,000 rows · Kafka lag 1,234 records"


def test_the_first_line_has_no_rate():
    assert status_line(beat(1000.0, 7, 0), None, None, now=0.0) == "status: bronze 7 rows · Kafka lag 0 records"


def test_the_backfill_eta_is_the_pace_so_far_times_what_is_left():
    watch = BackfillWatch(started=100.0, progress=BackfillProgress("REQUESTED", 12, 3, 1, 2))
    # 3 done in 60 s, 8 left (12 - 3 done - 1 failed): 160 s.
    assert watch.eta_s(now=160.0) == 160.0
    line = status_line(None, None, watch, now=160.0)
    assert line.endswith("backfill 3/12 partitions, 1 failed, ETA 2m40s")


def test_no_eta_before_the_first_partition_or_after_the_end():
    assert BackfillWatch(started=0.0, progress=BackfillProgress("REQUESTED", 12, 0, 0, 1)).eta_s(now=50.0) is None
    assert BackfillWatch(started=0.0, progress=BackfillProgress("COMPLETED", 12, 12, 0, 0)).eta_s(now=50.0) is None


def test_the_status_line_prints_from_the_heartbeat_file_until_stopped(tmp_path: Path):
    heartbeat = tmp_path / "heartbeat.json"
    write_heartbeat(heartbeat, beat(1000.0, 42, 5))
    lines: list[str] = []
    with StatusLine(heartbeat, lines.append, every_s=0.05):
        while len(lines) < 2:
            time.sleep(0.01)
    printed = len(lines)
    assert lines[0] == "status: bronze 42 rows · Kafka lag 5 records"
    assert all(line.startswith("status: ") for line in lines)
    time.sleep(0.2)
    assert len(lines) == printed, "the status line went on after the block ended"
