"""PointPacker: the v1 rules and versions, row for row, straight into UMS batches."""

import math

import numpy as np

from rtdp_dagster.collection.sources.synthetic import SyntheticSeries, SyntheticSource
from rtdp_dagster.config.sources import MalformedRatesConfig, SyntheticSourceConfig
from rtdp_dagster.envelope.batch_builder import BatchBuilder, ClosedBatch, UmsBatchBounds
from rtdp_dagster.envelope.keys import series_key
from rtdp_dagster.envelope.metric_kinds import MetricKinds
from rtdp_dagster.envelope.point_packer import PointPacker
from rtdp_dagster.envelope.records import RawRecord
from rtdp_dagster.envelope.row_block import RowBlock
from rtdp_dagster.envelope.schema import Envelope
from rtdp_dagster.envelope.ums_batch import BatchOrigin, decode_batch
from rtdp_dagster.envelope.validation import OVERSIZE_TAGS, PointRules, PointValidator, Rejection

NAMESPACE = "synthetic.local.fleet.metrics.v1.0.0"
T0 = 1_700_000_000_000
RULES = PointRules()


def partition_of(series: str) -> int:
    return len(series) % 3


def faulty_rows() -> tuple[list[RawRecord], int]:
    config = SyntheticSourceConfig(
        name="faulty",
        namespace=NAMESPACE,
        cadence_s=1.0,
        sites=2,
        hosts_per_site=5,
        duplicate_rate=0.05,
        correction_rate=0.05,
        retraction_rate=0.05,
        malformed=MalformedRatesConfig(
            missing_timestamp=0.02,
            non_numeric_value=0.02,
            nan_value=0.02,
            inf_value=0.02,
            future_timestamp=0.02,
            invalid_metric=0.02,
            oversize_tag=0.02,
        ),
    )
    now = T0 + 3 * 3_600_000  # every revision of the window is visible
    return list(SyntheticSource(config).read_window(T0, T0 + 120_000, now)), now


def test_rows_are_accepted_and_rejected_exactly_as_by_the_v1_validator() -> None:
    rows, collected_at = faulty_rows()
    records: list[ClosedBatch] = []
    builder = BatchBuilder(
        BatchOrigin(NAMESPACE, "faulty", 2, collected_at), UmsBatchBounds(max_points=97), records.append
    )
    packer, validator = PointPacker(RULES, partition_of), PointValidator(RULES)
    expected: list[Envelope] = []
    reasons_v1, reasons_v2 = [], []
    keys: list[str] = []
    for n, row in enumerate(rows, start=1):
        ums_id = collected_at * 1_000_000 + n
        v1 = validator.to_envelope(
            row, namespace=NAMESPACE, source="faulty", wave=2, collected_at=collected_at, ums_id=ums_id
        )
        v2 = packer.pack(row, ums_id, builder)
        if isinstance(v1, Rejection):
            assert isinstance(v2, Rejection), row
            reasons_v1.append(v1.reason)
            reasons_v2.append(v2.reason)
            assert v2.detail == v1.detail
        else:
            assert isinstance(v2, str) and v2 == v1.point_key
            expected.append(v1)
            keys.append(v2)
    builder.flush()
    assert reasons_v2 == reasons_v1 and len(set(reasons_v1)) >= 5
    assert {"u", "d"} <= {item.ums_op_ for item in expected}
    decoded = [item for record in records for item in decode_batch(record.value)]
    assert sorted(decoded, key=lambda e: (e.point_key, e.ums_id_)) == sorted(
        expected, key=lambda e: (e.point_key, e.ums_id_)
    )
    # Duplicates of a point (same key) arrive in read order within their series.
    for series in {item.series_key for item in expected}:
        assert [e.ums_id_ for e in decoded if e.series_key == series] == [
            e.ums_id_ for e in expected if e.series_key == series
        ]
    assert all(
        partition_of(item.series_key) == record.partition for record in records for item in decode_batch(record.value)
    )
    assert keys == [item.point_key for item in expected]


