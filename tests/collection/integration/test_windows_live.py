"""Gap-free windows with the real wall clock: a slow source, kill -9 and restart, a broker outage."""

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import yaml
from pydantic import TypeAdapter

from rtdp_dagster.collection.ingest import IngestService, SourceRunner
from rtdp_dagster.collection.sources.base import Source
from rtdp_dagster.collection.sources.factory import build_source
from rtdp_dagster.collection.state import CollectionState, LogRow, now_ms
from rtdp_dagster.config import Settings
from rtdp_dagster.config.sources import SourceConfig
from rtdp_dagster.envelope.keys import point_key
from rtdp_dagster.envelope.records import RawRecord
from rtdp_dagster.stack.process import wait_until

from .conftest import create_metrics_table, read_topic, sql_source_config


def fill_table(path: Path, start_ms: int, seconds: float, hosts: int = 5, step_ms: int = 100) -> list[tuple]:
    rows = [
        (ts, f"h{i}", float(ts % 1000))
        for ts in range(start_ms, start_ms + int(seconds * 1000), step_ms)
        for i in range(hosts)
    ]
    create_metrics_table(path)(rows)
    return rows


def assert_contiguous(log: list[LogRow]) -> None:
    assert log, "no window was collected"
    gaps = [(a.window_end, b.window_start) for a, b in pairwise(log) if a.window_end != b.window_start]
    assert not gaps, f"gaps or overlaps between windows: {gaps[:3]}"


def covered_rows(rows: list[tuple], log: list[LogRow]) -> set[str]:
    start, end = log[0].window_start, log[-1].window_end
    return {point_key("sys.cpu.util", {"host": host}, ts) for ts, host, _ in rows if start < ts <= end}


class SlowAtFirst:
    """A real source whose first reads take `delay_s` (3x the window): windows must queue."""

    def __init__(self, inner: Source, delay_s: float, slow_reads: int) -> None:
        self.inner, self.delay_s, self.slow_reads = inner, delay_s, slow_reads
        self.name = inner.name

    def read_window(self, start_ms: int, end_ms: int, now_ms: int) -> Iterator[RawRecord]:
        if self.slow_reads > 0:
            self.slow_reads -= 1
            time.sleep(self.delay_s)
        return self.inner.read_window(start_ms, end_ms, now_ms)

    def close(self) -> None:
        self.inner.close()


def test_slow_source_queues_windows_then_catches_up(isolated: Settings, tmp_path: Path) -> None:
    rows = fill_table(tmp_path / "source.db", now_ms() - 2_000, 15)
    config = TypeAdapter(SourceConfig).validate_python(sql_source_config(tmp_path / "source.db", window_s=0.5))
    source = SlowAtFirst(build_source(config, isolated.nab_data_dir), delay_s=1.5, slow_reads=3)
    stop = threading.Event()
    state = CollectionState(isolated.collection.state_url)
    runner = SourceRunner(source, config.namespace, 0.5, 300.0, isolated, state, stop, now_ms)
    service = IngestService(isolated, [runner], stop)
    thread = threading.Thread(target=service.run)
    thread.start()
    try:
        # While the first reads are slow the queue grows; afterwards it drains.
        assert wait_until(lambda: state.pending_count("field_sql", 1) >= 3, timeout_s=10), "windows did not queue"
        assert wait_until(
            lambda: runner.health.windows_done >= 12 and state.pending_count("field_sql", 1) <= 1, timeout_s=20
        ), "did not catch up"
    finally:
        stop.set()
        thread.join(timeout=30)
    log = state.log_rows(source="field_sql")
    assert_contiguous(log)
    assert max(r.duration_ms for r in log) >= 1500
    on_kafka = {r["point_key"] for r in read_topic(isolated, isolated.kafka.points_topic)}
    assert covered_rows(rows, log) <= on_kafka
    state.dispose()


def _ingest_process(config_file: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "rtdp_dagster.cli", "--config", str(config_file), "ingest"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_kill_9_mid_window_then_restart_loses_no_window(isolated: Settings, tmp_path: Path) -> None:
    rows = fill_table(tmp_path / "source.db", now_ms() - 1_000, 30, hosts=20, step_ms=50)
    config_file = tmp_path / "rtdp.yaml"
    config_file.write_text(
        yaml.safe_dump(
            {
                "run_dir": str(tmp_path),
                "kafka": {
                    "points_topic": isolated.kafka.points_topic,
                    "deadletter_topic": isolated.kafka.deadletter_topic,
                },
                "collection": {
                    "state_url": isolated.collection.state_url,
                    "sources": [sql_source_config(tmp_path / "source.db", window_s=0.5)],
                },
            }
        )
    )
    state = CollectionState(isolated.collection.state_url)
    first = _ingest_process(config_file)
    try:
        assert wait_until(lambda: len(state.log_rows()) >= 4, timeout_s=60), "ingest did not start collecting"
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        done_before = len(state.log_rows())
        second = _ingest_process(config_file)
        assert wait_until(lambda: len(state.log_rows()) >= done_before + 6, timeout_s=60), "restart did not resume"
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0, "SIGTERM should stop ingest cleanly"
    finally:
        for process in (first, locals().get("second")):
            if isinstance(process, subprocess.Popen) and process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
    log = state.log_rows(source="field_sql")
    assert_contiguous(log)
    on_kafka = {r["point_key"] for r in read_topic(isolated, isolated.kafka.points_topic)}
    missing = covered_rows(rows, log) - on_kafka
    assert not missing, f"{len(missing)} rows of collected windows are not on Kafka"
    state.dispose()
