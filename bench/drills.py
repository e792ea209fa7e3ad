"""Fault drills on the cluster profile: kill -9 a part of the platform under the collectors' own load,
bring it back, and reconcile everything the collectors produced.

One cluster (three Kafka nodes, PostgreSQL, both VictoriaMetrics, a Spark standalone master with two
workers under Spark Connect) serves every drill; each drill runs `rtdp stream` and `rtdp ingest` (a
synthetic source of ``rate`` points/s, wave 1) as stack services on its own points topic, Delta root,
checkpoints, collection source and metric names, so its figures are its own:

1. steady load (``warm_s``), the fault, the load held while the part is away and after it is back;
2. the collectors stop (SIGTERM: the window in flight is finished) and the stream drains Kafka;
3. the realtime TSDB is repaired from bronze (the upkeep job's code), silver and the 1m/1h/1d rollups
   of the day are materialised by Dagster (the batch assets, in process);
4. reconciliation: the points the source made ready in the collected span (the synthetic source's
   own ``expected_truth``) against silver, computed independently in pandas (value per point, and
   every rollup bucket's count, sum, min and max); Kafka offsets against bronze and quarantine
   coordinates (every record once, every point of a record once); the realtime TSDB against the
   same truth.

"Healthy again" is the first moment after the fault when every service of ``rtdp stack status`` is
healthy (`ingest` only while it logs windows: a stalled collection is unhealthy) and the stream has
committed every Kafka record produced until 15 s before.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from rtdp_dagster.config import Settings, load_settings
from rtdp_dagster.config.stack import STACK_PORT_KEYS
from rtdp_dagster.stack import manager
from rtdp_dagster.stack.errors import StackError
from rtdp_dagster.stack.process import wait_until

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SOURCE_METRICS = (
    ("sys.cpu.util", "percent"),
    ("sys.load.avg", "sine"),
    ("sys.mem.used_mb", "random_walk"),
    ("app.requests.count", "counter"),
    ("sys.cpu.cores", "constant"),
    ("sys.net.bytes_in", "counter"),
    ("sys.net.bytes_out", "counter"),
)
SITES = 4
PLATFORM_SERVICES = ("stream", "ingest", "dagster")
HEALTHY_LAG_S = 15.0


def log(message: str) -> None:
    print(f"[{dt.datetime.now(dt.UTC):%H:%M:%S}] {message}", flush=True)


# --- the cluster -----------------------------------------------------------------------------------


def cluster_env(run_dir: Path, ports: Iterator[int], password: str, driver_memory: str = "1g") -> dict[str, str]:
    """RTDP_* variables of a cluster-profile stack in run_dir on the given ports (23 of them); driver_memory:
    the Spark Connect server's (the reconciliation collects a drill's silver through it)."""
    env = {
        "RTDP_RUN_DIR": str(run_dir),
        "RTDP_JARS_DIR": str(PROJECT_ROOT / ".rtdp" / "jars"),
        "RTDP_POSTGRES__PASSWORD": password,
        "RTDP_STACK__PROFILE": "cluster",
        # A Spark application starting on a loaded 2-core machine can take minutes to report healthy.
        "RTDP_STACK__START_TIMEOUT_S": "600",
        "RTDP_SPARK__DRIVER_MEMORY": driver_memory,
        "RTDP_STACK__KAFKA__EXTRA_NODES": json.dumps(
            [{"port": next(ports), "controller_port": next(ports)} for _ in range(2)]
        ),
        "RTDP_STACK__SPARK_STANDALONE__WORKERS": json.dumps(
            [{"port": next(ports), "ui_port": next(ports)} for _ in range(2)]
        ),
        "RTDP_STACK__SPARK_STANDALONE__EXECUTOR_MEMORY": "1g",
        "RTDP_STACK__SPARK_STANDALONE__WORKER_MEMORY": "2g",
    }
    keys = [
        *STACK_PORT_KEYS,
        "STACK__SPARK_STANDALONE__MASTER_PORT",
        "STACK__SPARK_STANDALONE__MASTER_UI_PORT",
        "STACK__POSTGRES__PORT",
        "DAGSTER__WEBSERVER_PORT",
        "SERVE__PORT",
    ]
    for key in keys:
        env[f"RTDP_{key}"] = str(next(ports))
    return env


@dataclass
class Cluster:
    """A cluster-profile stack in its own run folder; ``env`` is what every rtdp process of it needs."""

    run_dir: Path
    env: dict[str, str]

    def settings(self, config_file: Path | None = None) -> Settings:
        environ = {**os.environ, **self.env}
        if config_file is not None:
            environ["RTDP_CONFIG"] = str(config_file)
        return load_settings(config_file, environ=environ)

    @contextlib.contextmanager
    def environment(self) -> Iterator[None]:
        """The cluster's variables in this process's environment (the services it starts inherit them)."""
        saved = dict(os.environ)
        os.environ.update(self.env)
        try:
            yield
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def up(self) -> Settings:
        """Every node of the cluster; call within ``environment()``."""
        settings = self.settings()
        manager.up(settings, log=lambda line: log(f"stack: {line}"))
        return settings

    def down(self) -> None:
        settings = self.settings()
        manager.down(settings, log=lambda line: log(f"stack: {line}"))


# --- one drill's platform --------------------------------------------------------------------------


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def source_shape(rate: float) -> tuple[int, int]:
    """(hosts per site, sites) of a synthetic fleet making at least ``rate`` points/s at a 1 s cadence."""
    sites = SITES if rate >= 1000 else 1
    return max(1, math.ceil(rate / (len(SOURCE_METRICS) * sites))), sites


@dataclass
class DrillPlatform:
    """The stream and the collectors of one drill, on the cluster, with everything of their own."""

    cluster: Cluster
    name: str
    rate: float
    folder: Path
    with_dagster: bool = False

    @property
    def slug(self) -> str:
        return _slug(self.name)

    @property
    def topic(self) -> str:
        return f"rtdp.points.drill-{self.slug.replace('_', '-')}"

    @property
    def metric_prefix(self) -> str:
        return f"drill.{self.slug}."

    @property
    def source_name(self) -> str:
        return f"drill_{self.slug}"[:64]

    @property
    def config_file(self) -> Path:
        return self.folder / "rtdp.yaml"

    def write_config(self, collecting: bool = True) -> Settings:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(yaml.safe_dump(self.config(collecting)))
        return self.settings()

    def config(self, collecting: bool) -> dict[str, Any]:
        """The drill's rtdp.yaml: its own topic, tables, checkpoints and load source."""
        hosts_per_site, sites = source_shape(self.rate)
        deadletter = f"rtdp.deadletter.drill-{self.slug.replace('_', '-')}"
        hour = 3_600_000
        config = {
            "delta": {"root": str(self.folder / "delta")},
            "kafka": {
                "points_topic": self.topic,
                "deadletter_topic": deadletter,
                "topics": [
                    {"name": self.topic, "partitions": 3, "retention_ms": 6 * hour},
                    {"name": deadletter, "partitions": 1, "retention_ms": 6 * hour},
                ],
            },
            "stream": {
                "topic_pattern": re.escape(self.topic),
                "checkpoint_root": str(self.folder / "checkpoints"),
                "driver_memory": "1g",
                "max_points_per_trigger": 100_000,
            },
            "collection": {
                "sources": [
                    {
                        "kind": "synthetic",
                        "name": self.source_name,
                        "namespace": f"synthetic.drill.{self.slug}.metrics.v1.0.0",
                        "cadence_s": 1.0,
                        "sites": sites,
                        "hosts_per_site": hosts_per_site,
                        "metrics": [
                            {"name": f"{self.metric_prefix}{metric}", "shape": shape}
                            for metric, shape in SOURCE_METRICS
                        ],
                        "waves": {"window_s": 5.0, "max_window_s": 30.0},
                    }
                ]
            },
            "stack": {
                "stream": {"enabled": True},
                "ingest": {"enabled": collecting},
                "dagster": {"enabled": self.with_dagster},
            },
        }
        return config

    def settings(self) -> Settings:
        return self.cluster.settings(self.config_file)

    def start(self) -> Settings:
        """The topic, `rtdp stream` (and Dagster), then once it is healthy `rtdp ingest`, as stack services:
        the load starts on a running stream, not into the backlog of its start-up."""
        from rtdp_dagster.stack.topics import ensure_topics

        settings = self.write_config(collecting=False)
        os.environ["RTDP_CONFIG"] = str(self.config_file)
        ensure_topics(settings.kafka)
        manager.up(settings, log=lambda line: log(f"stack: {line}"))
        settings = self.write_config(collecting=True)
        manager.up(settings, log=lambda line: log(f"stack: {line}"))
        return settings

    def stop(self) -> None:
        """Stop the services, giving the stream time for its final progress flush (a Spark job on a loaded
        machine can outlast the stack's stop timeout; the TSDB repair reads that progress)."""
        settings = self.settings()
        for name in reversed(PLATFORM_SERVICES):
            manager.process_named(settings, name).stop(max(180.0, settings.stack.stop_timeout_s))


