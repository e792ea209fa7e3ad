"""Window planning and the durable queue (SQLite): gap-free, ordered, restart-safe."""

import itertools
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from rtdp_dagster.collection.state import CollectionState, LogRow, cursors, key_hashes, store_unavailable

S = 1000


def state(tmp_path: Path) -> CollectionState:
    return CollectionState(f"sqlite:///{tmp_path / 'state.db'}")


def log_for(window, rows: int = 0) -> LogRow:
    return LogRow(window.source, window.wave, window.start_ms, window.end_ms, rows, rows, rows, 0, 1, "ok", 1, 0)


def test_ticks_plan_contiguous_windows(tmp_path: Path) -> None:
    store = state(tmp_path)
    planned = []
    for now in (100 * S, 110 * S, 120 * S, 125 * S, 131 * S):
        planned += store.plan_windows("src", 1, now, 10 * S, 300 * S, first_start_ms=90 * S)
    assert planned == [(90 * S, 100 * S), (100 * S, 110 * S), (110 * S, 120 * S), (120 * S, 131 * S)]


def test_outage_is_caught_up_in_bounded_windows(tmp_path: Path) -> None:
    store = state(tmp_path)
    store.plan_windows("src", 1, 100 * S, 10 * S, 60 * S, first_start_ms=90 * S)
    planned = store.plan_windows("src", 1, 100 * S + 3600 * S, 10 * S, 60 * S, first_start_ms=0)
    assert len(planned) == 60
    assert all(end - start <= 60 * S for start, end in planned)
    assert planned[0][0] == 100 * S and planned[-1][1] == 3700 * S
    assert all(a[1] == b[0] for a, b in itertools.pairwise(planned))


def test_clock_going_backwards_plans_nothing_and_resumes(tmp_path: Path) -> None:
    store = state(tmp_path)
    store.plan_windows("src", 1, 200 * S, 10 * S, 60 * S, first_start_ms=190 * S)
    assert store.plan_windows("src", 1, 150 * S, 10 * S, 60 * S, first_start_ms=0) == []
    assert store.plan_windows("src", 1, 215 * S, 10 * S, 60 * S, first_start_ms=0) == [(200 * S, 215 * S)]


def test_queue_executes_in_order_and_survives_restart(tmp_path: Path) -> None:
    store = state(tmp_path)
    for now in (100, 110, 120):
        store.plan_windows("src", 1, now * S, 10 * S, 60 * S, first_start_ms=90 * S)
    first = store.next_window("src", 1)
    assert first is not None and (first.start_ms, first.end_ms) == (90 * S, 100 * S)
    store.complete_window(first, log_for(first), np.empty(0, dtype=np.uint64))
    store.dispose()
    reopened = state(tmp_path)  # a restart: the queue and cursor are on disk
    second = reopened.next_window("src", 1)
    assert second is not None and (second.start_ms, second.end_ms) == (100 * S, 110 * S)
    assert reopened.pending_count("src", 1) == 2
    assert reopened.origin("src", 1) == 90 * S
    assert [row.window_end for row in reopened.log_rows("src")] == [100 * S]


def test_window_in_flight_at_a_crash_is_executed_again(tmp_path: Path) -> None:
    store = state(tmp_path)
    store.plan_windows("src", 1, 100 * S, 10 * S, 60 * S, first_start_ms=90 * S)
    window = store.next_window("src", 1)
    assert window is not None
    store.record_attempt(window)  # crashed after reading, before completing
    again = store.next_window("src", 1)
    assert again is not None and again.id == window.id and again.attempts == 1


def test_later_waves_see_what_earlier_waves_published(tmp_path: Path) -> None:
    store = state(tmp_path)
    keys = [f"{i + 1:016x}{0:016x}" for i in range(10)]
    store.plan_windows("src", 1, 100 * S, 10 * S, 60 * S, first_start_ms=90 * S)
    window = store.next_window("src", 1)
    assert window is not None
    store.complete_window(window, log_for(window, 10), key_hashes(keys))
    seen = store.seen_before("src", 2, 0, 200 * S)
    assert np.isin(key_hashes([*keys[:5], "f" * 32]), seen).tolist() == [True] * 5 + [False]
    assert store.seen_before("src", 1, 0, 200 * S).size == 0, "a wave does not count itself as earlier"
    store.plan_windows("other", 1, 100 * S, 10 * S, 60 * S, first_start_ms=90 * S)
    other = store.next_window("other", 1)
    assert other is not None
    store.complete_window(other, log_for(other, 10), key_hashes(keys))
    store.prune("src", older_than_ms=101 * S)
    assert store.seen_before("src", 2, 0, 200 * S).size == 0
    assert store.seen_before("other", 2, 0, 200 * S).size == 10, "another source's seen points are its own"


def test_completing_a_window_again_logs_it_once(tmp_path: Path) -> None:
    """A retried completion (its first commit's acknowledgement lost with the connection) writes nothing."""
    store = state(tmp_path)
    store.plan_windows("src", 1, 100 * S, 10 * S, 300 * S, first_start_ms=90 * S)
    window = store.next_window("src", 1)
    assert window is not None
    hashes = np.array([1, 2, 3], dtype=np.uint64)
    assert store.complete_window(window, log_for(window, 3), hashes)
    assert not store.complete_window(window, log_for(window, 3), hashes)
    assert len(store.log_rows("src", 1)) == 1
    assert store.seen_before("src", 2, 0, 200 * S).tolist() == [1, 2, 3]


def test_unreachable_store_is_told_from_other_errors(tmp_path: Path) -> None:
    with pytest.raises(OperationalError) as refused:
        CollectionState("postgresql+psycopg2://nobody@127.0.0.1:1/none")  # nothing listens on port 1
    assert store_unavailable(refused.value)
    store = state(tmp_path)
    store.plan_windows("src", 1, 100 * S, 10 * S, 300 * S, first_start_ms=90 * S)
    with pytest.raises(IntegrityError) as duplicate, store.engine.begin() as connection:
        connection.execute(cursors.insert().values(source="src", wave=1, planned_until=0, origin=0))
    assert not store_unavailable(duplicate.value)
    assert not store_unavailable(ValueError("a bug"))
