"""When the demo's replayed history is in bronze.

Two facts, both exact: the collection log says wave 1 of every source has collected up to the
moment the wait began (its history included, published and confirmed on Kafka); then Kafka's end
offsets of the points topics, read once at that moment, are the history's last records, and the
stream's checkpoint says up to which offsets its micro-batches are committed to bronze. The
history is in bronze when every partition's committed offset has reached that end.

A lag figure from the stream's last micro-batch is not enough: it is read when that batch was
planned, and a steady-state allowance of a few thousand records would let part of the history
miss the backfill.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from rtdp_dagster.config import Settings
from rtdp_dagster.stack.process import wait_until

# (topic, partition) -> offset
Offsets = dict[tuple[str, int], int]

REPORT_EVERY_S = 15.0


class HistoryNotLanded(Exception):
    """The history did not reach bronze in time; the message says what was missing."""


def kafka_offsets(settings: Settings) -> tuple[Offsets, Offsets]:
    """(first, end) offsets of every partition of the topics the stream reads."""
    from kafka import KafkaConsumer
    from kafka.structs import TopicPartition

    from rtdp_dagster.replay.offsets import topics_to_replay

    consumer = KafkaConsumer(**settings.kafka.client_options(), enable_auto_commit=False)
    try:
        topics = topics_to_replay(set(consumer.topics()), [], settings.stream.topic_pattern)
        partitions = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        if not partitions:
            return {}, {}
        firsts, ends = consumer.beginning_offsets(partitions), consumer.end_offsets(partitions)
    finally:
        consumer.close()
    return (
        {(tp.topic, tp.partition): int(offset) for tp, offset in firsts.items()},
        {(tp.topic, tp.partition): int(offset) for tp, offset in ends.items()},
    )


def stream_checkpoint(settings: Settings) -> Path:
    from rtdp_dagster.streaming.app import CHECKPOINT

    return Path(settings.stream.checkpoint_root) / CHECKPOINT


def committed_offsets(checkpoint: Path) -> Offsets:
    """Per partition, the first offset the stream has not yet committed to bronze."""
    import json

    from rtdp_dagster.streaming.realtime_state import last_committed

    committed = last_committed(checkpoint)
    if committed is None:
        return {}
    return {
        (topic, int(partition)): int(offset)
        for topic, partitions in json.loads(committed[1]).items()
        for partition, offset in partitions.items()
    }


def records_behind(targets: Offsets, committed: Offsets, firsts: Offsets | None = None) -> int:
    """Records below the targets that the stream has not committed (from a partition's first offset on)."""
    firsts = firsts or {}
    return sum(
        max(0, end - max(committed.get(partition, 0), firsts.get(partition, 0))) for partition, end in targets.items()
    )


def history_collected(settings: Settings, since_ms: int) -> list[str]:
    """The enabled sources whose wave 1 has not yet collected up to since_ms."""
    from rtdp_dagster.collection.state import CollectionState

    state = CollectionState(settings.collection.state_url)
    try:
        covered = {row["source"]: row["covered_until"] or 0 for row in state.summary() if row["wave"] == 1}
    finally:
        state.dispose()
    return sorted(s.name for s in settings.collection.sources if s.enabled and covered.get(s.name, 0) < since_ms)


def wait_for_history(settings: Settings, log: Callable[[str], None], timeout_s: float, since_ms: int) -> int:
    """Until every source's history is collected and the stream has committed all of it to bronze;
    returns the number of history records on Kafka. Raises HistoryNotLanded after timeout_s."""
    deadline = time.monotonic() + timeout_s
    checkpoint = stream_checkpoint(settings)
    last_report = float("-inf")

    def report(line: str) -> None:
        nonlocal last_report
        if time.monotonic() - last_report >= REPORT_EVERY_S:
            log(line)
            last_report = time.monotonic()

    behind_sources: list[str] = []

    def collected() -> bool:
        nonlocal behind_sources
        behind_sources = history_collected(settings, since_ms)
        report(f"  collecting: {', '.join(behind_sources) or 'history done'}")
        return not behind_sources

    if not wait_until(collected, timeout_s=max(0.0, deadline - time.monotonic()), interval_s=2.0):
        raise HistoryNotLanded(
            f"wave 1 of {', '.join(behind_sources)} did not collect its history in {timeout_s:.0f} s; "
            f"see {settings.log_dir / 'ingest.log'}"
        )
    firsts, targets = kafka_offsets(settings)
    total = records_behind(targets, {}, firsts)
    behind = total
    last_report = float("-inf")

    def landed() -> bool:
        nonlocal behind
        behind = records_behind(targets, committed_offsets(checkpoint), firsts)
        report(f"  history in bronze: {total - behind:,} of {total:,} records on Kafka ({behind:,} to go)")
        return behind == 0

    if not wait_until(landed, timeout_s=max(0.0, deadline - time.monotonic()), interval_s=2.0):
        raise HistoryNotLanded(
            f"the stream committed {total - behind:,} of the {total:,} history records on Kafka to bronze in "
            f"{timeout_s:.0f} s ({behind:,} missing); see {settings.log_dir / 'stream.log'}"
        )
    log(f"  history in bronze: all {total:,} records on Kafka")
    return total
