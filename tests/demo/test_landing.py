"""The demo's wait for its history: it ends exactly when the stream has committed every record that was
on Kafka once the collectors were done, and fails clearly, naming what is missing, when that does not happen."""

import time
from pathlib import Path

import pytest

from rtdp_dagster.config import Settings
from rtdp_dagster.demo.landing import (
    HistoryNotLanded,
    committed_offsets,
    kafka_offsets,
    records_behind,
    stream_checkpoint,
    wait_for_history,
)
from tests.streaming.conftest import publish, rtdp
from tests.streaming.test_stream_recovery import points


def test_the_wait_ends_when_every_record_on_kafka_is_committed_to_bronze(stream_env: tuple[Settings, Path]) -> None:
    settings, config_file = stream_env
    total = 3_000
    publish(settings, points(total))
    firsts, ends = kafka_offsets(settings)
    assert sum(ends.values()) == total and records_behind(ends, {}, firsts) == total
    checkpoint = stream_checkpoint(settings)
    assert committed_offsets(checkpoint) == {}

    # The default source has collected nothing: the wait names it.
    with pytest.raises(HistoryNotLanded, match="wave 1 of synthetic_fleet did not collect"):
        wait_for_history(settings, lambda _: None, timeout_s=1, since_ms=int(time.time() * 1000))
    # Collected (nothing asked of wave 1), but no micro-batch committed: the wait names what is missing.
    with pytest.raises(HistoryNotLanded, match=f"committed 0 of the {total:,} history records.*{total:,} missing"):
        wait_for_history(settings, lambda _: None, timeout_s=3, since_ms=0)

    result = rtdp(config_file, "stream", "--once")
    assert result.returncode == 0, result.stderr[-2000:]

    assert committed_offsets(checkpoint) == ends
    lines: list[str] = []
    assert wait_for_history(settings, lines.append, timeout_s=30, since_ms=0) == total
    assert lines[-1] == f"  history in bronze: all {total:,} records on Kafka"


def test_records_behind_count_from_each_partitions_first_offset() -> None:
    targets = {("t", 0): 100, ("t", 1): 50, ("u", 0): 7}
    assert records_behind(targets, {}) == 157
    assert records_behind(targets, {("t", 0): 100, ("t", 1): 20}) == 37
    assert records_behind(targets, {("t", 0): 120, ("t", 1): 50, ("u", 0): 7}) == 0
    # Records deleted by retention before the stream read them cannot be waited for.
    assert records_behind(targets, {("t", 0): 100, ("t", 1): 50}, firsts={("u", 0): 7}) == 0
