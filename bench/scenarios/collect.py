"""Collection → Kafka with envelope v2 (UMS batches) through kafka-python, against a bare producer.

Each of 3 runs, on fresh topics of the same broker:

1. the platform's collector path (``collect_window``: synthetic source → validation → UMS batches
   → ``Publisher`` → confirm → collection log), envelope v2, for a fixed time, in wave 1's 10 s
   windows (10,000 points each from this source); the synthetic source hands its rows over as
   column blocks (``read_blocks``), judged column-wise;
2. the baseline: a bare kafka-python producer with the same settings sending the same pre-encoded
   batch records (those the collector just produced, cycled) to the same partitions, as many
   points as the collector published;
3. for reference: the same v2 path catching the day up as the ingest plans a backlog (windows of
   ``max_window_s``, 300 s by default: per-window costs weigh 30 times less), the same v2 path
   reading the source row by row (as sources without blocks are read), the collector path with
   envelope v1 (a record per point), and a bare producer sending those v1 records.

The issue's figure is the first: v2 points/s (target: 200k on this 2-core machine) beside the bare
producer's, with the CPU per point of both. The 1-minute load average at the start of each run is
logged and recorded, so a run overlapped by other work shows.

Points/s is wall-clock; CPU per point is this process's CPU time (every thread, so kafka-python's
sender too) over the points. Every figure is the median of the 3 runs, beside its baseline's
median from the same runs. The synthetic source serves a simulated day whose every point is
ready, so the figure is the collection path's own cost, not the source's readiness.
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from kafka import KafkaProducer

from bench.results import Record
from rtdp_dagster.collection.collector import WindowContext, batch_packer, collect_window
from rtdp_dagster.collection.publisher import Publisher
from rtdp_dagster.collection.sources.synthetic import SyntheticSource
from rtdp_dagster.collection.state import CollectionState
from rtdp_dagster.config import Settings, TopicConfig
from rtdp_dagster.config.sources import SyntheticSourceConfig, WaveConfig
from rtdp_dagster.envelope.validation import PointValidator
from rtdp_dagster.stack.topics import ensure_topics

SCENARIO = "collect"
RUNS = 3
PARTITIONS = 3
# Wave 1's window (``WaveConfig.window_s``), and the windows a backlog is caught up in (``max_window_s``).
WINDOW_MS = int(WaveConfig().window_s * 1000)
CATCH_UP_WINDOW_MS = int(WaveConfig().max_window_s * 1000)
# Points whose records are kept for the bare producer to replay (cycled): 10 windows' worth.
POOL_POINTS = 100_000
# The target for collection → Kafka with kafka-python on this machine.
TARGET_POINTS_PER_S = 200_000
SOURCE = SyntheticSourceConfig(
    name="bench",
    namespace="synthetic.bench.fleet.metrics.v1.0.0",
    cadence_s=1.0,
    sites=4,
    hosts_per_site=50,  # 5 default metrics x 200 hosts = 1,000 series, 10,000 points a window
)


@dataclass
class Measure:
    points: int
    seconds: float
    cpu_s: float

    @property
    def rate(self) -> float:
        return self.points / self.seconds

    @property
    def cpu_us_per_point(self) -> float:
        return self.cpu_s / self.points * 1e6


# (partition, key, value, points) of one record as the collector sent it.
Sent = tuple[int, bytes, bytes, int]


class RecordingPublisher(Publisher):
    """The platform's publisher, keeping the first records it sends for the baseline to replay."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.pool: list[Sent] = []
        self._pooled_points = 0

    def _send(self, topic: str, key: bytes, value: bytes, partition: int, points: int = 1) -> None:
        if topic == self.points_topic and self._pooled_points < POOL_POINTS:
            self.pool.append((partition, key, value, points))
            self._pooled_points += points
        super()._send(topic, key, value, partition, points)


