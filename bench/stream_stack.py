"""The speed layer under benchmark: a bench topic and run folder, `rtdp stream` as a process, its totals.

Shared by the latency/throughput scenario (``scenarios/stream.py``) and the sustained rate
(``scenarios/sustained.py``), so neither imports the other's helpers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import yaml

from rtdp_dagster.config import Settings, TopicConfig
from rtdp_dagster.heartbeat import read_heartbeat
from rtdp_dagster.spark.session import connect
from rtdp_dagster.stack.process import memory_mib
from rtdp_dagster.stack.topics import ensure_topics

# The records of the sustained rate belong to the stream scenario too.
SCENARIO = "stream"


# Not a platform metric: the realtime TSDB is the local stack's, and its dashboards list sites from
# the platform's series (the bench hosts have no master data, so they would add a site "unknown").
LOAD_METRIC = "rtdp.bench.load"


def _descendants(pid: int) -> list[int]:
    """Every process below pid (the stream's Python, spark-submit, the driver JVM)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = next(
                (int(line.split()[1]) for line in status.splitlines() if line.startswith("PPid:")), 0
            )
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


def java_peak_mib(pid: int) -> float:
    """Peak resident memory of the Java processes below pid."""
    peak = 0.0
    for child in _descendants(pid):
        try:
            if b"java" in Path(f"/proc/{child}/cmdline").read_bytes():
                peak = max(peak, memory_mib(child)[1])
        except OSError:
            continue
    return peak


def cpu_s(pid: int, with_descendants: bool = True) -> float:
    """CPU seconds (user + system) used so far by pid and, by default, every process below it: a
    cost per point that a loaded machine's wall clock does not distort as much as a rate."""
    total = 0
    for each in [pid, *(_descendants(pid) if with_descendants else [])]:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / os.sysconf("SC_CLK_TCK")


def prepare(settings: Settings, name: str, max_offsets_per_trigger: int = 200_000) -> tuple[Settings, Path]:
    folder = settings.run_dir / "bench" / f"{name}-{uuid.uuid4().hex[:6]}"
    # Outside the platform's own pattern (rtdp.points.*): a running stream must not consume it.
    topic = f"rtdpbench.points.{folder.name.replace('-', '')}"
    config = {
        "delta": {"root": str(folder / "delta")},
        "kafka": {"points_topic": topic, "topics": [TopicConfig(name=topic, partitions=3).model_dump()]},
        "stream": {
            "topic_pattern": topic.replace(".", "\\."),
            "checkpoint_root": str(folder / "checkpoints"),
            "max_offsets_per_trigger": max_offsets_per_trigger,
        },
    }
    folder.mkdir(parents=True, exist_ok=True)
    config_file = folder / "rtdp.yaml"
    config_file.write_text(yaml.safe_dump(config))
    bench_settings = settings.model_copy(deep=True)
    bench_settings.kafka.points_topic = topic
    bench_settings.kafka.topics = [TopicConfig(name=topic, partitions=3)]
    bench_settings.stream.topic_pattern = config["stream"]["topic_pattern"]
    bench_settings.delta.root = str(folder / "delta")
    ensure_topics(bench_settings.kafka)
    return bench_settings, config_file


def start_stream(config_file: Path) -> subprocess.Popen:
    environment = {**os.environ, "RTDP_RUN_DIR": str(config_file.parent)}
    return subprocess.Popen(
        [sys.executable, "-m", "rtdp_dagster.cli", "--config", str(config_file), "stream"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=environment,
        start_new_session=True,
    )


def stop_stream(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)  # the stream itself, which stops its JVM after the last batch
    try:
        process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def stream_totals(config_file: Path) -> dict:
    beat = read_heartbeat(config_file.parent / "stream" / "heartbeat.json") or {}
    return beat.get("totals", {})


def spark_read_rate(settings: Settings, bench: Settings) -> tuple[int, float]:
    """(records, records/s) of Spark reading and counting the bench topic in one batch job."""
    spark = connect(settings)
    started = time.perf_counter()
    reader = spark.read.format("kafka").options(**bench.kafka.spark_options())
    counted = reader.option("subscribe", bench.kafka.points_topic).option("startingOffsets", "earliest").load().count()
    return counted, counted / (time.perf_counter() - started)
