"""A window collected with envelope v2 lands as UMS batch records whose points are the v1 points of the
same window: same identities, values, versions and partitions, the same dead letters and log row."""

import collections
import threading
import uuid
from pathlib import Path

from kafka import KafkaConsumer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.structs import TopicPartition

from rtdp_dagster.collection.ingest import SourceRunner
from rtdp_dagster.collection.partitioning import routing_key
from rtdp_dagster.collection.sources.factory import build_source
from rtdp_dagster.collection.state import CollectionState, LogRow, now_ms
from rtdp_dagster.config import Settings, TopicConfig
from rtdp_dagster.config.sources import MalformedRatesConfig, SyntheticSourceConfig
from rtdp_dagster.envelope.schema import Envelope, decode
from rtdp_dagster.envelope.ums_batch import decode_batch
from rtdp_dagster.stack.topics import ensure_topics

from .conftest import read_topic

PARTITIONS = 3
CONFIG = SyntheticSourceConfig(
    name="fleet",
    namespace="synthetic.local.fleet.metrics.v1.0.0",
    cadence_s=1.0,
    sites=3,
    hosts_per_site=20,
    duplicate_rate=0.02,
    correction_rate=0.02,
    retraction_rate=0.01,
    malformed=MalformedRatesConfig(non_numeric_value=0.005, nan_value=0.005, invalid_metric=0.005),
)


def own_topics(stack: Settings, tmp_path: Path, version: int) -> Settings:
    suffix = f"v{version}.{uuid.uuid4().hex[:8]}"
    settings = stack.model_copy(deep=True)
    settings.kafka.points_topic = f"rtdp.test.points.{suffix}"
    settings.kafka.deadletter_topic = f"rtdp.test.deadletter.{suffix}"
    settings.kafka.topics = [
        TopicConfig(name=settings.kafka.points_topic, partitions=PARTITIONS),
        TopicConfig(name=settings.kafka.deadletter_topic, partitions=1),
    ]
    settings.collection.state_url = f"sqlite:///{tmp_path / f'state-v{version}.db'}"
    settings.collection.envelope_version = version
    settings.collection.ums_batch = settings.collection.ums_batch.model_copy(update={"max_points": 300})
    ensure_topics(settings.kafka)
    return settings


def collect(settings: Settings, t0: int) -> LogRow:
    """One 5-minute window of wave 1, collected by the ingest runner as `rtdp ingest` does."""
    state = CollectionState(settings.collection.state_url)
    try:
        runner = SourceRunner(
            build_source(CONFIG, settings.nab_data_dir),
            CONFIG.namespace,
            300.0,
            300.0,
            settings,
            state,
            threading.Event(),
            lambda: t0 + 3_600_000,
        )
        state.plan_windows("fleet", 1, t0 + 300_000, 300_000, 300_000, first_start_ms=t0)
        assert runner.work_once()
        runner.close()
        (log,) = state.log_rows(source="fleet")
        return log
    finally:
        state.dispose()


def raw_records(settings: Settings, topic: str) -> list[ConsumerRecord]:
    consumer = KafkaConsumer(**settings.kafka.client_options(), enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        records: list[ConsumerRecord] = []
        while any((consumer.position(tp) or 0) < end[tp] for tp in partitions):
            for batch in consumer.poll(timeout_ms=2000).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def versions_by_series(points: list[Envelope]) -> dict[str, list[int]]:
    """Each series' versions in the order its points came (one pass: a filter per series was quadratic)."""
    versions: dict[str, list[int]] = collections.defaultdict(list)
    for point in points:
        versions[point.series_key].append(point.ums_id_)
    return versions


def ordered(points: list[Envelope]) -> list[Envelope]:
    return sorted(points, key=lambda e: (e.point_key, e.ums_id_))


def test_a_v2_window_holds_exactly_the_v1_points_of_the_same_window(stack: Settings, tmp_path: Path) -> None:
    t0 = (now_ms() // 300_000 - 12) * 300_000  # an hour ago, whatever today is
    v1, v2 = own_topics(stack, tmp_path, 1), own_topics(stack, tmp_path, 2)
    log1, log2 = collect(v1, t0), collect(v2, t0)

    v1_records = raw_records(v1, v1.kafka.points_topic)
    v2_records = raw_records(v2, v2.kafka.points_topic)
    v1_points = [decode(record.value) for record in v1_records]
    v2_points = [point for record in v2_records for point in decode_batch(record.value)]
    assert len(v1_points) == log1.rows_valid > 3000
    assert ordered(v2_points) == ordered(v1_points)
    assert len(v2_records) < len(v1_records) / 100  # many points per record
    assert all(len(decode_batch(record.value)) <= 300 for record in v2_records)

    # Each series is in the same partition under both versions, and in the same order.
    v1_partition = {record.key.decode(): record.partition for record in v1_records}
    for record in v2_records:
        assert record.key == routing_key(record.partition, PARTITIONS)
        assert {v1_partition[point.series_key] for point in decode_batch(record.value)} == {record.partition}
    assert versions_by_series(v2_points) == versions_by_series(v1_points)

    # The collection log counts points, not records; dead letters are per point, as in v1.
    assert (log2.rows_read, log2.rows_valid, log2.rows_new, log2.rows_dead_lettered) == (
        log1.rows_read,
        log1.rows_valid,
        log1.rows_new,
        log1.rows_dead_lettered,
    )
    dead1 = read_topic(v1, v1.kafka.deadletter_topic)
    dead2 = read_topic(v2, v2.kafka.deadletter_topic)
    assert len(dead2) == log2.rows_dead_lettered > 0
    assert sorted((d["reason"], d["detail"]) for d in dead2) == sorted((d["reason"], d["detail"]) for d in dead1)
