"""Speed-layer benchmarks: end-to-end latency at a steady rate, drain throughput, driver memory.

Load is envelope v2 (UMS batches) as collectors send it: ``load_producer.BatchRecords`` packs the
points with the collectors' ``BatchBuilder`` and the collectors' ``Publisher.send_batch`` sends them.

- latency: after a warm-up set has gone through the stream, points produced at `rate`
  points/s for three times ``--seconds`` with probe points among them; a probe's
  latency is the time from its send to it being queryable in the realtime TSDB (polled every
  200 ms with a flush), p50/p95 over the run;
- throughput: `rtdp stream` drains a backlog of `backlog` points already on Kafka; its rate
  (rows after the first micro-batch / time from the first micro-batch to the last; with start-up
  too) against Spark reading and counting the same topic in one batch job (the bare Kafka consume
  rate) in the same run;
- floor: a Spark stream of the same topic that only parses its batches, explodes their tuples into
  points and appends them to Delta (no validation, quarantine, dedup, master data or TSDB): the
  most the speed layer could reach here;
- peak resident memory of the stream's Spark driver (JVM) during both.

The sustained rate (``sustained.py``) is the issue's throughput figure.
"""

from __future__ import annotations

import statistics
import threading
import time
from pathlib import Path

from pyspark.sql import functions as F
from pyspark.sql import types as T

from bench.load_producer import BatchRecords
from bench.results import Record
from bench.stream_stack import (
    LOAD_METRIC,
    SCENARIO,
    cpu_s,
    java_peak_mib,
    prepare,
    spark_read_rate,
    start_stream,
    stop_stream,
    stream_totals,
)
from rtdp_dagster.collection.publisher import Publisher
from rtdp_dagster.config import Settings
from rtdp_dagster.spark.session import connect
from rtdp_dagster.stack import manager
from rtdp_dagster.stack.process import wait_until
from rtdp_dagster.streaming.app import kafka_stream
from rtdp_dagster.streaming.ums_batch_parse import UMS_BATCH_SCHEMA
from rtdp_dagster.tsdb.query import export_series, force_flush

PROBE_METRIC = "rtdp.bench.probe"
WARM_UP_POINTS = 20_000
DRAIN_RECORDS_PER_TRIGGER = 120


def bench_batches(bench: Settings, metric: str = LOAD_METRIC, hosts: list[str] | None = None) -> BatchRecords:
    """The bench topic's v2 records as collectors pack them (``collection.ums_batch`` bounds)."""
    partitions = list(range(bench.kafka.topics[0].partitions))
    return BatchRecords(metric, partitions, bench.collection.ums_batch, hosts)


def publish_points(publisher: Publisher, batches: BatchRecords, first: int, count: int, now_ms: int) -> None:
    """Points first .. first + count - 1 of ``batches`` at ``now_ms``, sent as collectors send records."""
    for record in batches.records(first, count, now_ms):
        publisher.send_batch(record)


# Tuples as arrays of their elements' JSON text: the least parsing that gives typed points.
_FLOOR_SCHEMA = T.StructType(
    [
        field
        if field.name != "payload"
        else T.StructField(
            "payload",
            T.ArrayType(
                T.StructType(
                    [
                        T.StructField("metric", T.StringType()),
                        T.StructField("tags", T.MapType(T.StringType(), T.StringType())),
                        T.StructField("tuples", T.ArrayType(T.ArrayType(T.StringType()))),
                    ]
                )
            ),
        )
        for field in UMS_BATCH_SCHEMA.fields
    ]
)


def spark_stream_floor_rate(settings: Settings, bench: Settings, folder: Path) -> tuple[float, float]:
    """Points/s of the least a Spark stream to Delta does with the topic: parse, explode, append.

    On the warm Spark Connect server, availableNow, with the stream's Kafka options; run twice and
    the second run timed (the first compiles the code). No validation, quarantine, dedup, master
    data or TSDB: what is left of the speed layer's work when everything the issue asks is removed.
    Returns (points/s, µs of the Spark Connect server's CPU per point) of the timed run.
    """
    spark = connect(settings)
    server = manager.process_named(settings, "spark-connect").pid()
    rate, cpu_us = 0.0, 0.0
    for run in ("warm-up", "timed"):
        batch = F.from_json(F.col("value").cast("string"), _FLOOR_SCHEMA).alias("batch")
        groups = kafka_stream(spark, bench).select(batch).select("batch.*", F.explode("batch.payload").alias("group"))
        tuples = groups.select("*", F.explode("group.tuples").alias("tuple"))
        points = tuples.select(
            F.col("schema.namespace").alias("namespace"),
            F.col("group.metric").alias("metric"),
            F.col("group.tags").alias("tags"),
            F.col("tuple")[4].cast("double").alias("value"),
            F.col("tuple")[1].cast("long").alias("ums_ts_"),
            F.col("tuple")[3].alias("point_key"),
            F.col("tuple")[0].cast("long").alias("ums_id_"),
            F.col("tuple")[2].alias("ums_op_"),
            F.col("batch.wave").alias("wave"),
            F.col("batch.source").alias("source"),
            F.col("batch.collected_at").alias("collected_at"),
        )
        query = (
            points.writeStream.format("delta")
            .option("checkpointLocation", str(folder / f"{run}-checkpoint"))
            .trigger(availableNow=True)
            .start(str(folder / run))
        )
        started, cpu = time.perf_counter(), cpu_s(server) if server else 0.0
        query.awaitTermination()
        elapsed, used = time.perf_counter() - started, (cpu_s(server) if server else 0.0) - cpu
        points = spark.read.format("delta").load(str(folder / run)).count()
        rate, cpu_us = points / elapsed, used / max(points, 1) * 1e6
    return rate, cpu_us


