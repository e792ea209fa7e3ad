"""The driver-side logic of a micro-batch: the realtime dedup state (duplicates and late rows dropped
and counted, state expiring exactly), the latest version per point, the split by reason."""

import numpy as np
import pyarrow as pa

from rtdp_dagster.streaming.dedup import BUCKET_MS, WatermarkDedup
from rtdp_dagster.streaming.micro_batch import split_by_reason
from rtdp_dagster.streaming.realtime import latest_versions
from rtdp_dagster.streaming.realtime_state import AcknowledgedPuts

TTL_MS = 10 * BUCKET_MS
T0 = 1_800_000_000_000


def batch(*rows: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    hashes, event_ms = zip(*rows, strict=True)
    return np.array(hashes, dtype=np.int64), np.array(event_ms, dtype=np.int64)


def test_the_first_of_each_hash_goes_on_within_a_batch_and_across_batches() -> None:
    dedup = WatermarkDedup(TTL_MS)
    first = dedup.admit(*batch((1, T0), (2, T0 + 1), (1, T0), (3, T0 + 2)))
    assert first.keep.tolist() == [True, True, False, True]
    assert (first.duplicates, first.late) == (1, 0)
    second = dedup.admit(*batch((2, T0 + 1), (4, T0 + 3), (3, T0 + 2), (4, T0 + 3)))
    assert second.keep.tolist() == [False, True, False, False]
    assert (second.duplicates, second.late) == (3, 0)


def test_rows_behind_the_watermark_are_late_and_not_remembered() -> None:
    dedup = WatermarkDedup(TTL_MS)
    assert dedup.watermark_ms is None
    dedup.admit(*batch((1, T0 + TTL_MS + 5)))
    assert dedup.watermark_ms == T0 + 5
    admitted = dedup.admit(*batch((2, T0 + 4), (3, T0 + 5), (3, T0 + 5)))
    # The watermark of a batch is the one its predecessors left: T0 + 4 is late, T0 + 5 is not.
    assert admitted.keep.tolist() == [False, True, False]
    assert (admitted.late, admitted.duplicates) == (1, 1)


def test_a_minute_is_forgotten_once_the_watermark_has_passed_its_end() -> None:
    dedup = WatermarkDedup(TTL_MS)
    dedup.admit(*batch((1, T0), (2, T0 + BUCKET_MS)))
    assert dedup.size == 2
    dedup.admit(*batch((3, T0 + TTL_MS + BUCKET_MS)))  # watermark: T0 + BUCKET_MS, past T0's minute
    assert dedup.size == 2  # hash 2's minute and hash 3's stay
    again = dedup.admit(*batch((2, T0 + BUCKET_MS)))
    assert again.keep.tolist() == [False] and again.duplicates == 1


def test_restored_state_drops_what_was_written_before_the_restart() -> None:
    before = WatermarkDedup(TTL_MS)
    before.admit(*batch((1, T0), (2, T0 + 2 * TTL_MS)))
    after = WatermarkDedup(TTL_MS)
    after.restore(*batch((1, T0), (2, T0 + 2 * TTL_MS)), max_event_ms=before.max_event_ms)
    assert after.watermark_ms == before.watermark_ms and after.size == 1  # hash 1 was behind the watermark
    admitted = after.admit(*batch((2, T0 + 2 * TTL_MS), (5, T0 + 2 * TTL_MS)))
    assert admitted.keep.tolist() == [False, True]


def test_a_row_stamped_ahead_of_its_receive_time_moves_the_watermark_no_further_than_that() -> None:
    dedup = WatermarkDedup(TTL_MS)
    month = 30 * 86_400_000
    hashes, event_ms = batch((1, T0), (2, T0 + month), (3, T0 + 1))
    dedup.admit(hashes, event_ms, np.full(3, T0 + 5, dtype=np.int64))
    assert dedup.watermark_ms == T0 + 5 - TTL_MS
    # Every series' next points are on time.
    admitted = dedup.admit(*batch((4, T0 + 2), (5, T0 + 3)), np.full(2, T0 + 6, dtype=np.int64))
    assert admitted.keep.tolist() == [True, True] and admitted.late == 0


def test_an_empty_batch_changes_nothing() -> None:
    dedup = WatermarkDedup(TTL_MS)
    admitted = dedup.admit(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))
    assert admitted.keep.tolist() == [] and dedup.max_event_ms is None


def test_latest_versions_keeps_the_highest_version_of_each_point() -> None:
    point = np.array([7, 8, 7, 9, 7, 8], dtype=np.int64)
    version = np.array([1, 1, 3, 1, 2, 0], dtype=np.int64)
    assert sorted(latest_versions(point, version, np.arange(6)).tolist()) == [1, 2, 3]
    assert sorted(latest_versions(point, version, np.array([0, 4, 5])).tolist()) == [4, 5]
    assert latest_versions(point, version, np.array([], dtype=np.int64)).tolist() == []


def test_a_batch_is_split_into_accepted_rows_and_counts_by_reason() -> None:
    rows = pa.table({"reason": [None, "invalid_json", None, "invalid_json", "wrong_type"], "put_json": list("abcde")})
    accepted, by_reason = split_by_reason(rows)
    assert accepted.column_names == ["put_json"] and accepted.column("put_json").to_pylist() == ["a", "c"]
    assert by_reason == {"invalid_json": 2, "wrong_type": 1}
    clean, none = split_by_reason(pa.table({"reason": pa.array([None, None], pa.string()), "put_json": ["a", "b"]}))
    assert clean.num_rows == 2 and none == {}


def test_the_puts_acknowledged_just_before_an_outage_are_at_risk_once() -> None:
    acknowledged = AcknowledgedPuts(window_s=15.0)
    acknowledged.add(100.0, 1_000, 2_000, 10)  # on disk before any kill after the last put
    acknowledged.add(120.0, 5_000, 6_000, 20)
    acknowledged.add(126.0, 4_000, 9_000, 30)
    # The first failure of the outage: what the TSDB acknowledged in the 15 s before its last answer.
    assert acknowledged.at_risk() == (4_000, 9_000, 50)
    # The outage's later failures: nothing new was acknowledged.
    assert acknowledged.at_risk() is None


def test_a_failure_noticed_long_after_the_last_put_still_finds_that_put_at_risk() -> None:
    # The TSDB may have died a moment after its last answer; the next batch with data came 30 s later.
    acknowledged = AcknowledgedPuts(window_s=15.0)
    acknowledged.add(170.0, 1_000, 2_000, 10)  # more than the window before the last put: on disk
    acknowledged.add(200.0, 7_000, 8_000, 5)
    assert acknowledged.at_risk() == (7_000, 8_000, 5)
    assert acknowledged.at_risk() is None