# --- measuring while it runs -----------------------------------------------------------------------


def stream_committed_offsets(checkpoint_root: str) -> dict[int, int]:
    """Kafka offsets (partition -> next offset) the stream's last committed micro-batch read up to."""
    from rtdp_dagster.streaming.app import CHECKPOINT

    checkpoint = Path(checkpoint_root) / CHECKPOINT
    commits = [int(p.name) for p in (checkpoint / "commits").glob("[0-9]*") if p.name.isdigit()]
    if not commits:
        return {}
    lines = (checkpoint / "offsets" / str(max(commits))).read_text().splitlines()
    offsets: dict[int, int] = {}
    for line in lines[2:]:
        for partitions in json.loads(line).values():
            for partition, offset in partitions.items():
                offsets[int(partition)] = max(offsets.get(int(partition), 0), int(offset))
    return offsets


def end_offsets(settings: Settings, topic: str, timeout_ms: int = 5000) -> dict[int, int] | None:
    from kafka import KafkaConsumer
    from kafka.structs import TopicPartition

    try:
        consumer = KafkaConsumer(
            **settings.kafka.client_options(),
            request_timeout_ms=timeout_ms + 1000,
            session_timeout_ms=timeout_ms,
            fetch_max_wait_ms=100,
        )
    except Exception:
        return None
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        return {tp.partition: offset for tp, offset in ends.items()}
    except Exception:
        return None
    finally:
        with contextlib.suppress(Exception):
            consumer.close()


@dataclass
class Sample:
    at: float
    all_healthy: bool
    unhealthy: list[str]
    produced: int | None  # records on the topic
    committed: int  # records the stream committed
    # Why, where `stack status` could tell (`ingest`: "collection stalled: ...").
    details: dict[str, str] = field(default_factory=dict)


