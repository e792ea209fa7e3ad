"""The load generator's v2 records: the platform's own encoding of its points, bounded and routed as collectors do."""

from __future__ import annotations

from bench.load_producer import HOSTS, BatchRecords
from rtdp_dagster.collection.partitioning import partition_index
from rtdp_dagster.envelope.batch_builder import UmsBatchBounds
from rtdp_dagster.envelope.keys import series_key
from rtdp_dagster.envelope.schema import Envelope
from rtdp_dagster.envelope.ums_batch import decode_batch, encode_batch
from rtdp_dagster.envelope.ums_batch_validation import validate_batch
from rtdp_dagster.envelope.validation import PointRules

METRIC = "rtdp.bench.load"
PARTITIONS = [0, 1, 2]
NOW_MS = 1_795_000_000_000


def _partition_of(point: Envelope) -> int:
    return PARTITIONS[partition_index(point.series_key.encode(), len(PARTITIONS))]


def test_each_partitions_record_is_byte_identical_to_the_platform_encoder():
    batches = BatchRecords(METRIC, PARTITIONS, UmsBatchBounds())
    count = 2 * HOSTS + 17  # three points of some series, two of the others: groups of several tuples
    records = batches.records(0, count, NOW_MS)
    expected = batches.expected_points(0, count, NOW_MS)
    assert sorted(record.partition for record in records) == PARTITIONS  # within bounds: one record each
    for record in records:
        points = [point for point in expected if _partition_of(point) == record.partition]
        assert record.value == encode_batch(points)
        assert record.points == len(points)


def test_records_keep_to_the_bounds_and_hold_every_point_once_in_series_order():
    bounds = UmsBatchBounds(max_points=50, max_bytes=16 * 1024)
    batches = BatchRecords(METRIC, PARTITIONS, bounds)
    count = 3 * HOSTS
    records = batches.records(5, count, NOW_MS)
    by_series: dict[str, list[Envelope]] = {}
    for record in records:
        assert record.points <= bounds.max_points and len(record.value) <= bounds.max_bytes
        points = decode_batch(record.value)
        assert encode_batch(points) == record.value
        for point in points:
            assert _partition_of(point) == record.partition
            by_series.setdefault(point.series_key, []).append(point)
    expected: dict[str, list[Envelope]] = {}
    for point in batches.expected_points(5, count, NOW_MS):
        expected.setdefault(point.series_key, []).append(point)
    assert by_series == expected
    batches.check(count=2_000)  # the start-up check agrees


def test_routing_keys_send_each_record_to_its_partition_under_the_default_partitioner():
    batches = BatchRecords(METRIC, PARTITIONS, UmsBatchBounds())
    for partition, key in batches.routing_keys.items():
        assert PARTITIONS[partition_index(key, len(PARTITIONS))] == partition
    slot = batches.slots[7]
    assert slot.series == series_key(METRIC, {"host": "h0007"})


def test_every_point_of_a_record_is_valid_for_the_platform():
    batches = BatchRecords(METRIC, PARTITIONS, UmsBatchBounds())
    for record in batches.records(0, 900, NOW_MS):
        judged = validate_batch(record.value, PointRules(), received_ms=NOW_MS)
        assert isinstance(judged, list) and all(isinstance(point, Envelope) for point in judged)
        assert len(judged) == record.points