def _topics(settings: Settings, label: str) -> Settings:
    run = settings.model_copy(deep=True)
    suffix = f"{label}.{uuid.uuid4().hex[:6]}"
    run.kafka.points_topic = f"rtdp.bench.collect.{suffix}"
    run.kafka.deadletter_topic = f"rtdp.bench.collect.dead.{suffix}"
    run.kafka.topics = [
        TopicConfig(name=name, partitions=PARTITIONS, retention_ms=3_600_000)
        for name in (run.kafka.points_topic, run.kafka.deadletter_topic)
    ]
    ensure_topics(run.kafka)
    return run


class RowsOnly:
    """The synthetic source without ``read_blocks``: the collector reads it row by row."""

    def __init__(self, source: SyntheticSource) -> None:
        self.name = source.name
        self.read_window = source.read_window

    def close(self) -> None:
        return None


def collector_run(
    settings: Settings, version: int, seconds: float, by_rows: bool = False, window_ms: int = WINDOW_MS
) -> tuple[Measure, list[Sent]]:
    """The collector path for ``seconds`` of whole windows; what it published and the records it sent."""
    run = _topics(settings, f"v{version}")
    run.collection.envelope_version = version
    source = RowsOnly(SyntheticSource(SOURCE)) if by_rows else SyntheticSource(SOURCE)
    state = CollectionState(f"sqlite:///{run.run_dir / 'bench' / f'collect-{uuid.uuid4().hex[:6]}.db'}")
    start_ms = (int(time.time()) - 86_400) * 1000
    state.plan_windows("bench", 1, start_ms + 86_400_000, WINDOW_MS, window_ms, first_start_ms=start_ms)
    publisher = RecordingPublisher(run.kafka, client_id=f"rtdp-bench-collect-v{version}")
    context = WindowContext(
        source,
        SOURCE.namespace,
        PointValidator(run.validation),
        publisher,
        state,  # type: ignore[arg-type]
        lambda: start_ms + 86_400_000,  # the whole simulated day is ready
        packer=batch_packer(run.collection, run.validation, publisher),
    )
    collect_window(context, _next(state))  # warm-up: topic metadata, the series caches
    points = 0
    cpu, started = time.process_time(), time.perf_counter()
    while time.perf_counter() - started < seconds:
        points += collect_window(context, _next(state)).rows_valid
    measure = Measure(points, time.perf_counter() - started, time.process_time() - cpu)
    publisher.close()
    state.dispose()
    return measure, publisher.pool


def _next(state: CollectionState):
    window = state.next_window("bench", 1)
    assert window is not None, "planned a whole day; more than a benchmark can collect"
    return window


def bare_run(settings: Settings, label: str, pool: list[Sent], points: int) -> Measure:
    """A bare kafka-python producer, the Publisher's settings, sending pool records until ``points`` are sent."""
    run = _topics(settings, f"bare-{label}")
    producer = KafkaProducer(
        **run.kafka.client_options(),
        acks="all",
        enable_idempotence=True,
        retries=5,
        max_in_flight_requests_per_connection=5,
        linger_ms=20,
        batch_size=1024 * 1024,
        max_request_size=4 * 1024 * 1024,
        compression_type=run.kafka.compression_type,
    )
    topic = run.kafka.points_topic
    producer.send(topic, key=pool[0][1], value=pool[0][2], partition=pool[0][0]).get(timeout=30)  # warm-up
    sent, i = 0, 0
    cpu, started = time.process_time(), time.perf_counter()
    while sent < points:
        partition, key, value, carried = pool[i % len(pool)]
        producer.send(topic, key=key, value=value, partition=partition)
        sent += carried
        i += 1
    producer.flush()
    measure = Measure(sent, time.perf_counter() - started, time.process_time() - cpu)
    producer.close()
    return measure


def _median(measures: list[Measure], figure: Callable[[Measure], float]) -> float:
    return statistics.median(figure(m) for m in measures)