class Watcher:
    """Samples `stack status`, Kafka end offsets and the stream's committed offsets every ``every_s``."""

    def __init__(self, platform: DrillPlatform, every_s: float = 2.0) -> None:
        self.platform, self.every_s = platform, every_s
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drill-watcher", daemon=True)

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        settings = self.platform.settings()
        while not self._stop.is_set():
            try:
                rows = manager.status(settings)
                unhealthy = [row.name for row in rows if row.state != "healthy"]
                ends = end_offsets(settings, self.platform.topic, timeout_ms=1500)
                committed = stream_committed_offsets(settings.stream.checkpoint_root)
                self.samples.append(
                    Sample(
                        time.time(),
                        not unhealthy,
                        unhealthy,
                        None if ends is None else sum(ends.values()),
                        sum(committed.values()),
                        {row.name: row.detail for row in rows if row.detail},
                    )
                )
            except Exception as exc:  # a probe failing is a sample of an unhealthy platform
                log(f"watcher: {type(exc).__name__}: {exc}")
            self._stop.wait(self.every_s)

    def healthy_again_at(self, fault_at: float) -> float | None:
        """First moment after the fault with every service healthy and no more than HEALTHY_LAG_S of lag."""
        known = [(s.at, s.produced) for s in self.samples if s.produced is not None]
        for sample in self.samples:
            if sample.at <= fault_at + 1 or not sample.all_healthy:
                continue
            before = [produced for at, produced in known if at <= sample.at - HEALTHY_LAG_S]
            if before and sample.committed >= before[-1]:
                return sample.at
        return None


# --- the drills ------------------------------------------------------------------------------------


@dataclass
class FaultContext:
    platform: DrillPlatform
    settings: Settings
    notes: list[str] = field(default_factory=list)
    # What the operator saw while the fault lasted: `stack status` rows and log lines.
    status_during: list[dict] = field(default_factory=list)
    fault_at: float = 0.0
    restored_at: float = 0.0

    def note(self, text: str) -> None:
        log(f"{self.platform.name}: {text}")
        self.notes.append(text)

    def snapshot_status(self) -> None:
        self.status_during = [
            {"service": row.name, "state": row.state, **({"detail": row.detail} if row.detail else {})}
            for row in manager.status(self.settings)
            if row.state != "healthy"
        ]

    def kill(self, service: str) -> None:
        process = manager.process_named(self.settings, service)
        pid = process.pid()
        self.fault_at = time.time()
        killed = process.kill()
        self.note(f"kill -9 {service} (pid {pid}): {'killed' if killed else 'was not running'}")

    def restart(self, service: str | None = None) -> None:
        manager.up(self.settings, log=lambda line: None)
        self.restored_at = time.time()
        self.note(f"{service or 'stack'} back: `rtdp stack up` started what was not running")


def leader_of_most_points_partitions(settings: Settings, topic: str) -> tuple[str, dict[int, int]]:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(**settings.kafka.client_options(), client_id="rtdp-drill")
    try:
        (described,) = admin.describe_topics([topic])
    finally:
        admin.close()
    leaders = {int(p["partition_index"]): int(p["leader_id"]) for p in described["partitions"]}
    counts: dict[int, int] = {}
    for leader in leaders.values():
        counts[leader] = counts.get(leader, 0) + 1
    node = max(sorted(counts), key=lambda n: counts[n])
    return f"kafka-{node}", leaders


def broker_kill(ctx: FaultContext, outage_s: float) -> None:
    service, leaders = leader_of_most_points_partitions(ctx.settings, ctx.platform.topic)
    ctx.note(f"partition leaders {leaders}: {service} leads the most points partitions")
    ctx.kill(service)
    time.sleep(min(10.0, outage_s))
    ctx.snapshot_status()
    time.sleep(max(0.0, outage_s - 10.0))
    ctx.restart(service)


def stream_kill(ctx: FaultContext, outage_s: float) -> None:
    # Mid-batch: right after the stream started a micro-batch (its offsets file is newer than its commit).
    checkpoint = Path(ctx.settings.stream.checkpoint_root)

    def batch_in_flight() -> bool:
        from rtdp_dagster.streaming.app import CHECKPOINT

        folder = checkpoint / CHECKPOINT
        offsets = [int(p.name) for p in (folder / "offsets").glob("[0-9]*") if p.name.isdigit()]
        commits = [int(p.name) for p in (folder / "commits").glob("[0-9]*") if p.name.isdigit()]
        return bool(offsets) and max(offsets) > max(commits, default=-1)

    in_flight = wait_until(batch_in_flight, timeout_s=60, interval_s=0.05)
    ctx.note(f"micro-batch in flight at the kill: {in_flight}")
    ctx.kill("stream")
    time.sleep(min(5.0, outage_s))
    ctx.snapshot_status()
    time.sleep(max(0.0, outage_s - 5.0))
    ctx.restart("stream")


def ingest_kill(ctx: FaultContext, outage_s: float) -> None:
    import sqlalchemy as sa

    from rtdp_dagster.collection.state import CollectionState, window_queue

    state = CollectionState(ctx.settings.collection.state_url)
    source = ctx.platform.source_name
    # The windows of this source that started being collected but were not finished: in flight.
    in_flight_query = sa.select(sa.func.count()).where(
        window_queue.c.source == source, window_queue.c.attempts > 0, window_queue.c.done.is_(False)
    )

    def window_in_flight() -> bool:
        with state.engine.connect() as connection:
            return int(connection.execute(in_flight_query).scalar_one()) > 0

    try:
        in_flight = wait_until(window_in_flight, timeout_s=60, interval_s=0.02)
        ctx.note(f"window in flight at the kill: {in_flight}")
        ctx.kill("ingest")
    finally:
        state.dispose()
    time.sleep(min(5.0, outage_s))
    ctx.snapshot_status()
    time.sleep(max(0.0, outage_s - 5.0))
    ctx.restart("ingest")


