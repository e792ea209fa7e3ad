"""Partitions as kafka-python's default partitioner (the Java client's murmur2) assigns them.

v1 records are keyed by their series key. A v2 record holds many series of one partition and is
keyed by that partition's routing key: a key the default partitioner also sends to it. So every
v2 record of a partition carries the same key, and any tool that re-partitions by key (a mirror,
a replay with the default partitioner) keeps the records of one partition together and in order,
hence each series.
"""

from __future__ import annotations

from itertools import count

from kafka.partitioner.default import murmur2


def partition_index(key: bytes, partitions: int) -> int:
    """Index into the topic's sorted partition ids, as the default partitioner computes it."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def routing_key(index: int, partitions: int) -> bytes:
    """The first ``rtdp.ums.<partitions>.<index>.<n>`` that the default partitioner maps to ``index``."""
    if not 0 <= index < partitions:
        raise ValueError(f"partition index {index} is not among {partitions} partitions")
    for salt in count():
        key = f"rtdp.ums.{partitions}.{index}.{salt}".encode()
        if partition_index(key, partitions) == index:
            return key
    raise AssertionError("unreachable")
