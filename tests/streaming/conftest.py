"""Running `rtdp stream` against the session stack with this test's own topics, tables and checkpoints."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml
from pyspark.sql import SparkSession

from rtdp_dagster.config import Settings, TopicConfig, load_settings
from rtdp_dagster.spark.session import delta_version
from rtdp_dagster.stack.process import wait_until
from rtdp_dagster.stack.topics import ensure_topics


@pytest.fixture
def stream_env(stack: Settings, tmp_path: Path) -> tuple[Settings, Path]:
    """Settings for an isolated stream run, and the config file a `rtdp stream` process reads."""
    suffix = uuid.uuid4().hex[:8]
    points_topic = f"rtdp.points.test{suffix}"
    overrides = {
        "run_dir": str(tmp_path),
        "delta": {"root": str(tmp_path / "delta")},
        "kafka": {
            "points_topic": points_topic,
            "deadletter_topic": f"rtdp.deadletter.test{suffix}",
            "topics": [
                TopicConfig(name=points_topic, partitions=3).model_dump(),
                TopicConfig(name=f"rtdp.deadletter.test{suffix}", partitions=1).model_dump(),
            ],
        },
        "stream": {"topic_pattern": points_topic.replace(".", "\\."), "trigger_interval_s": 0.5, "driver_memory": "1g"},
    }
    config_file = tmp_path / "rtdp.yaml"
    config_file.write_text(yaml.safe_dump(overrides))
    settings = load_settings(config_file, environ={**os.environ, "RTDP_RUN_DIR": str(tmp_path)})
    ensure_topics(settings.kafka)
    return settings, config_file


def _env(config_file: Path) -> dict[str, str]:
    # The session sets RTDP_RUN_DIR for its stack; this run keeps its own folder (checkpoints, logs).
    return {**os.environ, "RTDP_RUN_DIR": str(config_file.parent)}


def rtdp(config_file: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rtdp_dagster.cli", "--config", str(config_file), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(config_file),
    )


def start_rtdp(config_file: Path, *args: str) -> subprocess.Popen:
    """A background `rtdp` process in its own process group (with the JVM it starts)."""
    return subprocess.Popen(
        [sys.executable, "-m", "rtdp_dagster.cli", "--config", str(config_file), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=_env(config_file),
    )


def kill_stream_after_first_batch(spark: SparkSession, config_file: Path, bronze_path: str) -> int:
    """Start `rtdp stream`, kill -9 its process group once a micro-batch is committed to bronze, and
    return the bronze rows by then (a test then checks the restart lands the rest exactly once)."""

    def committed_batches() -> int:
        try:
            return delta_version(spark, bronze_path) + 1
        except Exception:  # the table does not exist before the first commit
            return 0

    process = start_rtdp(config_file, "stream")
    try:
        # Version 0 is the empty table the stream creates at start; 1 is its first micro-batch.
        assert wait_until(lambda: committed_batches() >= 2, timeout_s=300, interval_s=1), "stream made no progress"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    return spark.read.format("delta").load(bronze_path).count()


def with_overrides(config_file: Path, **sections: dict) -> None:
    """Merge more settings into a test's config file."""
    config = yaml.safe_load(config_file.read_text())
    for section, values in sections.items():
        config.setdefault(section, {}).update(values)
    config_file.write_text(yaml.safe_dump(config))


def publish(settings: Settings, envelopes: list) -> None:
    from rtdp_dagster.collection.publisher import Publisher

    publisher = Publisher(settings.kafka)
    for item in envelopes:
        publisher.send_point(item)
    publisher.confirm()
    publisher.close()