def test_a_point_too_large_for_a_record_is_rejected_not_raised() -> None:
    rules = PointRules(max_tags=64, max_tag_value_length=2000)
    records: list[ClosedBatch] = []
    builder = BatchBuilder(BatchOrigin(NAMESPACE, "s", 1, T0), UmsBatchBounds(max_bytes=16 * 1024), records.append)
    packer = PointPacker(rules, partition_of)
    huge = RawRecord("sys.cpu", {f"t{n:02d}": "v" * 1500 for n in range(12)}, 1.0, T0)
    rejection = packer.pack(huge, 1, builder)
    assert isinstance(rejection, Rejection) and rejection.reason == OVERSIZE_TAGS
    key = packer.pack(RawRecord("sys.cpu", {"host": "a"}, 1.0, T0), 2, builder)
    builder.flush()
    (record,) = records
    assert [item.point_key for item in decode_batch(record.value)] == [key]


def test_series_are_cached_by_identity_whatever_the_tag_order() -> None:
    calls: list[str] = []

    def counting(series: str) -> int:
        calls.append(series)
        return 0

    packer = PointPacker(RULES, counting)
    builder = BatchBuilder(BatchOrigin(NAMESPACE, "s", 1, T0), UmsBatchBounds(), lambda _: None)
    for n, tags in enumerate([{"a": "1", "b": "2"}, {"b": "2", "a": "1"}, {"a": "1", "b": "2"}]):
        assert isinstance(packer.pack(RawRecord("m", tags, 1.0, T0 - n), n, builder), str)
    assert calls == [series_key("m", {"a": "1", "b": "2"})] * 2  # one slot per tag order, one series key
    assert builder.open_points == 3
    bad = RawRecord("m", {"a": ["not", "hashable"]}, 1.0, T0)  # type: ignore[dict-item]
    rejected = packer.pack(bad, 9, builder)
    assert isinstance(rejected, Rejection) and rejected.reason == "invalid_tag"


def test_a_block_is_packed_as_its_rows_would_be() -> None:
    series = [
        SyntheticSeries("sys.cpu.util", {"host": "a"}),
        SyntheticSeries("bad metric", {"host": "a"}),  # an invalid series: every row refused
        SyntheticSeries("sys.mem", {"host": "b", "site": "s1"}),
    ]
    kinds = MetricKinds(patterns=[{"pattern": "sys.cpu.*", "kind": "percent"}])  # type: ignore[list-item]
    rows = [
        (0, T0, 1.5),
        (1, T0, 2.0),
        (2, T0, math.nan),
        (0, T0 + 10**9, 3.0),
        (2, T0 + 1, math.inf),
        (0, T0 + 2, 250.0),
        (2, 10, 4.0),
        (2, T0 + 3, -0.0),
        (0, T0 + 4, 7.25),
    ]
    for op, versions in (("i", None), ("u", np.arange(100, 100 + len(rows))), ("d", None)):
        block = RowBlock(
            series,
            np.array([r[0] for r in rows], dtype=np.intp),
            np.array([r[1] for r in rows], dtype=np.int64),
            np.array([r[2] for r in rows]),
            versions,
            op,  # type: ignore[arg-type]
        )
        by_block: list[ClosedBatch] = []
        by_row: list[ClosedBatch] = []
        origin = BatchOrigin(NAMESPACE, "s", 1, T0)
        block_builder = BatchBuilder(origin, UmsBatchBounds(max_points=4, linger_ms=1e9), by_block.append)
        row_builder = BatchBuilder(origin, UmsBatchBounds(max_points=4, linger_ms=1e9), by_row.append)
        keys: list[str] = []
        rejected = PointPacker(RULES, partition_of, kinds=kinds).pack_block(block, 1000, block_builder, keys)
        row_packer = PointPacker(RULES, partition_of, kinds=kinds)
        verdicts = [row_packer.pack(row, 1000 + n, row_builder) for n, row in enumerate(block.records())]
        block_builder.flush()
        row_builder.flush()
        assert [(b.partition, b.value) for b in by_block] == [(b.partition, b.value) for b in by_row]
        assert keys == [verdict for verdict in verdicts if isinstance(verdict, str)]
        assert rejected == [(n, verdict) for n, verdict in enumerate(verdicts) if isinstance(verdict, Rejection)]
        points = [point for record in by_block for point in decode_batch(record.value)]
        assert {point.ums_op_ for point in points} == {op}
        if op == "d":
            assert all(point.value is None for point in points) and len(points) == 6
        else:
            reasons = {verdict.reason for verdict in verdicts if isinstance(verdict, Rejection)}
            assert reasons == {
                "invalid_metric_name",
                "non_finite_value",
                "timestamp_in_future",
                "timestamp_too_old",
                "value_out_of_range",
            }