def service_outage(service: str) -> Callable[[FaultContext, float], None]:
    def drill(ctx: FaultContext, outage_s: float) -> None:
        ctx.kill(service)
        time.sleep(min(5.0, outage_s))
        ctx.snapshot_status()
        time.sleep(max(0.0, outage_s - 5.0))
        ctx.restart(service)

    return drill


def _committed_batches(settings: Settings) -> int:
    from rtdp_dagster.streaming.app import CHECKPOINT

    commits = Path(settings.stream.checkpoint_root) / CHECKPOINT / "commits"
    return len([p for p in commits.glob("[0-9]*") if p.name.isdigit()])


def realtime_tsdb_outage(ctx: FaultContext, outage_s: float) -> None:
    """The realtime VictoriaMetrics away for outage_s, and at least until the stream finished a micro-batch
    without it (a stream slower than the outage would otherwise never meet it)."""
    before = _committed_batches(ctx.settings)
    ctx.kill("vm-realtime")
    time.sleep(min(5.0, outage_s))
    ctx.snapshot_status()
    time.sleep(max(0.0, outage_s - 5.0))
    met = wait_until(lambda: _committed_batches(ctx.settings) >= before + 2, timeout_s=600, interval_s=1)
    ctx.note(f"micro-batches committed while the TSDB was away: {_committed_batches(ctx.settings) - before}")
    if not met:
        ctx.note("the stream committed fewer than two micro-batches during the outage")
    ctx.restart("vm-realtime")


def realtime_tsdb_restart(ctx: FaultContext, outage_s: float) -> None:
    """The realtime VictoriaMetrics killed right after a micro-batch put to it and back at once: when no
    put fails in between, only its new start time tells the stream that its last acknowledged points
    may be gone."""
    before = _committed_batches(ctx.settings)
    wait_until(lambda: _committed_batches(ctx.settings) > before, timeout_s=120, interval_s=0.05)
    ctx.kill("vm-realtime")
    ctx.snapshot_status()
    time.sleep(outage_s)
    ctx.restart("vm-realtime")
    ctx.note(f"micro-batches committed while the TSDB was away: {_committed_batches(ctx.settings) - before - 1}")


DISK_MIB = 1024


def _run(*command: str) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


def loop_device_folder(folder: Path, size_mib: int = DISK_MIB) -> Callable[[], None]:
    """The drill's folder on a file system of its own (an ext4 image on a loop device, root only);
    returns the clean-up (unmount, detach, remove the image), safe to call once whatever happened."""
    folder.mkdir(parents=True, exist_ok=True)
    image = folder.parent / f"{folder.name}.img"
    with image.open("wb") as handle:
        handle.truncate(size_mib * 2**20)
    device = _run("losetup", "--find", "--show", str(image))
    mounted = False
    try:
        _run("mkfs.ext4", "-q", "-m", "0", device)
        _run("mount", device, str(folder))
        mounted = True
        folder.chmod(0o755)
    except BaseException:
        subprocess.run(["losetup", "-d", device], check=False)
        image.unlink(missing_ok=True)
        raise

    def clean_up() -> None:
        if mounted:
            subprocess.run(["umount", "--lazy", str(folder)], check=False)
        subprocess.run(["losetup", "-d", device], check=False)
        image.unlink(missing_ok=True)

    return clean_up


def disk_full(ctx: FaultContext, outage_s: float) -> None:
    """Fill the drill's file system (Delta tables, checkpoints) to its last 1 %, hold, then free it."""
    folder = ctx.platform.folder
    usage = shutil.disk_usage(folder)
    filler = folder / "filler"
    keep = usage.total // 100
    size = max(0, usage.free - keep)
    ctx.fault_at = time.time()
    _run("fallocate", "-l", str(size), str(filler))
    ctx.note(f"filled {folder} to its last 1 %: {shutil.disk_usage(folder).free / 2**20:.1f} MiB free")
    full_at = None
    deadline = time.time() + outage_s
    while time.time() < deadline:
        if full_at is None and shutil.disk_usage(folder).free < 2**20:
            full_at = time.time()
            ctx.note(f"file system full {full_at - ctx.fault_at:.0f} s after the fill")
        time.sleep(1)
    ctx.snapshot_status()
    filler.unlink()
    ctx.note(f"filler removed: {shutil.disk_usage(folder).free / 2**20:.0f} MiB free")
    ctx.restart()


@dataclass(frozen=True)
class Drill:
    name: str
    what: str
    fault: Callable[[FaultContext, float], None]
    outage_s: float
    # Makes the drill's folder (before the platform starts); returns what removes it again.
    folder: Callable[[Path], Callable[[], None]] | None = None
    # Runs the whole drill in place of `run_faults`, for drills with a flow of their own (during a Dagster
    # backfill: bench/backfill_drills.py); called as run_drill calls run_faults.
    runner: Callable[..., DrillResult] | None = None


