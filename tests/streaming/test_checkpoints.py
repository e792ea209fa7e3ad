"""Where the realtime query starts: from the beginning of Kafka on a new stream, and where bronze
has committed after an upgrade from the bronze-fed realtime query (whose checkpoint a Kafka source
cannot resume)."""

from pathlib import Path

from rtdp_dagster.streaming.app import REALTIME_CHECKPOINT, committed_offsets, realtime_starting_offsets

OFFSETS_3 = '{"rtdp.points.v1":{"0":131592,"1":98016,"2":128514}}'


def _batch(checkpoint: Path, batch_id: int, offsets: str, committed: bool) -> None:
    (checkpoint / "offsets").mkdir(parents=True, exist_ok=True)
    (checkpoint / "commits").mkdir(parents=True, exist_ok=True)
    (checkpoint / "offsets" / str(batch_id)).write_text(f'v1\n{{"batchWatermarkMs":0}}\n{offsets}\n')
    if committed:
        (checkpoint / "commits" / str(batch_id)).write_text('v1\n{"nextBatchWatermarkMs":0}\n')


def test_a_new_stream_reads_kafka_from_the_beginning(tmp_path: Path) -> None:
    assert realtime_starting_offsets(tmp_path) == "earliest"
    _batch(tmp_path / "bronze", 0, OFFSETS_3, committed=True)
    assert realtime_starting_offsets(tmp_path) == "earliest"  # no old realtime checkpoint: nothing to resume


def test_an_upgraded_stream_starts_where_bronze_committed(tmp_path: Path) -> None:
    (tmp_path / "realtime" / "offsets").mkdir(parents=True)
    _batch(tmp_path / "bronze", 2, '{"rtdp.points.v1":{"0":10}}', committed=True)
    _batch(tmp_path / "bronze", 3, OFFSETS_3, committed=True)
    _batch(tmp_path / "bronze", 4, '{"rtdp.points.v1":{"0":999999}}', committed=False)  # planned, not done
    assert committed_offsets(tmp_path / "bronze") == OFFSETS_3
    assert realtime_starting_offsets(tmp_path) == OFFSETS_3
    # Once the new checkpoint exists, Spark resumes from it and the starting offsets no longer apply.
    (tmp_path / REALTIME_CHECKPOINT / "offsets").mkdir(parents=True)
    assert realtime_starting_offsets(tmp_path) == "earliest"
