"""Partitions as kafka-python's default partitioner assigns them, and the v2 routing keys."""

from typing import Any

import pytest
from kafka.cluster import ClusterMetadata
from kafka.partitioner.default import DefaultPartitioner

from rtdp_dagster.collection.partitioning import partition_index, routing_key


class _Cluster:
    """The two methods of ClusterMetadata the default partitioner asks."""

    def __init__(self, partitions: int) -> None:
        self._partitions = set(range(partitions))

    def topics(self) -> set[str]:
        return {"t"}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return self._partitions

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return self._partitions


@pytest.mark.parametrize("partitions", [1, 2, 3, 7, 12])
def test_partition_index_is_the_default_partitioners_choice(partitions: int) -> None:
    partitioner: Any = DefaultPartitioner()
    cluster = _Cluster(partitions)
    for n in range(200):
        key = f"sys.cpu|host=h{n:03d},site=par".encode()
        chosen = partitioner.partition("t", None, key, None, None, cluster)
        assert partition_index(key, partitions) == chosen


@pytest.mark.parametrize("partitions", [1, 2, 3, 7, 12])
def test_routing_keys_lead_the_default_partitioner_to_their_partition(partitions: int) -> None:
    keys = [routing_key(index, partitions) for index in range(partitions)]
    assert [partition_index(key, partitions) for key in keys] == list(range(partitions))
    assert len(set(keys)) == partitions and routing_key(0, partitions) == keys[0]  # deterministic


def test_routing_key_refuses_a_partition_outside_the_topic() -> None:
    with pytest.raises(ValueError, match="not among 3"):
        routing_key(3, 3)


def test_cluster_stand_in_matches_the_real_interface() -> None:
    names = ("topics", "partitions_for_topic", "available_partitions_for_topic")
    assert all(callable(getattr(ClusterMetadata, name, None)) for name in names)