def run(settings: Settings, seconds: float = 60.0, log=print) -> list[Record]:
    v2_seconds, v1_seconds = max(5.0, seconds / 4), max(3.0, seconds / 8)
    v2, bare2, catch_up2, rows2, v1, bare1 = [], [], [], [], [], []
    record_sizes: list[float] = []
    loads: list[float] = []
    for n in range(1, RUNS + 1):
        loads.append(os.getloadavg()[0])
        measure, pool = collector_run(settings, 2, v2_seconds)
        v2.append(measure)
        record_sizes += [sum(sent[3] for sent in pool) / len(pool), sum(len(sent[2]) for sent in pool) / len(pool)]
        bare2.append(bare_run(settings, "v2", pool, measure.points))
        catch_up2.append(collector_run(settings, 2, v1_seconds, window_ms=CATCH_UP_WINDOW_MS)[0])
        rows2.append(collector_run(settings, 2, v1_seconds, by_rows=True)[0])
        measure1, pool1 = collector_run(settings, 1, v1_seconds)
        v1.append(measure1)
        bare1.append(bare_run(settings, "v1", pool1, measure1.points))
        log(
            f"collect run {n} (load {loads[-1]:.2f}): v2 {v2[-1].rate:,.0f} points/s "
            f"({v2[-1].cpu_us_per_point:.2f} us CPU/point), bare producer {bare2[-1].rate:,.0f} "
            f"({bare2[-1].cpu_us_per_point:.2f}); v2 in catch-up windows {catch_up2[-1].rate:,.0f} "
            f"({catch_up2[-1].cpu_us_per_point:.2f}); v2 row by row {rows2[-1].rate:,.0f} "
            f"({rows2[-1].cpu_us_per_point:.2f}); v1 {v1[-1].rate:,.0f} ({v1[-1].cpu_us_per_point:.2f}), "
            f"bare {bare1[-1].rate:,.0f}"
        )

    def rate(m: Measure) -> float:
        return m.rate

    def cpu(m: Measure) -> float:
        return m.cpu_us_per_point

    def rate_and_cpu(rate_name: str, cpu_name: str, runs: list[Measure], bare: list[Measure]) -> list[Record]:
        """Points/s and CPU per point of these runs, each beside the bare producer's of the same run."""
        return [
            Record(
                SCENARIO,
                rate_name,
                round(_median(runs, rate)),
                "points/s",
                baseline=round(_median(bare, rate)),
                samples=[round(m.rate) for m in runs],
            ),
            Record(
                SCENARIO, cpu_name, round(_median(runs, cpu), 3), "us CPU/point", baseline=round(_median(bare, cpu), 3)
            ),
        ]

    return [
        *rate_and_cpu("v2_points_per_s (collector, UMS batches)", "v2_cpu_per_point", v2, bare2),
        # Ratio >= 1: the target is met.
        Record(
            SCENARIO,
            "v2_points_per_s against the 200k target",
            round(_median(v2, rate)),
            "points/s",
            baseline=TARGET_POINTS_PER_S,
        ),
        *rate_and_cpu("v2_points_per_s in catch-up windows", "v2_cpu_per_point in catch-up windows", catch_up2, bare2),
        *rate_and_cpu(
            "v2_row_by_row_points_per_s (sources without blocks)", "v2_row_by_row_cpu_per_point", rows2, bare2
        ),
        *rate_and_cpu("v1_points_per_s (collector, a record per point)", "v1_cpu_per_point", v1, bare1),
        Record(SCENARIO, "v2_speedup_over_v1", round(_median(v2, rate) / _median(v1, rate), 2), "x"),
        Record(SCENARIO, "v2_points_per_record", round(statistics.median(record_sizes[0::2])), "points"),
        Record(SCENARIO, "v2_bytes_per_record", round(statistics.median(record_sizes[1::2])), "bytes"),
        Record(SCENARIO, "load_1min_at_run_start", round(statistics.median(loads), 2), "load"),
    ]
