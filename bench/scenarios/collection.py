"""Collection throughput: synthetic source → collector → Kafka, against a bare kafka-python producer.

Both sides use the same producer settings (acks=all, idempotence, zstd) on the same broker in the
same run. The collector reads a synthetic history whose every point is ready (a simulated clock
an hour ahead), so the figure is the collection path's own cost, not the source's readiness.
"""

from __future__ import annotations

import statistics
import time
import uuid

from kafka import KafkaProducer

from bench.results import Record
from rtdp_dagster.collection.collector import WindowContext, collect_window
from rtdp_dagster.collection.publisher import Publisher
from rtdp_dagster.collection.sources.synthetic import SyntheticSource
from rtdp_dagster.collection.state import CollectionState
from rtdp_dagster.config import Settings, TopicConfig
from rtdp_dagster.config.sources import SyntheticSourceConfig
from rtdp_dagster.envelope.schema import Envelope, encode
from rtdp_dagster.envelope.validation import PointValidator
from rtdp_dagster.stack.topics import ensure_topics

SCENARIO = "collection"


def _bare_producer_rate(settings: Settings, topic: str, messages: int, pool: list[tuple[bytes, bytes]]) -> float:
    producer = KafkaProducer(
        **settings.kafka.client_options(),
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
        batch_size=1024 * 1024,
        max_request_size=4 * 1024 * 1024,
        compression_type=settings.kafka.compression_type,
    )
    started = time.perf_counter()
    for i in range(messages):
        key, value = pool[i % len(pool)]
        producer.send(topic, key=key, value=value)
    producer.flush()
    elapsed = time.perf_counter() - started
    producer.close()
    return messages / elapsed


def run(settings: Settings, seconds: float = 60.0, log=print) -> list[Record]:
    run_id = uuid.uuid4().hex[:6]
    settings = settings.model_copy(deep=True)
    settings.kafka.points_topic = f"rtdp.bench.points.{run_id}"
    settings.kafka.deadletter_topic = f"rtdp.bench.deadletter.{run_id}"
    baseline_topic = f"rtdp.bench.baseline.{run_id}"
    names = (settings.kafka.points_topic, settings.kafka.deadletter_topic, baseline_topic)
    settings.kafka.topics = [TopicConfig(name=name, partitions=3, retention_ms=3_600_000) for name in names]
    ensure_topics(settings.kafka)
    config = SyntheticSourceConfig(
        name="bench",
        namespace="synthetic.bench.fleet.metrics.v1.0.0",
        cadence_s=1.0,
        sites=4,
        hosts_per_site=50,  # 5 default metrics x 200 hosts = 1,000 series
    )
    source = SyntheticSource(config)
    state = CollectionState(f"sqlite:///{settings.run_dir / 'bench' / f'collection-{run_id}.db'}")
    start_ms = (int(time.time()) - 86_400) * 1000
    clock = lambda: start_ms + 86_400_000  # noqa: E731 - the whole simulated day is ready
    state.plan_windows("bench", 1, start_ms + 86_400_000, 10_000, 10_000, first_start_ms=start_ms)
    publisher = Publisher(settings.kafka, client_id="rtdp-bench")
    context = WindowContext(source, config.namespace, PointValidator(settings.validation), publisher, state, clock)

    log(f"collection: synthetic (1,000 series at 1 s) -> Kafka for {seconds:.0f} s ...")
    points, rates = 0, []
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        window = state.next_window("bench", 1)
        assert window is not None, "planned a whole day; more than a benchmark can collect"
        window_started = time.perf_counter()
        row = collect_window(context, window)
        points += row.rows_valid
        rates.append(row.rows_valid / (time.perf_counter() - window_started))
    elapsed = time.perf_counter() - started
    publisher.close()
    collection_rate = points / elapsed
    log(f"collection: {points:,} points in {elapsed:.1f} s = {collection_rate:,.0f} points/s")

    # The same number of messages, sent by a bare producer: real envelopes of the same source
    # (so they compress alike), pre-encoded, with their series keys, cycled from a pool.
    validator = PointValidator(settings.validation)
    pool: list[tuple[bytes, bytes]] = []
    for record in source.read_window(start_ms, start_ms + 60_000, clock()):
        envelope = validator.to_envelope(
            record, namespace=config.namespace, source="bench", wave=1, collected_at=clock(), ums_id=1
        )
        if isinstance(envelope, Envelope):
            pool.append((envelope.series_key.encode(), encode(envelope)))
    mean_size = sum(len(value) for _, value in pool) / len(pool)
    log(f"baseline: bare kafka-python producer, {points:,} messages of {mean_size:.0f} bytes on average ...")
    bare_rate = _bare_producer_rate(settings, baseline_topic, points, pool)
    log(f"baseline: {bare_rate:,.0f} messages/s")
    state.dispose()
    return [
        Record(SCENARIO, "points_per_s", round(collection_rate), "points/s", baseline=round(bare_rate), samples=rates),
        Record(SCENARIO, "overhead_vs_bare_producer", round(1 - collection_rate / bare_rate, 4), "share"),
        Record(SCENARIO, "window_rate_median", round(statistics.median(rates)), "points/s"),
    ]
