"""Crash and outage behaviour of `rtdp stream`: kill -9 mid-batch, and a TSDB that is down."""

import time
from pathlib import Path

from rtdp_dagster.config import Settings, load_settings
from tests.conftest import free_ports

from .conftest import kill_stream_after_first_batch, publish, rtdp, with_overrides
from .test_stream_mix import envelope


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
