"""Kafka topics, created idempotently from configuration."""

from __future__ import annotations

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from rtdp_dagster.config import KafkaConfig


def ensure_topics(kafka: KafkaConfig) -> list[str]:
    """Create the configured topics that do not exist yet; returns the names created."""
    admin = KafkaAdminClient(**kafka.client_options(), client_id="rtdp-admin", request_timeout_ms=15000)
    try:
        existing = set(admin.list_topics())
        missing = [topic for topic in kafka.topics if topic.name not in existing]
        created = []
        for topic in missing:
            configs = {"retention.ms": str(topic.retention_ms), "message.timestamp.type": topic.timestamp_type}
            if topic.min_insync_replicas is not None:
                configs["min.insync.replicas"] = str(topic.min_insync_replicas)
            new_topic = NewTopic(
                name=topic.name,
                num_partitions=topic.partitions,
                # Settings derive it from the stack profile; 1 only for a TopicConfig built by hand.
                replication_factor=topic.replication_factor or 1,
                topic_configs=configs,
            )
            try:
                admin.create_topics([new_topic])
                created.append(topic.name)
            except TopicAlreadyExistsError:
                pass  # created concurrently by another client: that is the state we want
        return created
    finally:
        admin.close()