DRILLS: dict[str, Drill] = {
    drill.name: drill
    for drill in (
        Drill(
            "broker_kill",
            "kill -9 the Kafka node that leads most points partitions, restart it 30 s later",
            broker_kill,
            30,
        ),
        Drill("stream_kill", "kill -9 the stream driver during a micro-batch, restart it 20 s later", stream_kill, 20),
        Drill(
            "realtime_tsdb_outage",
            "kill -9 the realtime VictoriaMetrics for 2 minutes",
            realtime_tsdb_outage,
            120,
        ),
        Drill(
            "realtime_tsdb_restart",
            "kill -9 the realtime VictoriaMetrics right after a micro-batch put to it, restart it at once",
            realtime_tsdb_restart,
            0,
        ),
        Drill("ingest_kill", "kill -9 `rtdp ingest` in the middle of a window, restart it 20 s later", ingest_kill, 20),
        Drill(
            "worker_kill",
            "kill -9 a Spark worker (and its executors) under the stream, restart it 30 s later",
            service_outage("spark-worker-1"),
            30,
        ),
        Drill(
            "disk_full",
            "fill the file system of the drill's tables and checkpoints (a 1 GiB loop device) to its last 1 % "
            "for a minute, then free it",
            disk_full,
            60,
            folder=loop_device_folder,
        ),
        Drill(
            "postgres_outage",
            "kill -9 PostgreSQL (collection state, Dagster storage) for 30 s",
            service_outage("postgres"),
            30,
        ),
    )
}


# --- reconciliation --------------------------------------------------------------------------------


def collected_span(settings: Settings, source: str) -> tuple[int, int, int, list[tuple[int, int]]]:
    """(first window start, last window end, rows read, gaps) of the source's wave-1 collection log."""
    from rtdp_dagster.collection.state import CollectionState

    state = CollectionState(settings.collection.state_url)
    try:
        rows = sorted(state.log_rows(source, 1), key=lambda row: row.window_start)
    finally:
        state.dispose()
    if not rows:
        raise RuntimeError(f"{source}: no window was collected")
    gaps, covered = [], rows[0].window_end
    for row in rows[1:]:
        if row.window_start > covered:
            gaps.append((covered, row.window_start))
        covered = max(covered, row.window_end)
    return rows[0].window_start, covered, sum(row.rows_read for row in rows), gaps


def truth_frame(settings: Settings, start_ms: int, end_ms: int, source_name: str | None = None) -> pd.DataFrame:
    """Every point the source (the named one, or the only one) made ready in (start, end]: metric, host, ts,
    value (the source's own truth)."""
    from rtdp_dagster.collection.sources.synthetic import SyntheticSource

    (config,) = [c for c in settings.collection.sources if source_name is None or c.name == source_name]
    source = SyntheticSource(config)  # type: ignore[arg-type]
    frames = []
    step = 60_000
    for low in range(start_ms, end_ms, step):
        truth = source.expected_truth(low, min(low + step, end_ms))
        frames.append(
            pd.DataFrame(
                {
                    "metric": [key[0] for key in truth],
                    "host": [dict(key[1])["host"] for key in truth],
                    "ts": [key[2] for key in truth],
                    "value": list(truth.values()),
                }
            )
        )
        del truth
    return pd.concat(frames, ignore_index=True)


def drain(platform: DrillPlatform, timeout_s: float = 900) -> bool:
    """Wait until the stream committed every record on the topic."""
    settings = platform.settings()

    def drained() -> bool:
        ends = end_offsets(settings, platform.topic)
        committed = stream_committed_offsets(settings.stream.checkpoint_root)
        return ends is not None and all(committed.get(p, 0) >= end for p, end in ends.items())

    return wait_until(drained, timeout_s=timeout_s, interval_s=2)


def wait_for_repair_due(spark, settings: Settings, timeout_s: float = 240) -> bool:
    """Wait until the stream's progress table shows bronze caught up past every failure it recorded (the
    repair's condition; an idle stream appends its last progress rows within ``ROWS_EVERY_S``)."""
    from rtdp_dagster.maintenance.tsdb_repair import TSDB_REPAIR_DONE, bronze_caught_up_at, pending_failures

    path = settings.delta.table_path
    failures = pending_failures(spark, path("tsdb_repair"), path(TSDB_REPAIR_DONE))
    if not failures:
        return True
    last = max(int(failure["recorded_at"]) for failure in failures)
    return wait_until(lambda: bronze_caught_up_at(spark, path("stream_progress")) >= last, timeout_s, interval_s=10)


def materialise_batch(spark, settings: Settings, days: list[dt.date]) -> bool:
    """Silver and the 1m/1h/1d rollups of these days with the batch layer's own functions (the ones its
    Dagster assets run; the drills' day is today, which the daily partitions reach only once it closed)."""
    from pyspark.sql import functions as F

    from rtdp_dagster.batch.intervals import interval
    from rtdp_dagster.batch.rollups import rollup_points, rollup_rollups, write_rollup
    from rtdp_dagster.batch.silver import silver_for_days, write_silver_days
    from rtdp_dagster.streaming import tables

    path = settings.delta.table_path
    bronze = spark.read.format("delta").load(path(tables.BRONZE))
    write_silver_days(silver_for_days(bronze, days), path("silver"), days)
    silver = spark.read.format("delta").load(path("silver")).where(F.col("event_date").isin(days))
    write_rollup(rollup_points(silver, "1m"), path("rollup_1m"), "1m", days)
    for level, finer in (("1h", "1m"), ("1d", "1h")):
        # Only these days of the finer level: other days there (a backfill's) must not be rewritten, and a
        # replaceWhere write of rows outside its days fails on an existing table.
        source = spark.read.format("delta").load(path(f"rollup_{finer}"))
        source = source.where(F.col(interval(finer).partition_column).isin(days))
        write_rollup(rollup_rollups(source, level, finer_level=finer), path(f"rollup_{level}"), level, days)
    return True


def repair_realtime(spark, settings: Settings) -> dict:
    from rtdp_dagster.maintenance.tsdb_repair import TSDB_REPAIR_DONE
    from rtdp_dagster.maintenance.tsdb_repair import repair_realtime as repair
    from rtdp_dagster.streaming import tables

    path = settings.delta.table_path
    result = repair(
        spark,
        bronze_path=path(tables.BRONZE),
        repair_path=path("tsdb_repair"),
        done_path=path(TSDB_REPAIR_DONE),
        progress_path=path("stream_progress"),
        master_path=path(settings.master_data.table),
        query_url=settings.tsdb.realtime.url,
        put_http_url=settings.tsdb.realtime.put_http_url,
    )
    return result.metadata()


