"""Speed-layer benchmarks: end-to-end latency at a steady rate, drain throughput, driver memory.

- latency: after a warm-up set has gone through the stream, envelopes produced at `rate`
  points/s for three times ``--seconds`` with probe points among them; a probe's
  latency is the time from its send to it being queryable in the realtime TSDB (polled every
  200 ms with a flush), p50/p95 over the run;
- throughput: `rtdp stream` drains a backlog of `backlog` points already on Kafka; its rate
  (rows after the first micro-batch / time from the first micro-batch to the last; with start-up
  too) against Spark reading and counting the same topic in one batch job (the bare Kafka consume
  rate) in the same run;
- floor: a Spark stream of the same topic that only parses it and appends it to Delta (no
  validation, quarantine, dedup, master data or TSDB): the most the speed layer could reach here;
- peak resident memory of the stream's Spark driver (JVM) during both.

The sustained rate (``sustained.py``) is the issue's throughput figure.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import yaml
from pyspark.sql import functions as F

from bench.results import Record
from rtdp_dagster.collection.publisher import Publisher
from rtdp_dagster.config import Settings, TopicConfig
from rtdp_dagster.envelope.keys import point_key
from rtdp_dagster.envelope.schema import Envelope
from rtdp_dagster.heartbeat import read_heartbeat
from rtdp_dagster.spark.session import connect
from rtdp_dagster.stack.process import memory_mib, wait_until
from rtdp_dagster.stack.topics import ensure_topics
from rtdp_dagster.streaming.app import kafka_stream
from rtdp_dagster.streaming.tables import ENVELOPE_SCHEMA
from rtdp_dagster.tsdb.query import export_series, force_flush

SCENARIO = "stream"
PROBE_METRIC = "rtdp.bench.probe"
# Not a platform metric: the realtime TSDB is the local stack's, and its dashboards list sites from
# the platform's series (the bench hosts have no master data, so they would add a site "unknown").
LOAD_METRIC = "rtdp.bench.load"
WARM_UP_POINTS = 20_000


def _envelope(metric: str, host: str, ts: int, value: float) -> Envelope:
    tags = {"host": host}
    return Envelope(namespace="synthetic.bench.fleet.metrics.v1.0.0", metric=metric, tags=tags, value=value,
                    ums_ts_=ts, point_key=point_key(metric, tags, ts), ums_id_=ts, ums_op_="i", wave=1,
                    source="bench", collected_at=ts)  # fmt: skip


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


def prepare(settings: Settings, name: str, max_offsets_per_trigger: int = 200_000) -> tuple[Settings, Path]:
    folder = settings.run_dir / "bench" / f"{name}-{uuid.uuid4().hex[:6]}"
    # Outside the platform's own pattern (rtdp.points.*): a running stream must not consume it.
    topic = f"rtdpbench.points.{folder.name.replace('-', '')}"
    config = {
        "delta": {"root": str(folder / "delta")},
        "kafka": {"points_topic": topic, "topics": [TopicConfig(name=topic, partitions=3).model_dump()]},
        "stream": {"topic_pattern": topic.replace(".", "\\."), "checkpoint_root": str(folder / "checkpoints"),
                   "max_offsets_per_trigger": max_offsets_per_trigger},
    }  # fmt: skip
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
    return subprocess.Popen([sys.executable, "-m", "rtdp_dagster.cli", "--config", str(config_file), "stream"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment,
                            start_new_session=True)  # fmt: skip


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


def spark_stream_floor_rate(settings: Settings, bench: Settings, folder: Path) -> float:
    """Points/s of the least a Spark stream to Delta does with the topic: parse, append, nothing else.

    On the warm Spark Connect server, availableNow, with the stream's Kafka options; run twice and
    the second run timed (the first compiles the code). No validation, quarantine, dedup, master
    data or TSDB: what is left of the speed layer's work when everything the issue asks is removed.
    """
    spark = connect(settings)
    rate = 0.0
    for run in ("warm-up", "timed"):
        point = F.from_json(F.col("value").cast("string"), ENVELOPE_SCHEMA).alias("point")
        parsed = kafka_stream(spark, bench).select(point)
        query = (
            parsed.select("point.*").writeStream.format("delta")
            .option("checkpointLocation", str(folder / f"{run}-checkpoint")).trigger(availableNow=True)
            .start(str(folder / run))
        )  # fmt: skip
        started = time.perf_counter()
        query.awaitTermination()
        elapsed = time.perf_counter() - started
        rate = spark.read.format("delta").load(str(folder / run)).count() / elapsed
    return rate


def throughput(settings: Settings, backlog: int, log=print) -> list[Record]:
    bench, config_file = prepare(settings, "throughput")
    log(f"stream throughput: producing a backlog of {backlog:,} points ...")
    start = (int(time.time()) - 3600) * 1000
    publisher = Publisher(bench.kafka, client_id="rtdp-bench-stream")
    for i in range(backlog):
        publisher.send_point(_envelope(LOAD_METRIC, f"h{i % 1000:04d}", start + (i // 1000) * 1000, float(i % 100)))
    publisher.confirm()
    publisher.close()

    log("baseline: Spark reads and counts the same topic in one batch job ...")
    _, bare_rate = spark_read_rate(settings, bench)
    log("floor: a Spark stream that only parses the same topic and appends it to Delta ...")
    floor_rate = spark_stream_floor_rate(settings, bench, config_file.parent / "floor")

    log("rtdp stream draining the backlog ...")
    process = start_stream(config_file)
    peak = 0.0
    try:
        first: tuple[float, int] | None = None  # when the first micro-batch was reported, and its rows

        def drained() -> bool:
            nonlocal first, peak
            peak = max(peak, java_peak_mib(process.pid))
            totals = stream_totals(config_file)
            done = min(totals.get("bronze.bronze_rows", 0), totals.get("realtime.num_input_rows", 0))
            if done and first is None:
                first = (time.perf_counter(), done)
            return done >= backlog

        began = time.perf_counter()
        assert wait_until(drained, timeout_s=1800, interval_s=0.5), "the stream did not drain the backlog"
        finished = time.perf_counter()
    finally:
        stop_stream(process)
    assert first is not None
    # Steady rate: after the first micro-batch (JVM start, code generation and the first Delta
    # commits take ~20 s that a running stream has paid long ago), to the last.
    steady = (backlog - first[1]) / max(finished - first[0], 1e-9)
    with_start_up = backlog / (finished - began)
    log(f"stream: {steady:,.0f} points/s after its first batch ({with_start_up:,.0f} with start-up); "
        f"Spark batch read: {bare_rate:,.0f} records/s; Spark stream parse + Delta append only: "
        f"{floor_rate:,.0f} points/s")  # fmt: skip
    return [
        Record(SCENARIO, "drain_points_per_s", round(steady), "points/s", baseline=round(bare_rate)),
        Record(SCENARIO, "drain_points_per_s_with_start_up", round(with_start_up), "points/s"),
        Record(SCENARIO, "spark_stream_floor_points_per_s", round(floor_rate), "points/s", baseline=round(bare_rate)),
        Record(SCENARIO, "driver_peak_rss_throughput", round(peak), "MiB"),
    ]


def latency(settings: Settings, seconds: float, rate: int, log=print) -> list[Record]:
    bench, config_file = prepare(settings, "latency")
    process = start_stream(config_file)
    sent: dict[int, float] = {}
    latencies: list[float] = []
    stop = threading.Event()
    peak = 0.0
    try:
        publisher = Publisher(bench.kafka, client_id="rtdp-bench-latency", linger_ms=5)
        # Measure a warm stream: a first batch with data compiles and loads what an empty one
        # skips (the first data batches took 7-17 s each), so a warm-up set goes through first.
        log(f"stream latency: warming up with {WARM_UP_POINTS:,} points ...")
        warm_ms = int(time.time() * 1000) - 60_000
        for i in range(WARM_UP_POINTS):
            publisher.send_point(_envelope(LOAD_METRIC, f"h{i % 1000:04d}", warm_ms + i // 1000, float(i % 100)))
        publisher.confirm()

        def warm() -> bool:
            totals = stream_totals(config_file)
            through = min(totals.get("bronze.bronze_rows", 0), totals.get("realtime.tsdb_written", 0))
            return through >= WARM_UP_POINTS or process.poll() is not None

        assert wait_until(warm, timeout_s=600, interval_s=0.5), "the warm-up points did not go through"
        assert process.poll() is None, "the stream stopped during the warm-up"

        failures: list[BaseException] = []

        def produce() -> None:
            try:
                produce_steadily()
            except BaseException as exc:  # surfaced after join: a silent producer would fake a latency
                failures.append(exc)
                raise

        def produce_steadily() -> None:
            i = 0
            next_tick = time.perf_counter()
            while not stop.is_set():
                now_ms = int(time.time() * 1000)
                for _ in range(rate // 10):  # a tenth of a second's worth
                    publisher.send_point(_envelope(LOAD_METRIC, f"h{i % 1000:04d}", now_ms, float(i % 100)))
                    i += 1
                sent[now_ms] = time.perf_counter()
                publisher.send_point(_envelope(PROBE_METRIC, "probe", now_ms, 1.0))
                publisher.confirm()
                next_tick += 0.1
                stop.wait(max(0.0, next_tick - time.perf_counter()))

        producer = threading.Thread(target=produce)
        log(f"stream latency: producing {rate:,} points/s for {seconds:.0f} s with probes ...")
        producer.start()
        seen: set[int] = set()
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            force_flush(bench.tsdb.realtime.url)
            for series in export_series(bench.tsdb.realtime.url, PROBE_METRIC, {"host": "probe"}):
                for ts, _ in series["points"]:
                    if ts in sent and ts not in seen:
                        seen.add(ts)
                        latencies.append(time.perf_counter() - sent[ts])
            peak = max(peak, java_peak_mib(process.pid))
            time.sleep(0.2)
        stop.set()
        producer.join()
        publisher.close()
        if failures:
            raise RuntimeError(f"the producer failed: {failures[0]!r}")
    finally:
        stop.set()
        stop_stream(process)
    # The first probes wait for the stream's first (cold) micro-batches; steady state is what counts.
    if not latencies:
        raise RuntimeError(f"no probe became queryable in {seconds:.0f} s ({len(sent)} sent)")
    steady = latencies[len(latencies) // 5 :] or latencies
    quantiles = statistics.quantiles(steady, n=20) if len(steady) >= 2 else [float("nan")] * 19
    log(f"latency over {len(steady)} probes: p50 {statistics.median(steady):.2f} s, p95 {quantiles[18]:.2f} s")
    return [
        Record(SCENARIO, "latency_p50", round(statistics.median(steady), 3), "s", samples=steady),
        Record(SCENARIO, "latency_p95", round(quantiles[18], 3), "s"),
        Record(SCENARIO, "probes_seen_share", round(len(latencies) / max(1, len(sent)), 3), "share"),
        Record(SCENARIO, "driver_peak_rss_latency", round(peak), "MiB"),
    ]


def run(settings: Settings, seconds: float = 60.0, log=print) -> list[Record]:
    from bench.scenarios.sustained import sustained

    # Latency over three times the sustained-rate duration (3 min by default): the percentiles of
    # one minute swing by a second with the stream's periodic work (Delta checkpoints, progress rows).
    # The sustained rate is held five times as long (the 5 minutes), its ladder steps once.
    return (
        latency(settings, 3 * seconds, rate=10_000, log=log)
        + throughput(settings, backlog=1_000_000, log=log)
        + sustained(settings, hold_s=5 * seconds, step_s=seconds, log=log)
    )