def throughput(settings: Settings, backlog: int, log=print) -> list[Record]:
    # Micro-batches of ~200k points (records of ~1,700 at the default bounds), not the whole backlog in one.
    bench, config_file = prepare(settings, "throughput", max_offsets_per_trigger=DRAIN_RECORDS_PER_TRIGGER)
    log(f"stream throughput: producing a backlog of {backlog:,} points ...")
    start = (int(time.time()) - 3600) * 1000
    publisher = Publisher(bench.kafka, client_id="rtdp-bench-stream")
    batches = bench_batches(bench)
    chunk = 10 * batches.hosts  # ten points per host per window, a second apart from the next window
    for at in range(0, backlog, chunk):
        publish_points(publisher, batches, at, min(chunk, backlog - at), start + (at // chunk) * 1000)
        publisher.confirm()
    publisher.close()

    log("baseline: Spark reads and counts the same topic in one batch job ...")
    records, record_rate = spark_read_rate(settings, bench)
    # In points: v2 records carry many points each, and the stream's rates are in points.
    bare_rate = record_rate * backlog / max(records, 1)
    log("floor: a Spark stream that only parses the same topic and appends it to Delta ...")
    floor_rate, floor_cpu_us = spark_stream_floor_rate(settings, bench, config_file.parent / "floor")

    log("rtdp stream draining the backlog ...")
    process = start_stream(config_file)
    peak = 0.0
    try:
        # When the first micro-batch was reported, its rows, and the stream's CPU seconds by then.
        first: tuple[float, int, float] | None = None
        last_cpu = 0.0

        def drained() -> bool:
            nonlocal first, peak, last_cpu
            peak = max(peak, java_peak_mib(process.pid))
            last_cpu = cpu_s(process.pid)  # read while the processes live: they exit once stopped
            totals = stream_totals(config_file)
            done = min(totals.get("bronze.bronze_rows", 0), totals.get("realtime.num_input_rows", 0))
            if done and first is None:
                first = (time.perf_counter(), done, last_cpu)
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
    # CPU per point of every process of the stream (its Python, the driver JVM, Python workers).
    steady_cpu_us = (last_cpu - first[2]) / max(backlog - first[1], 1) * 1e6
    floor_cpu = round(floor_cpu_us, 2)
    log(
        f"stream: {steady:,.0f} points/s after its first batch ({with_start_up:,.0f} with start-up), "
        f"{steady_cpu_us:.1f} us CPU/point; Spark batch read: {bare_rate:,.0f} points/s; Spark stream "
        f"parse + Delta append only: {floor_rate:,.0f} points/s, {floor_cpu_us:.1f} us CPU/point"
    )
    return [
        # Against the floor: the ratio (the floor's own baseline is the bare read).
        Record(SCENARIO, "drain_points_per_s", round(steady), "points/s", baseline=round(floor_rate)),
        Record(SCENARIO, "drain_points_per_s_with_start_up", round(with_start_up), "points/s"),
        Record(SCENARIO, "spark_stream_floor_points_per_s", round(floor_rate), "points/s", baseline=round(bare_rate)),
        # The same comparison in CPU per point: what a loaded machine distorts least.
        Record(SCENARIO, "drain_cpu_per_point", round(steady_cpu_us, 2), "us CPU/point", baseline=floor_cpu),
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
        batches, probes = bench_batches(bench), bench_batches(bench, PROBE_METRIC, ["probe"])
        publish_points(publisher, batches, 0, WARM_UP_POINTS, int(time.time() * 1000) - 60_000)
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
                publish_points(publisher, batches, i, rate // 10, now_ms)  # a tenth of a second's worth
                i += rate // 10
                sent[now_ms] = time.perf_counter()
                publish_points(publisher, probes, 0, 1, now_ms)  # a window of its own, as another source's
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


# The parts of the scenario, in the order they run (``--stream-part`` picks some).
PARTS = ("latency", "drain", "sustained")


def run(settings: Settings, seconds: float = 60.0, log=print, parts: list[str] | None = None) -> list[Record]:
    from bench.scenarios.sustained import sustained

    chosen = set(parts or PARTS)
    records: list[Record] = []
    # Latency over three times the sustained-rate duration (3 min by default): the percentiles of
    # one minute swing by a second with the stream's periodic work (Delta checkpoints, progress rows).
    # The sustained rate is held five times as long (the 5 minutes), its ladder steps once.
    if "latency" in chosen:
        records += latency(settings, 3 * seconds, rate=10_000, log=log)
    if "drain" in chosen:
        records += throughput(settings, backlog=1_000_000, log=log)
    if "sustained" in chosen:
        records += sustained(settings, hold_s=5 * seconds, step_s=seconds, log=log)
    # The target: the sustained rate against the floor measured in this same run.
    figures = {record.figure: record.value for record in records}
    floor, held = figures.get("spark_stream_floor_points_per_s"), figures.get("sustained_points_per_s")
    if floor is None or held is None:
        return records
    ratio = round(held / floor, 2) if floor else 0.0
    log(f"sustained {held:,} points/s = {ratio:.2f} of the floor ({floor:,} points/s)")
    return [*records, Record(SCENARIO, "sustained_to_floor_ratio", ratio, "share")]