def kafka_against_bronze(spark, settings: Settings, topic: str, ends: dict[int, int]) -> dict:
    """Every Kafka offset of the topic in bronze or quarantine, and every point of a record exactly once."""
    from pyspark.sql import functions as F

    from rtdp_dagster.master_data.table import read_table
    from rtdp_dagster.streaming import tables

    coordinates = ["kafka_partition", "kafka_offset", "kafka_index"]
    frames = []
    for name in (tables.BRONZE, tables.QUARANTINE):
        table = read_table(spark, settings.delta.table_path(name))
        if table is not None:
            frames.append(table.where(F.col("kafka_topic") == topic).select(*coordinates))
    union = frames[0]
    for frame in frames[1:]:
        union = union.unionByName(frame)
    # One job: per record, its points, distinct points and last index (a drill has thousands of records).
    per_record = (
        union.groupBy("kafka_partition", "kafka_offset")
        .agg(
            F.count(F.lit(1)).alias("points"),
            F.count_distinct("kafka_index").alias("distinct_points"),
            F.max("kafka_index").alias("last_index"),
        )
        .toPandas()
    )
    stored = per_record.groupby("kafka_partition")["kafka_offset"].nunique().to_dict()
    return {
        "kafka_records": sum(ends.values()),
        "records_stored": len(per_record),
        "records_missing": sum(max(0, end - int(stored.get(p, 0))) for p, end in ends.items()),
        "points_stored": int(per_record["points"].sum()),
        "records_with_missing_points": int((per_record["distinct_points"] != per_record["last_index"] + 1).sum()),
        "points_stored_twice": int((per_record["points"] - per_record["distinct_points"]).sum()),
    }


