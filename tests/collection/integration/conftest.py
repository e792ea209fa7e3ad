"""Shared pieces of the collection integration tests: isolated topics, reading them back, SQL sources."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from kafka import KafkaConsumer
from kafka.structs import TopicPartition

from rtdp_dagster.config import Settings, TopicConfig
from rtdp_dagster.envelope.ums_batch import decode_batch
from rtdp_dagster.stack.topics import ensure_topics


@pytest.fixture
def isolated(stack: Settings, tmp_path: Path) -> Settings:
    """The session stack's settings with this test's own topics and collection state."""
    suffix = uuid.uuid4().hex[:8]
    settings = stack.model_copy(deep=True)
    settings.kafka.points_topic = f"rtdp.test.points.{suffix}"
    settings.kafka.deadletter_topic = f"rtdp.test.deadletter.{suffix}"
    settings.kafka.topics = [
        TopicConfig(name=settings.kafka.points_topic, partitions=3),
        TopicConfig(name=settings.kafka.deadletter_topic, partitions=1),
    ]
    settings.collection.state_url = f"sqlite:///{tmp_path / 'state.db'}"
    settings.run_dir = tmp_path
    ensure_topics(settings.kafka)
    return settings


def read_topic(settings: Settings, topic: str) -> list[dict]:
    """Every record of the topic, from the beginning up to its current end; a UMS batch (envelope v2)
    as its points, each the dict of its v1 envelope, so a test counts points whatever the version."""
    consumer = KafkaConsumer(**settings.kafka.client_options(), enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        records: list[dict] = []
        while any((consumer.position(tp) or 0) < end[tp] for tp in partitions):
            for batch in consumer.poll(timeout_ms=2000).values():
                for record in batch:
                    value = json.loads(record.value)
                    if isinstance(value, dict) and "protocol" in value:
                        records.extend(point.to_dict() for point in decode_batch(record.value))
                    else:
                        records.append(value)
        return records
    finally:
        consumer.close()


SqlTable = Callable[[list[tuple[int, str, float]]], None]


def create_metrics_table(path: Path) -> SqlTable:
    """A SQLite table of points (ts ms, host, value) and a function that inserts rows into it."""
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE metrics (ts INTEGER NOT NULL, host TEXT NOT NULL, value REAL)")

    def insert(rows: list[tuple[int, str, float]]) -> None:
        with sqlite3.connect(path) as connection:
            connection.executemany("INSERT INTO metrics (ts, host, value) VALUES (?, ?, ?)", rows)

    return insert


def sql_source_config(path: Path, name: str = "field_sql", window_s: float = 30.0) -> dict:
    return {
        "kind": "sql",
        "name": name,
        "namespace": "sqlite.local.ops.metrics.v1.0.0",
        "url": f"sqlite:///{path}",
        "table": "metrics",
        "timestamp_column": "ts",
        "timestamp_unit": "ms",
        "value_column": "value",
        "tag_columns": ["host"],
        "metric": "sys.cpu.util",
        "waves": {"window_s": window_s, "max_window_s": 300.0, "wave2_offset_s": 300.0, "wave3_offset_s": 3600.0},
    }
