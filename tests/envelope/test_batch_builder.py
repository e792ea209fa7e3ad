"""BatchBuilder: bounded records, one partition per record, series order, linger and flush."""

import hashlib

import orjson
import pytest

from rtdp_dagster.envelope.batch_builder import BatchBuilder, ClosedBatch, PointTooLarge, UmsBatchBounds, slot_of
from rtdp_dagster.envelope.keys import point_key_of_series, series_key
from rtdp_dagster.envelope.ums_batch import BatchOrigin, decode_batch, point_tuple

ORIGIN = BatchOrigin("synthetic.local.fleet.metrics.v1.0.0", "fleet", 1, 1_700_000_100_000)
T0 = 1_700_000_000_000
PARTITIONS = 3


def partition_of(series: str) -> int:
    return hashlib.sha1(series.encode()).digest()[0] % PARTITIONS


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def fill(builder: BatchBuilder, series_count: int, steps: int) -> list[tuple[str, int]]:
    """Points of every series at every step, step by step; returns (series, ts) in add order."""
    added = []
    for step in range(steps):
        for n in range(series_count):
            metric, tags = "sys.cpu", {"host": f"h{n:03d}", "site": "par"}
            series = series_key(metric, tags)
            ts = T0 + step * 1000
            slot = slot_of(series, partition_of(series), metric, tags)
            builder.add(slot, point_tuple(ts * 10, ts, "i", point_key_of_series(series, ts), float(step)))
            added.append((series, ts))
    return added


def build(bounds: UmsBatchBounds, series_count: int = 40, steps: int = 30) -> tuple[list[ClosedBatch], list]:
    records: list[ClosedBatch] = []
    builder = BatchBuilder(ORIGIN, bounds, records.append, clock_s=FakeClock())
    added = fill(builder, series_count, steps)
    builder.flush()
    assert builder.open_points == 0
    assert builder.points == len(added) == sum(record.points for record in records)
    assert builder.records == len(records)
    return records, added


def test_records_respect_the_point_bound() -> None:
    records, added = build(UmsBatchBounds(max_points=50))
    assert all(record.points <= 50 for record in records)
    assert sum(record.points for record in records) == len(added)
    assert max(record.points for record in records) == 50


def test_records_respect_the_byte_bound() -> None:
    bounds = UmsBatchBounds(max_points=100_000, max_bytes=16 * 1024)
    records, added = build(bounds, series_count=60, steps=40)
    assert len(records) > 3
    assert all(len(record.value) <= bounds.max_bytes for record in records)
    # The bound is counted conservatively, not wastefully: the biggest records are well filled.
    assert max(len(record.value) for record in records) > 0.6 * bounds.max_bytes
    assert sum(len(decode_batch(record.value)) for record in records) == len(added)


def test_every_series_of_a_record_belongs_to_its_partition_and_keeps_its_order() -> None:
    records, added = build(UmsBatchBounds(max_points=37))
    seen: dict[str, list[int]] = {}
    for record in records:
        points = decode_batch(record.value)
        assert {partition_of(item.series_key) for item in points} == {record.partition}
        for item in points:
            seen.setdefault(item.series_key, []).append(item.ums_ts_)
            assert item.point_key == point_key_of_series(item.series_key, item.ums_ts_)
    expected: dict[str, list[int]] = {}
    for series, ts in added:
        expected.setdefault(series, []).append(ts)
    assert seen == expected


def test_a_lingering_record_is_closed_when_the_next_point_arrives_and_flush_closes_the_rest() -> None:
    records: list[ClosedBatch] = []
    clock = FakeClock()
    builder = BatchBuilder(ORIGIN, UmsBatchBounds(linger_ms=50), records.append, clock_s=clock)
    fill(builder, series_count=10, steps=1)
    assert records == [] and builder.open_points == 10
    clock.now += 0.049
    fill(builder, series_count=1, steps=1)
    assert records == []
    clock.now += 0.002
    fill(builder, series_count=1, steps=1)
    # Every record opened more than 50 ms ago was closed, including the one just added to.
    assert sum(record.points for record in records) == 12 and builder.open_points == 0
    fill(builder, series_count=3, steps=1)
    builder.flush()
    assert sum(record.points for record in records) == 15 and builder.open_points == 0
    assert all(orjson.loads(record.value)["batch"]["points"] == record.points for record in records)


def test_a_point_that_cannot_fit_an_empty_record_is_refused() -> None:
    records: list[ClosedBatch] = []
    builder = BatchBuilder(ORIGIN, UmsBatchBounds(max_bytes=16 * 1024), records.append)
    tags = {f"tag{n:02d}": "v" * 1000 for n in range(17)}
    series = series_key("sys.cpu", tags)
    slot = slot_of(series, 0, "sys.cpu", tags)
    with pytest.raises(PointTooLarge, match="max_bytes 16384"):
        builder.add(slot, point_tuple(1, T0, "i", point_key_of_series(series, T0), 1.0))
    builder.flush()
    assert records == [] and builder.points == 0


def test_bounds_are_validated() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        UmsBatchBounds(max_bytes=1000)
    with pytest.raises(ValueError, match="max_points"):
        UmsBatchBounds(max_points=0)