def pandas_rollup(points: pd.DataFrame, bucket_ms: int) -> pd.DataFrame:
    frame = points.assign(bucket_start=points["ts"] // bucket_ms * bucket_ms)
    return frame.groupby(["metric", "host", "bucket_start"])["value"].agg(["count", "sum", "min", "max"]).reset_index()


def _near(expected: Any, actual: Any, relative: float) -> pd.Series:
    """Where two columns agree within ``relative`` (absolutely, for values below 1)."""
    return pd.Series(np.abs(expected - actual) <= relative * np.maximum(np.abs(expected), 1.0), index=expected.index)


def compare_rollups(expected: pd.DataFrame, actual: pd.DataFrame) -> dict:
    merged = expected.merge(
        actual, on=["metric", "host", "bucket_start"], how="outer", suffixes=("", "_rtdp"), indicator=True
    )
    both = merged[merged["_merge"] == "both"]
    close = (
        (both["count"] == both["count_rtdp"])
        & _near(both["sum"], both["sum_rtdp"], 1e-6)
        & _near(both["min"], both["min_rtdp"], 1e-9)
        & _near(both["max"], both["max_rtdp"], 1e-9)
    )
    return {
        "buckets": len(expected),
        "missing": int((merged["_merge"] == "left_only").sum()),
        "extra": int((merged["_merge"] == "right_only").sum()),
        "different": int((~close).sum()),
    }


def realtime_points(settings: Settings, metrics: list[str], start_ms: int, end_ms: int) -> pd.DataFrame:
    from rtdp_dagster.tsdb.query import export_series, force_flush

    url = settings.tsdb.realtime.url
    force_flush(url)
    rows = []
    for metric in metrics:
        for series in export_series(url, metric, timeout_s=120, start_ms=start_ms + 1, end_ms=end_ms):
            host = series["tags"].get("host", "")
            rows.extend((metric, host, int(ts), float(value)) for ts, value in series["points"])
    return pd.DataFrame(rows, columns=pd.Index(["metric", "host", "ts", "value"]))


def missing_spans(timestamps: np.ndarray, gap_ms: int = 5_000, limit: int = 10) -> list[list[int]]:
    """[first ts, last ts, points] of each run of missing points (runs split where gap_ms has none): where
    in the drill the points went missing."""
    stamps = np.sort(np.asarray(timestamps, dtype=np.int64))
    if not len(stamps):
        return []
    breaks = np.flatnonzero(np.diff(stamps) > gap_ms) + 1
    return [[int(run[0]), int(run[-1]), len(run)] for run in np.split(stamps, breaks)[:limit]]


def reconcile(spark, platform: DrillPlatform) -> dict:
    """The drill's figures after the stream drained: see the module docstring."""
    from pyspark.sql import functions as F

    from rtdp_dagster.batch.intervals import date_of_ms
    from rtdp_dagster.master_data.table import read_table
    from rtdp_dagster.streaming import tables

    settings = platform.settings()
    start_ms, end_ms, rows_read, gaps = collected_span(settings, platform.source_name)
    ends = end_offsets(settings, platform.topic) or {}
    figures: dict = {"span_ms": [start_ms, end_ms], "collection_log_rows_read": rows_read, "collection_gaps": gaps}
    log(f"{platform.name}: Kafka offsets against bronze and quarantine")
    figures["kafka"] = kafka_against_bronze(spark, settings, platform.topic, ends)
    log(f"{platform.name}: realtime TSDB repair from bronze")
    figures["repair"] = repair_realtime(spark, settings)
    days = sorted({date_of_ms(start_ms + 1), date_of_ms(end_ms)})
    log(f"{platform.name}: silver and rollups of {[day.isoformat() for day in days]}")
    figures["batch_succeeded"] = materialise_batch(spark, settings, days)

    log(f"{platform.name}: the source's truth, compared in pandas")
    truth = truth_frame(settings, start_ms, end_ms, platform.source_name)
    metrics = sorted(truth["metric"].unique())
    bronze = read_table(spark, settings.delta.table_path(tables.BRONZE))
    silver = read_table(spark, settings.delta.table_path("silver"))
    assert bronze is not None and silver is not None
    figures["bronze_points"] = bronze.count()
    keys = silver.agg(F.count(F.lit(1)).alias("rows"), F.count_distinct("point_key").alias("keys")).first()
    assert keys is not None
    figures["silver_point_keys_twice"] = int(keys["rows"]) - int(keys["keys"])
    identity = ["metric", "host", "ts"]
    counts = {"silver_points": 0, "lost": 0, "extra_in_silver": 0, "silver_value_differs": 0, "duplicated_in_silver": 0}
    columns = [F.col("metric"), F.col("tags").getItem("host").alias("host"), F.col("ums_ts_").alias("ts"), "value"]
    # A metric at a time when it is large: the driver hands over a few hundred thousand rows at once.
    groups = [metrics] if int(keys["rows"]) < 500_000 else [[metric] for metric in metrics]
    for group in groups:
        expected = truth[truth["metric"].isin(group)]
        actual = silver.where(F.col("metric").isin(group)).select(*columns).toPandas()
        merged = expected.merge(actual, on=identity, how="outer", suffixes=("", "_silver"), indicator=True)
        both = merged[merged["_merge"] == "both"]
        differs = ~_near(both["value"], both["value_silver"], 1e-9)
        counts["silver_points"] += len(actual)
        counts["lost"] += int((merged["_merge"] == "left_only").sum())
        counts["extra_in_silver"] += int((merged["_merge"] == "right_only").sum())
        counts["silver_value_differs"] += int(differs.sum())
        counts["duplicated_in_silver"] += int(len(actual) - actual.drop_duplicates(identity).shape[0])
    figures.update(produced=len(truth), **counts)
    rollups = {}
    for level, bucket_ms in (("1m", 60_000), ("1h", 3_600_000), ("1d", 86_400_000)):
        table = read_table(spark, settings.delta.table_path(f"rollup_{level}"))
        actual = (
            pd.DataFrame(columns=pd.Index(["metric", "host", "bucket_start", "count", "sum", "min", "max"]))
            if table is None
            # Only the load source's series (a drill may collect other sources into the same tables).
            else table.where(F.col("metric").isin(metrics))
            .select(
                "metric",
                F.col("tags").getItem("host").alias("host"),
                "bucket_start",
                "count",
                F.col("sum").cast("double").alias("sum"),
                "min",
                "max",
            )
            .toPandas()
        )
        rollups[level] = compare_rollups(pandas_rollup(truth, bucket_ms), actual)
    figures["rollups"] = rollups
    log(f"{platform.name}: the realtime TSDB against the truth")
    realtime = realtime_points(settings, metrics, start_ms, end_ms)
    found = truth.merge(realtime.drop_duplicates(identity), on=identity, how="left", indicator=True)
    figures["realtime_points"] = len(realtime)
    figures["realtime_missing_after_repair"] = int((found["_merge"] == "left_only").sum())
    figures["realtime_missing_spans_ms"] = missing_spans(found.loc[found["_merge"] == "left_only", "ts"].to_numpy())
    figures["realtime_duplicate_samples"] = int(len(realtime) - realtime.drop_duplicates(identity).shape[0])
    return figures


# --- the run ---------------------------------------------------------------------------------------


@dataclass
class DrillResult:
    drill: str
    what: str
    rate_target: float
    started_at: str
    # One entry per fault: when (s after the load started), how long the part was away, how long until
    # the platform was healthy again, notes, what `stack status` showed while it was away.
    faults: list[dict]
    operator_saw: dict
    figures: dict
    timeline: list[dict]
    error: str | None = None

    @property
    def recovery_s(self) -> float | None:
        times = [fault["recovery_s"] for fault in self.faults]
        return None if not times or None in times else max(times)

    def to_json(self) -> dict:
        return {**asdict(self), "recovery_s": self.recovery_s}


WARNINGS = re.compile(r"WARN|ERROR|Exception|failed|unavailable", re.IGNORECASE)


def _log_excerpt(path: Path, limit: int = 8, pattern: re.Pattern[str] = WARNINGS) -> list[str]:
    """The last lines of a service's log matching pattern, by default its warnings and errors (what an
    operator tailing it saw)."""
    if not path.exists():
        return []
    lines = []
    with path.open(errors="replace") as handle:
        handle.seek(max(0, path.stat().st_size - 4_000_000))
        for line in handle:
            if pattern.search(line):
                lines.append(line.rstrip()[:300])
    return lines[-limit:]


def run_drill(
    cluster: Cluster,
    spark,
    drill: Drill,
    *,
    rate: float,
    warm_s: float,
    after_s: float,
    outage_s: float | None = None,
) -> DrillResult:
    """One drill from a fresh topic to its reconciled figures; the platform services are stopped after."""
    if drill.runner is not None:
        return drill.runner(cluster, spark, drill, rate=rate, warm_s=warm_s, after_s=after_s, outage_s=outage_s)
    faults = [(drill, drill.outage_s if outage_s is None else outage_s)]
    return run_faults(cluster, spark, drill.name, faults, rate=rate, warm_s=warm_s, between_s=0, after_s=after_s)


def wind_down(platform: DrillPlatform, spark, phases: dict) -> tuple[bool, bool]:
    """The collectors stopped, the stream drained, the realtime repair due: (drained, repair due); the
    time of each phase into ``phases``."""
    settings = platform.settings()
    log(f"{platform.name}: stopping the collectors, draining the stream")
    manager.process_named(settings, "ingest").stop(settings.stack.stop_timeout_s)
    began = time.time()
    drained = drain(platform)
    phases["drain_s"] = round(time.time() - began, 1)
    began = time.time()
    repair_due = wait_for_repair_due(spark, settings)
    phases["repair_due_s"] = round(time.time() - began, 1)
    return drained, repair_due


def timeline_rows(watcher: Watcher, load_started: float) -> list[dict]:
    return [
        {
            "t": round(s.at - load_started, 1),
            "healthy": s.all_healthy,
            "unhealthy": s.unhealthy,
            "produced": s.produced,
            "committed": s.committed,
            **({"details": s.details} if s.details else {}),
        }
        for s in watcher.samples
    ]


def run_faults(
    cluster: Cluster,
    spark,
    name: str,
    faults: list[tuple[Drill, float]],
    *,
    rate: float,
    warm_s: float,
    between_s: float,
    after_s: float,
) -> DrillResult:
    """Faults one after the other (each with its outage) under one platform run and one reconciliation."""
    platform = DrillPlatform(cluster, name, rate, cluster.run_dir / "drills" / name)
    if platform.folder.exists():
        shutil.rmtree(platform.folder)
    clean_ups = [drill.folder(platform.folder) for drill, _ in faults if drill.folder is not None]
    try:
        return _run_faults(
            platform, spark, name, faults, rate=rate, warm_s=warm_s, between_s=between_s, after_s=after_s
        )
    finally:
        for clean_up in clean_ups:
            clean_up()


def _run_faults(
    platform: DrillPlatform,
    spark,
    name: str,
    faults: list[tuple[Drill, float]],
    *,
    rate: float,
    warm_s: float,
    between_s: float,
    after_s: float,
) -> DrillResult:
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    what = "; ".join(drill.what for drill, _ in faults)
    log(f"{name}: {what} (load {rate:,.0f} points/s)")
    phases: dict[str, float] = {}
    began = time.time()
    settings = platform.start()
    phases["start_s"] = round(time.time() - began, 1)
    contexts: list[FaultContext] = []
    error = None
    load_started = time.time()
    figures: dict = {}
    with Watcher(platform) as watcher:
        try:
            time.sleep(warm_s)
            for index, (drill, outage) in enumerate(faults):
                if index:
                    time.sleep(between_s)
                ctx = FaultContext(platform, settings)
                contexts.append(ctx)
                drill.fault(ctx, outage)
            time.sleep(after_s)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log(f"{name}: {error}")
        finally:
            try:
                manager.up(settings, log=lambda line: None)  # whatever the drill left stopped
            except StackError as exc:  # e.g. collection still stalled: a finding, not the end of the drill
                error = (error + "; " if error else "") + f"stack up: {exc}"
                log(f"{name}: {error}")
        drained, repair_due = wind_down(platform, spark, phases)
        timeline = timeline_rows(watcher, load_started)
        fault_rows = []
        for (drill, _), ctx in zip(faults, contexts, strict=False):
            recovered_at = watcher.healthy_again_at(ctx.fault_at) if ctx.fault_at else None
            fault_rows.append(
                {
                    "drill": drill.name,
                    "what": drill.what,
                    "fault_after_s": round(ctx.fault_at - load_started, 1) if ctx.fault_at else None,
                    "outage_s": round(ctx.restored_at - ctx.fault_at, 1) if ctx.restored_at else None,
                    "recovery_s": None if recovered_at is None else round(recovered_at - ctx.fault_at, 1),
                    "notes": ctx.notes,
                    "stack_status_during_fault": ctx.status_during,
                }
            )
    logs = settings.run_dir / "logs"
    operator = {
        "phases": phases,
        "stream_log": _log_excerpt(logs / "stream.log"),
        "ingest_log": _log_excerpt(logs / "ingest.log"),
        "drained": drained,
        "repair_due": repair_due,
    }
    platform.stop()
    try:
        log(f"{name}: reconciling")
        began = time.time()
        figures = reconcile(spark, platform)
        phases["reconcile_s"] = round(time.time() - began, 1)
    except Exception as exc:
        error = (error + "; " if error else "") + f"reconcile: {type(exc).__name__}: {exc}"
        log(f"{name}: {error}")
    result = DrillResult(
        drill=name,
        what=what,
        rate_target=rate,
        started_at=started,
        faults=fault_rows,
        operator_saw=operator,
        figures=figures,
        timeline=timeline,
        error=error,
    )
    log(f"{name}: {summary_line(result)}")
    return result


def summary_line(result: DrillResult) -> str:
    f = result.figures
    return (
        f"produced {f.get('produced', '-')}, bronze {f.get('bronze_points', '-')}, "
        f"silver {f.get('silver_points', '-')}, "
        f"lost {f.get('lost', '-')}, duplicated in silver {f.get('duplicated_in_silver', '-')}, "
        f"realtime missing after repair {f.get('realtime_missing_after_repair', '-')}, healthy again after "
        f"{result.recovery_s} s"
    )


def stop_leftovers(settings: Settings) -> None:
    """Stop the platform services of any drill (pid files of the run folder)."""
    for name in PLATFORM_SERVICES:
        with contextlib.suppress(Exception):
            manager.process_named(settings, name).stop(settings.stack.stop_timeout_s)
