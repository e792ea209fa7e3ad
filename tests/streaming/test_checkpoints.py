"""What a restart reads beside Spark's checkpoint: the last committed batch and its Kafka offsets,
and the watermark base of the realtime dedup state (the value before a batch that was not committed)."""

from pathlib import Path

from rtdp_dagster.streaming.realtime_state import last_committed, max_event_through, save_max_event, saved_tsdb_state

OFFSETS_3 = '{"rtdp.points.v1":{"0":131592,"1":98016,"2":128514}}'


def _batch(checkpoint: Path, batch_id: int, offsets: str, committed: bool) -> None:
    (checkpoint / "offsets").mkdir(parents=True, exist_ok=True)
    (checkpoint / "commits").mkdir(parents=True, exist_ok=True)
    (checkpoint / "offsets" / str(batch_id)).write_text(f'v1\n{{"batchWatermarkMs":0}}\n{offsets}\n')
    if committed:
        (checkpoint / "commits" / str(batch_id)).write_text('v1\n{"nextBatchWatermarkMs":0}\n')


def test_a_new_checkpoint_has_nothing_committed(tmp_path: Path) -> None:
    assert last_committed(tmp_path / "bronze") is None
    _batch(tmp_path / "bronze", 0, OFFSETS_3, committed=False)
    assert last_committed(tmp_path / "bronze") is None


def test_the_last_committed_batch_is_read_with_its_end_offsets(tmp_path: Path) -> None:
    _batch(tmp_path / "bronze", 2, '{"rtdp.points.v1":{"0":10}}', committed=True)
    _batch(tmp_path / "bronze", 3, OFFSETS_3, committed=True)
    _batch(tmp_path / "bronze", 4, '{"rtdp.points.v1":{"0":999999}}', committed=False)  # planned, not done
    assert last_committed(tmp_path / "bronze") == (3, OFFSETS_3)


def test_the_watermark_base_is_the_one_of_the_last_committed_batch(tmp_path: Path) -> None:
    state = tmp_path / "bronze.realtime-state.json"
    assert max_event_through(state, 3) == (False, None)  # a checkpoint from before the file
    save_max_event(state, 3, before=1_000, after=2_000)
    assert max_event_through(state, 3) == (True, 2_000)
    save_max_event(state, 4, before=2_000, after=5_000)
    assert max_event_through(state, 3) == (True, 2_000), "batch 4 is replayed: its rows were not seen"
    assert max_event_through(state, 4) == (True, 5_000)
    assert max_event_through(state, 1) == (False, None), "a file of another checkpoint"


def test_the_realtime_writers_saved_state_is_read_back_and_a_broken_one_is_not_trusted(tmp_path: Path) -> None:
    state = tmp_path / "bronze.realtime-state.json"
    assert saved_tsdb_state(state, 15.0)[1:] == (None, None)  # no file yet
    tsdb = {"acknowledged": [[100.0, 1_000, 2_000, 10]], "known": 50.0, "known_at": 90.0}
    save_max_event(state, 3, before=1_000, after=2_000, tsdb=tsdb)
    acknowledged, known, known_at = saved_tsdb_state(state, 15.0)
    assert (acknowledged.saved(), known, known_at) == ([[100.0, 1_000, 2_000, 10]], 50.0, 90.0)
    save_max_event(state, 4, before=1_000, after=2_000, tsdb={"acknowledged": [[1, 2]], "known": 50.0})
    acknowledged, known, known_at = saved_tsdb_state(state, 15.0)
    assert (acknowledged.saved(), known, known_at) == ([], None, None)
