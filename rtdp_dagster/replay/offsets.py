"""The Kafka offsets of a time range, per topic partition, from the brokers' time index.

A range [start_ms, end_ms) of record timestamps becomes, per partition, the offsets from the first
record at or after start_ms up to (excluding) the first record at or after end_ms, or the end of the
partition when there is none: the same rule as Spark's ``startingOffsetsByTimestamp`` and
``endingOffsetsByTimestamp``. Kafka timestamps are the producers' send times, not event times.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from kafka import KafkaConsumer
from kafka.structs import TopicPartition

from rtdp_dagster.config import KafkaConfig


class ReplayError(Exception):
    """A replay that cannot run as asked (bad range, unknown topic); the message says why."""


@dataclass(frozen=True)
class OffsetRange:
    topic: str
    partition: int
    start: int  # first offset to read
    end: int  # first offset not to read

    @property
    def records(self) -> int:
        return self.end - self.start


def parse_instant(text: str) -> int:
    """Epoch ms from epoch milliseconds or an ISO-8601 time (UTC when it has no offset)."""
    value = text.strip()
    if value.isdigit():
        return int(value)
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ReplayError(f"{text!r} is neither epoch milliseconds nor an ISO-8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)


def topics_to_replay(available: set[str], topics: Sequence[str], pattern: str) -> list[str]:
    """The named topics (each must exist), or every available topic the stream's pattern matches."""
    if topics:
        unknown = sorted(set(topics) - available)
        if unknown:
            raise ReplayError(f"unknown topic(s) {unknown}; the brokers have {sorted(available)}")
        return sorted(set(topics))
    matcher = re.compile(pattern)
    return sorted(topic for topic in available if matcher.fullmatch(topic))


def offset_ranges(
    kafka: KafkaConfig, start_ms: int, end_ms: int, topics: Sequence[str], pattern: str, timeout_ms: int = 30_000
) -> list[OffsetRange]:
    """The non-empty offset range of every partition of the topics for [start_ms, end_ms)."""
    if start_ms >= end_ms:
        raise ReplayError(f"empty time range: start {start_ms} is not before end {end_ms}")
    consumer = KafkaConsumer(**kafka.client_options(), enable_auto_commit=False, request_timeout_ms=timeout_ms)
    try:
        names = topics_to_replay(set(consumer.topics()), topics, pattern)
        partitions = [TopicPartition(t, p) for t in names for p in sorted(consumer.partitions_for_topic(t) or ())]
        if not partitions:
            return []
        ends = consumer.end_offsets(partitions)
        firsts = consumer.offsets_for_times({tp: start_ms for tp in partitions})
        lasts = consumer.offsets_for_times({tp: end_ms for tp in partitions})
    finally:
        consumer.close()
    ranges = []
    for tp in partitions:
        first, last = firsts.get(tp), lasts.get(tp)
        start = first.offset if first is not None else ends[tp]
        end = last.offset if last is not None else ends[tp]
        if end > start:
            ranges.append(OffsetRange(tp.topic, tp.partition, start, end))
    return ranges


def spark_offsets(ranges: Sequence[OffsetRange]) -> dict[str, str]:
    """Options of Spark's Kafka batch source reading exactly these ranges."""
    assign: dict[str, list[int]] = {}
    starting: dict[str, dict[str, int]] = {}
    ending: dict[str, dict[str, int]] = {}
    for item in ranges:
        assign.setdefault(item.topic, []).append(item.partition)
        starting.setdefault(item.topic, {})[str(item.partition)] = item.start
        ending.setdefault(item.topic, {})[str(item.partition)] = item.end
    return {"assign": json.dumps(assign), "startingOffsets": json.dumps(starting), "endingOffsets": json.dumps(ending)}
