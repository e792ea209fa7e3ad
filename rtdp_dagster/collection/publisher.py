"""Publishing envelopes, UMS batches and dead letters to Kafka with kafka-python.

acks=all with idempotence. A v1 envelope is keyed by its series; a v2 batch (many series of one
partition) goes to that partition, keyed by its routing key (``partitioning``). kafka-python 3
buffers without a bound, so the bound is ours: after ``max_outstanding`` unconfirmed points (a
batch counts its points) the collector waits for the broker to acknowledge them (back-pressure)
instead of growing memory or dropping. A window counts as published only when ``confirm`` has
flushed it and every record was acknowledged.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from rtdp_dagster.collection.partitioning import partition_index, routing_key
from rtdp_dagster.config import KafkaConfig
from rtdp_dagster.envelope.batch_builder import ClosedBatch
from rtdp_dagster.envelope.schema import Envelope, encode

logger = logging.getLogger(__name__)


class PublishError(Exception):
    """Some records of a window were not acknowledged; the window must be published again."""


class Publisher:
    def __init__(
        self,
        kafka: KafkaConfig,
        client_id: str = "rtdp-collector",
        max_outstanding: int = 100_000,
        linger_ms: int = 20,
        batch_size: int = 1024 * 1024,
        request_timeout_ms: int = 15_000,
        max_block_ms: int = 60_000,
        confirm_timeout_s: float = 15.0,
    ) -> None:
        self.points_topic = kafka.points_topic
        self.deadletter_topic = kafka.deadletter_topic
        self._producer = KafkaProducer(
            **kafka.client_options(),
            client_id=client_id,
            acks="all",
            enable_idempotence=True,
            retries=5,
            max_in_flight_requests_per_connection=5,
            linger_ms=linger_ms,
            batch_size=batch_size,
            max_request_size=4 * batch_size,
            compression_type=kafka.compression_type,
            request_timeout_ms=request_timeout_ms,
            max_block_ms=max_block_ms,
            # Notice a returning broker within seconds, not after the default 30 s back-off.
            reconnect_backoff_max_ms=2_000,
        )
        self._confirm_timeout_s = confirm_timeout_s
        self._max_outstanding = max_outstanding
        self._partitions: dict[tuple[str, bytes], int] = {}
        self._routing_keys: dict[int, bytes] = {}
        self._unflushed = 0
        self._lock = threading.Lock()
        self._failures: list[BaseException] = []
        self._sent = 0

    def _failed(self, error: BaseException) -> None:
        with self._lock:
            self._failures.append(error)

    def _partition(self, topic: str, key: bytes) -> int:
        # kafka-python's murmur2 is pure Python (~15 us a record); a series always maps to the same
        # partition, so it is computed once per series, exactly as the default partitioner does.
        partition = self._partitions.get((topic, key))
        if partition is None:
            partitions = sorted(self._producer.partitions_for(topic))
            partition = partitions[partition_index(key, len(partitions))]
            if len(self._partitions) >= 200_000:
                self._partitions.clear()
            self._partitions[(topic, key)] = partition
        return partition

    def _send(self, topic: str, key: bytes, value: bytes, partition: int, points: int = 1) -> None:
        if self._unflushed >= self._max_outstanding:
            self._producer.flush()
            self._unflushed = 0
        self._producer.send(topic, key=key, value=value, partition=partition).add_errback(self._failed)
        self._sent += 1
        self._unflushed += points

    def send_point(self, envelope: Envelope) -> None:
        key = envelope.series_key.encode()
        self._send(self.points_topic, key, encode(envelope), self._partition(self.points_topic, key))

    def series_partition(self, series: str) -> int:
        """The points-topic partition of a series: where its v1 records go, and its v2 batches."""
        return self._partition(self.points_topic, series.encode())

    def send_batch(self, batch: ClosedBatch) -> None:
        """A v2 record: all its series are of ``batch.partition`` (``BatchBuilder`` keeps them so)."""
        key = self._routing_keys.get(batch.partition)
        if key is None:
            partitions = sorted(self._producer.partitions_for(self.points_topic))
            key = self._routing_keys[batch.partition] = routing_key(partitions.index(batch.partition), len(partitions))
        self._send(self.points_topic, key, batch.value, batch.partition, points=batch.points)

    def send_dead_letter(self, record: dict[str, Any]) -> None:
        value = json.dumps(record, default=str, separators=(",", ":")).encode()
        key = str(record.get("source", "")).encode()
        self._send(self.deadletter_topic, key, value, self._partition(self.deadletter_topic, key))

    def confirm(self) -> int:
        """Flush and check every record sent since the last confirm; returns how many."""
        try:
            self._producer.flush(timeout=self._confirm_timeout_s)
        except KafkaError as exc:
            raise PublishError(f"flush failed: {exc}") from exc
        with self._lock:
            failures, self._failures = self._failures, []
        sent, self._sent, self._unflushed = self._sent, 0, 0
        if failures:
            raise PublishError(f"{len(failures)} of {sent} records not acknowledged: {failures[0]!r}")
        return sent

    def discard(self) -> None:
        """Forget the outcome of unconfirmed sends (the window will be re-published)."""
        with self._lock:
            self._failures = []
        self._sent = self._unflushed = 0

    def close(self, timeout_s: float = 30.0) -> None:
        try:
            self._producer.close(timeout=timeout_s)
        except KafkaError as exc:
            # Unconfirmed records stay unconfirmed: their windows are still pending and re-sent.
            logger.warning("producer closed with records not delivered: %s", exc)
