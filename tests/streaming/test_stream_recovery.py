"""Crash and outage behaviour of `rtdp stream`: kill -9 mid-batch, a TSDB that is down, and a query
that fails and is started again by the running process."""

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from rtdp_dagster.config import Settings, load_settings
from rtdp_dagster.stack.process import wait_until
from rtdp_dagster.stack.services import platform_service_spec
from rtdp_dagster.streaming.app import QueryRestarts, failure_cause
from rtdp_dagster.streaming.realtime_state import put_journal_file
from rtdp_dagster.tsdb.query import export_series, force_flush
from tests.conftest import free_ports

from .conftest import kill_stream_after_first_batch, publish, rtdp, start_rtdp, with_overrides
from .test_stream_mix import METRIC, envelope

pytestmark = pytest.mark.long_running


def points(count: int, hosts: int = 20) -> list:
    start = (int(time.time()) - 1800) * 1000
    return [
        envelope(f"h{i % hosts:02d}", start + (i // hosts) * 1000, float(i), version=start + i) for i in range(count)
    ]


def test_kill_9_mid_batch_then_restart_reconciles_bronze_with_kafka(stream_env: tuple[Settings, Path], spark) -> None:
    settings, config_file = stream_env
    with_overrides(config_file, stream={"max_offsets_per_trigger": 2000})
    total = 12_000
    publish(settings, points(total))
    bronze_path = settings.delta.table_path("bronze")
    before_restart = kill_stream_after_first_batch(spark, config_file, bronze_path)
    assert 0 < before_restart < total, "the kill should land while work is left"
    result = rtdp(config_file, "stream", "--once")
    assert result.returncode == 0, result.stderr[-2000:]

    bronze = spark.read.format("delta").load(bronze_path)
    assert bronze.count() == total
    assert bronze.select("kafka_topic", "kafka_partition", "kafka_offset").distinct().count() == total
    assert spark.read.format("delta").load(settings.delta.table_path("quarantine")).count() == 0


def test_tsdb_down_keeps_bronze_complete_and_counts_failures(stream_env: tuple[Settings, Path], spark) -> None:
    settings, config_file = stream_env
    (dead_port,) = free_ports(1)
    with_overrides(config_file, tsdb={"realtime": {"put_http_url": f"http://127.0.0.1:{dead_port}"}})
    publish(settings, points(500))
    result = rtdp(config_file, "stream", "--once")
    assert result.returncode == 0, result.stderr[-2000:]

    moved = load_settings(config_file)
    assert spark.read.format("delta").load(moved.delta.table_path("bronze")).count() == 500
    progress = spark.read.format("delta").load(moved.delta.table_path("stream_progress"))
    realtime = progress.where("query = 'realtime'").groupBy().sum("tsdb_failed", "tsdb_written").first()
    assert realtime is not None and realtime["sum(tsdb_failed)"] == 500 and realtime["sum(tsdb_written)"] == 0
    repair = spark.read.format("delta").load(moved.delta.table_path("tsdb_repair"))
    assert repair.groupBy().sum("failed").first()[0] == 500


def test_restarts_back_off_give_up_after_the_attempts_and_count_again_after_a_long_run() -> None:
    restarts = QueryRestarts(attempts=3, backoff_s=5.0, reset_s=300.0)
    assert [restarts.after_failure(ran_s=10) for _ in range(4)] == [5.0, 10.0, 20.0, None]
    assert restarts.after_failure(ran_s=400) == 5.0, "a query that ran long starts the count again"
    assert QueryRestarts(attempts=0, backoff_s=5.0, reset_s=300.0).after_failure(ran_s=0) is None
    many = QueryRestarts(attempts=10, backoff_s=5.0, reset_s=300.0)
    assert max(many.after_failure(ran_s=0) or 0 for _ in range(10)) == QueryRestarts.MAX_BACKOFF_S


def test_a_failed_query_is_started_again_and_lands_every_point_once(stream_env: tuple[Settings, Path], spark) -> None:
    settings, config_file = stream_env
    with_overrides(config_file, stream={"restart_backoff_s": 1.0})
    # A directory where the realtime put journal is staged: every micro-batch fails before its put,
    # as on a full disk, until the test removes it.
    blocker = put_journal_file(Path(settings.stream.checkpoint_root) / "bronze").with_suffix(".tmp")
    blocker.mkdir(parents=True)
    hosts = f"restart-{uuid.uuid4().hex[:6]}"
    start = (int(time.time()) - 600) * 1000
    points = [envelope(f"{hosts}-{i % 10}", start + (i // 10) * 1000, float(i), version=start + i) for i in range(500)]
    publish(settings, points)
    log = Path(settings.run_dir) / "logs" / "stream.log"

    def stream_log() -> str:
        return log.read_text() if log.exists() else ""

    def samples() -> list[tuple[str, int]]:
        force_flush(settings.tsdb.realtime.url)
        return [
            (series["tags"]["host"], ts)
            for series in export_series(settings.tsdb.realtime.url, METRIC, stored=True, start_ms=start)
            if series["tags"]["host"].startswith(hosts)
            for ts, _ in series["points"]
        ]

    # What `rtdp stack status` shows for the stream.
    heartbeat = Path(settings.run_dir) / "stream" / "heartbeat.json"
    diagnose = platform_service_spec(settings, "stream", heartbeat, 120.0).diagnose
    assert diagnose is not None
    process = start_rtdp(config_file, "stream")
    try:
        failed = wait_until(lambda: "IsADirectoryError" in (diagnose() or ""), timeout_s=240, interval_s=0.5)
        assert failed, "the query should fail while the journal is blocked, and stack status say why"
        assert (diagnose() or "").startswith("query failed (")
        blocker.rmdir()
        # The failed batch's bronze write may have committed already: the realtime TSDB says when the
        # batch has run again. New series of a metric other tests read show in its lookups within ~10 s.
        landed = wait_until(lambda: len(samples()) >= 500, timeout_s=240, interval_s=2)
        assert landed, "the restarted query should put the batch"
        assert wait_until(lambda: diagnose() is None, timeout_s=30, interval_s=0.5), "healthy again"
    finally:
        process.send_signal(signal.SIGTERM)  # the stream alone: it stops its query between micro-batches
        try:
            process.wait(timeout=180)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
    assert process.returncode == 0, "a stream that recovered stops cleanly"
    text = stream_log()
    assert "failed (1 in a row)" in text and "IsADirectoryError" in text and "stream running again" in text

    bronze = spark.read.format("delta").load(settings.delta.table_path("bronze"))
    assert bronze.count() == 500
    assert bronze.select("kafka_topic", "kafka_partition", "kafka_offset").distinct().count() == 500
    stored = samples()
    assert len(stored) == 500 and len(set(stored)) == 500, "every point once in the realtime TSDB"


def test_the_cause_of_a_failure_is_the_error_inside_the_wrappers() -> None:
    failure = (
        "An exception was raised by the Python Proxy. Return Message: Traceback (most recent call last):\n"
        '  File "micro_batch.py", line 96, in __call__\n'
        "py4j.protocol.Py4JJavaError: An error occurred while calling o6409.save.\n"
        ": org.apache.spark.SparkException: Job aborted due to stage failure\n"
        "\tat org.apache.spark.Foo.bar(Foo.scala:1)\n"
        "Caused by: java.io.IOException: No space left on device\n"
        "Caused by: py4j.Py4JException: An exception was raised by the Python Proxy."
    )
    assert failure_cause(failure) == "Caused by: java.io.IOException: No space left on device"
    assert failure_cause("IsADirectoryError: [Errno 21] Is a directory: 'x'") == (
        "IsADirectoryError: [Errno 21] Is a directory: 'x'"
    )
    assert failure_cause("something odd\nmore") == "something odd"
