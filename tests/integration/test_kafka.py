"""Kafka produce → consume round trip against the real broker."""

import json
import uuid

from kafka import KafkaConsumer, KafkaProducer
from kafka.structs import TopicPartition

from rtdp_dagster.config import Settings


def test_keyed_round_trip_keeps_order_per_key(stack: Settings) -> None:
    topic = "rtdp.smoke"
    marker = uuid.uuid4().hex
    options = stack.kafka.client_options()
    consumer = KafkaConsumer(**options)
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
    assert len(partitions) == 2, "topic created from configuration with 2 partitions"
    start = consumer.end_offsets(partitions)

    producer = KafkaProducer(**options, acks="all")
    keys = [f"series-{k}" for k in range(6)]
    for seq in range(50):
        for key in keys:
            producer.send(topic, key=key.encode(), value=json.dumps({"m": marker, "seq": seq}).encode())
    producer.flush()
    producer.close()

    consumer.assign(partitions)
    for tp in partitions:
        consumer.seek(tp, start[tp])
    received: dict[str, list[int]] = {}
    partition_of: dict[str, set[int]] = {}
    while sum(len(v) for v in received.values()) < 300:
        batch = consumer.poll(timeout_ms=5000)
        assert batch, "timed out waiting for records"
        for tp, records in batch.items():
            for record in records:
                payload = json.loads(record.value)
                if payload["m"] != marker:
                    continue
                key = record.key.decode()
                received.setdefault(key, []).append(payload["seq"])
                partition_of.setdefault(key, set()).add(tp.partition)
    consumer.close()

    assert sorted(received) == keys
    for key in keys:
        assert received[key] == list(range(50)), f"{key} out of order"
        assert len(partition_of[key]) == 1, f"{key} spread over partitions"
